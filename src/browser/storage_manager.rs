//! `navigator.storage`: ask for persistent storage where the browser allows it, and read the
//! origin's quota, for `metadata()`.

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = r#"
export async function cd_storage_info(askPersist) {
  const s = globalThis.navigator && globalThis.navigator.storage;
  let persisted = false, quota = null;
  if (!s) return { persisted, quota };
  try {
    persisted = s.persisted ? await s.persisted() : false;
    if (!persisted && askPersist && s.persist) persisted = await s.persist();
  } catch (_) {}
  try {
    if (s.estimate) { const e = await s.estimate(); if (typeof e.quota === "number") quota = e.quota; }
  } catch (_) {}
  return { persisted, quota };
}
"#)]
extern "C" {
    fn cd_storage_info(ask_persist: bool) -> Promise;
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
    let Ok(info) = JsFuture::from(cd_storage_info(ask_persist)).await else {
        return StorageInfo::default();
    };
    let get = |name: &str| Reflect::get(&info, &JsValue::from_str(name)).ok();
    StorageInfo {
        persisted: get("persisted").and_then(|v| v.as_bool()).unwrap_or(false),
        quota: get("quota").and_then(|v| v.as_f64()),
    }
}
