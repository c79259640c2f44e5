//! The JavaScript surface: `#[wasm_bindgen]` classes and TypeScript types. Converts, does not
//! decide. wasm32 only.

pub mod client_data;
pub mod encryption;
pub mod lock;
pub mod options;
pub mod plugin_store;
mod promise;
pub mod scan;
pub mod sync;
pub mod sync_service;
pub mod types;
pub mod verifier;

pub use client_data::ClientData;
pub use plugin_store::PluginStore;
