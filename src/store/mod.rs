//! Persistence. wasm32 only. `schema` owns the IndexedDB layout every other module uses.

pub mod schema;
