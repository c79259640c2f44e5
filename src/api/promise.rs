//! One way from a Rust future to a JS `Promise` for every async export.
//!
//! `pub async fn` exports and direct `future_to_promise` calls each instantiate
//! wasm-bindgen-futures' promise and task machinery for their own future type. Boxing first
//! leaves one instantiation for the whole package (bench row B).

use std::future::Future;
use std::pin::Pin;

use js_sys::Promise;
use wasm_bindgen::JsValue;

type Boxed = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// The promise of `future`: resolves with its value, rejects with its error.
pub(crate) fn promise(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    boxed(Box::pin(future))
}

#[inline(never)]
fn boxed(future: Boxed) -> Promise {
    wasm_bindgen_futures::future_to_promise(future)
}
