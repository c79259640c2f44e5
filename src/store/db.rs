//! An open database: the handle every layer above holds, what it is made of, and the reads it
//! serves. The parts, each in its own module:
//!
//! - `records`: the index and the read cache (every read comes from here);
//! - `pipeline`: the commit pipeline (journal, queue, batches, `flush` waiters);
//! - `write`: `set`/`delete`, `setMany`, a sync round's commit;
//! - `bus`: the cross-tab channel and the outbox that keeps posts in stamp order;
//! - `events`: listeners and the event payloads;
//! - `lifecycle`: open → closing → closed.
//!
//! State lives in one `RefCell`, borrowed only between awaits, never across one. (About 300
//! lines: the handle's reads and lifecycle, plus this map of the parts.)

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use wasm_bindgen::JsValue;

use super::bus::Bus;
use super::engine::{Engine, SlotRow};
use super::error::{StoreError, StoreResult};
use super::index::Index;
use super::journal_storage::Journal;
use super::lifecycle::Lifecycle;
use super::pipeline::Pipeline;
use super::quota::{over_quota, OverQuota};
use super::records::Records;
use crate::browser::events::Emitter;
use crate::browser::storage_manager::StorageInfo;
use crate::browser::writer_slots::SlotLease;
use crate::core::sorted::SortedMap;
use crate::core::{DeviceSecret, HlcClock, Key, NodeId, PluginId, Value};

/// What `metadata()` reports that does not change after open.
#[derive(Debug, Clone)]
pub struct Info {
    /// Database name.
    pub name: String,
    /// Why the engine is not IndexedDB, if it fell back.
    pub fallback: Option<String>,
    /// The claimed writer slot (`None` without Web Locks or for the memory engine).
    pub slot: Option<u32>,
    /// This instance's node id.
    pub node: NodeId,
    /// The device secret that goes with the node id (sent with every exchange).
    pub secret: DeviceSecret,
    /// Persistence and quota as the browser reported them at open.
    pub storage: StorageInfo,
    /// The store epoch (`store::epoch`).
    pub epoch: String,
    /// The epoch of the store this open found wiped (IndexedDB evicted, its localStorage mirror
    /// left), if any. What the instance knows now, server reports included: `Db::wiped`.
    pub wiped: Option<String>,
}

/// Everything of an open store that changes, behind one `RefCell`.
#[derive(Debug)]
pub(crate) struct State {
    /// The index and the read cache.
    pub records: Records,
    /// The writer's clock.
    pub clock: HlcClock,
    /// Writes on their way to the engine.
    pub pipeline: Pipeline,
    /// Per-plugin byte quotas.
    pub quotas: SortedMap<PluginId, usize>,
    /// Open, closing or closed.
    pub lifecycle: Lifecycle,
}

impl State {
    /// Fails with `StoreClosed` unless the store serves calls.
    pub fn check_open(&self) -> StoreResult<()> {
        if self.lifecycle.is_open() {
            Ok(())
        } else {
            Err(StoreError::StoreClosed)
        }
    }

    /// The slot row to persist with a commit.
    pub fn slot_row(&self, info: &Info) -> Option<SlotRow> {
        info.slot.map(|slot| SlotRow {
            slot,
            node: self.clock.node(),
            clock: self.clock.state(),
            secret: Some(info.secret),
        })
    }
}

pub(crate) struct Inner {
    pub info: Info,
    pub engine: Engine,
    pub state: RefCell<State>,
    pub emitter: Emitter,
    pub bus: Bus,
    pub lease: RefCell<Option<SlotLease>>,
    /// Called after local changes (this instance's or another tab's): the sync layer's
    /// debounce for automatic rounds.
    pub change_hook: RefCell<Option<Rc<dyn Fn()>>>,
    /// The epoch of the store this one replaced: found at open (`Info::wiped`) or told by the
    /// server later (`replacedStoreEpoch`).
    pub wiped: RefCell<Option<String>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A handle to an open database (cheap to clone; every clone is the same instance).
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) inner: Rc<Inner>,
}

impl Db {
    /// Assembles an opened store (see `open.rs`); joins the cross-tab channel.
    pub(crate) fn assemble(
        info: Info,
        engine: Engine,
        state: State,
        lease: Option<SlotLease>,
    ) -> Db {
        let name = info.name.clone();
        let wiped = RefCell::new(info.wiped.clone());
        let db = Db {
            inner: Rc::new(Inner {
                wiped,
                info,
                engine,
                state: RefCell::new(state),
                emitter: Emitter::default(),
                bus: Bus::default(),
                lease: RefCell::new(lease),
                change_hook: RefCell::new(None),
            }),
        };
        db.join_channel(&name);
        db
    }

    /// Fails with `StoreClosed` after `close()`.
    pub fn check_open(&self) -> StoreResult<()> {
        self.inner.state.borrow().check_open()
    }

    /// Static facts about this instance.
    pub fn info(&self) -> &Info {
        &self.inner.info
    }

    /// The epoch of the store this one replaced, if it was wiped behind our back: found at open
    /// (`Info::wiped`) or told by the server since (`replaced_by_server`).
    pub fn wiped(&self) -> Option<String> {
        self.inner.wiped.borrow().clone()
    }

    /// The server last saw this device with `previous` (a reply's `replacedStoreEpoch`): this store
    /// replaced that one although nothing local remembered it (IndexedDB and localStorage
    /// both wiped).
    pub fn replaced_by_server(&self, previous: String) {
        *self.inner.wiped.borrow_mut() = Some(previous);
    }

    /// `"indexeddb"`, `"localstorage"` or `"memory"`.
    pub fn engine_kind(&self) -> &'static str {
        self.inner.engine.kind()
    }

    /// Pack compactions the IndexedDB engine queued while open (0 for other engines); for tests.
    #[doc(hidden)]
    pub fn compactions_queued(&self) -> usize {
        match &self.inner.engine {
            super::engine::Engine::IndexedDb(idb) => idb.compactions_queued(),
            _ => 0,
        }
    }

    /// Bytes accepted but not yet durable anywhere.
    pub fn pending_bytes(&self) -> usize {
        self.inner.state.borrow().pipeline.pending_bytes
    }

    /// Whether `set()` writes go to the synchronous localStorage journal (durable when `set`
    /// returns); without one (workers, no localStorage, the memory engine) they are durable
    /// when their batch commits.
    pub fn has_journal(&self) -> bool {
        self.inner.state.borrow().pipeline.journal.is_some()
    }

    /// Bytes the localStorage journal holds.
    pub fn journal_bytes(&self) -> usize {
        let st = self.inner.state.borrow();
        st.pipeline.journal.as_ref().map_or(0, Journal::used)
    }

    /// Sets (or with `None` removes) a plugin's byte quota.
    pub fn set_quota(&self, plugin: &PluginId, quota: Option<usize>) {
        let mut st = self.inner.state.borrow_mut();
        match quota {
            Some(q) => st.quotas.insert(plugin.clone(), q),
            None => st.quotas.remove(plugin),
        };
    }

    /// The value of (plugin, key) as a fresh JS value (`undefined` if absent or deleted); see
    /// [`Records::get`].
    pub fn get(&self, plugin: &PluginId, key: &Key) -> StoreResult<JsValue> {
        let got = {
            let st = self.inner.state.borrow();
            st.check_open()?;
            st.records.get(plugin, key)
        };
        if let Err(StoreError::CorruptValue { reason, .. }) = &got {
            self.quarantine_value(plugin, key, reason.clone());
        }
        got
    }

    /// Quarantines a stored value found corrupt when read (`get`, `scan`): `keys` and `scan`
    /// skip it from now on; the first time, a `data-quarantined` event says so.
    pub fn quarantine_value(&self, plugin: &PluginId, key: &Key, reason: String) {
        let new =
            self.inner
                .state
                .borrow_mut()
                .records
                .quarantine_value(plugin, key, reason.clone());
        if new {
            let error = StoreError::CorruptValue {
                plugin: plugin.to_string(),
                key: key.to_string(),
                reason,
            };
            self.emit("data-quarantined", &JsValue::from(error));
        }
    }

    /// The plugins over their quota right now (sync applied other devices' records past it).
    pub fn over_quota(&self) -> Vec<OverQuota> {
        let st = self.inner.state.borrow();
        let index = st.records.index();
        over_quota(&st.quotas, |p| index.usage(p), st.quotas.keys())
    }

    /// Whether (plugin, key)'s stored value is quarantined as corrupt.
    pub fn is_quarantined(&self, plugin: &PluginId, key: &Key) -> bool {
        let st = self.inner.state.borrow();
        st.records.quarantine().is_corrupt_value(plugin, key)
    }

    /// How many items are quarantined, and the first ones as `{ kind, place, reason }`.
    pub fn quarantined(&self) -> (usize, js_sys::Array) {
        let st = self.inner.state.borrow();
        let q = st.records.quarantine();
        let list = q
            .listed()
            .iter()
            .map(|item| -> JsValue {
                crate::browser::interop::Obj::new()
                    .with("kind", item.place.kind())
                    .with("place", item.place.text())
                    .with("reason", item.reason.as_str())
                    .into()
            })
            .collect();
        (q.count(), list)
    }

    /// `plugin`'s read-cache map for the JS entry; a detached empty map once closed, so every
    /// read reaches [`Db::get`] and fails.
    pub fn read_cache(&self, plugin: &PluginId) -> js_sys::Map {
        let mut st = self.inner.state.borrow_mut();
        if st.check_open().is_err() {
            return js_sys::Map::new();
        }
        st.records.read_cache(plugin)
    }

    /// Whether (plugin, key) holds a live value.
    pub fn has(&self, plugin: &PluginId, key: &Key) -> StoreResult<bool> {
        let st = self.inner.state.borrow();
        st.check_open()?;
        Ok(st.records.index().live(plugin, key.as_str()).is_some())
    }

    /// Up to `limit` live keys of `plugin` with `prefix`, in code-point order.
    pub fn keys(&self, plugin: &PluginId, prefix: &str, limit: usize) -> StoreResult<Vec<String>> {
        let st = self.inner.state.borrow();
        st.check_open()?;
        let keys = st.records.index().keys(plugin, prefix, limit);
        Ok(st.records.quarantine().filter_keys(plugin, keys))
    }

    /// One page of live (key, value) pairs for `scan`, from the index (which holds every value
    /// already; the page is the only copy made). Not from IndexedDB: a key's current version
    /// may live in a pack (schema.rs), out of reach of a key-ordered read of `records`, and
    /// the index's order is the code-point order `keys` uses too.
    /// Returns the pairs, the last key read, and whether the range is exhausted.
    pub async fn page(
        &self,
        plugin: &PluginId,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<(Vec<(String, Value)>, Option<String>, bool)> {
        self.check_open()?;
        let st = self.inner.state.borrow();
        let page = st
            .records
            .index()
            .page(plugin, prefix, after, limit as usize);
        let exhausted = page.len() < limit as usize;
        let last = page.last().map(|(k, _)| k.clone());
        Ok((page, last, exhausted))
    }

    /// Runs `f` on the index to plan a sync round through its [`crate::core::Store`]
    /// implementation. `f` must not call back into this store, nor change records: those
    /// change through [`Db::apply_remote`], which keeps the read cache in step.
    pub fn with_index<R>(&self, f: impl FnOnce(&mut Index) -> R) -> R {
        f(self.inner.state.borrow_mut().records.index_for_planning())
    }

    /// Probes the engine with a write and a delete (see `Engine::probe`).
    pub async fn probe(&self) -> StoreResult<()> {
        self.check_open()?;
        self.inner.engine.probe().await
    }

    /// Replaces the index's sync vectors with the stored ones: rounds of other tabs store
    /// theirs without telling this index.
    pub async fn reload_vectors(&self) -> StoreResult<()> {
        self.check_open()?;
        if let Some(vectors) = self.inner.engine.load_vectors().await? {
            let mut st = self.inner.state.borrow_mut();
            let index = st.records.index_for_planning();
            for (kind, plugin, vector) in vectors {
                index.set_vector(kind, plugin, vector);
            }
        }
        Ok(())
    }

    /// A copy of the writer's clock (for planning sync rounds; adopt the planned clock with
    /// [`Db::adopt_clock`] after the commit).
    pub fn clock(&self) -> HlcClock {
        self.inner.state.borrow().clock.clone()
    }

    /// Adopts a clock that has observed remote stamps, if it is ahead of the current one.
    pub fn adopt_clock(&self, clock: HlcClock) {
        let mut st = self.inner.state.borrow_mut();
        let (a, b) = (st.clock.state(), clock.state());
        if clock.node() == st.clock.node() && (b.wall_ms, b.counter) > (a.wall_ms, a.counter) {
            st.clock = clock;
        }
    }

    /// Releases the slot, leaves the channel and disconnects the engine. Pending batches stop.
    pub(crate) fn shut_down(&self) {
        {
            let mut st = self.inner.state.borrow_mut();
            st.lifecycle.shut_down();
            // Free the index and the read cache now rather than when the collector finalises
            // the JS wrapper: a closed 10k-record store held ~12 MiB of wasm memory until then.
            st.records = Records::default();
            st.pipeline.abandon();
        }
        if let Some(mut lease) = self.inner.lease.borrow_mut().take() {
            lease.release();
        }
        self.inner.bus.leave();
        self.inner.change_hook.borrow_mut().take();
        self.inner.engine.close();
        self.inner.emitter.clear();
    }

    /// Flushes, then shuts down; further calls fail with `StoreClosed`. Idempotent. Closing
    /// begins at the call, not at the first poll: from JS the promise polls a microtask later,
    /// and a call made in between must fail too.
    pub fn close(&self) -> impl Future<Output = StoreResult<()>> + 'static {
        let started = {
            let mut st = self.inner.state.borrow_mut();
            let started = st.lifecycle.begin_close();
            if started {
                st.records.clear_read_cache();
            }
            started
        };
        let db = self.clone();
        async move {
            if !started {
                return Ok(());
            }
            let flushed = db.flush_any().await;
            db.shut_down();
            flushed
        }
    }

    /// Simulates the tab dying: the slot lock is released and the connection dropped, but
    /// nothing queued is committed and the journal stays in localStorage. For crash-recovery
    /// tests only.
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        self.shut_down();
    }
}
