//! Opening a database: choose the engine, load every record into the index, claim a writer
//! slot, replay journals dead tabs left behind, join the cross-tab channel.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use wasm_bindgen::JsValue;

use super::codec::js_failure;
use super::db::{Db, Info, Inner, Queued, State};
use super::engine::{Choice, Commit, Engine, SlotRow};
use super::error::{StoreError, StoreResult};
use super::index::Index;
use super::journal::DEFAULT_BUDGET_BYTES;
use super::journal_storage::{Appended, Journal};
use crate::browser::events::Emitter;
use crate::browser::local_storage::local_storage;
use crate::browser::slots::{self, MAX_SLOTS};
use crate::browser::storage_manager::storage_info;
use crate::browser::tabs::Tabs;
use crate::core::hlc::DEFAULT_MAX_DRIFT_MS;
use crate::core::{ClockState, HlcClock, NodeId, PluginId};

/// Journal slot numbers from here up belong to instances without a Web Lock (no Web Locks API,
/// or every slot taken); their journals are always treated as replayable.
const LOCKLESS_BASE: u32 = 1 << 20;
const _: () = assert!(MAX_SLOTS < LOCKLESS_BASE);

/// Longest database name in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// How to open a database.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Database name (IndexedDB name, and part of lock, channel and localStorage names).
    pub name: String,
    /// Which engine to use.
    pub engine: Choice,
    /// Per-plugin byte quotas.
    pub quotas: BTreeMap<PluginId, usize>,
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
            quotas: BTreeMap::new(),
            journal_budget: DEFAULT_BUDGET_BYTES,
            persist: true,
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
        }
    }
}

fn check_name(name: &str) -> StoreResult<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidOptions(format!(
            "name must be 1 to {MAX_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

fn random_node() -> StoreResult<NodeId> {
    NodeId::random().map_err(|e| StoreError::StorageUnavailable(format!("no random source: {e}")))
}

/// Opens database `options.name`.
pub async fn open(options: OpenOptions) -> StoreResult<Db> {
    let name = options.name.as_str();
    check_name(name)?;
    let (engine, fallback) = Engine::select(name, options.engine).await?;
    let persistent = engine.is_persistent();
    // Reading the rows, claiming a writer slot (then seeing which slots others hold) and asking
    // for the storage estimate do not depend on each other: run together, opening waits for
    // the slowest of them rather than for their sum.
    let claim = async {
        if !persistent {
            return Ok((None, BTreeSet::new()));
        }
        let lease = slots::claim(name).await?;
        let held = match lease {
            Some(_) => slots::held_locks().await?,
            None => BTreeSet::new(),
        };
        Ok((lease, held))
    };
    let (loaded, claimed, estimate) = futures::join!(
        engine.load(),
        claim,
        storage_info(options.persist && persistent)
    );
    let loaded = loaded?;
    let (lease, held) = claimed.map_err(|e: JsValue| js_failure(&e))?;
    let slot = lease.as_ref().map(|l| l.slot());
    let stored = match slot {
        Some(n) => engine.load_slot(n).await?,
        None => None,
    };
    let (node, mut clock_state) = match stored {
        Some(row) => (row.node, row.clock),
        None => (random_node()?, ClockState::default()),
    };
    if let (Some(n), None) = (slot, stored) {
        // Persist the new slot's node id before anything is stamped with it.
        let row = SlotRow {
            slot: n,
            node,
            clock: clock_state,
        };
        let rows = js_sys::Array::new();
        engine
            .start(&Commit {
                records: &[],
                rows: &rows,
                if_newer: false,
                slot: Some(row),
                vectors: &[],
                fence: None,
            })?
            .done()
            .await?;
    }

    let mut index = Index::new();
    for record in loaded.records {
        index.apply(record);
    }
    for (kind, plugin, vector) in loaded.vectors {
        index.set_vector(kind, plugin, vector);
    }

    // Journals: ours (a previous life of this slot) and those of slots nobody holds.
    let local = if persistent { local_storage() } else { None };
    let mut found = Vec::new();
    if let Some(storage) = &local {
        found = Journal::scan(storage, name)
            .into_iter()
            .filter(|f| Some(f.slot) == slot || !held.contains(&slots::lock_name(name, f.slot)))
            .collect();
    }
    let journal_slot = match slot {
        Some(n) => n,
        None => LOCKLESS_BASE + (random_node()?.get() % u64::from(u32::MAX - LOCKLESS_BASE)) as u32,
    };
    let next_seq = found
        .iter()
        .filter(|f| f.slot == journal_slot)
        .map(|f| f.seq + 1)
        .max()
        .unwrap_or(0);
    for f in &found {
        // A previous life of this slot may have stamped beyond the persisted clock state.
        let h = f.record.hlc;
        if h.node == node && (h.wall_ms, h.counter) > (clock_state.wall_ms, clock_state.counter) {
            clock_state = ClockState {
                wall_ms: h.wall_ms,
                counter: h.counter,
            };
        }
    }
    let mut journal =
        local.map(|s| Journal::new(s, name, journal_slot, next_seq, options.journal_budget));
    let mut queue = Vec::new();
    for f in found {
        let appended = Appended {
            key: f.key,
            cost: f.cost,
        };
        let (plugin, key, hlc) = (f.record.plugin.clone(), f.record.key.clone(), f.record.hlc);
        let Some(journal) = journal.as_mut() else {
            continue;
        };
        journal.adopt(appended.cost);
        if index.apply(f.record) {
            queue.push(Queued {
                plugin,
                key,
                hlc,
                journal: Some(appended),
                pending: 0,
                replayed: true,
            });
        } else {
            // Already stored (or superseded): the entry is redundant.
            journal.remove(&appended);
        }
    }

    let info = Info {
        name: name.to_owned(),
        fallback,
        slot,
        node,
        storage: estimate,
    };
    let written = queue.len() as u64;
    let state = State {
        index,
        reads: Default::default(),
        clock: HlcClock::new(node, clock_state, options.max_drift_ms),
        journal,
        queue,
        running: false,
        written,
        committed: 0,
        waiters: Vec::new(),
        pending_bytes: 0,
        quotas: options.quotas,
        closed: false,
        dead: false,
        outbox: Default::default(),
    };
    let db = Db {
        inner: Rc::new(Inner {
            info,
            engine,
            state: RefCell::new(state),
            emitter: Emitter::default(),
            tabs: RefCell::new(None),
            lease: RefCell::new(lease),
            change_hook: RefCell::new(None),
        }),
    };
    let weak = Rc::downgrade(&db.inner);
    let tabs = Tabs::join(name, move |message| {
        if let Some(inner) = weak.upgrade() {
            Db { inner }.receive(&message);
        }
    });
    *db.inner.tabs.borrow_mut() = tabs;
    if written > 0 {
        // Replayed writes stay journaled if this fails; the next flush retries.
        let _ = db.flush_any().await;
    }
    Ok(db)
}
