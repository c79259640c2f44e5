//! `navigator.storage`: ask for persistent storage where the browser allows it, and read the
//! origin's quota, for `metadata()`.

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::interop::get;

#[wasm_bindgen(module = "/src/browser/storage_manager.js")]
extern "C" {
    #[wasm_bindgen(js_name = storageInfo)]
    fn storage_info_js(ask_persist: bool) -> Promise;
}

/// What the browser says about this origin's storage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StorageInfo {
    /// Whether storage is persistent (not evicted under pressure).
    pub persisted: bool,
    /// The origin's quota in bytes, if reported.
    pub quota: Option<f64>,
}

/// Reads the storage state, first requesting persistence when `ask_persist` (never fails:
/// a missing API reports not persisted and no quota).
pub async fn storage_info(ask_persist: bool) -> StorageInfo {
    let Ok(info) = JsFuture::from(storage_info_js(ask_persist)).await else {
        return StorageInfo::default();
    };
    StorageInfo {
        persisted: get(&info, "persisted").as_bool().unwrap_or(false),
        quota: get(&info, "quota").as_f64(),
    }
}
