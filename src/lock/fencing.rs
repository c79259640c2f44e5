//! Fencing epochs (docs/DESIGN.md invariant 8): the `epochs` store, per Web Lock name, holds
//! the newest epoch a write was fenced with, and under the key `[lockName, "fence"]` the
//! *fence*: the epoch the lock's last steal stored. A write made under a lock calls [`check`]
//! inside its own transaction (which must include `epochs`) and fails with `LockLostError`
//! when the rule ([`super::rules::fence_grant`]) says its grant is stale.
//!
//! The epoch rule. A grant is given a proposed epoch (one above what this context knows, no
//! I/O) and stores nothing. Its first fenced write *claims* its epoch inside the write's own
//! transaction: one above the stored epoch, or the proposal if that is higher. IndexedDB runs
//! readwrite transactions over `epochs` one at a time, so no two grants ever fence writes with
//! the same epoch and every later claim is greater: a write with an older epoch is refused.
//! The grants of this context (epoch given, fence known at grant, epoch claimed) are in a
//! registry beside the store's fencing code (`browser/idb_requests.js`), so a store write
//! fenced with `{ lockName, epoch }` finds the claimed epoch; a grant of another context, or
//! one released here, is checked by its given epoch alone ([`super::rules::fence`]).
//!
//! Steals. Fencing exists for the holder that lost its lock without knowing: a steal (a stale
//! holder taken over, `forceRelease`) stores its epoch as the lock's epoch and its fence, in a
//! readwrite transaction created synchronously at grant time ([`start_bump`]). IndexedDB runs
//! readwrite transactions with overlapping scopes in creation order, so every write the victim
//! starts after the steal sees it: a claimed victim by its epoch, an unclaimed one because
//! the fence is newer than the one it knew at grant. A grant made after a steal this context
//! had not heard of yet (the thief's message still on its way) is refused too: it fails
//! closed, and the context has learned the fence for its next grant.
//!
//! Storing an epoch at every grant cost 7x in uncontended `withLock` throughput (a commit per
//! grant); this keeps the guarantee at no cost on the common path. What it gives up: a holder
//! that released normally and keeps writing anyway (a bug in its code) is not fenced until
//! the next holder's first fenced write or the next steal.
//!
//! ```ignore
//! // In a store write, under a grant of `lock`:
//! let tx = fencing::transaction(&db, &[EPOCHS, RECORDS], IdbTransactionMode::Readwrite)?;
//! if let Err(lost) = fencing::check(&tx, &grant.lock_name, grant.epoch).await {
//!     let _ = tx.abort();
//!     return Err(lost.into());
//! }
//! // ... puts into RECORDS, then JsFuture::from(tx_done(&tx)).await
//! ```

use std::future::Future;

use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

use super::env::describe;
use super::rules::{self, FenceCheck, GrantEpoch};
use super::LockError;
use crate::browser::idb_requests::{fence_key, grant_claimed, grant_state, request_done, tx_done};
use crate::store::schema::{EPOCHS, RECORDS};

fn storage(err: JsValue) -> LockError {
    LockError::Storage(describe(&err))
}

/// A transaction over `stores` of `db`.
pub fn transaction(
    db: &IdbDatabase,
    stores: &[&str],
    mode: IdbTransactionMode,
) -> Result<IdbTransaction, LockError> {
    let names: js_sys::Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    db.transaction_with_str_sequence_and_mode(&names, mode)
        .map_err(storage)
}

/// Watches `request` now (its callbacks are set before anything is awaited).
fn watch(request: Result<IdbRequest, JsValue>) -> Result<JsFuture, LockError> {
    let request: JsValue = request.map_err(storage)?.into();
    Ok(JsFuture::from(request_done(&request)))
}

/// Reads a stored epoch; anything that is not a non-negative integer counts as absent.
fn as_epoch(value: JsValue) -> Option<u64> {
    let v = value.as_f64()?;
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0).then_some(v as u64)
}

/// The newest epoch stored for `lock_name` (None when no write was fenced and no steal made).
pub async fn stored(db: &IdbDatabase, lock_name: &str) -> Result<Option<u64>, LockError> {
    Ok(stored_and_fence(db, lock_name).await?.0)
}

/// The stored epoch and fence of `lock_name`, read in one transaction.
pub async fn stored_and_fence(
    db: &IdbDatabase,
    lock_name: &str,
) -> Result<(Option<u64>, Option<u64>), LockError> {
    let tx = transaction(db, &[EPOCHS], IdbTransactionMode::Readonly)?;
    let store = tx.object_store(EPOCHS).map_err(storage)?;
    let epoch = watch(store.get(&JsValue::from_str(lock_name)))?;
    let fence = watch(store.get(&fence_key(lock_name)))?;
    let epoch = as_epoch(epoch.await.map_err(storage)?);
    Ok((epoch, as_epoch(fence.await.map_err(storage)?)))
}

/// This context's view of the grant given `epoch` (see the module docs).
fn grant_epoch(lock_name: &str, epoch: u64) -> Option<GrantEpoch> {
    let state = grant_state(lock_name, epoch as f64);
    let at = |i: usize| state.get(i).copied().unwrap_or(0.0) as u64;
    match at(0) {
        1 => Some(GrantEpoch::Unclaimed { floor: at(1) }),
        2 => Some(GrantEpoch::Claimed(at(2))),
        3 => Some(GrantEpoch::Lost),
        _ => None,
    }
}

/// Inside the caller's readwrite transaction `tx` (whose scope includes `epochs`): succeeds if
/// the grant given `epoch` may still write (claiming its epoch at its first fenced write, see
/// the module docs), else `LockError::Lost` naming the newer epoch. On `Err` the caller must
/// abort `tx` and write nothing.
pub async fn check(tx: &IdbTransaction, lock_name: &str, epoch: u64) -> Result<(), LockError> {
    let store = tx.object_store(EPOCHS).map_err(storage)?;
    let key = JsValue::from_str(lock_name);
    let grant = grant_epoch(lock_name, epoch);
    let value = watch(store.get(&key))?;
    let fence = match grant {
        Some(GrantEpoch::Unclaimed { .. } | GrantEpoch::Lost) => {
            Some(watch(store.get(&fence_key(lock_name)))?)
        }
        _ => None,
    };
    let stored = as_epoch(value.await.map_err(storage)?);
    let fenced = match fence {
        Some(f) => as_epoch(f.await.map_err(storage)?),
        None => None,
    };
    let decision = match grant {
        Some(grant) => rules::fence_grant(stored, fenced, grant, epoch),
        None => rules::fence(stored, epoch),
    };
    match decision {
        FenceCheck::Current => Ok(()),
        FenceCheck::Raise | FenceCheck::Claim(_) => {
            let value = match decision {
                FenceCheck::Claim(claimed) => claimed,
                _ => epoch,
            };
            store
                .put_with_key(&JsValue::from_f64(value as f64), &key)
                .map_err(storage)?;
            grant_claimed(lock_name, epoch as f64, value as f64);
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
    db: &IdbDatabase,
    lock_name: &str,
    epoch: u64,
    rows: &[JsValue],
) -> Result<(), LockError> {
    let tx = transaction(db, &[EPOCHS, RECORDS], IdbTransactionMode::Readwrite)?;
    // Watched from the start: an abort or commit is never missed.
    let done = JsFuture::from(tx_done(&tx));
    if let Err(lost) = check(&tx, lock_name, epoch).await {
        let _ = tx.abort();
        return Err(lost);
    }
    let records = tx.object_store(RECORDS).map_err(storage)?;
    for row in rows {
        records.put(row).map_err(storage)?;
    }
    done.await.map(|_| ()).map_err(storage)
}

/// Starts the transaction a steal makes to store its epoch for `lock_name`, as the lock's
/// epoch and as its fence ([`rules::bump`]: at least `proposed`). The transaction and its
/// read are created synchronously (that fixes its place in IndexedDB's order); the returned
/// future finishes it and says what was stored. A grant of this context given `proposed` (the
/// thief's) is recorded as having claimed the stored epoch.
pub fn start_bump(
    db: &IdbDatabase,
    lock_name: &str,
    proposed: u64,
) -> Result<impl Future<Output = Result<u64, LockError>>, LockError> {
    let tx = transaction(db, &[EPOCHS], IdbTransactionMode::Readwrite)?;
    let store = tx.object_store(EPOCHS).map_err(storage)?;
    let key = JsValue::from_str(lock_name);
    let fence = fence_key(lock_name);
    let lock_name = lock_name.to_owned();
    let read = watch(store.get(&key))?;
    let done = JsFuture::from(tx_done(&tx));
    Ok(async move {
        let value = rules::bump(as_epoch(read.await.map_err(storage)?), proposed);
        // The thief's grant (if this is one) holds the stored epoch from now on: its writes
        // come after this transaction.
        grant_claimed(&lock_name, proposed as f64, value as f64);
        let epoch = JsValue::from_f64(value as f64);
        store.put_with_key(&epoch, &key).map_err(storage)?;
        store.put_with_key(&epoch, &fence).map_err(storage)?;
        done.await.map_err(storage)?;
        Ok(value)
    })
}
