//! The one place Rust reads and builds plain JS values: property reads that never throw,
//! object building, strict JSON text both ways, and the async-iterator shape. Everything else
//! in the crate goes through these instead of its own `Reflect` helpers, and tests for absent
//! values with wasm-bindgen's own `JsValue::is_null_or_undefined`. The JS half is `interop.js`
//! (wasm-bindgen ships it as a snippet).

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/browser/interop.js")]
extern "C" {
    /// `JSON.stringify` that refuses what JSON cannot represent: returns the text, or
    /// `{ why }` (undefined, functions, symbols, BigInt, NaN/Infinity, cycles, nested binary).
    #[wasm_bindgen(js_name = toJson)]
    fn to_json_or_why(value: &JsValue) -> JsValue;

    /// `JSON.parse` as `{ value }` or `{ failed }`.
    #[wasm_bindgen(js_name = parseJson)]
    fn parse_json_or_failure(text: &JsValue) -> JsValue;

    /// `{ epoch, nonce, lockName }`: what withLock's callback gets.
    #[wasm_bindgen(js_name = lockGrant)]
    pub fn lock_grant(epoch: f64, nonce: &str, lock_name: &JsValue) -> JsValue;

    /// An iterable's items as an array, or `null` when it is not iterable or iterating throws.
    #[wasm_bindgen(js_name = itemsOf)]
    pub fn items_of(iterable: &JsValue) -> JsValue;

    /// `Object.entries(object)`, or `null` when reading them throws (a getter, a proxy).
    #[wasm_bindgen(js_name = entriesOf)]
    pub fn entries_of(object: &JsValue) -> JsValue;

    /// An async iterator object (`next`, `return`, `[Symbol.asyncIterator]`).
    #[wasm_bindgen(js_name = asyncIterable)]
    pub fn async_iterable(next: &JsValue, ret: &JsValue) -> JsValue;
}

/// `target[name]`, or `undefined` when it cannot be read (a throwing getter, a primitive).
pub fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// Sets `target[name]`. On the plain objects this crate builds that cannot fail, so the result
/// is ignored.
pub fn set(target: &JsValue, name: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(name), value);
}

/// A plain object under construction: `Obj::new().with("a", 1.0).with("b", "x").into()`.
#[derive(Debug, Clone)]
pub struct Obj(Object);

impl Obj {
    /// `{}`.
    pub fn new() -> Obj {
        Obj(Object::new())
    }

    /// Sets `name` and returns the object.
    pub fn with(self, name: &str, value: impl Into<JsValue>) -> Obj {
        set(&self.0, name, &value.into());
        self
    }

    /// Sets `name` when `value` is `Some`.
    pub fn with_some(self, name: &str, value: Option<impl Into<JsValue>>) -> Obj {
        match value {
            Some(v) => self.with(name, v),
            None => self,
        }
    }

    /// The object, for reading back or setting more later.
    pub fn as_object(&self) -> &Object {
        &self.0
    }

    /// The object.
    pub fn into_object(self) -> Object {
        self.0
    }
}

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

impl From<Obj> for JsValue {
    fn from(o: Obj) -> JsValue {
        o.0.into()
    }
}

/// A number for JS from a count (exact below 2^53, which every count here is).
pub fn number(n: usize) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// `null` for `None`.
pub fn or_null(value: Option<JsValue>) -> JsValue {
    value.unwrap_or(JsValue::NULL)
}

/// Strict `JSON.stringify` (see `interop.js`): the text as a JS string (left in JS: callers
/// copy it into wasm only where wasm needs it), or why the value is not JSON.
pub fn to_json(value: &JsValue) -> Result<js_sys::JsString, String> {
    let text = to_json_or_why(value);
    match text.dyn_into::<js_sys::JsString>() {
        Ok(text) => Ok(text),
        Err(why) => Err(get(&why, "why")
            .as_string()
            .unwrap_or_else(|| "not JSON-serializable".into())),
    }
}

/// `JSON.parse` of a JS string, with the parser's message on failure.
pub fn parse_json(text: &JsValue) -> Result<JsValue, String> {
    let got = parse_json_or_failure(text);
    match get(&got, "failed").as_string() {
        Some(why) => Err(why),
        None => Ok(get(&got, "value")),
    }
}
