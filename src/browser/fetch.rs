//! One HTTP request over the global `fetch` (windows and workers) with a timeout, the caller's
//! `AbortSignal` and a body size limit, and one call of a token provider; both as plain
//! results, never a rejection. The JS half is `fetch.js`; retries and errors are the sync
//! layer's (`sync::transport`).

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

#[wasm_bindgen(module = "/src/browser/fetch.js")]
extern "C" {
    /// Resolves with `{ status, text }`, `{ status, tooLarge }` (over `max_bytes`), or
    /// `{ failed: "aborted" | "timeout" | "network", message }`.
    #[wasm_bindgen(js_name = fetchText)]
    pub fn fetch_text(
        method: &str,
        url: &str,
        body: &JsValue,
        token: Option<String>,
        timeout_ms: f64,
        max_bytes: f64,
        signal: Option<AbortSignal>,
    ) -> Promise;

    /// Like [`fetch_text`], but a 2xx answer's body comes back as `{ status, bytes }` (a
    /// `Uint8Array` of UTF-8, copied into wasm in one piece): sync replies, read in wasm.
    #[wasm_bindgen(js_name = fetchReply)]
    pub fn fetch_reply(
        method: &str,
        url: &str,
        body: &JsValue,
        token: Option<String>,
        timeout_ms: f64,
        max_bytes: f64,
        signal: Option<AbortSignal>,
    ) -> Promise;

    /// Like [`fetch_text`] for content: `body` a `Uint8Array` (PUT) or undefined (GET);
    /// resolves with `{ status, bytes }` for a 2xx answer, `{ status, text }` otherwise,
    /// `{ status, tooLarge }` or `{ failed, message }`.
    #[wasm_bindgen(js_name = fetchBytes)]
    pub fn fetch_bytes(
        method: &str,
        url: &str,
        body: &JsValue,
        token: Option<String>,
        timeout_ms: f64,
        max_bytes: f64,
        signal: Option<AbortSignal>,
    ) -> Promise;

    /// Resolves with the SHA-256 of `bytes` as 64 lowercase hex digits (WebCrypto).
    #[wasm_bindgen(js_name = sha256Hex)]
    pub fn sha256_hex(bytes: &js_sys::Uint8Array) -> Promise;

    /// Calls `provider()` and resolves with `{ token }` (a string) or `{ failed }`.
    #[wasm_bindgen(js_name = callTokenProvider)]
    pub fn call_token_provider(provider: &Function) -> Promise;
}
