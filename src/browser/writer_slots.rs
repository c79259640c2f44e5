//! Writer slots (docs/DESIGN.md invariant 3): a tab claims the lowest slot `n` whose Web Lock
//! `clientdata:<db>:slot:<n>` is free and holds it for its life; the slot's persisted node id
//! and clock state make a restarted tab in the same slot continue monotonically. Closing (or the
//! tab dying) releases the lock, so slots are reused and version vectors stay small.

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::lock_manager::{lock_manager, LockManager};

/// How many slots are tried before giving up (then the instance runs without a slot).
pub const MAX_SLOTS: u32 = 256;

#[wasm_bindgen(module = "/src/browser/writer_slots.js")]
extern "C" {
    #[wasm_bindgen(js_name = tryLock)]
    fn try_lock(locks: &LockManager, name: &str) -> Promise;
    #[wasm_bindgen(js_name = heldLockNames)]
    fn held_lock_names(locks: &LockManager) -> Promise;
}

/// The name of slot `n`'s lock.
pub fn lock_name(db: &str, n: u32) -> String {
    format!("clientdata:{db}:slot:{n}")
}

/// A held slot. Dropping it (or [`SlotLease::release`]) releases the lock.
#[derive(Debug)]
pub struct SlotLease {
    slot: u32,
    release: Option<Function>,
}

impl SlotLease {
    /// The slot number.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Releases the lock; idempotent.
    pub fn release(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        self.release();
    }
}

/// Claims the lowest free slot of `db`. `Ok(None)` when the Web Locks API is missing or every
/// slot up to [`MAX_SLOTS`] is taken: the caller then writes under a fresh random node id.
pub async fn claim(db: &str) -> Result<Option<SlotLease>, JsValue> {
    let Some(locks) = lock_manager() else {
        return Ok(None);
    };
    for n in 0..MAX_SLOTS {
        let granted = JsFuture::from(try_lock(&locks, &lock_name(db, n))).await?;
        if let Some(release) = granted.dyn_ref::<Function>() {
            return Ok(Some(SlotLease {
                slot: n,
                release: Some(release.clone()),
            }));
        }
    }
    Ok(None)
}

/// Names of every Web Lock currently held in this origin (empty without the API).
pub async fn held_locks() -> Result<Vec<String>, JsValue> {
    let Some(locks) = lock_manager() else {
        return Ok(Vec::new());
    };
    let held: Array = JsFuture::from(held_lock_names(&locks))
        .await?
        .unchecked_into();
    Ok(held.iter().filter_map(|v| v.as_string()).collect())
}
