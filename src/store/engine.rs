//! The storage engines behind one enum, and choosing one at open: IndexedDB, else localStorage,
//! else memory, never silently (the choice and the reason for a fallback are in `metadata()`).

use wasm_bindgen_futures::JsFuture;

use super::codec::js_failure;
use super::error::{StoreError, StoreResult};
use super::indexeddb::IdbEngine;
use super::local_storage::LsEngine;
use crate::browser::local_storage::local_storage;
use crate::core::replica::VectorKind;
use crate::core::{ClockState, NodeId, PluginId, Record, VersionVector, Watermarks};

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

/// A writer slot's persisted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRow {
    /// Slot number.
    pub slot: u32,
    /// The slot's node id.
    pub node: NodeId,
    /// The slot's last clock state.
    pub clock: ClockState,
}

/// Everything stored, read at open.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every record, tombstones included.
    pub records: Vec<Record>,
    /// Every sync vector.
    pub vectors: Vec<(VectorKind, PluginId, VersionVector)>,
}

/// One atomic write: records (optionally only where newer than what is stored), the writer's
/// slot row, and sync vectors.
#[derive(Debug)]
pub struct Commit<'a> {
    /// Records to store.
    pub records: &'a [Record],
    /// The same records as records-store rows (built once, also posted to other tabs).
    pub rows: &'a js_sys::Array,
    /// Compare with the stored row inside the transaction and keep the greater HLC. Every
    /// record write does: another instance of the database may have committed a newer version
    /// of the same key in a transaction ordered before this one.
    pub if_newer: bool,
    /// The writer's slot row to persist with the records.
    pub slot: Option<SlotRow>,
    /// Vectors to replace.
    pub vectors: &'a [(VectorKind, Watermarks)],
    /// Write only if this lock epoch is still the newest (checked in the same transaction).
    pub fence: Option<&'a Fence>,
}

/// A lock grant a write is made under (`DistributedLock` `{ lockName, epoch }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The Web Lock name.
    pub lock: String,
    /// The grant's epoch.
    pub epoch: u64,
}

/// A started commit. For IndexedDB the transaction exists (so its order among transactions is
/// fixed) before this is awaited.
#[derive(Debug)]
pub enum Started {
    /// Already durable (localStorage wrote synchronously; memory has nothing to do).
    Done,
    /// Resolves when the IndexedDB transaction completes.
    Pending(JsFuture),
}

impl Started {
    /// Waits for durability.
    pub async fn done(self) -> StoreResult<()> {
        match self {
            Started::Done => Ok(()),
            Started::Pending(f) => f.await.map(|_| ()).map_err(|e| js_failure(&e)),
        }
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

    /// Closes the connection (IndexedDB); further commits fail.
    pub fn close(&self) {
        if let Engine::IndexedDb(e) = self {
            e.close()
        }
    }
}

/// The stable text of a vector kind in storage.
pub fn kind_name(kind: VectorKind) -> &'static str {
    match kind {
        VectorKind::Seen => "seen",
        VectorKind::PeerCoverage => "peer_coverage",
        VectorKind::Coverage => "coverage",
    }
}

/// Parses [`kind_name`]'s output.
pub fn parse_kind(text: &str) -> Option<VectorKind> {
    Some(match text {
        "seen" => VectorKind::Seen,
        "peer_coverage" => VectorKind::PeerCoverage,
        "coverage" => VectorKind::Coverage,
        _ => return None,
    })
}
