//! Writing (docs/DESIGN.md invariant 6). `set`/`delete` validate, stamp an HLC,
//! append to the localStorage journal synchronously, update the records and hand the write to
//! the commit pipeline (`pipeline.rs`). `setMany` skips the journal and resolves when its own
//! transaction is durable; a sync round's batch commits here too. A write that fails a check
//! changes nothing.

use js_sys::{Array, JsString};
use wasm_bindgen::JsValue;

use super::bus::rows_message;
use super::codec::{local_row, record_to_row_with, Encoded, JsIds};
use super::db::{Db, State};
use super::engine::{Commit, Fence, Started};
use super::error::{StoreError, StoreResult};
use super::journal::SYNC_MAX_VALUE_BYTES;
use super::outbox::Ticket;
use super::pipeline::{queued_row, Queued};
use super::quota::{self, over_quota, record_cost};
use crate::browser::clock::JsClock;
use crate::browser::interop::{number, Obj};
use crate::core::content::MAX_CONTENT_BYTES;
use crate::core::replica::Batch;
use crate::core::sorted::sorted_positions;
use crate::core::{Key, PluginId, Record};

/// A [`Db::set_many`] begun: its stamped records, their rows and read-cache values, its place
/// among the messages to other tabs and its transaction.
struct Begun {
    records: Vec<Record>,
    rows: Array,
    caches: Vec<Option<JsValue>>,
    ticket: Ticket,
    started: StoreResult<Started>,
}

impl Db {
    /// The synchronous write behind `set` (`Some(value)`) and `delete` (`None`): durable in the
    /// journal when it returns, or counted in `pending_bytes` when over the journal budget.
    /// `plugin_js` and `key_js`: `plugin` and `key` as the JS strings the caller has (the
    /// journal entry, the row and the read cache's key are made from them).
    pub fn write(
        &self,
        plugin: &PluginId,
        key: Key,
        value: Option<Encoded>,
        plugin_js: &JsString,
        key_js: JsString,
    ) -> StoreResult<()> {
        let start = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            st.check_open()?;
            let (value, cache, text) = Encoded::into_parts(value);
            if let Some(v) = &value {
                v.check_size(SYNC_MAX_VALUE_BYTES)?;
            }
            quota::check(
                plugin,
                st.quotas.get(plugin).copied(),
                st.records.index().usage(plugin),
                st.records.index().cost(plugin, &key),
                record_cost(&key, value.as_ref()),
            )?;
            let mut clock = st.clock.clone();
            let current = st
                .records
                .index()
                .entry(plugin, key.as_str())
                .map(|e| e.hlc);
            let hlc = clock.tick_over(JsClock.try_now_ms()?, current)?;
            let ids = JsIds {
                plugin: plugin_js.clone(),
                key: key_js,
                stamp: hlc.encode().as_str().into(),
            };
            let record = Record {
                plugin: plugin.clone(),
                key,
                hlc,
                value,
            };
            let journal = match &mut st.pipeline.journal {
                Some(j) => j.append(&record, text.as_ref(), &ids)?,
                None => None,
            };
            // Nothing can fail from here on.
            st.clock = clock;
            let pending = if journal.is_none() {
                record.wire_size()
            } else {
                0
            };
            st.pipeline.pending_bytes += pending;
            let Record {
                plugin, key, hlc, ..
            } = &record;
            let queued = Queued {
                plugin: plugin.clone(),
                key: key.clone(),
                hlc: *hlc,
                journal,
                pending,
                row: local_row(&record, &ids, text.as_ref()),
                replayed: false,
            };
            st.records.apply_local(record, cache.as_ref(), &ids.key);
            st.pipeline.enqueue(queued)
        };
        self.kick(start);
        Ok(())
    }

    /// Writes many entries of one plugin in one transaction, skipping the journal; resolves
    /// when they are durable (values up to 8 MiB). Either all are written or none. With a
    /// `fence`, the transaction also checks that the lock epoch is still the newest and writes
    /// nothing (`LockLost`) if a newer holder exists.
    ///
    /// The entries are checked and stamped, and the transaction started, at the call, not when
    /// the future is first polled: a `set` called after this in the same task is the later
    /// write, as program order says. Drive the future to its end (every caller awaits it or
    /// hands it to a promise): dropped, it would leave the started transaction's rows
    /// unapplied here and its place among the posts to other tabs unfilled.
    pub fn set_many(
        &self,
        plugin: &PluginId,
        entries: Vec<(Key, Option<Encoded>)>,
        fence: Option<&Fence>,
    ) -> impl std::future::Future<Output = StoreResult<()>> + 'static {
        let begun = self.begin_set_many(plugin, entries, fence);
        let (db, fence) = (self.clone(), fence.cloned());
        async move {
            let Begun {
                records,
                rows,
                caches,
                ticket,
                started,
            } = begun?;
            let result = match started {
                Ok(started) => started.done().await,
                Err(e) => Err(e),
            };
            db.fill_post(ticket, result.is_ok().then(|| rows_message(&rows, false)));
            result.map_err(|e| match (e, fence) {
                (StoreError::LockLost { newer, .. }, Some(f)) => StoreError::LockLost {
                    lock: f.lock,
                    epoch: f.epoch,
                    newer,
                },
                (e, _) => e,
            })?;
            let mut changed = Vec::new();
            {
                let mut st = db.inner.state.borrow_mut();
                for (record, cache) in records.into_iter().zip(caches) {
                    changed.extend(st.records.apply(record, cache.as_ref()));
                }
            }
            db.announce(&changed, true);
            Ok(())
        }
    }

    /// [`Db::set_many`]'s part at the call: checks, stamps, tells other tabs of the writes
    /// queued before it and starts the transaction.
    fn begin_set_many(
        &self,
        plugin: &PluginId,
        entries: Vec<(Key, Option<Encoded>)>,
        fence: Option<&Fence>,
    ) -> StoreResult<Begun> {
        let (records, rows, caches, (slot, live), ticket, ready) = {
            let mut guard = self.inner.state.borrow_mut();
            let st = &mut *guard;
            st.check_open()?;
            let quota = st.quotas.get(plugin).copied();
            let mut used = st.records.index().usage(plugin);
            // An entry replaces the one before it with the same key, or else the stored
            // record: `before[i]` is that earlier entry (positions sorted by key, stably).
            let order = sorted_positions(entries.len(), &|a, b| entries[a].0.cmp(&entries[b].0));
            let mut before = vec![None; entries.len()];
            for pair in order.windows(2) {
                if entries[pair[0]].0 == entries[pair[1]].0 {
                    before[pair[1]] = Some(pair[0]);
                }
            }
            let mut costs: Vec<usize> = Vec::with_capacity(entries.len());
            for ((key, value), before) in entries.iter().zip(before) {
                let value = value.as_ref().map(|e| &e.value);
                if let Some(v) = value {
                    v.check_size(MAX_CONTENT_BYTES)?;
                }
                let old = before
                    .and_then(|earlier| costs.get(earlier).copied())
                    .unwrap_or_else(|| st.records.index().cost(plugin, key));
                let new = record_cost(key, value);
                quota::check(plugin, quota, used, old, new)?;
                used = used - old + new;
                costs.push(new);
            }
            let now = JsClock.try_now_ms()?;
            let mut clock = st.clock.clone();
            let mut records = Vec::with_capacity(entries.len());
            let mut caches = Vec::with_capacity(entries.len());
            let rows = Array::new();
            let mut live = st.records.index().len();
            for (key, value) in entries {
                let (value, cache, text) = Encoded::into_parts(value);
                let current = st
                    .records
                    .index()
                    .entry(plugin, key.as_str())
                    .map(|e| e.hlc);
                live += usize::from(current.is_none());
                let record = Record {
                    plugin: plugin.clone(),
                    key,
                    hlc: clock.tick_over(now, current)?,
                    value,
                };
                rows.push(&record_to_row_with(&record, text.as_ref()));
                records.push(record);
                caches.push(cache);
            }
            st.clock = clock;
            // Writes queued before this call carry earlier stamps: other tabs hear of them
            // first (see outbox.rs), and of ours only once we know whether they committed.
            let earlier = queued_rows(st);
            let ready = if earlier.length() > 0 {
                self.inner.bus.push(rows_message(&earlier, false))
            } else {
                Vec::new()
            };
            let ticket = self.inner.bus.reserve();
            (
                records,
                rows,
                caches,
                (st.slot_row(&self.inner.info), live),
                ticket,
                ready,
            )
        };
        self.post(ready);
        let started = self.inner.engine.start(&Commit {
            records: &records,
            rows: &rows,
            if_newer: true,
            slot,
            vectors: &[],
            fence,
            live,
        });
        Ok(Begun {
            records,
            rows,
            caches,
            ticket,
            started,
        })
    }

    /// Applies remote records and vectors (a sync round's [`Batch`]) in one transaction, each
    /// record only where it is newer than what is stored, then to the index. Returns the
    /// (plugin, key) pairs that changed. Nothing changes if the transaction fails.
    pub async fn apply_remote(&self, batch: Batch) -> StoreResult<Vec<(PluginId, Key)>> {
        let (slot, live) = {
            let st = self.inner.state.borrow();
            st.check_open()?;
            let index = st.records.index();
            let new = |r: &&Record| index.entry(&r.plugin, r.key.as_str()).is_none();
            let live = index.len() + batch.records.iter().filter(new).count();
            (st.slot_row(&self.inner.info), live)
        };
        let rows = Db::rows(&batch.records);
        let ticket = self.inner.bus.reserve();
        let started = self.inner.engine.start(&Commit {
            records: &batch.records,
            rows: &rows,
            if_newer: true,
            slot,
            vectors: &batch.vectors,
            fence: None,
            live,
        });
        let result = match started {
            Ok(started) => started.done().await,
            Err(e) => Err(e),
        };
        let ok = result.is_ok() && rows.length() > 0;
        self.fill_post(ticket, ok.then(|| rows_message(&rows, true)));
        result?;
        let changed = self.inner.state.borrow_mut().records.apply_batch(batch);
        self.report_over_quota(&changed);
        Ok(changed)
    }

    /// After a sync round applied `changed`: an `over-quota` event `{ plugin, usedBytes,
    /// quotaBytes }` for each plugin it took past its quota (see `quota.rs`).
    fn report_over_quota(&self, changed: &[(PluginId, Key)]) {
        let over = {
            let st = self.inner.state.borrow();
            if st.quotas.is_empty() {
                return;
            }
            let index = st.records.index();
            over_quota(
                &st.quotas,
                |p| index.usage(p),
                changed.iter().map(|(p, _)| p),
            )
        };
        for o in over {
            let event: JsValue = Obj::new()
                .with("plugin", o.plugin.as_str())
                .with("usedBytes", number(o.used))
                .with("quotaBytes", number(o.quota))
                .into();
            self.emit("over-quota", &event);
        }
    }
}

/// Rows for the writes still queued (their current index versions), in queue (stamp) order.
fn queued_rows(st: &State) -> Array {
    st.pipeline
        .current_records(st.records.index())
        .map(|(q, record)| queued_row(q, &record))
        .collect()
}
