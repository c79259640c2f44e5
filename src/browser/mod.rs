//! What the browser provides, bound for the rest of the crate. wasm32 only. Every global is
//! read through `js_sys::global()` so the crate works in windows and workers; a missing API is
//! a typed "unavailable" error, never a panic.

pub mod clock;
pub mod events;
pub mod js;
pub mod local_storage;
pub mod settle;
pub mod slots;
pub mod storage_manager;
pub mod tabs;
pub mod timer;
pub mod web_locks;
