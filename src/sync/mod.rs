//! Sync over `fetch` (DESIGN invariant 4): exchange rounds with the reference server, decided
//! by `core::replica` and committed through the store in one transaction per round.
//!
//! - `config` (pure): options, endpoint URLs, retry backoff.
//! - `error` (pure): `SyncError`, each kind with a JS name and a stable code.
//! - `transport` (wasm32): one POST with timeout, abort, retries and one token refresh on 401.
//! - `round` (wasm32): `Syncer`, one round and the `hasMore` loop, scope and dirty keys.
//! - `auto` (wasm32): the leader tab's automatic rounds (interval, online, visible, writes).

pub mod config;
pub mod error;

#[cfg(target_arch = "wasm32")]
pub mod auto;
#[cfg(target_arch = "wasm32")]
pub mod round;
#[cfg(target_arch = "wasm32")]
pub mod transport;

pub use config::{AutoSync, SyncConfig};
pub use error::SyncError;
