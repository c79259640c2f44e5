//! Builds real JS `Error`s from typed Rust errors.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use crate::error::Coded;

/// A JS `Error` with `name`, `code` and `message` from `err`. Extra fields (a lock holder, an
/// HTTP status) are set by the caller with [`set_field`].
pub fn js_error<E: Coded + ?Sized>(err: &E) -> js_sys::Error {
    let error = js_sys::Error::new(&err.to_string());
    error.set_name(err.name());
    set_field(&error, "code", &JsValue::from_str(err.code()));
    error
}

/// Sets one own property on an error object. Setting a property on a fresh `Error` cannot
/// fail, so the result is ignored.
pub fn set_field(error: &js_sys::Error, name: &str, value: &JsValue) {
    let _ = Reflect::set(error, &JsValue::from_str(name), value);
}

/// Converts any coded error into the `JsValue` a `Result<_, JsValue>` export rejects with.
pub fn to_js<E: Coded>(err: E) -> JsValue {
    js_error(&err).into()
}
