//! IndexedDB callbacks as promises and the per-row loops of a commit, in JS (`idb_requests.js`)
//! where a loop or callback beats crossing the wasm boundary per item.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/browser/idb_requests.js")]
extern "C" {
    /// A promise settled by an `IDBTransaction`'s `complete` (resolve) or `abort` (reject with
    /// the transaction's error, e.g. a `QuotaExceededError`).
    #[wasm_bindgen(js_name = txDone)]
    pub fn tx_done(tx: &JsValue) -> js_sys::Promise;

    /// Fencing inside a readwrite transaction over `epochs`: reads the stored epoch of
    /// `lock_name`; a newer one aborts `tx` (undoing every write queued in it) and makes
    /// [`tx_done`] reject with `{ name: "LockLostError", newer }`; an older one is raised.
    #[wasm_bindgen(js_name = fenceEpoch)]
    pub fn fence_epoch(tx: &JsValue, epochs: &JsValue, lock_name: &str, epoch: f64);

    /// A promise settled by an `IDBRequest`.
    #[wasm_bindgen(js_name = requestDone)]
    pub fn request_done(request: &JsValue) -> js_sys::Promise;

    /// Puts every row into `store` (one request each, none awaited); with `if_newer`, only rows
    /// whose `h` is greater than the stored row's.
    #[wasm_bindgen(catch, js_name = putRows)]
    pub fn put_rows(store: &JsValue, rows: &js_sys::Array, if_newer: bool) -> Result<(), JsValue>;

    /// A records-store row `{p, k, h, v?, b?}`.
    #[wasm_bindgen(js_name = recordRow)]
    pub fn record_row(
        p: &str,
        k: &str,
        h: &str,
        v: Option<String>,
        b: Option<js_sys::Uint8Array>,
    ) -> JsValue;
}
