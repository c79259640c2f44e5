//! An open database: the index every read is served from, the journal, the engine, the writer
//! slot, cross-tab updates and listeners. Writing and batching are in `write.rs`, opening in
//! `open.rs`. State lives in one `RefCell`, borrowed only between awaits, never across one.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use futures::channel::oneshot;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use super::codec::{record_to_row, row_to_record, value_to_js};
use super::engine::{Engine, SlotRow};
use super::error::{StoreError, StoreResult};
use super::index::Index;
use super::journal_storage::{Appended, Journal};
use super::outbox::{Outbox, Ticket};
use super::read_cache::ReadCache;
use crate::browser::clock::JsClock;
use crate::browser::events::Emitter;
use crate::browser::slots::SlotLease;
use crate::browser::storage_manager::StorageInfo;
use crate::browser::tabs::Tabs;
use crate::core::hlc::Clock;
use crate::core::replica::Batch;
use crate::core::{Hlc, HlcClock, Key, NodeId, PluginId, Record, Value};

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
    /// Persistence and quota as the browser reported them at open.
    pub storage: StorageInfo,
}

/// A write waiting for its batch: the version it queued (a later write to the same key
/// supersedes it in the index and the batch then skips it).
#[derive(Debug)]
pub(crate) struct Queued {
    pub plugin: PluginId,
    pub key: Key,
    pub hlc: Hlc,
    pub journal: Option<Appended>,
    pub pending: usize,
    /// Taken over from a dead tab's journal (not announced as this instance's change).
    pub replayed: bool,
}

pub(crate) type Waiter = (u64, oneshot::Sender<StoreResult<()>>);

#[derive(Debug)]
pub(crate) struct State {
    /// Change records through [`State::apply`] or [`State::apply_batch`] only.
    pub index: Index,
    /// Mirrors the index's primitive values for the JS entry; changed with it (see its docs).
    pub reads: ReadCache,
    pub clock: HlcClock,
    pub journal: Option<Journal>,
    pub queue: Vec<Queued>,
    /// A batch task is scheduled or running.
    pub running: bool,
    /// Writes accepted (each queued item counts one).
    pub written: u64,
    /// Writes durable in the engine.
    pub committed: u64,
    pub waiters: Vec<Waiter>,
    /// Bytes accepted but durable nowhere yet (over the journal budget, or no journal).
    pub pending_bytes: usize,
    pub quotas: BTreeMap<PluginId, usize>,
    /// `close()` was called: the API refuses further calls.
    pub closed: bool,
    /// Released and disconnected: batches stop without touching storage.
    pub dead: bool,
    /// Cross-tab messages held in stamp order (see `outbox.rs`).
    pub outbox: Outbox<JsValue>,
}

impl State {
    /// Marks the store closed: the API refuses further calls, and the read cache empties so
    /// cached reads fail too.
    pub fn close(&mut self) {
        self.closed = true;
        self.reads.clear();
    }

    /// Applies `record` under last-write-wins to the index and, when it wins, to the read cache
    /// (`js`: its value as JS, when at hand). Returns its (plugin, key) if it won. Every record
    /// change goes through here or [`State::apply_batch`], so the two never disagree.
    pub fn apply(&mut self, record: Record, js: Option<&JsValue>) -> Option<(PluginId, Key)> {
        let id = (record.plugin.clone(), record.key.clone());
        if !self.index.apply(record) {
            return None;
        }
        self.reads.put(&id.0, &id.1, js);
        Some(id)
    }

    /// Applies a sync round's batch (see [`Index::apply_batch`]), dropping the records that won
    /// from the read cache. Returns their (plugin, key).
    pub fn apply_batch(&mut self, batch: Batch) -> Vec<(PluginId, Key)> {
        let changed = self.index.apply_batch(batch);
        for (plugin, key) in &changed {
            self.reads.put(plugin, key, None);
        }
        changed
    }

    /// Resolves every waiter whose writes are committed.
    pub fn settle(&mut self) {
        let committed = self.committed;
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(target, _)| *target <= committed);
        self.waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(Ok(()));
        }
    }

    /// The slot row to persist with a commit.
    pub fn slot_row(&self, slot: Option<u32>) -> Option<SlotRow> {
        slot.map(|slot| SlotRow {
            slot,
            node: self.clock.node(),
            clock: self.clock.state(),
        })
    }
}

pub(crate) struct Inner {
    pub info: Info,
    pub engine: Engine,
    pub state: RefCell<State>,
    pub emitter: Emitter,
    pub tabs: RefCell<Option<Tabs>>,
    pub lease: RefCell<Option<SlotLease>>,
    /// Called after local changes (this instance's or another tab's): the sync layer's
    /// debounce for automatic rounds.
    pub change_hook: RefCell<Option<Rc<dyn Fn()>>>,
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

fn set(obj: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(name), value);
}

/// The cross-tab message carrying committed `rows`; `remote`: they came from a sync round.
pub(crate) fn rows_message(rows: &Array, remote: bool) -> JsValue {
    let message = Object::new();
    set(&message, "rows", rows);
    if remote {
        set(&message, "remote", &JsValue::TRUE);
    }
    message.into()
}

/// The `local-change-recorded` payloads for `changed` (plugin, key) pairs, one per plugin.
pub(crate) fn change_events(changed: &[(PluginId, Key)], from_this_instance: bool) -> Vec<JsValue> {
    let mut by_plugin: BTreeMap<&PluginId, Array> = BTreeMap::new();
    for (plugin, key) in changed {
        by_plugin
            .entry(plugin)
            .or_default()
            .push(&JsValue::from_str(key.as_str()));
    }
    by_plugin
        .into_iter()
        .map(|(plugin, keys)| {
            let e = Object::new();
            set(&e, "plugin", &JsValue::from_str(plugin.as_str()));
            set(&e, "keys", &keys);
            set(
                &e,
                "fromThisInstance",
                &JsValue::from_bool(from_this_instance),
            );
            e.into()
        })
        .collect()
}

impl Db {
    /// Fails with `StoreClosed` after `close()`.
    pub fn check_open(&self) -> StoreResult<()> {
        if self.inner.state.borrow().closed {
            return Err(StoreError::StoreClosed);
        }
        Ok(())
    }

    /// Static facts about this instance.
    pub fn info(&self) -> &Info {
        &self.inner.info
    }

    /// `"indexeddb"`, `"localstorage"` or `"memory"`.
    pub fn engine_kind(&self) -> &'static str {
        self.inner.engine.kind()
    }

    /// Bytes accepted but not yet durable anywhere.
    pub fn pending_bytes(&self) -> usize {
        self.inner.state.borrow().pending_bytes
    }

    /// Bytes the localStorage journal holds.
    pub fn journal_bytes(&self) -> usize {
        let st = self.inner.state.borrow();
        st.journal.as_ref().map_or(0, Journal::used)
    }

    /// Sets (or with `None` removes) a plugin's byte quota.
    pub fn set_quota(&self, plugin: &PluginId, quota: Option<usize>) {
        let mut st = self.inner.state.borrow_mut();
        match quota {
            Some(q) => st.quotas.insert(plugin.clone(), q),
            None => st.quotas.remove(plugin),
        };
    }

    /// The value of (plugin, key) as a fresh JS value (`undefined` if absent or deleted).
    /// Objects are parsed anew each time; primitives are answered from, or land in, the read
    /// cache.
    pub fn get(&self, plugin: &PluginId, key: &Key) -> StoreResult<JsValue> {
        let st = self.inner.state.borrow();
        if st.closed {
            return Err(StoreError::StoreClosed);
        }
        let Some(value) = st
            .index
            .live(plugin, key.as_str())
            .and_then(|e| e.value.as_ref())
        else {
            return Ok(JsValue::UNDEFINED);
        };
        if let Some(cached) = st.reads.get(plugin, key) {
            return Ok(cached);
        }
        let js = value_to_js(value)?;
        st.reads.put(plugin, key, Some(&js));
        Ok(js)
    }

    /// `plugin`'s read-cache map for the JS entry; a detached empty map once closed, so every
    /// read reaches [`Db::get`] and fails.
    pub fn read_cache(&self, plugin: &PluginId) -> js_sys::Map {
        let mut st = self.inner.state.borrow_mut();
        if st.closed {
            return js_sys::Map::new();
        }
        st.reads.map(plugin)
    }

    /// Whether (plugin, key) holds a live value.
    pub fn has(&self, plugin: &PluginId, key: &Key) -> StoreResult<bool> {
        let st = self.inner.state.borrow();
        if st.closed {
            return Err(StoreError::StoreClosed);
        }
        Ok(st.index.live(plugin, key.as_str()).is_some())
    }

    /// Up to `limit` live keys of `plugin` with `prefix`, in code-point order.
    pub fn keys(&self, plugin: &PluginId, prefix: &str, limit: usize) -> StoreResult<Vec<String>> {
        let st = self.inner.state.borrow();
        if st.closed {
            return Err(StoreError::StoreClosed);
        }
        Ok(st.index.keys(plugin, prefix, limit))
    }

    /// One page of live (key, value) pairs for `scan`: read from IndexedDB when that is the
    /// engine (so memory holds one page, not a materialized copy), else from the index.
    /// Returns the pairs, the last key read, and whether the range is exhausted.
    pub async fn page(
        &self,
        plugin: &PluginId,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<(Vec<(String, Value)>, Option<String>, bool)> {
        self.check_open()?;
        if let Engine::IndexedDb(idb) = &self.inner.engine {
            return idb.page(plugin, prefix, after, limit).await;
        }
        let st = self.inner.state.borrow();
        let page = st.index.page(plugin, prefix, after, limit as usize);
        let exhausted = page.len() < limit as usize;
        let last = page.last().map(|(k, _)| k.clone());
        Ok((page, last, exhausted))
    }

    /// Runs `f` on the index to plan a sync round through its [`crate::core::Store`]
    /// implementation. `f` must not call back into this store, nor change records: those
    /// change through [`Db::apply_remote`], which keeps the read cache in step.
    pub fn with_index<R>(&self, f: impl FnOnce(&mut Index) -> R) -> R {
        f(&mut self.inner.state.borrow_mut().index)
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
            for (kind, plugin, vector) in vectors {
                st.index.set_vector(kind, plugin, vector);
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

    /// Adds an event listener; `None` for an unknown event type.
    pub fn on(&self, kind: &str, listener: js_sys::Function) -> Option<js_sys::Function> {
        self.inner.emitter.on(kind, listener)
    }

    /// Posts rows to the other instances of this database, after every earlier reservation.
    pub(crate) fn broadcast(&self, rows: &Array) {
        if rows.length() == 0 {
            return;
        }
        let ready = self
            .inner
            .state
            .borrow_mut()
            .outbox
            .push(rows_message(rows, false));
        self.post(ready);
    }

    /// Fills a reserved place in the posting order (`None`: the commit failed, post nothing).
    pub(crate) fn fill_post(&self, ticket: Ticket, message: Option<JsValue>) {
        let ready = self.inner.state.borrow_mut().outbox.fill(ticket, message);
        self.post(ready);
    }

    /// Posts a message that needs no ordering (a sync round's summary).
    pub(crate) fn post_now(&self, message: &JsValue) {
        self.post(vec![message.clone()]);
    }

    pub(crate) fn post(&self, messages: Vec<JsValue>) {
        if let Some(tabs) = self.inner.tabs.borrow().as_ref() {
            for message in &messages {
                tabs.post(message);
            }
        }
    }

    /// Emits `kind` to this instance's listeners.
    pub(crate) fn emit(&self, kind: &str, payload: &JsValue) {
        self.inner.emitter.emit(kind, payload);
    }

    /// Whether anyone listens to `kind`.
    pub(crate) fn wants(&self, kind: &str) -> bool {
        self.inner.emitter.wants(kind)
    }

    /// Whether anything (a listener, or automatic sync's hook) needs to hear of local changes.
    pub(crate) fn wants_changes(&self) -> bool {
        self.inner.change_hook.borrow().is_some() || self.wants("local-change-recorded")
    }

    /// Sets the hook run after local changes (see `Inner::change_hook`).
    pub(crate) fn set_change_hook(&self, hook: Option<Rc<dyn Fn()>>) {
        *self.inner.change_hook.borrow_mut() = hook;
    }

    /// Emits `local-change-recorded` for the `changed` keys.
    pub(crate) fn announce(&self, changed: &[(PluginId, Key)], from_this_instance: bool) {
        if changed.is_empty() {
            return;
        }
        let hook = self.inner.change_hook.borrow().clone();
        if let Some(hook) = hook {
            hook();
        }
        self.announce_as("local-change-recorded", changed, from_this_instance);
    }

    /// Emits `kind` (`local-change-recorded` or `remote-update-available`) for `changed` keys.
    pub(crate) fn announce_as(&self, kind: &str, changed: &[(PluginId, Key)], from_this: bool) {
        if changed.is_empty() || !self.inner.emitter.wants(kind) {
            return;
        }
        for event in change_events(changed, from_this) {
            self.inner.emitter.emit(kind, &event);
        }
    }

    /// Applies rows another instance posted: LWW into the index, the clock observes the newest
    /// stamp (so the next local write orders after what this tab has seen), then listeners hear
    /// of the keys that changed.
    pub(crate) fn receive(&self, message: &JsValue) {
        if self.inner.state.borrow().closed {
            return;
        }
        if let Ok(synced) = Reflect::get(message, &JsValue::from_str("synced")) {
            if synced.is_object() {
                self.emit("local-data-synced", &synced);
                return;
            }
        }
        let remote = Reflect::get(message, &JsValue::from_str("remote"))
            .ok()
            .and_then(|r| r.as_bool())
            .unwrap_or(false);
        let Ok(rows) = Reflect::get(message, &JsValue::from_str("rows")) else {
            return;
        };
        let Ok(rows) = rows.dyn_into::<Array>() else {
            return;
        };
        let mut changed = Vec::new();
        let mut newest: Option<Hlc> = None;
        {
            let mut st = self.inner.state.borrow_mut();
            if st.closed {
                return;
            }
            for row in rows.iter() {
                let Some(record) = row_to_record(&row) else {
                    continue;
                };
                let hlc = record.hlc;
                if let Some(id) = st.apply(record, None) {
                    changed.push(id);
                    newest = newest.max(Some(hlc));
                }
            }
            if let Some(max) = newest {
                let _ = st.clock.observe(max, JsClock.now_ms());
            }
        }
        if remote {
            self.announce_as("remote-update-available", &changed, false);
        } else {
            self.announce(&changed, false);
        }
    }

    /// Rows for `records` (for the engine and for other tabs).
    pub(crate) fn rows(records: &[Record]) -> Array {
        records.iter().map(record_to_row).collect()
    }

    /// Releases the slot, leaves the channel and disconnects the engine. Pending batches stop.
    pub(crate) fn shut_down(&self) {
        {
            let mut st = self.inner.state.borrow_mut();
            st.close();
            st.dead = true;
            st.queue.clear();
            for (_, tx) in st.waiters.drain(..) {
                let _ = tx.send(Err(StoreError::StoreClosed));
            }
        }
        if let Some(mut lease) = self.inner.lease.borrow_mut().take() {
            lease.release();
        }
        self.inner.tabs.borrow_mut().take();
        self.inner.change_hook.borrow_mut().take();
        self.inner.engine.close();
        self.inner.emitter.clear();
    }

    /// Flushes, then shuts down; further calls fail with `StoreClosed`. Idempotent.
    pub async fn close(&self) -> StoreResult<()> {
        let flushed = {
            let already = self.inner.state.borrow().closed;
            if already {
                return Ok(());
            }
            self.inner.state.borrow_mut().close();
            self.flush_any().await
        };
        self.shut_down();
        flushed
    }

    /// Simulates the tab dying: the slot lock is released and the connection dropped, but
    /// nothing queued is committed and the journal stays in localStorage. For crash-recovery
    /// tests only.
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        self.shut_down();
    }
}
