//! Persistence. The pure parts (index, journal encoding and budget, quotas, errors) build and
//! are tested natively; the browser parts (wasm32 only) talk to IndexedDB and localStorage.
//! `schema` owns the IndexedDB layout every other module uses.

pub mod error;
pub mod index;
pub mod journal;
pub mod quota;

#[cfg(target_arch = "wasm32")]
pub mod schema;
