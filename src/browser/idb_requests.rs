//! IndexedDB callbacks as promises and the per-row loops of a commit, in JS (`idb_requests.js`)
//! where a loop or callback beats crossing the wasm boundary per item.

use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbTransaction};

#[wasm_bindgen(module = "/src/browser/idb_requests.js")]
extern "C" {
    /// A promise settled by an `IDBTransaction`'s `complete` (resolve) or `abort` (reject with
    /// the transaction's error, e.g. a `QuotaExceededError`).
    #[wasm_bindgen(js_name = txDone)]
    pub fn tx_done(tx: &JsValue) -> js_sys::Promise;

    /// Fencing inside a readwrite transaction over `epochs` by the epoch rule
    /// (`lock::rules::fence_grant`): a grant of this context claims its epoch at its first
    /// fenced write; a stale grant aborts `tx` (undoing every write queued in it) and makes
    /// [`tx_done`] reject with `{ name: "LockLostError", newer }`.
    #[wasm_bindgen(js_name = fenceEpoch)]
    pub fn fence_epoch(tx: &JsValue, epochs: &JsValue, lock_name: &str, epoch: f64);

    /// Registers a grant of this context given `epoch`, made when the newest fence known here
    /// was `floor` (see `lock::fencing`).
    #[wasm_bindgen(js_name = grantOpen)]
    pub fn grant_open(lock_name: &JsValue, epoch: f64, floor: f64);

    /// Records the epoch a grant claimed (its first fenced write, or its steal).
    #[wasm_bindgen(js_name = grantClaimed)]
    pub fn grant_claimed(lock_name: &str, epoch: f64, claimed: f64);

    /// Forgets a released grant; with `lost`, keeps it refused for good.
    #[wasm_bindgen(js_name = grantClose)]
    pub fn grant_close(lock_name: &JsValue, epoch: f64, lost: bool);

    /// `[state, floor, claimed]` of a grant: state 0 unknown here, 1 unclaimed, 2 claimed,
    /// 3 lost.
    #[wasm_bindgen(js_name = grantState)]
    pub fn grant_state(lock_name: &str, epoch: f64) -> Vec<f64>;

    /// The key of a lock's fence in `epochs`: `[lockName, "fence"]`.
    #[wasm_bindgen(js_name = fenceKey)]
    pub fn fence_key(lock_name: &str) -> JsValue;

    /// Opens database `name` at `version` with the upgrade step `migrate(db, upgrade_tx, old,
    /// new) -> Option<error text>`; dispatches the global events `blocked` and `changed`
    /// (`store::schema`). Errs where there is no `indexedDB`; the promise settles with the
    /// `IDBDatabase`.
    #[wasm_bindgen(catch, js_name = openDatabase)]
    pub fn open_database(
        name: &str,
        version: u32,
        blocked: &str,
        changed: &str,
        migrate: &Closure<dyn FnMut(IdbDatabase, IdbTransaction, u32, u32) -> Option<String>>,
    ) -> Result<js_sys::Promise, JsValue>;

    /// A promise settled by an `IDBRequest`.
    #[wasm_bindgen(js_name = requestDone)]
    pub fn request_done(request: &JsValue) -> js_sys::Promise;

    /// Puts every row into `store` (one request each, none awaited); with `if_newer`, only rows
    /// whose `h` is greater than the stored row's.
    #[wasm_bindgen(catch, js_name = putRows)]
    pub fn put_rows(store: &JsValue, rows: &js_sys::Array, if_newer: bool) -> Result<(), JsValue>;

    /// Stores `rows` as one row of the `packs` store under a fresh key (`putPack`).
    #[wasm_bindgen(catch, js_name = putPack)]
    pub fn put_pack(store: &JsValue, rows: &js_sys::Array) -> Result<(), JsValue>;

    /// Rewrites the packs whose live share (decided from what is stored) fell under half as
    /// one pack of their live entries (`compactPacks`).
    #[wasm_bindgen(js_name = compactPacks)]
    pub fn compact_packs(records: &JsValue, packs: &JsValue);

    /// Removes every version at or below `[plugin, key, stamp]` from `records` and from the
    /// rows held in `packs` (`deleteRows`).
    #[wasm_bindgen(js_name = deleteRows)]
    pub fn delete_rows(records: &JsValue, packs: &JsValue, rows: &js_sys::Array);

    /// A records-store row `{p, k, h, v?, b?}`.
    #[wasm_bindgen(js_name = recordRow)]
    pub fn record_row(
        p: &str,
        k: &str,
        h: &str,
        v: Option<String>,
        b: Option<js_sys::Uint8Array>,
        r: Option<String>,
    ) -> JsValue;

    /// A records-store row `{p, k, h, v}` whose JSON text `v` is already a JS string (a local
    /// write's `JSON.stringify` output): no copy out of wasm.
    #[wasm_bindgen(js_name = recordRow)]
    pub fn record_row_text(p: &str, k: &str, h: &str, v: &js_sys::JsString) -> JsValue;

    /// A records-store row `{p, k, h, v?}` of a local write, every field a JS string already
    /// (`v` absent: a tombstone).
    #[wasm_bindgen(js_name = recordRow)]
    pub fn record_row_js(
        p: &js_sys::JsString,
        k: &js_sys::JsString,
        h: &js_sys::JsString,
        v: Option<js_sys::JsString>,
    ) -> JsValue;
}
