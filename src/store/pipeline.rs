//! The commit pipeline (docs/DESIGN.md invariant 6): writes accepted synchronously
//! wait here, journaled, until a task on the microtask queue commits everything queued in ONE
//! engine transaction, removes their journal entries and resolves the `flush()` waiters whose
//! writes it covered. A failed commit keeps everything journaled and queued; the next write or
//! flush retries.

use std::future::Future;

use futures::channel::oneshot;
use js_sys::Array;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

use super::codec::record_to_row;
use super::db::Db;
use super::engine::Commit;
use super::error::{StoreError, StoreResult};
use super::index::Index;
use super::journal_storage::{Held, Journal};
use crate::core::{Hlc, Key, PluginId, Record};

/// A write waiting for its batch: the version it queued (a later write to the same key
/// supersedes it in the index and the batch then skips it).
#[derive(Debug)]
pub(crate) struct Queued {
    pub plugin: PluginId,
    pub key: Key,
    pub hlc: Hlc,
    pub journal: Option<Held>,
    pub pending: usize,
    /// The records-store row of this write, made from its JS strings when it was accepted
    /// (`write.rs`): the commit takes it while this write is still the current version of its
    /// key. `None` (a replayed entry): made from the record at commit.
    pub row: Option<JsValue>,
    /// Taken over from a dead tab's journal (not announced as this instance's change).
    pub replayed: bool,
}

type Waiter = (u64, oneshot::Sender<StoreResult<()>>);

/// Writes on their way to the engine.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    /// This instance's journal (`None`: no localStorage, or the memory engine).
    pub journal: Option<Journal>,
    pub queue: Vec<Queued>,
    /// A batch task is scheduled or running.
    pub scheduled: bool,
    /// Writes accepted (each queued item counts one).
    pub written: u64,
    /// Writes durable in the engine.
    pub committed: u64,
    waiters: Vec<Waiter>,
    /// Bytes accepted but durable nowhere yet (over the journal budget, or no journal).
    pub pending_bytes: usize,
}

impl Pipeline {
    /// A pipeline over `journal` with replayed writes already queued.
    pub fn new(journal: Option<Journal>, queue: Vec<Queued>) -> Self {
        Pipeline {
            journal,
            written: queue.len() as u64,
            queue,
            ..Pipeline::default()
        }
    }

    /// Queues an accepted write; returns whether the caller must start the batch task.
    pub fn enqueue(&mut self, queued: Queued) -> bool {
        self.queue.push(queued);
        self.written += 1;
        self.schedule()
    }

    /// Marks the batch task scheduled; `true` if it was not (the caller spawns it).
    fn schedule(&mut self) -> bool {
        !std::mem::replace(&mut self.scheduled, true)
    }

    /// Resolves every waiter whose writes are committed.
    fn settle(&mut self) {
        let committed = self.committed;
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(target, _)| *target <= committed);
        self.waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(Ok(()));
        }
    }

    /// Fails every waiter with `error`.
    fn fail_waiters(&mut self, error: &StoreError) {
        for (_, tx) in self.waiters.drain(..) {
            let _ = tx.send(Err(error.clone()));
        }
    }

    /// The store shut down: drops the queue (it stays journaled) and fails every waiter.
    pub fn abandon(&mut self) {
        self.queue.clear();
        self.fail_waiters(&StoreError::StoreClosed);
    }

    /// The queued writes still current in `index` (a later write to the same key supersedes
    /// an earlier one, which is queued too), in queue (stamp) order.
    pub fn current_records<'a>(
        &'a self,
        index: &'a Index,
    ) -> impl Iterator<Item = (&'a Queued, Record)> + 'a {
        current(&self.queue, index)
    }
}

/// The records-store row of a queued write's current `record`.
pub(crate) fn queued_row(q: &Queued, record: &Record) -> JsValue {
    q.row.clone().unwrap_or_else(|| record_to_row(record))
}

fn current<'a>(
    queue: &'a [Queued],
    index: &'a Index,
) -> impl Iterator<Item = (&'a Queued, Record)> + 'a {
    queue.iter().filter_map(move |q| {
        let entry = index.entry(&q.plugin, q.key.as_str())?;
        (entry.hlc == q.hlc).then(|| {
            let record = Record {
                plugin: q.plugin.clone(),
                key: q.key.clone(),
                hlc: entry.hlc,
                value: entry.value.clone(),
            };
            (q, record)
        })
    })
}

impl Db {
    /// Starts the batch task if the last call to the pipeline asked for it.
    pub(crate) fn kick(&self, start: bool) {
        if start {
            spawn_local(run(self.clone()));
        }
    }

    /// Resolves when the engine holds every write accepted before the call. Joins the batch
    /// in flight at the call itself, not at the first poll: `set(); flush()` from JS (whose
    /// promise polls a microtask later) waits for the commit `set` started, and a failure is
    /// reported once rather than retried by the flush right away.
    pub fn flush(&self) -> impl Future<Output = StoreResult<()>> + 'static {
        let waiter = self.check_open().and_then(|()| self.flush_waiter());
        async move { settled(waiter?).await }
    }

    /// [`Db::flush`] without the open check (used by `close` and by `open` for replayed
    /// writes).
    pub(crate) async fn flush_any(&self) -> StoreResult<()> {
        settled(self.flush_waiter()?).await
    }

    /// Registers a flush: `None` when everything accepted is committed already.
    fn flush_waiter(&self) -> StoreResult<Option<oneshot::Receiver<StoreResult<()>>>> {
        let (rx, start) = {
            let mut st = self.inner.state.borrow_mut();
            if st.lifecycle.is_shut_down() {
                return Err(StoreError::StoreClosed);
            }
            let p = &mut st.pipeline;
            if p.committed >= p.written && p.queue.is_empty() {
                return Ok(None);
            }
            let (tx, rx) = oneshot::channel();
            p.waiters.push((p.written, tx));
            (rx, p.schedule())
        };
        self.kick(start);
        Ok(Some(rx))
    }
}

/// What a registered flush comes to.
async fn settled(waiter: Option<oneshot::Receiver<StoreResult<()>>>) -> StoreResult<()> {
    match waiter {
        Some(rx) => rx.await.unwrap_or(Err(StoreError::StoreClosed)),
        None => Ok(()),
    }
}

/// Commits batches until the queue is empty. Runs on the microtask queue, so a synchronous
/// loop of `set`s ends up in one batch.
async fn run(db: Db) {
    loop {
        let (items, records, rows, changed, upto, slot, live) = {
            let mut guard = db.inner.state.borrow_mut();
            let st = &mut *guard;
            if st.lifecycle.is_shut_down() {
                st.pipeline.scheduled = false;
                return;
            }
            if st.pipeline.queue.is_empty() {
                st.pipeline.scheduled = false;
                st.pipeline.settle();
                return;
            }
            let items = std::mem::take(&mut st.pipeline.queue);
            let announce = db.wants_changes();
            let mut records = Vec::with_capacity(items.len());
            let rows = Array::new();
            let mut changed = Vec::new();
            for (q, record) in current(&items, st.records.index()) {
                if announce && !q.replayed {
                    changed.push((q.plugin.clone(), q.key.clone()));
                }
                rows.push(&queued_row(q, &record));
                records.push(record);
            }
            let slot = st.slot_row(&db.inner.info);
            // Queued writes are in the index already.
            let live = st.records.index().len();
            (
                items,
                records,
                rows,
                changed,
                st.pipeline.written,
                slot,
                live,
            )
        };
        // Always compare inside the transaction: another instance of this database may have
        // committed a newer version of the same key in a transaction ordered before ours (two
        // tabs writing one key in the same instant), and LWW must hold in storage as it does
        // in every index.
        let started = db.inner.engine.start(&Commit {
            records: &records,
            rows: &rows,
            if_newer: true,
            slot,
            vectors: &[],
            fence: None,
            live,
        });
        // Other tabs hear of the batch once its transaction exists, so any write they make in
        // response is ordered after it in IndexedDB.
        db.broadcast(&rows);
        db.announce(&changed, true);
        let result = match started {
            Ok(started) => started.done().await,
            Err(e) => Err(e),
        };
        let mut st = db.inner.state.borrow_mut();
        if st.lifecycle.is_shut_down() {
            st.pipeline.scheduled = false;
            return;
        }
        let p = &mut st.pipeline;
        match result {
            Ok(()) => {
                for item in &items {
                    if let (Some(journal), Some(entry)) = (p.journal.as_mut(), &item.journal) {
                        journal.remove(entry);
                    }
                    p.pending_bytes -= item.pending;
                }
                p.committed = upto;
                p.settle();
            }
            Err(error) => {
                // Everything stays journaled; the next write or flush retries.
                let later = std::mem::replace(&mut p.queue, items);
                p.queue.extend(later);
                p.scheduled = false;
                p.fail_waiters(&error);
                drop(st);
                db.emit("write-failed", &JsValue::from(error));
                return;
            }
        }
    }
}
