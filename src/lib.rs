//! clientdata: per-plugin key/value storage for browser apps, synchronous and durable on
//! return, synced across a user's devices by HLC version-vector exchange rounds.
//!
//! The map (docs/ARCHITECTURE.md has the picture):
//! - [`core`]: pure Rust, no browser: HLC, ids, records, watermarks, wire protocol, the exchange
//!   state machine. Shared with the reference server in `server/`.
//! - [`error`]: the `Coded` contract (JS name + stable code) every error type meets.
//! - `browser` (wasm32 only): bindings to what the browser provides (clock, Web Locks, ...).
//! - [`store`]: persistence. Pure parts (index, journal, quotas) everywhere; the engines
//!   (IndexedDB, localStorage, memory) and `store::schema` on wasm32 only.
//! - [`sync`]: exchange rounds over `fetch` (config and errors everywhere; transport, rounds and
//!   the leader tab's automatic sync on wasm32 only).
//! - `api` (wasm32 only): the `#[wasm_bindgen]` surface; converts, does not decide.
#![deny(missing_docs)]

pub mod core;
pub mod error;
pub mod lock;

#[cfg(target_arch = "wasm32")]
pub mod browser;

pub mod store;
pub mod sync;

#[cfg(target_arch = "wasm32")]
pub mod api;
