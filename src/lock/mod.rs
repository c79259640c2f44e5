//! Lease locks over the Web Locks API (docs/DESIGN.md invariant 8): swamp's `DistributedLock`
//! contract (acquire / release / withLock / inspect / forceRelease) with ttl leases,
//! stale-holder stealing and fencing epochs checked inside IndexedDB transactions.
//!
//! - [`error`]: [`LockError`], the typed errors of this area (pure).
//! - [`lease`]: the lease record, its JSON and staleness (pure).
//! - [`rules`]: every rule about a lock: options, names, renewal cadence, what a waiter does
//!   next, epoch proposals and fencing decisions. Pure, tested natively with injected time.
//! - `distributed_lock` (wasm32): the lock itself over `navigator.locks` and localStorage;
//!   `acquire` (wasm32): waiting, stealing, granting, renewing.
//! - `env` (wasm32): what a lock needs from its context (injectable) and per-tab registries.
//! - `fencing` (wasm32): epochs in the `epochs` IndexedDB store; the check a store write makes
//!   inside its own transaction.
//!
//! How it fits together: mutual exclusion comes from the Web Lock `clientdata:<db>:lock:<key>`
//! (tab death releases it). The lease (`clientdata:<db>:lease:<key>` in localStorage, one
//! synchronous write per grant) only *describes* the holder so every tab can read it: who,
//! since when, which nonce and epoch; the holder renews it every ttl/3 (on one timer shared by
//! the whole tab). A waiter that finds the lease older than its ttl steals the Web Lock
//! (`steal: true`); the victim's request promise rejects and it marks itself lost. Fencing makes
//! a lost holder harmless: its writes carry its epoch and fail inside their IndexedDB
//! transaction once a newer epoch is stored (a steal stores it at once, see `fencing`).
//!
//! Cost, measured in headless Chromium (tests/browser_locks.rs prints it): the localStorage
//! write per grant is what separates `withLock` from a raw `navigator.locks.request`; storing
//! the epoch in IndexedDB at every grant cost far more, so only steals and fenced writes do.

pub mod error;
pub mod lease;
pub mod rules;

#[cfg(target_arch = "wasm32")]
pub mod acquire;
#[cfg(target_arch = "wasm32")]
pub mod distributed_lock;
#[cfg(target_arch = "wasm32")]
pub mod env;
#[cfg(target_arch = "wasm32")]
pub mod fencing;

pub use error::LockError;
pub use lease::Lease;
pub use rules::LockOptions;

#[cfg(target_arch = "wasm32")]
pub use distributed_lock::{DistributedLock, Grant, LockEnv, Release};
