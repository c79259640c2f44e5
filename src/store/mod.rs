//! Persistence. The pure parts (index, journal encoding and budget, quotas, errors) build and
//! are tested natively; the browser parts (wasm32 only) talk to IndexedDB and localStorage.
//! `schema` owns the IndexedDB layout every other module uses.
//!
//! - `open` → `db::Db` (reads, close) + `write` (set/delete/setMany/flush/batching).
//! - `engine` chooses between `indexeddb`, `local_storage` and memory.
//! - `journal` (pure) + `journal_storage`: the synchronous durability journal.
//! - `codec`: JS values and rows ↔ core records.
//! - `read_cache`: the JS maps the package entry answers `get`/`has` from without entering wasm.

pub mod error;
pub mod index;
pub mod journal;
pub mod outbox;
pub mod quota;

#[cfg(target_arch = "wasm32")]
pub mod codec;
#[cfg(target_arch = "wasm32")]
pub mod db;
#[cfg(target_arch = "wasm32")]
pub mod engine;
#[cfg(target_arch = "wasm32")]
pub mod indexeddb;
#[cfg(target_arch = "wasm32")]
pub mod journal_storage;
#[cfg(target_arch = "wasm32")]
pub mod local_storage;
#[cfg(target_arch = "wasm32")]
pub mod open;
#[cfg(target_arch = "wasm32")]
pub mod read_cache;
#[cfg(target_arch = "wasm32")]
pub mod schema;
#[cfg(target_arch = "wasm32")]
pub mod write;
