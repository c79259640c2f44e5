//! A hand-written binding for the Web Locks API (`navigator.locks`); web-sys hides it behind
//! `--cfg=web_sys_unstable_apis`, which every consumer would then need.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// `LockManager` (window.navigator.locks or self.navigator.locks).
    #[derive(Debug, Clone)]
    pub type LockManager;

    /// `locks.request(name, options, callback)`: the callback's promise holds the lock.
    #[wasm_bindgen(method, js_name = request)]
    pub fn request_with_options(
        this: &LockManager,
        name: &str,
        options: &Object,
        callback: &Function,
    ) -> Promise;

    /// `locks.query()` → `{ held: [{name, mode, clientId}], pending: [...] }`.
    #[wasm_bindgen(method)]
    pub fn query(this: &LockManager) -> Promise;
}

/// The global scope's `navigator.locks`, or `None` (insecure context, old browser, no navigator).
/// Read through `js_sys::global()` so it works in windows and workers.
pub fn lock_manager() -> Option<LockManager> {
    let navigator = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    if navigator.is_undefined() || navigator.is_null() {
        return None;
    }
    let locks = Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    if locks.is_undefined() || locks.is_null() {
        return None;
    }
    Some(locks.unchecked_into())
}
