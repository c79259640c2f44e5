//! The in-memory state every read is served from: the index (records by LWW, sync vectors) and
//! the read cache mirroring its primitive values for the package's JS entry. Every record
//! change goes through [`Records::apply`] or [`Records::apply_batch`], which change both in
//! one call (so within one `RefCell` borrow of the store's state): the two never disagree.

use js_sys::Map;
use wasm_bindgen::JsValue;

use super::codec::value_to_js;
use super::error::{StoreError, StoreResult};
use super::index::Index;
use super::quarantine::{Place, Quarantine, Quarantined};
use super::read_cache::ReadCache;
use crate::core::replica::Batch;
use crate::core::{Key, PluginId, Record};

/// The index and the read cache, changed together.
#[derive(Debug, Default)]
pub struct Records {
    index: Index,
    reads: ReadCache,
    /// What did not decode: left out of the index, or (values) skipped by `keys` and `scan`.
    quarantine: Quarantine,
}

impl Records {
    /// The records loaded at open (the read cache starts empty: maps are made per plugin).
    pub fn new(index: Index, quarantine: Quarantine) -> Self {
        Records {
            index,
            reads: ReadCache::default(),
            quarantine,
        }
    }

    /// What has been quarantined.
    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }

    /// Quarantines (plugin, key)'s stored value, found corrupt when read; `false` if known.
    pub fn quarantine_value(&mut self, plugin: &PluginId, key: &Key, reason: String) -> bool {
        self.quarantine.add(Quarantined {
            place: Place::Value(plugin.clone(), key.clone()),
            reason,
        })
    }

    /// The index, for reads.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The index for planning a sync round (its `core::Store` implementation takes `&mut`).
    /// Callers must not change records through it: they change through [`Records::apply`] and
    /// [`Records::apply_batch`] only.
    pub fn index_for_planning(&mut self) -> &mut Index {
        &mut self.index
    }

    /// Applies `record` under last-write-wins to the index and, when it wins, to the read cache
    /// (`js`: its value as JS, when at hand). Returns its (plugin, key) if it won.
    pub fn apply(&mut self, record: Record, js: Option<&JsValue>) -> Option<(PluginId, Key)> {
        self.apply_keyed(record, js, None)
    }

    /// [`Records::apply`] of a local write whose key is at hand as the JS string `key`.
    pub fn apply_local(&mut self, record: Record, js: Option<&JsValue>, key: &JsValue) {
        self.apply_keyed(record, js, Some(key));
    }

    /// [`Records::apply`], keying the read cache by `key_js` when given.
    fn apply_keyed(
        &mut self,
        record: Record,
        js: Option<&JsValue>,
        key_js: Option<&JsValue>,
    ) -> Option<(PluginId, Key)> {
        let id = (record.plugin.clone(), record.key.clone());
        if !self.index.apply(record) {
            return None;
        }
        self.quarantine.replaced(&id.0, &id.1);
        match key_js {
            Some(key) => self.reads.put_at(&id.0, key, js),
            None => self.reads.put(&id.0, &id.1, js),
        }
        Some(id)
    }

    /// Applies a sync round's batch (see [`Index::apply_batch`]), dropping the records that won
    /// from the read cache. Returns their (plugin, key).
    pub fn apply_batch(&mut self, batch: Batch) -> Vec<(PluginId, Key)> {
        let changed = self.index.apply_batch(batch);
        for (plugin, key) in &changed {
            self.quarantine.replaced(plugin, key);
            self.reads.put(plugin, key, None);
        }
        changed
    }

    /// Removes `record` from the index and the read cache if it is still the current version
    /// (see [`Index::remove`]). Returns its (plugin, key) if it did.
    pub fn remove(&mut self, record: &Record) -> Option<(PluginId, Key)> {
        if !self.index.remove(&record.plugin, &record.key, record.hlc) {
            return None;
        }
        self.quarantine.replaced(&record.plugin, &record.key);
        self.reads.put(&record.plugin, &record.key, None);
        Some((record.plugin.clone(), record.key.clone()))
    }

    /// The value of (plugin, key) as a fresh JS value (`undefined` if absent or deleted).
    /// Objects are parsed anew each time; primitives are answered from, or land in, the read
    /// cache.
    pub fn get(&self, plugin: &PluginId, key: &Key) -> StoreResult<JsValue> {
        let Some(value) = self
            .index
            .live(plugin, key.as_str())
            .and_then(|e| e.value.as_ref())
        else {
            return Ok(JsValue::UNDEFINED);
        };
        if let Some(cached) = self.reads.get(plugin, key) {
            return Ok(cached);
        }
        let js = value_to_js(value).map_err(|e| match e {
            StoreError::CorruptValue { reason, .. } => StoreError::CorruptValue {
                plugin: plugin.to_string(),
                key: key.to_string(),
                reason,
            },
            StoreError::NotHydrated { .. } => StoreError::NotHydrated {
                plugin: plugin.to_string(),
                key: key.to_string(),
            },
            other => other,
        })?;
        self.reads.put(plugin, key, Some(&js));
        Ok(js)
    }

    /// `plugin`'s read-cache map, created empty on first use.
    pub fn read_cache(&mut self, plugin: &PluginId) -> Map {
        self.reads.map(plugin)
    }

    /// Empties the read cache (the store closed: cached reads must fail too).
    pub fn clear_read_cache(&mut self) {
        self.reads.clear();
    }
}
