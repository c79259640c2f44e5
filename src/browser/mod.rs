//! What the browser provides, bound for the rest of the crate. wasm32 only. Every global is
//! read through `js_sys::global()` so the crate works in windows and workers; a missing API is
//! a typed "unavailable" error, never a panic. JavaScript lives in `.js` files beside the
//! modules that bind it (`#[wasm_bindgen(module = ...)]`), linted by `scripts/test.sh`.
//!
//! - `interop` (+ `interop.js`): reading and building plain JS values, strict JSON.
//! - `idb_requests` (+ `.js`): IndexedDB callbacks as promises, a commit's per-row loops.
//! - `lock_manager`: `navigator.locks` (hand-written binding), [`lock_manager::HeldLock`].
//! - `promise_watch`: JS callbacks and promises as futures without a closure per call.
//! - `writer_slots` (+ `.js`): the tab's writer slot lock (docs/DESIGN.md invariant 3).
//! - `web_storage`: `localStorage` from the global scope.
//! - `fetch` (+ `.js`): one HTTP request with timeout, abort and size limit; the token call.
//! - `page_events` (+ `.js`): `online` and "became visible"; events on the global scope.
//! - `storage_manager` (+ `.js`): persistence and quota.
//! - `sealed` (+ `.js`): WebCrypto for end-to-end encryption (AES-GCM, HMAC, PBKDF2).
//! - `clock`, `events` (listeners), `tabs` (BroadcastChannel), `timer`.

pub mod clock;
pub mod events;
pub mod fetch;
pub mod idb_requests;
pub mod interop;
pub mod lock_manager;
pub mod page_events;
pub mod promise_watch;
pub mod sealed;
pub mod storage_manager;
pub mod tabs;
pub mod timer;
pub mod web_storage;
pub mod writer_slots;
