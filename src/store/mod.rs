//! Persistence. The pure parts (index, journal encoding and budget, quotas, the replay decision,
//! the lifecycle, the outbox, errors) build and are tested natively; the browser parts (wasm32
//! only) talk to IndexedDB and localStorage.
//!
//! - `open` → `db::Db`, the handle: `records` (index + read cache) serve reads, `write` takes
//!   writes into the `pipeline` (journal, batches, flush), `bus` carries commits to other
//!   tabs in `outbox` order, `events` tells listeners, `lifecycle` says open/closing/closed.
//! - `replay` (pure): which journal entries opening takes over and commits again.
//! - `epoch` (pure): the store epoch and its localStorage mirror, which tell a wiped store.
//! - `engine` chooses between `engine::indexeddb`, `engine::local_storage` and memory;
//!   `schema` owns the IndexedDB layout.
//! - `journal` (pure) + `journal_storage`: the synchronous durability journal.
//! - `quarantine` (pure): stored rows, entries and values that do not decode, kept aside and
//!   reported.
//! - `remove`: records removed without a trace (collected tombstones, a full resync's deletions).
//! - `codec`: JS values and rows ↔ core records; `read_cache`: the JS maps the package entry
//!   answers `get`/`has` from without entering wasm.

pub mod epoch;
pub mod error;
pub mod index;
pub mod journal;
pub mod lifecycle;
pub mod names;
pub mod outbox;
pub mod quarantine;
pub mod quota;
pub mod replay;

#[cfg(target_arch = "wasm32")]
pub mod bus;
#[cfg(target_arch = "wasm32")]
pub mod codec;
#[cfg(target_arch = "wasm32")]
pub mod db;
#[cfg(target_arch = "wasm32")]
pub mod engine;
#[cfg(target_arch = "wasm32")]
pub mod events;
#[cfg(target_arch = "wasm32")]
pub mod journal_storage;
#[cfg(target_arch = "wasm32")]
pub mod open;
#[cfg(target_arch = "wasm32")]
pub mod pipeline;
#[cfg(target_arch = "wasm32")]
pub mod read_cache;
#[cfg(target_arch = "wasm32")]
pub mod records;
#[cfg(target_arch = "wasm32")]
pub mod remove;
#[cfg(target_arch = "wasm32")]
pub mod schema;
#[cfg(target_arch = "wasm32")]
pub mod write;
