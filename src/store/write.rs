//! Writing (DESIGN invariant 6). `set`/`delete` validate, stamp an HLC, append to the
//! localStorage journal synchronously, update the index and queue the write; a task scheduled on
//! the microtask queue commits everything queued in ONE engine transaction, removes the journal
//! entries and resolves `flush()` waiters. `setMany` skips the journal and resolves when its own
//! transaction is durable. A write that fails a check changes nothing.

use std::collections::BTreeMap;

use futures::channel::oneshot;
use wasm_bindgen_futures::spawn_local;

use super::codec::Encoded;
use super::db::{rows_message, Db, Queued, State};
use super::engine::{Commit, Fence};
use super::error::{StoreError, StoreResult};
use super::journal::SYNC_MAX_VALUE_BYTES;
use super::quota::{self, record_cost};
use crate::browser::clock::JsClock;
use crate::core::record::MAX_VALUE_BYTES;
use crate::core::replica::Batch;
use crate::core::{Key, PluginId, Record};

impl Db {
    /// The synchronous write behind `set` (`Some(value)`) and `delete` (`None`): durable in the
    /// journal when it returns, or counted in `pending_bytes` when over the journal budget.
    pub fn write(&self, plugin: &PluginId, key: Key, value: Option<Encoded>) -> StoreResult<()> {
        let start = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            if st.closed {
                return Err(StoreError::StoreClosed);
            }
            let (value, cache) = match value {
                Some((v, c)) => (Some(v), c),
                None => (None, None),
            };
            if let Some(v) = &value {
                v.check_size(SYNC_MAX_VALUE_BYTES)?;
            }
            quota::check(
                plugin,
                st.quotas.get(plugin).copied(),
                st.index.usage(plugin),
                st.index.cost(plugin, &key),
                record_cost(&key, value.as_ref()),
            )?;
            let mut clock = st.clock.clone();
            let hlc = clock.tick(JsClock.try_now_ms()?)?;
            let record = Record {
                plugin: plugin.clone(),
                key,
                hlc,
                value,
            };
            let journal = match &mut st.journal {
                Some(j) => j.append(&record)?,
                None => None,
            };
            // Nothing can fail from here on.
            st.clock = clock;
            let pending = if journal.is_none() {
                record.wire_size()
            } else {
                0
            };
            st.pending_bytes += pending;
            let Record {
                plugin, key, hlc, ..
            } = &record;
            let queued = Queued {
                plugin: plugin.clone(),
                key: key.clone(),
                hlc: *hlc,
                journal,
                pending,
                replayed: false,
            };
            st.apply(record, cache.as_ref());
            st.queue.push(queued);
            st.written += 1;
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            spawn_local(run(self.clone()));
        }
        Ok(())
    }

    /// Writes many entries of one plugin in one transaction, skipping the journal; resolves
    /// when they are durable (values up to 1 MiB). Either all are written or none. With a
    /// `fence`, the transaction also checks that the lock epoch is still the newest and writes
    /// nothing (`LockLost`) if a newer holder exists.
    pub async fn set_many(
        &self,
        plugin: &PluginId,
        entries: Vec<(Key, Option<Encoded>)>,
        fence: Option<&Fence>,
    ) -> StoreResult<()> {
        let (records, caches, slot, ticket, ready) = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            if st.closed {
                return Err(StoreError::StoreClosed);
            }
            let quota = st.quotas.get(plugin).copied();
            let mut used = st.index.usage(plugin);
            let mut costs: BTreeMap<&Key, usize> = BTreeMap::new();
            for (key, value) in &entries {
                let value = value.as_ref().map(|(v, _)| v);
                if let Some(v) = value {
                    v.check_size(MAX_VALUE_BYTES)?;
                }
                let old = costs
                    .get(key)
                    .copied()
                    .unwrap_or_else(|| st.index.cost(plugin, key));
                let new = record_cost(key, value);
                quota::check(plugin, quota, used, old, new)?;
                used = used - old + new;
                costs.insert(key, new);
            }
            let now = JsClock.try_now_ms()?;
            let mut clock = st.clock.clone();
            let mut records = Vec::with_capacity(entries.len());
            let mut caches = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let (value, cache) = match value {
                    Some((v, c)) => (Some(v), c),
                    None => (None, None),
                };
                records.push(Record {
                    plugin: plugin.clone(),
                    key,
                    hlc: clock.tick(now)?,
                    value,
                });
                caches.push(cache);
            }
            st.clock = clock;
            // Writes queued before this call carry earlier stamps: other tabs hear of them
            // first (see outbox.rs), and of ours only once we know whether they committed.
            let earlier = queued_rows(st);
            let ready = if earlier.length() > 0 {
                st.outbox.push(rows_message(&earlier, false))
            } else {
                Vec::new()
            };
            let ticket = st.outbox.reserve();
            (
                records,
                caches,
                st.slot_row(self.inner.info.slot),
                ticket,
                ready,
            )
        };
        self.post(ready);
        let rows = Db::rows(&records);
        let started = self.inner.engine.start(&Commit {
            records: &records,
            rows: &rows,
            if_newer: true,
            slot,
            vectors: &[],
            fence,
        });
        let result = match started {
            Ok(started) => started.done().await,
            Err(e) => Err(e),
        };
        self.fill_post(ticket, result.is_ok().then(|| rows_message(&rows, false)));
        result.map_err(|e| match (e, fence) {
            (StoreError::LockLost { newer, .. }, Some(f)) => StoreError::LockLost {
                lock: f.lock.clone(),
                epoch: f.epoch,
                newer,
            },
            (e, _) => e,
        })?;
        let mut changed = Vec::new();
        {
            let mut st = self.inner.state.borrow_mut();
            for (record, cache) in records.into_iter().zip(caches) {
                changed.extend(st.apply(record, cache.as_ref()));
            }
        }
        self.announce(&changed, true);
        Ok(())
    }

    /// Applies remote records and vectors (a sync round's [`Batch`]) in one transaction, each
    /// record only where it is newer than what is stored, then to the index. Returns the
    /// (plugin, key) pairs that changed. Nothing changes if the transaction fails.
    pub async fn apply_remote(&self, batch: Batch) -> StoreResult<Vec<(PluginId, Key)>> {
        let slot = {
            let st = self.inner.state.borrow();
            if st.closed {
                return Err(StoreError::StoreClosed);
            }
            st.slot_row(self.inner.info.slot)
        };
        let rows = Db::rows(&batch.records);
        let ticket = self.inner.state.borrow_mut().outbox.reserve();
        let started = self.inner.engine.start(&Commit {
            records: &batch.records,
            rows: &rows,
            if_newer: true,
            slot,
            vectors: &batch.vectors,
            fence: None,
        });
        let result = match started {
            Ok(started) => started.done().await,
            Err(e) => Err(e),
        };
        let ok = result.is_ok() && rows.length() > 0;
        self.fill_post(ticket, ok.then(|| rows_message(&rows, true)));
        result?;
        Ok(self.inner.state.borrow_mut().apply_batch(batch))
    }

    /// Resolves when the engine holds every write accepted before the call.
    pub async fn flush(&self) -> StoreResult<()> {
        self.check_open()?;
        self.flush_any().await
    }

    /// [`Db::flush`] without the closed check (used by `close`).
    pub(crate) async fn flush_any(&self) -> StoreResult<()> {
        let (rx, start) = {
            let mut st = self.inner.state.borrow_mut();
            if st.dead {
                return Err(StoreError::StoreClosed);
            }
            if st.committed >= st.written && st.queue.is_empty() {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            let target = st.written;
            st.waiters.push((target, tx));
            (rx, !std::mem::replace(&mut st.running, true))
        };
        if start {
            spawn_local(run(self.clone()));
        }
        rx.await.unwrap_or(Err(StoreError::StoreClosed))
    }
}

/// Rows for the writes still queued (their current index versions), in queue (stamp) order.
fn queued_rows(st: &State) -> js_sys::Array {
    let records: Vec<Record> = st
        .queue
        .iter()
        .filter_map(|q| {
            let entry = st.index.entry(&q.plugin, q.key.as_str())?;
            (entry.hlc == q.hlc).then(|| Record {
                plugin: q.plugin.clone(),
                key: q.key.clone(),
                hlc: entry.hlc,
                value: entry.value.clone(),
            })
        })
        .collect();
    Db::rows(&records)
}

/// Commits batches until the queue is empty. Runs on the microtask queue, so a synchronous
/// loop of `set`s ends up in one batch.
pub(crate) async fn run(db: Db) {
    loop {
        let (items, records, changed, upto, if_newer, slot) = {
            let mut st = db.inner.state.borrow_mut();
            if st.dead {
                st.running = false;
                return;
            }
            if st.queue.is_empty() {
                st.running = false;
                st.settle();
                return;
            }
            let items = std::mem::take(&mut st.queue);
            let announce = db.wants_changes();
            let mut records = Vec::with_capacity(items.len());
            let mut changed = Vec::new();
            for q in &items {
                let Some(entry) = st.index.entry(&q.plugin, q.key.as_str()) else {
                    continue;
                };
                // A later write to the same key superseded this one: it is queued too.
                if entry.hlc != q.hlc {
                    continue;
                }
                records.push(Record {
                    plugin: q.plugin.clone(),
                    key: q.key.clone(),
                    hlc: entry.hlc,
                    value: entry.value.clone(),
                });
                if announce && !q.replayed {
                    changed.push((q.plugin.clone(), q.key.clone()));
                }
            }
            // Always compare inside the transaction: another instance of this database may
            // have committed a newer version of the same key in a transaction ordered before
            // ours (two tabs writing one key in the same instant), and LWW must hold in storage
            // as it does in every index.
            let if_newer = true;
            (
                items,
                records,
                changed,
                st.written,
                if_newer,
                st.slot_row(db.inner.info.slot),
            )
        };
        let rows = Db::rows(&records);
        let started = db.inner.engine.start(&Commit {
            records: &records,
            rows: &rows,
            if_newer,
            slot,
            vectors: &[],
            fence: None,
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
        if st.dead {
            st.running = false;
            return;
        }
        match result {
            Ok(()) => {
                for item in &items {
                    if let (Some(journal), Some(entry)) = (st.journal.as_mut(), &item.journal) {
                        journal.remove(entry);
                    }
                    st.pending_bytes -= item.pending;
                }
                st.committed = upto;
                st.settle();
            }
            Err(error) => {
                // Everything stays journaled; the next write or flush retries.
                let later = std::mem::replace(&mut st.queue, items);
                st.queue.extend(later);
                st.running = false;
                for (_, tx) in st.waiters.drain(..) {
                    let _ = tx.send(Err(error.clone()));
                }
                drop(st);
                let detail = crate::api::js_error::js_error(&error);
                db.inner.emitter.emit("write-failed", &detail.into());
                return;
            }
        }
    }
}
