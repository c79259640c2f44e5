//! Opening a database, as a sequence of named steps: check the name, choose the engine, then
//! (together) load every record, claim a writer slot and read the storage estimate; settle the
//! slot's node id; build the index; replay journals dead tabs left behind (the decision is the
//! pure `replay::plan`); assemble the store (which joins the cross-tab channel); commit what
//! was replayed.

use wasm_bindgen::JsValue;

use super::codec::js_failure;
use super::db::{Db, Info, State};
use super::engine::{Choice, Commit, Engine, Loaded, SlotRow};
use super::epoch::{format_epoch, mirror_key, reconcile, Epoch};
use super::error::{StoreError, StoreResult};
use super::index::Index;
use super::journal::DEFAULT_BUDGET_BYTES;
use super::journal_storage::{CorruptEntry, Held, Journal};
use super::lifecycle::Lifecycle;
use super::names;
use super::pipeline::{Pipeline, Queued};
use super::quarantine::{self, Place, Quarantine, Quarantined};
use super::records::Records;
use super::replay::{self, Instance, Replay};
use crate::browser::interop::Obj;
use crate::browser::page_events;
use crate::browser::storage_manager::{storage_info, StorageInfo};
use crate::browser::web_storage::local_storage;
use crate::browser::writer_slots::{self, SlotLease, MAX_SLOTS};
use crate::core::hlc::DEFAULT_MAX_DRIFT_MS;
use crate::core::sorted::SortedMap;
use crate::core::{ClockState, DeviceSecret, HlcClock, NodeId, PluginId};

/// Journal slot numbers from here up belong to instances without a Web Lock (no Web Locks API,
/// or every slot taken); their journals are always treated as replayable.
const LOCKLESS_BASE: u32 = 1 << 20;
const _: () = assert!(MAX_SLOTS < LOCKLESS_BASE);

pub use super::names::MAX_NAME_LEN;

/// How to open a database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Database name (IndexedDB name, and part of lock, channel and localStorage names).
    pub name: String,
    /// Which engine to use.
    pub engine: Choice,
    /// Per-plugin byte quotas.
    pub quotas: SortedMap<PluginId, usize>,
    /// The localStorage journal's byte budget.
    pub journal_budget: usize,
    /// Ask the browser for persistent storage.
    pub persist: bool,
    /// Bound on how far remote stamps may be ahead of local time.
    pub max_drift_ms: u64,
}

impl OpenOptions {
    /// Defaults for database `name`.
    pub fn new(name: impl Into<String>) -> Self {
        OpenOptions {
            name: name.into(),
            engine: Choice::Auto,
            quotas: SortedMap::new(),
            journal_budget: DEFAULT_BUDGET_BYTES,
            persist: true,
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
        }
    }
}

/// Opens database `options.name`.
pub async fn open(options: OpenOptions) -> StoreResult<Db> {
    let name = options.name.as_str();
    check_name(name)?;
    let (engine, fallback) = Engine::select(name, options.engine).await?;
    if let Some(reason) = &fallback {
        announce_fallback(name, engine.kind(), reason);
    }
    let (mut loaded, claimed, storage) =
        load_claim_estimate(&engine, name, options.persist).await?;
    let Claimed { lease, held } = claimed;
    let slot = lease.as_ref().map(SlotLease::slot);
    let (node, clock, secret) = slot_identity(&engine, slot).await?;
    let epoch = store_epoch(&engine, name).await?;
    let loaded_corrupt = std::mem::take(&mut loaded.corrupt);
    let (versions, packed) = (loaded.records.len(), loaded.packed);
    let mut index = index_of(loaded);
    // More than half of what packs hold is superseded (by what IndexedDB holds; the journals
    // are not replayed yet): rewrite the emptiest packs. Compaction decides from what it reads
    // in its own transaction, so it never drops a version whose replacement is not stored.
    // Only an optimisation: if it fails, the packs stay as they were.
    if let Engine::IndexedDb(idb) = &engine {
        if packed > 0 && versions.saturating_sub(index.len()) * 2 > packed {
            let _ = idb.compact().await;
        }
    }

    // Journals: ours (a previous life of this slot) and those of slots nobody holds.
    let local = if engine.is_persistent() {
        local_storage()
    } else {
        None
    };
    let (found, corrupt) = match &local {
        Some(storage) => Journal::scan(storage, name),
        None => (Vec::new(), Vec::new()),
    };
    let me = Instance {
        slot,
        lockless_slot: lockless_slot()?,
        node,
        clock,
    };
    let held_by_other = |n| held.contains(&writer_slots::lock_name(name, n));
    let quarantine = quarantine_at_open(local.as_ref(), name, corrupt, loaded_corrupt, |n| {
        me.slot != Some(n) && held_by_other(n)
    });
    let replay = replay::plan(found, me, held_by_other, &mut index);
    let journal = local.map(|s| {
        Journal::new(
            s,
            name,
            replay.journal_slot,
            replay.next_seq,
            options.journal_budget,
        )
    });
    let clock = HlcClock::new(node, replay.clock, options.max_drift_ms);
    let pipeline = take_over(journal, replay);
    let replayed = !pipeline.queue.is_empty();

    let info = Info {
        name: name.to_owned(),
        fallback,
        slot,
        node,
        secret,
        storage,
        epoch: epoch.epoch,
        wiped: epoch.wiped,
    };
    let state = State {
        records: Records::new(index, quarantine),
        clock,
        pipeline,
        quotas: options.quotas,
        lifecycle: Lifecycle::Open,
    };
    let db = Db::assemble(info, engine, state, lease);
    if replayed {
        // Replayed writes stay journaled if this fails; the next flush retries.
        let _ = db.flush_any().await;
    }
    Ok(db)
}

/// `clientdata:storage-fallback` on the global scope, `{ name, engine, reason }`: the app
/// cannot listen on a store that is still opening, so the event goes where it can listen first.
fn announce_fallback(name: &str, engine: &str, reason: &str) {
    let detail = Obj::new()
        .with("name", name)
        .with("engine", engine)
        .with("reason", reason);
    page_events::dispatch_global(FALLBACK_EVENT, &detail.into());
}

/// The event `open` dispatches on the global scope when it falls back from IndexedDB.
pub const FALLBACK_EVENT: &str = "clientdata:storage-fallback";

fn check_name(name: &str) -> StoreResult<()> {
    names::check_name(name).map_err(StoreError::InvalidOptions)
}

/// The store's epoch, and whether the store was wiped behind our back (`store::epoch`).
async fn store_epoch(engine: &Engine, name: &str) -> StoreResult<Epoch> {
    let fresh = format_epoch(random_node()?.get());
    let (stored, created) = engine.store_epoch(name, &fresh).await?;
    let mirror = match engine {
        Engine::IndexedDb(_) => local_storage(),
        // localStorage keeps the epoch in the mirror's key itself; memory has neither.
        Engine::LocalStorage(_) | Engine::Memory => None,
    };
    let found = mirror
        .as_ref()
        .and_then(|s| s.get_item(&mirror_key(name)).ok().flatten());
    let epoch = reconcile(&stored, created, found.as_deref());
    if let (true, Some(s)) = (epoch.write_mirror, &mirror) {
        // Without the mirror the next wipe goes unnoticed; the store itself is fine.
        let _ = s.set_item(&mirror_key(name), &epoch.epoch);
    }
    Ok(epoch)
}

fn random_node() -> StoreResult<NodeId> {
    NodeId::random().map_err(|e| StoreError::StorageUnavailable(format!("no random source: {e}")))
}

/// A journal slot for an instance without a writer slot: random, above every lockable one.
fn lockless_slot() -> StoreResult<u32> {
    Ok(LOCKLESS_BASE + (random_node()?.get() % u64::from(u32::MAX - LOCKLESS_BASE)) as u32)
}

/// The writer slot claimed, and the Web Locks held in the origin right after (whose slots'
/// journals belong to live instances).
struct Claimed {
    lease: Option<SlotLease>,
    held: Vec<String>,
}

/// Reads the rows, claims a writer slot (then sees which slots others hold) and asks for the
/// storage estimate. They do not depend on each other: run together, opening waits for the
/// slowest of them rather than for their sum.
async fn load_claim_estimate(
    engine: &Engine,
    name: &str,
    persist: bool,
) -> StoreResult<(Loaded, Claimed, StorageInfo)> {
    let persistent = engine.is_persistent();
    let claim = async {
        if !persistent {
            return Ok(Claimed {
                lease: None,
                held: Vec::new(),
            });
        }
        let lease = writer_slots::claim(name).await?;
        let held = match lease {
            Some(_) => writer_slots::held_locks().await?,
            None => Vec::new(),
        };
        Ok(Claimed { lease, held })
    };
    let (loaded, claimed, estimate) =
        futures::join!(engine.load(), claim, storage_info(persist && persistent));
    let claimed = claimed.map_err(|e: JsValue| js_failure(&e))?;
    Ok((loaded?, claimed, estimate))
}

/// The slot's node id, clock state and device secret: stored with the slot, or new (a random
/// node, a random secret) and persisted before anything is stamped or sent with them. A row
/// from before device secrets gets one now, kept from then on.
async fn slot_identity(
    engine: &Engine,
    slot: Option<u32>,
) -> StoreResult<(NodeId, ClockState, DeviceSecret)> {
    let stored = match slot {
        Some(n) => engine.load_slot(n).await?,
        None => None,
    };
    if let Some(SlotRow {
        node,
        clock,
        secret: Some(secret),
        ..
    }) = stored
    {
        return Ok((node, clock, secret));
    }
    let (node, clock) = match stored {
        Some(row) => (row.node, row.clock),
        None => (random_node()?, ClockState::default()),
    };
    let secret = DeviceSecret::random()
        .map_err(|e| StoreError::StorageUnavailable(format!("no random source: {e}")))?;
    if let Some(n) = slot {
        let rows = js_sys::Array::new();
        engine
            .start(&Commit {
                records: &[],
                rows: &rows,
                if_newer: false,
                slot: Some(SlotRow {
                    slot: n,
                    node,
                    clock,
                    secret: Some(secret),
                }),
                vectors: &[],
                fence: None,
                live: 0,
            })?
            .done()
            .await?;
    }
    Ok((node, clock, secret))
}

/// Everything that did not decode: corrupt rows (left in place, out of the index) and corrupt
/// journal entries of slots no live instance holds, moved aside (see `quarantine.rs`).
fn quarantine_at_open(
    local: Option<&web_sys::Storage>,
    name: &str,
    entries: Vec<CorruptEntry>,
    rows: Vec<Quarantined>,
    held_by_other: impl Fn(u32) -> bool,
) -> Quarantine {
    let mut q = Quarantine::default();
    for row in rows {
        q.add(row);
    }
    let Some(storage) = local else {
        return q;
    };
    for entry in entries {
        if !quarantine::move_journal_entry(held_by_other(entry.slot)) {
            continue;
        }
        let aside = quarantine::aside_key(name, entry.slot, entry.seq);
        let place = if Journal::move_aside(storage, &entry, &aside) {
            aside
        } else {
            entry.key.clone()
        };
        q.add(Quarantined {
            place: Place::Journal(place),
            reason: entry.why.to_string(),
        });
    }
    q
}

/// The index of everything stored.
fn index_of(loaded: Loaded) -> Index {
    let mut index = Index::new();
    for record in loaded.records {
        index.apply(record);
    }
    for (kind, plugin, vector) in loaded.vectors {
        index.set_vector(kind, plugin, vector);
    }
    index
}

/// Carries out a replay: adopts the entries into this instance's journal, drops the redundant
/// ones, queues the rest for the first commit.
fn take_over(mut journal: Option<Journal>, replay: Replay) -> Pipeline {
    let Some(j) = journal.as_mut() else {
        // No journal, so nothing was found to take over.
        return Pipeline::new(None, Vec::new());
    };
    for entry in &replay.adopted {
        j.adopt(entry.cost);
    }
    for entry in &replay.redundant {
        // Already stored (or superseded): the entry is redundant.
        j.remove(&entry.into());
    }
    let queue = replay
        .replayed
        .into_iter()
        .map(|r| Queued {
            plugin: r.plugin,
            key: r.key,
            hlc: r.hlc,
            journal: Some(Held::from(&r.entry)),
            pending: 0,
            row: None,
            replayed: true,
        })
        .collect();
    Pipeline::new(journal, queue)
}
