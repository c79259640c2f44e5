//! `localStorage` from the global scope, if this context has one and lets us use it.

use super::interop::get;
use wasm_bindgen::prelude::*;
use web_sys::Storage;

/// The global `localStorage`, or `None` (workers, opaque origins, storage disabled: reading the
/// property can throw a `SecurityError`, which `interop::get` turns into `undefined`).
pub fn local_storage() -> Option<Storage> {
    let storage = get(&js_sys::global(), "localStorage")
        .dyn_into::<Storage>()
        .ok()?;
    // A storage that refuses every write (some private modes) is as good as none.
    probe(&storage, "clientdata:probe").ok()?;
    Some(storage)
}

/// Writes and removes item `key`: whether `storage` takes writes right now.
pub fn probe(storage: &Storage, key: &str) -> Result<(), JsValue> {
    storage.set_item(key, "1")?;
    storage.remove_item(key)
}

#[wasm_bindgen]
extern "C" {
    /// A `Storage` seen through a `setItem` that takes a JS string value.
    type TextStorage;

    #[wasm_bindgen(method, catch, js_name = setItem)]
    fn set_item(
        this: &TextStorage,
        key: &js_sys::JsString,
        value: &js_sys::JsString,
    ) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = getItem)]
    fn get_item(this: &TextStorage, key: &str) -> Result<Option<js_sys::JsString>, JsValue>;

    #[wasm_bindgen(method, catch, js_name = removeItem)]
    fn remove_item(this: &TextStorage, key: &js_sys::JsString) -> Result<(), JsValue>;
}

#[wasm_bindgen(module = "/src/browser/web_storage.js")]
extern "C" {
    /// `prefix + seq`: a journal key (`store/journal.rs`, `key`) from its JS prefix.
    #[wasm_bindgen(js_name = journalKey)]
    pub fn journal_key(prefix: &js_sys::JsString, seq: f64) -> js_sys::JsString;

    /// A journal entry (`store/journal.rs`, `encode`) joined from JS strings: a JSON value's
    /// (`text`) or, without `text`, a tombstone's.
    #[wasm_bindgen(js_name = journalEntry)]
    pub fn journal_entry(
        stamp: &js_sys::JsString,
        plugin: &js_sys::JsString,
        key: &js_sys::JsString,
        text: Option<js_sys::JsString>,
    ) -> js_sys::JsString;
}

/// `storage.setItem(key, value)` with a key and value that are JS strings already (web-sys
/// takes `&str`s, which would copy them out of wasm).
pub fn set_item_text(
    storage: &Storage,
    key: &js_sys::JsString,
    value: &js_sys::JsString,
) -> Result<(), JsValue> {
    storage.unchecked_ref::<TextStorage>().set_item(key, value)
}

/// `storage.removeItem(key)` with a key that is a JS string already.
pub fn remove_item_text(storage: &Storage, key: &js_sys::JsString) -> Result<(), JsValue> {
    storage.unchecked_ref::<TextStorage>().remove_item(key)
}

/// `storage.getItem(key)` as the JS string itself (web-sys copies it into a `String`, which turns
/// a lone surrogate into U+FFFD): for a lossless look at stored text.
pub fn get_item_text(storage: &Storage, key: &str) -> Option<js_sys::JsString> {
    storage.unchecked_ref::<TextStorage>().get_item(key).ok()?
}

/// Whether `read`, item `key`'s stored text as read into a `String`, is exact: a lone surrogate
/// becomes U+FFFD in that copy, so only a copy holding one is checked against the JS string
/// (valid UTF-16 or not). Missing items count as exact.
pub fn item_is_exact(storage: &Storage, key: &str, read: &str) -> bool {
    !read.contains('\u{FFFD}')
        || get_item_text(storage, key).is_none_or(|text| text.is_valid_utf16())
}

/// Every key currently in `storage` that starts with `prefix`.
pub fn keys_with_prefix(storage: &Storage, prefix: &str) -> Vec<String> {
    let len = storage.length().unwrap_or(0);
    (0..len)
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter(|k| k.starts_with(prefix))
        .collect()
}
