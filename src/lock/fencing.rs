//! Fencing epochs (docs/DESIGN.md invariant 8). Every grant carries an epoch, strictly greater than
//! the epochs of earlier grants of the lock (proposed from this tab's last grant and the hints
//! in localStorage, see [`super::rules::propose_epoch`]). The `epochs` store holds, per Web
//! Lock name, the newest epoch that *fences*: a write made under a lock calls [`check`] inside
//! its own transaction (which must include `epochs`) and fails with `LockLostError` when a
//! newer epoch is stored.
//!
//! When the store moves. Fencing exists for the holder that lost its lock without knowing:
//! only a steal makes one (a stale lease taken over, `forceRelease`); a holder that released
//! knows, and a tab that died cannot write. So:
//! - a stealing grant stores its epoch in a readwrite transaction created synchronously at
//!   grant time ([`start_bump`]). IndexedDB runs readwrite transactions with overlapping scopes
//!   in creation order, so every write the victim starts after the steal sees the newer epoch,
//!   and nothing waits for that transaction;
//! - an ordinary grant (the queue handing the lock on) touches no IndexedDB at all: the first
//!   fenced write under it raises the stored epoch in its own transaction
//!   ([`super::rules::FenceCheck::Raise`]).
//!
//! Storing an epoch at every grant cost 7x in uncontended `withLock` throughput (a commit per
//! grant); this keeps the guarantee that matters at no cost on the common path. What it gives
//! up: a holder that released normally and keeps writing anyway (a bug in its code) is not
//! fenced until the next steal or the next holder's first fenced write.
//!
//! ```ignore
//! // In a store write, under a grant of `lock`:
//! let tx = db.transaction(&[EPOCHS, RECORDS], TransactionMode::ReadWrite)?;
//! if let Err(lost) = fencing::check(&tx, &grant.lock_name, grant.epoch).await {
//!     let _ = tx.abort();
//!     return Err(lost.into());
//! }
//! // ... puts into RECORDS, then tx.await
//! ```

use std::future::{Future, IntoFuture};

use idb::{Database, Transaction, TransactionMode, TransactionResult};
use wasm_bindgen::JsValue;

use super::rules::{self, Bump, FenceCheck};
use super::LockError;
use crate::store::schema::{EPOCHS, RECORDS};

fn storage(err: impl std::fmt::Display) -> LockError {
    LockError::Storage(err.to_string())
}

/// Reads a stored epoch; anything that is not a non-negative integer counts as absent.
fn as_epoch(value: Option<JsValue>) -> Option<u64> {
    let v = value?.as_f64()?;
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0).then_some(v as u64)
}

/// The newest epoch stored for `lock_name` (None when the lock was never granted).
pub async fn stored(db: &Database, lock_name: &str) -> Result<Option<u64>, LockError> {
    let tx = db
        .transaction(&[EPOCHS], TransactionMode::ReadOnly)
        .map_err(storage)?;
    let store = tx.object_store(EPOCHS).map_err(storage)?;
    let value = store
        .get(JsValue::from_str(lock_name))
        .map_err(storage)?
        .await
        .map_err(storage)?;
    Ok(as_epoch(value))
}

/// Inside the caller's readwrite transaction `tx` (whose scope includes `epochs`): succeeds if
/// `epoch` is still the newest for `lock_name` (storing it if nothing as new is stored yet),
/// else `LockError::Lost` naming the newer epoch. On `Err` the caller must abort `tx` and write
/// nothing.
pub async fn check(tx: &Transaction, lock_name: &str, epoch: u64) -> Result<(), LockError> {
    let store = tx.object_store(EPOCHS).map_err(storage)?;
    let key = JsValue::from_str(lock_name);
    let value = store
        .get(key.clone())
        .map_err(storage)?
        .await
        .map_err(storage)?;
    match rules::fence(as_epoch(value), epoch) {
        FenceCheck::Current => Ok(()),
        FenceCheck::Raise => {
            store
                .put(&JsValue::from_f64(epoch as f64), Some(&key))
                .map_err(storage)?;
            Ok(())
        }
        FenceCheck::Stale(newer) => Err(LockError::Lost {
            lock: lock_name.to_owned(),
            epoch,
            newer: Some(newer),
        }),
    }
}

/// A fenced write: puts `rows` (objects in the `records` layout) and checks `epoch` in ONE
/// transaction. Either every row is written under a current epoch, or nothing is written and
/// the result is `LockError::Lost`.
pub async fn fenced_put(
    db: &Database,
    lock_name: &str,
    epoch: u64,
    rows: &[JsValue],
) -> Result<(), LockError> {
    let tx = db
        .transaction(&[EPOCHS, RECORDS], TransactionMode::ReadWrite)
        .map_err(storage)?;
    if let Err(lost) = check(&tx, lock_name, epoch).await {
        let _ = tx.abort();
        return Err(lost);
    }
    let records = tx.object_store(RECORDS).map_err(storage)?;
    for row in rows {
        records.put(row, None).map_err(storage)?;
    }
    match tx.await.map_err(storage)? {
        TransactionResult::Committed => Ok(()),
        TransactionResult::Aborted => Err(LockError::Storage("fenced write aborted".into())),
    }
}

/// Starts the transaction a stealing grant makes to store `proposed` for `lock_name`. The transaction
/// and its read are created synchronously (that fixes its place in IndexedDB's order); the
/// returned future finishes it and says what was stored.
pub fn start_bump(
    db: &Database,
    lock_name: &str,
    proposed: u64,
) -> Result<impl Future<Output = Result<Bump, LockError>>, LockError> {
    let tx = db
        .transaction(&[EPOCHS], TransactionMode::ReadWrite)
        .map_err(storage)?;
    let store = tx.object_store(EPOCHS).map_err(storage)?;
    let key = JsValue::from_str(lock_name);
    let read = store.get(key.clone()).map_err(storage)?.into_future();
    Ok(async move {
        let decision = rules::bump(as_epoch(read.await.map_err(storage)?), proposed);
        let (Bump::Store(value) | Bump::Supersede(value)) = decision;
        store
            .put(&JsValue::from_f64(value as f64), Some(&key))
            .map_err(storage)?;
        match tx.await.map_err(storage)? {
            TransactionResult::Committed => Ok(decision),
            TransactionResult::Aborted => {
                Err(LockError::Storage("epoch transaction aborted".into()))
            }
        }
    })
}
