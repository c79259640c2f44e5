//! The localStorage engine, used when IndexedDB is missing or fails to open (or when forced by
//! the `engine` option). One localStorage item per record:
//! `clientdata:<db>:rec:<plugin>\x01<key>` = the journal entry encoding of the record; slot rows
//! at `clientdata:<db>:slot:<n>` = `<node>,<wall>,<counter>,<secret>`; vectors at
//! `clientdata:<db>:vec:<kind>:<plugin>` = comma-separated HLCs. Writes are synchronous.

use web_sys::Storage;

use super::commit::{kind_name, parse_kind, Commit, Loaded, SlotRow};
use crate::browser::web_storage::{item_is_exact, keys_with_prefix, probe};
use crate::core::replica::VectorKind;
use crate::core::{ClockState, DeviceSecret, Hlc, Key, NodeId, PluginId, Record, VersionVector};
use crate::store::codec::js_failure;
use crate::store::error::StoreResult;
use crate::store::journal;
use crate::store::quarantine::{Place, Quarantined};

/// A vector item: `<kind>:<plugin>` (the name after `vec:`) = comma-separated HLCs.
fn parse_vector(id: &str, text: &str) -> Option<(VectorKind, PluginId, VersionVector)> {
    let (kind, plugin) = id.split_once(':')?;
    let kind = parse_kind(kind)?;
    let plugin = PluginId::new(plugin).ok()?;
    let vector: VersionVector = text
        .split(',')
        .filter_map(|h| Hlc::parse(h).ok())
        .map(|h| (h.node, h))
        .collect();
    Some((kind, plugin, vector))
}

/// A database kept in localStorage.
#[derive(Debug)]
pub struct LsEngine {
    storage: Storage,
    root: String,
}

impl LsEngine {
    /// Writes and removes a probe key (the verifier's health check).
    pub fn probe(&self) -> StoreResult<()> {
        probe(&self.storage, &format!("{}verifier-probe", self.root)).map_err(|e| js_failure(&e))
    }

    /// The engine for database `db`.
    pub fn new(storage: Storage, db: &str) -> Self {
        LsEngine {
            storage,
            root: format!("clientdata:{db}:"),
        }
    }

    fn record_key(&self, plugin: &PluginId, key: &Key) -> String {
        format!("{}rec:{}\u{1}{}", self.root, plugin, key)
    }

    /// Reads every sync vector, and no record (a sync round re-reads them).
    pub fn load_vectors(&self) -> Vec<(VectorKind, PluginId, VersionVector)> {
        let prefix = format!("{}vec:", self.root);
        keys_with_prefix(&self.storage, &prefix)
            .into_iter()
            .filter_map(|item| {
                let text = self.storage.get_item(&item).ok()??;
                parse_vector(&item[prefix.len()..], &text)
            })
            .collect()
    }

    /// Reads every record and vector.
    pub fn load(&self) -> StoreResult<Loaded> {
        let mut loaded = Loaded::default();
        for item in keys_with_prefix(&self.storage, &self.root) {
            let rest = &item[self.root.len()..];
            let Ok(Some(text)) = self.storage.get_item(&item) else {
                continue;
            };
            if let Some(id) = rest.strip_prefix("rec:") {
                // The item's name must match the record inside: another database whose name
                // extends this one's never parses as a valid (plugin, key) here.
                let Some((plugin, key)) = id.split_once('\u{1}') else {
                    continue;
                };
                let bad = |reason: String| Quarantined {
                    place: Place::Row(item.clone()),
                    reason,
                };
                let exact = item_is_exact(&self.storage, &item, &text);
                match journal::decode(&text) {
                    Ok(_) if !exact => loaded.corrupt.push(bad(journal::LOSSY.to_string())),
                    Ok(record)
                        if record.plugin.as_str() == plugin && record.key.as_str() == key =>
                    {
                        loaded.records.push(record)
                    }
                    Ok(_) => loaded
                        .corrupt
                        .push(bad("the record does not match its item's name".into())),
                    Err(why) => loaded.corrupt.push(bad(why.to_string())),
                }
            } else if let Some(id) = rest.strip_prefix("vec:") {
                loaded.vectors.extend(parse_vector(id, &text));
            }
        }
        Ok(loaded)
    }

    /// Reads slot `n`'s row.
    pub fn load_slot(&self, n: u32) -> Option<SlotRow> {
        let text = self
            .storage
            .get_item(&format!("{}slot:{n}", self.root))
            .ok()??;
        let mut parts = text.split(',');
        let node = NodeId::parse(parts.next()?).ok()?;
        let wall_ms = parts.next()?.parse().ok()?;
        let counter = parts.next()?.parse().ok()?;
        // Rows written before device secrets have three parts.
        let secret = parts.next().and_then(DeviceSecret::parse);
        Some(SlotRow {
            slot: n,
            node,
            clock: ClockState { wall_ms, counter },
            secret,
        })
    }

    /// Removes records still stored with the given stamps (see [`super::Engine::remove`]).
    pub fn remove(&self, removals: &[Record]) -> StoreResult<()> {
        for r in removals {
            let item = self.record_key(&r.plugin, &r.key);
            let stored = self.storage.get_item(&item).ok().flatten();
            if stored
                .and_then(|s| journal::decode(&s).ok())
                .is_some_and(|s| s.hlc == r.hlc)
            {
                self.storage
                    .remove_item(&item)
                    .map_err(|e| js_failure(&e))?;
            }
        }
        Ok(())
    }

    /// Writes a commit item by item. localStorage has no transactions: a failure part-way
    /// leaves earlier items written, which is safe because every record is still in the
    /// journal (replayed idempotently by LWW) until the whole commit succeeds.
    pub fn write(&self, commit: &Commit<'_>) -> StoreResult<()> {
        let put = |k: &str, v: &str| self.storage.set_item(k, v).map_err(|e| js_failure(&e));
        for record in commit.records {
            let item = self.record_key(&record.plugin, &record.key);
            if commit.if_newer {
                let stored = self.storage.get_item(&item).ok().flatten();
                if stored
                    .and_then(|s| journal::decode(&s).ok())
                    .is_some_and(|s| !record.replaces(Some((&s.hlc, s.value.as_ref()))))
                {
                    continue;
                }
            }
            put(&item, &journal::encode(record))?;
        }
        if let Some(slot) = commit.slot {
            let mut row = format!(
                "{},{},{}",
                slot.node, slot.clock.wall_ms, slot.clock.counter
            );
            if let Some(secret) = slot.secret {
                row.push(',');
                row.push_str(&secret.to_hex());
            }
            put(&format!("{}slot:{}", self.root, slot.slot), &row)?;
        }
        for (kind, watermarks) in commit.vectors {
            for (plugin, vector) in watermarks.iter() {
                let stamps: Vec<String> = vector.iter().map(|(_, h)| h.encode()).collect();
                put(
                    &format!("{}vec:{}:{}", self.root, kind_name(*kind), plugin),
                    &stamps.join(","),
                )?;
            }
        }
        Ok(())
    }
}
