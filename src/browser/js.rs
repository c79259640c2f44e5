//! A few small JS helpers where a loop or callback in JS beats crossing the wasm boundary per
//! item: JSON encoding with strict checks, IndexedDB transaction/request promises, bulk puts,
//! and the async-iterator shape. No `eval`, no globals beyond the arguments.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function cd_to_json(v) {
  let why = null;
  try {
    const text = JSON.stringify(v, function (k, x) {
      switch (typeof x) {
        case "undefined": why = "undefined is not JSON"; throw why;
        case "function": why = "a function is not JSON"; throw why;
        case "symbol": why = "a symbol is not JSON"; throw why;
        case "bigint": why = "a BigInt is not JSON"; throw why;
        case "number": if (!Number.isFinite(x)) { why = String(x) + " is not JSON"; throw why; } break;
        case "object":
          if (x !== null && (ArrayBuffer.isView(x) || x instanceof ArrayBuffer || x instanceof Map || x instanceof Set)) {
            why = "a nested binary value, Map or Set does not round-trip through JSON (store a Uint8Array at the top level)";
            throw why;
          }
      }
      return x;
    });
    return text;
  } catch (e) {
    return { why: why ?? (e && e.message ? e.message : String(e)) };
  }
}
export function cd_tx_done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.cdFenceNewer !== undefined
      ? { name: "LockLostError", message: "a newer lock epoch exists", newer: tx.cdFenceNewer }
      : tx.error || new DOMException("transaction aborted", "AbortError"));
  });
}
export function cd_request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
export function cd_put_rows(store, rows, ifNewer) {
  if (!ifNewer || rows.length === 0) { for (const row of rows) store.put(row); return; }
  // Put-if-newer without a get per row: one getAllKeys (keys only, no values) over the batch's
  // key span finds the keys already stored; the rest are put blindly (nothing else can write
  // the store while this transaction runs), only stored keys are read and compared.
  // IndexedDB orders [plugin, key] arrays of strings by UTF-16 code units, as `<` does.
  const before = (a, b) => a.p < b.p || (a.p === b.p && a.k < b.k);
  let lo = rows[0], hi = rows[0];
  for (const row of rows) {
    if (before(row, lo)) lo = row;
    if (before(hi, row)) hi = row;
  }
  const keys = store.getAllKeys(IDBKeyRange.bound([lo.p, lo.k], [hi.p, hi.k]));
  keys.onsuccess = () => {
    // Nothing stored in the span (a first sync, new keys): every row goes in as it is.
    if (keys.result.length === 0) { for (const row of rows) store.put(row); return; }
    const batch = new Map();
    for (const row of rows) {
      let ks = batch.get(row.p);
      if (!ks) batch.set(row.p, (ks = new Set()));
      ks.add(row.k);
    }
    const stored = new Map();
    for (const [p, k] of keys.result) {
      if (!batch.get(p)?.has(k)) continue;
      let ks = stored.get(p);
      if (!ks) stored.set(p, (ks = new Set()));
      ks.add(k);
    }
    for (const row of rows) {
      if (!stored.get(row.p)?.has(row.k)) { store.put(row); continue; }
      const get = store.get([row.p, row.k]);
      get.onsuccess = () => { const cur = get.result; if (!cur || cur.h < row.h) store.put(row); };
    }
  };
}
export function cd_fence(tx, epochs, lockName, epoch) {
  const get = epochs.get(lockName);
  get.onsuccess = () => {
    const stored = typeof get.result === "number" ? get.result : 0;
    if (stored > epoch) { tx.cdFenceNewer = stored; tx.abort(); }
    else if (stored < epoch) epochs.put(epoch, lockName);
  };
}
export function cd_row(p, k, h, v, b) {
  const row = { p, k, h };
  if (v !== undefined) row.v = v;
  if (b !== undefined) row.b = b;
  return row;
}
export function cd_async_iterable(next, ret) {
  return { next, return: ret, [Symbol.asyncIterator]() { return this; } };
}
"#)]
extern "C" {
    /// `JSON.stringify` that refuses what JSON cannot represent: returns the text, or
    /// `{ why }` (undefined, functions, symbols, BigInt, NaN/Infinity, cycles, nested binary).
    pub fn cd_to_json(value: &JsValue) -> JsValue;

    /// A promise settled by an `IDBTransaction`'s `complete` (resolve) or `abort` (reject with
    /// the transaction's error, e.g. a `QuotaExceededError`).
    pub fn cd_tx_done(tx: &JsValue) -> js_sys::Promise;

    /// Fencing inside a readwrite transaction over `epochs`: reads the stored epoch of
    /// `lock_name`; a newer one aborts `tx` (undoing every write queued in it) and makes
    /// [`cd_tx_done`] reject with `{ name: "LockLostError", newer }`; an older one is raised.
    pub fn cd_fence(tx: &JsValue, epochs: &JsValue, lock_name: &str, epoch: f64);

    /// A promise settled by an `IDBRequest`.
    pub fn cd_request(request: &JsValue) -> js_sys::Promise;

    /// Puts every row into `store` (one request each, none awaited); with `if_newer`, only rows
    /// whose `h` is greater than the stored row's.
    #[wasm_bindgen(catch)]
    pub fn cd_put_rows(
        store: &JsValue,
        rows: &js_sys::Array,
        if_newer: bool,
    ) -> Result<(), JsValue>;

    /// A records-store row `{p, k, h, v?, b?}`.
    pub fn cd_row(
        p: &str,
        k: &str,
        h: &str,
        v: Option<String>,
        b: Option<js_sys::Uint8Array>,
    ) -> JsValue;

    /// An async iterator object (`next`, `return`, `[Symbol.asyncIterator]`).
    pub fn cd_async_iterable(next: &JsValue, ret: &JsValue) -> JsValue;
}
