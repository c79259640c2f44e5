//! What the engines read and write: one atomic [`Commit`], everything [`Loaded`] at open, a
//! writer slot's row, a fencing grant, and the stable names of vector kinds in storage. Shared
//! by `indexeddb` and `local_storage` (and the enum in `engine`), imported by neither's parent.

use wasm_bindgen_futures::JsFuture;

use crate::core::replica::VectorKind;
use crate::core::{ClockState, DeviceSecret, NodeId, PluginId, Record, VersionVector, Watermarks};
use crate::store::codec::js_failure;
use crate::store::error::StoreResult;
use crate::store::quarantine::Quarantined;

/// A writer slot's persisted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRow {
    /// Slot number.
    pub slot: u32,
    /// The slot's node id.
    pub node: NodeId,
    /// The slot's last clock state.
    pub clock: ClockState,
    /// The slot's device secret (`None` in rows written before secrets: open adds one).
    pub secret: Option<DeviceSecret>,
}

/// Everything stored, read at open.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every record, tombstones included.
    pub records: Vec<Record>,
    /// Every sync vector.
    pub vectors: Vec<(VectorKind, PluginId, VersionVector)>,
    /// Rows that did not decode (left where they are, out of the index).
    pub corrupt: Vec<Quarantined>,
    /// How many of `records` came from packs (IndexedDB; see `schema`): with how many were
    /// superseded, whether compaction is worth a transaction.
    pub packed: usize,
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
    /// Records (keys and tombstones) the store holds once this commits: the index's count
    /// plus the keys `records` add to it. Packs holding far more entries than this hold
    /// superseded versions (the IndexedDB engine's compaction trigger).
    pub live: usize,
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
