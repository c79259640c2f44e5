//! Lease locks over the Web Locks API (docs/DESIGN.md invariant 8): swamp's `DistributedLock`
//! contract (acquire / release / withLock / inspect / forceRelease) with ttl leases,
//! stale-holder stealing and fencing epochs checked inside IndexedDB transactions.
//!
//! - [`error`]: [`LockError`], the typed errors of this area (pure).
//! - [`lease`]: the lease record, its JSON and staleness (pure).
//! - [`rules`]: every rule about a lock: options, names, renewal cadence, what a waiter does
//!   next (sleep, ask, steal, give up), epoch proposals, claims and fencing decisions. Pure,
//!   tested natively with injected time.
//! - `distributed_lock` (wasm32): the lock itself over `navigator.locks`;
//!   `acquire` (wasm32): waiting, asking, stealing, granting, renewing.
//! - `env` (wasm32): what a lock needs from its context (injectable), per-tab registries (live
//!   grants with their leases, known epochs and fences, asks heard) and the lock channel.
//! - `fencing` (wasm32): epochs in the `epochs` IndexedDB store: claims at the first fenced
//!   write, steals, the check a store write makes inside its own transaction.
//!
//! How it fits together: mutual exclusion comes from the Web Lock `clientdata:<db>:lock:<key>`
//! (tab death releases it). The lease only *describes* the holder (who, since when, which
//! nonce and epoch), and is published on demand: a grant keeps what it says in memory (made
//! into a `Lease` only when read or published; every lock of the tab reads it there; renewed
//! every ttl/3 on a timer per grant) and writes it to localStorage
//! (`clientdata:<db>:lease:<key>`) only once asked over `BroadcastChannel("clientdata-locks:
//! <db>")` by a waiter or `inspect()` in another tab, then renews it there until it releases
//! (and removes it). A waiter asks when it sees no live lease; a holder silent for the ttl
//! after being asked is stale and the waiter steals the Web Lock (`steal: true`); the victim's
//! request promise rejects and it marks itself lost. Fencing makes a lost holder harmless:
//! its writes carry its epoch and fail inside their IndexedDB transaction (see `fencing` for
//! the epoch rule: claimed at the first fenced write, so never reused).
//!
//! Cost: the uncontended path (grant, run, release) touches neither localStorage nor
//! IndexedDB. Writing the lease at every grant was what separated `withLock` from a raw
//! `navigator.locks.request` (bench case L); storing the epoch at every grant cost far more.
//! `withLock` hands the grant to `fn` in the Web Lock's callback itself
//! (`DistributedLock::acquire_direct`); its wait starts only at the first tick.

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
pub use acquire::OnGrant;
#[cfg(target_arch = "wasm32")]
pub use distributed_lock::{DistributedLock, Grant, LockEnv, Release};
