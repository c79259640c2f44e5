//! The page coming back `online` or becoming visible (automatic sync runs a round then), and
//! events the store dispatches on the global scope. The JS half is `page_events.js`.

use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/browser/page_events.js")]
extern "C" {
    /// Calls `callback` on `online` and on `visibilitychange` to visible; returns the function
    /// that unsubscribes. Where there are no such events it returns a no-op.
    #[wasm_bindgen(js_name = onWake)]
    pub fn on_wake(callback: &Function) -> Function;
}

#[wasm_bindgen(module = "/src/browser/page_events.js")]
extern "C" {
    /// Dispatches `CustomEvent(kind, { detail })` on the global scope (window or worker); a
    /// no-op where there is no `dispatchEvent`.
    #[wasm_bindgen(js_name = dispatchGlobal)]
    pub fn dispatch_global(kind: &str, detail: &JsValue);
}
