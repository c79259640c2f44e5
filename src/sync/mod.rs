//! Sync over `fetch` (docs/DESIGN.md invariant 4): exchange rounds with the reference
//! server, decided by `core::replica` and committed through the store in one transaction per
//! round.
//!
//! - `config` (pure): options, endpoint URLs, retry backoff.
//! - `error` (pure): `SyncError`, each kind with a JS name and a stable code.
//! - `push_plan` (pure): dirty keys and the full walk merged into a round's push.
//! - `hydrate_plan` (pure): what a round keeps when eagerly fetched content failed.
//! - `hydrate` (wasm32): values by reference: uploads before a push, fetches (eager, `getAsync`,
//!   `hydrateFile`), each checked against its SHA-256 (WebCrypto).
//! - `transport` (wasm32): one POST with timeout, abort, retries and one token refresh on 401.
//! - `round` (wasm32): `Syncer`, one round and the `hasMore` loop, scope and dirty keys.
//! - `sealed` (wasm32): end-to-end encryption of a round (`core::sealed` decides, WebCrypto
//!   computes).
//! - `full_resync` (wasm32): the walk a round runs when the server says `fullResync`.
//! - `summary` (wasm32): a round's events, here and in the other tabs.
//! - `auto` (wasm32): the leader tab's automatic rounds (interval, online, visible, writes).

pub mod config;
pub mod error;
pub mod hydrate_plan;
pub mod push_plan;

#[cfg(target_arch = "wasm32")]
pub mod auto;
#[cfg(target_arch = "wasm32")]
pub mod full_resync;
#[cfg(target_arch = "wasm32")]
pub mod hydrate;
#[cfg(target_arch = "wasm32")]
pub mod round;
#[cfg(target_arch = "wasm32")]
pub mod sealed;
#[cfg(target_arch = "wasm32")]
pub mod summary;
#[cfg(target_arch = "wasm32")]
pub mod transport;

pub use config::{AutoSync, SyncConfig};
pub use error::SyncError;
