//! The read cache the package's JS entry (`js/index.js`) answers `get` and `has` from without
//! entering wasm: one JS `Map` per plugin, key → value, holding primitives only (strings,
//! numbers, booleans, null: immutable, so handing out the same one is safe; objects are parsed
//! anew on every `get`, which wasm does).
//!
//! Coherence: every change to the index's records goes through `State::apply` or
//! `State::apply_batch` (db.rs), which change the index and the maps together in one `RefCell`
//! borrow (local writes, other tabs' writes, sync commits), so a map never disagrees with the
//! index between two JS turns. Closing empties every map, so reads
//! of a closed store reach wasm and fail with `StoreClosed`. A plugin's map is made with its
//! first `PluginStore` (`ClientData.plugin`), so writes through it fill the map from the start;
//! the wasm `get` answers from it too, before parsing.

use js_sys::Map;
use wasm_bindgen::JsValue;

use super::codec::is_shareable;
use crate::core::sorted::SortedMap;
use crate::core::{Key, PluginId};

/// The per-plugin maps (see the module docs).
#[derive(Debug, Default)]
pub struct ReadCache {
    maps: SortedMap<PluginId, Map>,
}

impl ReadCache {
    /// `plugin`'s map, created empty on first use.
    pub fn map(&mut self, plugin: &PluginId) -> Map {
        self.maps
            .get_or_insert_with(plugin.clone(), Map::new)
            .clone()
    }

    /// The cached value of (plugin, key), if any (the wasm `get` path checks before parsing).
    pub fn get(&self, plugin: &PluginId, key: &Key) -> Option<JsValue> {
        let value = self.maps.get(plugin)?.get(&JsValue::from_str(key.as_str()));
        (!value.is_undefined()).then_some(value)
    }

    /// Records that (plugin, key) now holds `value`: cached when it is a primitive, dropped
    /// otherwise (`None`: a tombstone, an object, or a value not at hand as JS).
    pub fn put(&self, plugin: &PluginId, key: &Key, value: Option<&JsValue>) {
        if self.maps.get(plugin).is_some() {
            self.put_at(plugin, &JsValue::from_str(key.as_str()), value);
        }
    }

    /// [`ReadCache::put`] with the key as a JS string already (a local write's).
    pub fn put_at(&self, plugin: &PluginId, key: &JsValue, value: Option<&JsValue>) {
        let Some(map) = self.maps.get(plugin) else {
            return;
        };
        match value.filter(|v| is_shareable(v)) {
            Some(v) => {
                map.set(key, v);
            }
            None => {
                map.delete(key);
            }
        }
    }

    /// Empties every map and forgets them (the store closed).
    pub fn clear(&mut self) {
        for (_, map) in std::mem::take(&mut self.maps) {
            map.clear();
        }
    }
}
