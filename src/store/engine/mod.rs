//! The storage engines behind one enum, and choosing one at open: IndexedDB, else localStorage,
//! else memory, never silently (the choice and the reason for a fallback are in `metadata()`).
//!
//! - `commit`: what every engine reads and writes (`Commit`, `Loaded`, `SlotRow`, `Fence`).
//! - `indexeddb`, `local_storage`: the two persistent engines; they import `commit`, never
//!   this module, so the enum and its implementations form no cycle.

pub mod commit;
pub mod indexeddb;
pub mod local_storage;

pub use commit::{Commit, Fence, Loaded, SlotRow, Started};

use super::error::{StoreError, StoreResult};
use crate::browser::web_storage::local_storage;
use crate::core::replica::VectorKind;
use crate::core::{PluginId, Record, VersionVector};
use indexeddb::IdbEngine;
use local_storage::LsEngine;

/// Which engine `open` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// IndexedDB, falling back to localStorage, then memory.
    #[default]
    Auto,
    /// IndexedDB or fail.
    IndexedDb,
    /// localStorage or fail (tests run the behavioural suite on it).
    LocalStorage,
    /// Memory only: nothing survives the page.
    Memory,
}

impl Choice {
    /// Parses the `engine` option.
    pub fn parse(text: &str) -> StoreResult<Self> {
        Ok(match text {
            "auto" => Choice::Auto,
            "indexeddb" => Choice::IndexedDb,
            "localstorage" => Choice::LocalStorage,
            "memory" => Choice::Memory,
            other => {
                return Err(StoreError::InvalidOptions(format!(
                    "engine must be \"auto\", \"indexeddb\", \"localstorage\" or \"memory\", not {other:?}"
                )))
            }
        })
    }
}

/// An open engine.
#[derive(Debug)]
pub enum Engine {
    /// IndexedDB (the default).
    IndexedDb(IdbEngine),
    /// localStorage (fallback).
    LocalStorage(LsEngine),
    /// Memory (last resort; nothing persists).
    Memory,
}

impl Engine {
    /// Opens the engine `choice` allows for database `name`; returns it with the reason it is
    /// not IndexedDB when `Auto` had to fall back.
    pub async fn select(name: &str, choice: Choice) -> StoreResult<(Engine, Option<String>)> {
        let mut reason = None;
        if matches!(choice, Choice::Auto | Choice::IndexedDb) {
            match IdbEngine::open(name).await {
                Ok(idb) => return Ok((Engine::IndexedDb(idb), None)),
                Err(e) if choice == Choice::IndexedDb => {
                    return Err(StoreError::StorageUnavailable(e.to_string()))
                }
                Err(e) => reason = Some(e.to_string()),
            }
        }
        if matches!(choice, Choice::Auto | Choice::LocalStorage) {
            match local_storage() {
                Some(storage) => {
                    return Ok((Engine::LocalStorage(LsEngine::new(storage, name)), reason))
                }
                None if choice == Choice::LocalStorage => {
                    return Err(StoreError::StorageUnavailable(
                        "localStorage is not available".into(),
                    ))
                }
                None => {
                    reason = Some(format!(
                        "{}; localStorage is not available",
                        reason.unwrap_or_default()
                    ))
                }
            }
        }
        Ok((Engine::Memory, reason))
    }

    /// `"indexeddb"`, `"localstorage"` or `"memory"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Engine::IndexedDb(_) => "indexeddb",
            Engine::LocalStorage(_) => "localstorage",
            Engine::Memory => "memory",
        }
    }

    /// Whether writes survive the page (memory does not, so it needs no journal).
    pub fn is_persistent(&self) -> bool {
        !matches!(self, Engine::Memory)
    }

    /// Reads everything stored.
    pub async fn load(&self) -> StoreResult<Loaded> {
        match self {
            Engine::IndexedDb(e) => e.load().await,
            Engine::LocalStorage(e) => e.load(),
            Engine::Memory => Ok(Loaded::default()),
        }
    }

    /// Reads every sync vector; `None` for memory, whose only copy is the index.
    pub async fn load_vectors(
        &self,
    ) -> StoreResult<Option<Vec<(VectorKind, PluginId, VersionVector)>>> {
        match self {
            Engine::IndexedDb(e) => e.load_vectors().await.map(Some),
            Engine::LocalStorage(e) => Ok(Some(e.load_vectors())),
            Engine::Memory => Ok(None),
        }
    }

    /// The store epoch, created as `fresh` if the store has none; whether this call created it.
    /// localStorage keeps it in the mirror's own key (`store::epoch::mirror_key`): the engine
    /// and its mirror are one storage there. Memory stores are new at every open.
    pub async fn store_epoch(&self, name: &str, fresh: &str) -> StoreResult<(String, bool)> {
        match self {
            Engine::IndexedDb(e) => e.store_epoch(fresh).await,
            Engine::LocalStorage(_) | Engine::Memory => {
                let key = crate::store::epoch::mirror_key(name);
                let storage = matches!(self, Engine::LocalStorage(_))
                    .then(crate::browser::web_storage::local_storage)
                    .flatten();
                match storage
                    .as_ref()
                    .and_then(|s| s.get_item(&key).ok().flatten())
                {
                    Some(epoch) => Ok((epoch, false)),
                    None => {
                        if let Some(s) = &storage {
                            let _ = s.set_item(&key, fresh);
                        }
                        Ok((fresh.to_owned(), true))
                    }
                }
            }
        }
    }

    /// A write and delete that touch nothing else (the verifier's probe).
    pub async fn probe(&self) -> StoreResult<()> {
        match self {
            Engine::IndexedDb(e) => e.probe().await,
            Engine::LocalStorage(e) => e.probe(),
            Engine::Memory => Err(StoreError::StorageUnavailable(
                "memory engine: nothing persists across reloads".into(),
            )),
        }
    }

    /// Reads slot `n`'s row.
    pub async fn load_slot(&self, n: u32) -> StoreResult<Option<SlotRow>> {
        match self {
            Engine::IndexedDb(e) => e.load_slot(n).await,
            Engine::LocalStorage(e) => Ok(e.load_slot(n)),
            Engine::Memory => Ok(None),
        }
    }

    /// Starts one atomic write (see [`Started`]).
    pub fn start(&self, commit: &Commit<'_>) -> StoreResult<Started> {
        if commit.fence.is_some() && !matches!(self, Engine::IndexedDb(_)) {
            return Err(StoreError::StorageUnavailable(
                "fenced writes need the IndexedDB engine (the fencing epoch lives there)".into(),
            ));
        }
        match self {
            Engine::IndexedDb(e) => e.start(commit).map(Started::Pending),
            Engine::LocalStorage(e) => e.write(commit).map(|()| Started::Done),
            Engine::Memory => Ok(Started::Done),
        }
    }

    /// Removes records without a trace, each only if still stored with its stamp (a newer write
    /// of the key stays; IndexedDB also drops older versions held in rows and packs):
    /// tombstones the server collected, records a full resync found deleted.
    pub fn remove(&self, removals: &[Record]) -> StoreResult<Started> {
        match self {
            Engine::IndexedDb(e) => {
                let rows: js_sys::Array = removals
                    .iter()
                    .map(|r| {
                        let row = js_sys::Array::of3(
                            &r.plugin.as_str().into(),
                            &r.key.as_str().into(),
                            &r.hlc.encode().into(),
                        );
                        wasm_bindgen::JsValue::from(row)
                    })
                    .collect();
                e.remove(&rows).map(Started::Pending)
            }
            Engine::LocalStorage(e) => e.remove(removals).map(|()| Started::Done),
            Engine::Memory => Ok(Started::Done),
        }
    }

    /// Closes the connection (IndexedDB); further commits fail.
    pub fn close(&self) {
        if let Engine::IndexedDb(e) = self {
            e.close()
        }
    }
}
