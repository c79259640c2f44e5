//! The IndexedDB engine over the layout in `schema`: whole-store load at open (rows and packs),
//! one transaction per commit (puts issued in a JS loop, only the transaction awaited; a commit
//! of at least [`PACK_MIN`] records as one pack).
//!
//! Rows: `records` `{p, k, h, v?: JSON text, b?: Uint8Array, r?: content reference}` (none of
//! `v`, `b`, `r`: tombstone); `packs` `{rows: [records row, ...]}`;
//! `slots` `{slot, node, wall, counter, secret}`; `vectors` `{kind, plugin, h: [hlc, ...]}`.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{IdbDatabase, IdbObjectStore, IdbTransaction, IdbTransactionMode};

use super::commit::{kind_name, parse_kind, Commit, Loaded, SlotRow};
use crate::browser::idb_requests::{
    compact_packs, delete_rows, fence_epoch, put_pack, put_rows, request_done, tx_done,
};
use crate::browser::interop::{get, Obj};
use crate::core::replica::VectorKind;
use crate::core::{ClockState, DeviceSecret, Hlc, NodeId, PluginId, VersionVector};
use crate::store::codec::{js_failure, row_to_record};
use crate::store::error::StoreResult;
use crate::store::quarantine::{Place, Quarantined};
use crate::store::schema::{self, OpenError, EPOCHS, META, PACKS, RECORDS, SLOTS, VECTORS};

/// The fewest records a commit stores as one pack rather than a row each. A pack is faster at
/// any size (bench/pack-size.mjs), but below this the saving is a few milliseconds while every
/// pack keeps the versions later writes supersede until compaction (bench/RESULTS.md).
pub const PACK_MIN: u32 = 64;

/// Pack entries written since the last count before the engine compacts on its own: small
/// stores never pay a compaction for a few superseded versions.
pub const COMPACT_MIN: usize = 4096;

/// An open IndexedDB database.
#[derive(Debug)]
pub struct IdbEngine {
    db: IdbDatabase,
    packs: Rc<Cell<PackCount>>,
}

/// How many entries the packs hold, so a long-lived instance whose big commits keep replacing
/// the same keys compacts without waiting for the next open: packs could otherwise grow with
/// every commit (rows were overwritten in place; pack entries are only superseded).
#[derive(Debug, Default, Clone, Copy)]
struct PackCount {
    /// Entries stored in packs (an upper bound: counted when a pack is written).
    now: usize,
    /// `now` as last counted exactly (at open, after a compaction).
    counted: usize,
    /// A compaction is queued or running.
    compacting: bool,
    /// Compactions this instance queued while open (tests read it: `Db::compactions_queued`).
    queued: usize,
}

impl PackCount {
    /// `entries` just counted exactly, nothing running (the tally of compactions kept).
    fn exact(self, entries: usize) -> Self {
        PackCount {
            now: entries,
            counted: entries,
            compacting: false,
            queued: self.queued,
        }
    }

    /// Packs hold over twice the store's `live` records (so over half their entries are
    /// superseded) and at least doubled since they were last counted (and by [`COMPACT_MIN`]):
    /// a compaction, which reads every pack, then has dead versions to drop and is paid for by
    /// as many entries written. (Doubling alone also fired after a first big commit of new
    /// keys, rewrote nothing and kept the packs store busy into the next open: bench row O.)
    /// Stored entries stay within a few times the live ones plus `2 * COMPACT_MIN`.
    fn due(&self, live: usize) -> bool {
        !self.compacting && self.now > 2 * self.counted.max(COMPACT_MIN) && self.now > 2 * live
    }
}

fn transaction(
    db: &IdbDatabase,
    stores: &[&str],
    mode: IdbTransactionMode,
) -> StoreResult<IdbTransaction> {
    let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    db.transaction_with_str_sequence_and_mode(&names, mode)
        .map_err(|e| js_failure(&e))
}

/// Starts rewriting the packs whose live share fell under half, in one transaction that
/// decides what is live from what it reads (`compactPacks` in `idb_requests.js`); the future
/// resolves to how many entries the packs hold after it.
fn compact(db: &IdbDatabase) -> impl std::future::Future<Output = StoreResult<usize>> {
    let started =
        transaction(db, &[RECORDS, PACKS], IdbTransactionMode::Readwrite).and_then(|tx| {
            let done = JsFuture::from(tx_done(&tx));
            let store = |name| tx.object_store(name).map_err(|e| js_failure(&e));
            compact_packs(&store(RECORDS)?.into(), &store(PACKS)?.into());
            Ok((tx, done))
        });
    async move {
        let (tx, done) = started?;
        done.await.map_err(|e| js_failure(&e))?;
        Ok(get(&tx, "cdPacked").as_f64().unwrap_or(0.0) as usize)
    }
}

async fn request(req: &JsValue) -> StoreResult<JsValue> {
    JsFuture::from(request_done(req))
        .await
        .map_err(|e| js_failure(&e))
}

/// `vectors` rows `{kind, plugin, h: [hlc, ...]}`; malformed rows are skipped.
fn parse_vectors(rows: &Array) -> Vec<(VectorKind, PluginId, VersionVector)> {
    let mut out = Vec::new();
    for row in rows.iter() {
        let kind = get(&row, "kind").as_string().and_then(|k| parse_kind(&k));
        let plugin = get(&row, "plugin")
            .as_string()
            .and_then(|p| PluginId::new(p).ok());
        let stamps = get(&row, "h").dyn_into::<Array>().ok();
        if let (Some(kind), Some(plugin), Some(stamps)) = (kind, plugin, stamps) {
            let vector: VersionVector = stamps
                .iter()
                .filter_map(|h| Hlc::parse(&h.as_string()?).ok())
                .map(|h| (h.node, h))
                .collect();
            out.push((kind, plugin, vector));
        }
    }
    out
}

impl IdbEngine {
    /// Opens (creating or migrating) the database.
    pub async fn open(name: &str) -> Result<Self, OpenError> {
        let db = schema::open(name).await?;
        Ok(IdbEngine {
            db,
            packs: Rc::default(),
        })
    }

    fn transaction(
        &self,
        stores: &[&str],
        mode: IdbTransactionMode,
    ) -> StoreResult<IdbTransaction> {
        transaction(&self.db, stores, mode)
    }

    fn store(tx: &IdbTransaction, name: &str) -> StoreResult<IdbObjectStore> {
        tx.object_store(name).map_err(|e| js_failure(&e))
    }

    /// Reads every record and vector in one read-only transaction.
    pub async fn load(&self) -> StoreResult<Loaded> {
        let tx = self.transaction(&[RECORDS, PACKS, VECTORS], IdbTransactionMode::Readonly)?;
        let records = Self::store(&tx, RECORDS)?
            .get_all()
            .map_err(|e| js_failure(&e))?;
        let packs = Self::store(&tx, PACKS)?
            .get_all()
            .map_err(|e| js_failure(&e))?;
        let vectors = Self::store(&tx, VECTORS)?
            .get_all()
            .map_err(|e| js_failure(&e))?;
        let records: Array = request(&records).await?.unchecked_into();
        let packs: Array = request(&packs).await?.unchecked_into();
        let vectors: Array = request(&vectors).await?.unchecked_into();
        let mut loaded = Loaded {
            vectors: parse_vectors(&vectors),
            ..Loaded::default()
        };
        let mut decode = |row: JsValue| match row_to_record(&row) {
            Ok(record) => loaded.records.push(record),
            Err(corrupt) => loaded.corrupt.push(corrupt),
        };
        records.iter().for_each(&mut decode);
        // Pack entries are records-store rows: the same decoder, and a corrupt entry is
        // quarantined like a corrupt row (left in its pack, out of the index). The index's
        // last-write-wins (index_of in open.rs) picks between versions in rows and packs.
        let (mut unreadable, mut packed) = (0, 0);
        for pack in packs.iter() {
            match get(&pack, "rows").dyn_into::<Array>() {
                Ok(rows) => {
                    packed += rows.length() as usize;
                    rows.iter().for_each(&mut decode)
                }
                Err(_) => unreadable += 1,
            }
        }
        loaded.packed = packed;
        self.packs.set(self.packs.get().exact(packed));
        if unreadable > 0 {
            loaded.corrupt.push(Quarantined {
                place: Place::Row(format!("{PACKS} ({unreadable} without rows)")),
                reason: "a pack without a rows array".to_owned(),
            });
        }
        Ok(loaded)
    }

    /// Reads every sync vector (a round re-reads them: another tab's round may have moved them).
    pub async fn load_vectors(&self) -> StoreResult<Vec<(VectorKind, PluginId, VersionVector)>> {
        let tx = self.transaction(&[VECTORS], IdbTransactionMode::Readonly)?;
        let req = Self::store(&tx, VECTORS)?
            .get_all()
            .map_err(|e| js_failure(&e))?;
        let rows: Array = request(&req).await?.unchecked_into();
        Ok(parse_vectors(&rows))
    }

    /// Reads slot `n`'s row.
    pub async fn load_slot(&self, n: u32) -> StoreResult<Option<SlotRow>> {
        let tx = self.transaction(&[SLOTS], IdbTransactionMode::Readonly)?;
        let req = Self::store(&tx, SLOTS)?
            .get(&JsValue::from(n))
            .map_err(|e| js_failure(&e))?;
        let row = request(&req).await?;
        if row.is_undefined() {
            return Ok(None);
        }
        let node = get(&row, "node")
            .as_string()
            .and_then(|n| NodeId::parse(&n).ok());
        let wall = get(&row, "wall").as_f64();
        let counter = get(&row, "counter").as_f64();
        let secret = get(&row, "secret")
            .as_string()
            .and_then(|s| DeviceSecret::parse(&s));
        Ok(match (node, wall, counter) {
            (Some(node), Some(wall), Some(counter))
                if wall >= 0.0 && (0.0..=65535.0).contains(&counter) =>
            {
                Some(SlotRow {
                    slot: n,
                    node,
                    clock: ClockState {
                        wall_ms: wall as u64,
                        counter: counter as u16,
                    },
                    secret,
                })
            }
            _ => None,
        })
    }

    /// Starts one read-write transaction holding the whole commit; the returned future resolves
    /// when it completes and rejects with the abort's `DOMException`.
    pub fn start(&self, commit: &Commit<'_>) -> StoreResult<JsFuture> {
        let pack = commit.rows.length() >= PACK_MIN;
        let mut stores = vec![if pack { PACKS } else { RECORDS }];
        if commit.slot.is_some() {
            stores.push(SLOTS);
        }
        if !commit.vectors.is_empty() {
            stores.push(VECTORS);
        }
        if commit.fence.is_some() {
            stores.push(EPOCHS);
        }
        let tx = self.transaction(&stores, IdbTransactionMode::Readwrite)?;
        let done = JsFuture::from(tx_done(&tx));
        let fail = |e: JsValue| {
            let _ = tx.abort();
            js_failure(&e)
        };
        if let Some(fence) = commit.fence {
            // Queued first: if a newer epoch is stored, the transaction aborts and every write
            // queued after this is undone with it.
            fence_epoch(
                &tx,
                &Self::store(&tx, EPOCHS)?.into(),
                &fence.lock,
                fence.epoch as f64,
            );
        }
        if pack {
            // No compare with stored versions (`if_newer`): opening decides by last-write-wins.
            put_pack(&Self::store(&tx, PACKS)?.into(), commit.rows).map_err(fail)?;
            self.count_pack(commit.rows.length() as usize, commit.live);
        } else {
            put_rows(
                &Self::store(&tx, RECORDS)?.into(),
                commit.rows,
                commit.if_newer,
            )
            .map_err(fail)?;
        }
        if let Some(slot) = commit.slot {
            let mut row = Obj::new()
                .with("slot", slot.slot)
                .with("node", slot.node.to_string())
                .with("wall", slot.clock.wall_ms as f64)
                .with("counter", slot.clock.counter);
            if let Some(secret) = slot.secret {
                row = row.with("secret", secret.to_hex());
            }
            let row: JsValue = row.into();
            Self::store(&tx, SLOTS)?.put(&row).map_err(fail)?;
        }
        if !commit.vectors.is_empty() {
            let store = Self::store(&tx, VECTORS)?;
            for (kind, watermarks) in commit.vectors {
                for (plugin, vector) in watermarks.iter() {
                    let stamps: Array = vector
                        .iter()
                        .map(|(_, h)| JsValue::from_str(&h.encode()))
                        .collect();
                    let row: JsValue = Obj::new()
                        .with("kind", kind_name(*kind))
                        .with("plugin", plugin.as_str())
                        .with("h", stamps)
                        .into();
                    store.put(&row).map_err(fail)?;
                }
            }
        }
        Ok(done)
    }

    /// How many compactions this instance queued while open ([`PackCount::due`]).
    pub fn compactions_queued(&self) -> usize {
        self.packs.get().queued
    }

    /// Rewrites the packs whose live share fell under half (see [`compact`]).
    pub async fn compact(&self) -> StoreResult<()> {
        let left = compact(&self.db).await?;
        self.packs.set(self.packs.get().exact(left));
        Ok(())
    }

    /// Counts a pack of `entries` just queued; when a compaction is due (see
    /// [`PackCount::due`], `live` as in [`Commit::live`]), queues one. Its transaction is created now, so IndexedDB runs it after the
    /// commit that wrote the pack (their scopes overlap); a failed one (the database closed, say)
    /// leaves the packs as they were and counts them as they are.
    fn count_pack(&self, entries: usize, live: usize) {
        let mut count = self.packs.get();
        count.now += entries;
        let due = count.due(live);
        count.compacting |= due;
        count.queued += usize::from(due);
        self.packs.set(count);
        if !due {
            return;
        }
        let (queued_at, packs) = (count.now, self.packs.clone());
        let compaction = compact(&self.db);
        spawn_local(async move {
            let result = compaction.await;
            let mut count = packs.get();
            match result {
                // Packs written since it was queued are counted on top (perhaps twice: an
                // upper bound only brings the next compaction earlier).
                Ok(left) => {
                    count.now = left + count.now.saturating_sub(queued_at);
                    count.counted = left;
                }
                Err(_) => count.counted = count.now,
            }
            count.compacting = false;
            packs.set(count);
        });
    }

    /// Removes the versions at or below the given stamps from rows and packs, in one
    /// transaction (`deleteRows`; see [`super::Engine::remove`]).
    pub fn remove(&self, rows: &Array) -> StoreResult<JsFuture> {
        let tx = self.transaction(&[RECORDS, PACKS], IdbTransactionMode::Readwrite)?;
        let done = JsFuture::from(tx_done(&tx));
        delete_rows(
            &Self::store(&tx, RECORDS)?.into(),
            &Self::store(&tx, PACKS)?.into(),
            rows,
        );
        Ok(done)
    }

    /// The store epoch (`meta` row `store-epoch`), creating it as `fresh` if absent; whether
    /// this call created it. `add` fails when the row exists (another tab may have created it a
    /// moment ago), so exactly one creator wins and every instance reads the same epoch.
    pub async fn store_epoch(&self, fresh: &str) -> StoreResult<(String, bool)> {
        let key = JsValue::from_str("store-epoch");
        let tx = self.transaction(&[META], IdbTransactionMode::Readwrite)?;
        let done = JsFuture::from(tx_done(&tx));
        Self::store(&tx, META)?
            .add_with_key(&JsValue::from_str(fresh), &key)
            .map_err(|e| js_failure(&e))?;
        // A ConstraintError aborts the transaction: the row was there.
        let created = done.await.is_ok();
        let tx = self.transaction(&[META], IdbTransactionMode::Readonly)?;
        let read = Self::store(&tx, META)?
            .get(&key)
            .map_err(|e| js_failure(&e))?;
        let stored = request(&read).await?.as_string();
        match stored {
            Some(epoch) => Ok((epoch.clone(), created && epoch == fresh)),
            None => Err(js_failure(&JsValue::from_str(
                "the store epoch was neither created nor found",
            ))),
        }
    }

    /// Writes and deletes a probe row in one transaction (the verifier's health check).
    pub async fn probe(&self) -> StoreResult<()> {
        let tx = self.transaction(&[META], IdbTransactionMode::Readwrite)?;
        let done = JsFuture::from(tx_done(&tx));
        let meta = Self::store(&tx, META)?;
        let key = JsValue::from_str("verifier-probe");
        meta.put_with_key(&JsValue::from(js_sys::Date::now()), &key)
            .and_then(|_| meta.delete(&key))
            .map_err(|e| {
                let _ = tx.abort();
                js_failure(&e)
            })?;
        done.await.map(|_| ()).map_err(|e| js_failure(&e))
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.db.close()
    }
}
