//! Conversions between JS and the core types: values (`JSON.stringify`/`JSON.parse` and
//! `Uint8Array`), records-store rows `{p, k, h, v?, b?}`, keys (rejecting lone surrogates), and
//! browser failures (sorted into typed errors by `DOMException` name).

use js_sys::{JsString, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::error::{StoreError, StoreResult};
use super::journal;
use super::quarantine::{Place, Quarantined};
use crate::browser::idb_requests::{record_row, record_row_js, record_row_text};
use crate::browser::interop::{get as field, to_json};
use crate::core::content::ContentRef;
use crate::core::{Error, Hlc, Key, PluginId, Record, Value};

/// A value converted for storage.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The value as the index keeps it.
    pub value: Value,
    /// The JS value to hand back from `get` when that is safe to share (primitives: strings,
    /// numbers, booleans, null are immutable).
    pub cache: Option<JsValue>,
    /// JSON values: the same text as the JS string `JSON.stringify` made. The journal entry and
    /// the IndexedDB row use it, so the text is not copied back out of wasm for them.
    pub text: Option<JsString>,
}

/// A local write's identity as JS strings: the caller's key and the store's plugin id, which
/// are JS strings already, and the write's stamp, made once. The journal entry, the row and the
/// read cache's key are built from them, so a write copies no other text out of wasm.
#[derive(Debug, Clone)]
pub struct JsIds {
    /// The plugin id.
    pub plugin: JsString,
    /// The key.
    pub key: JsString,
    /// The write's HLC, encoded.
    pub stamp: JsString,
}

impl Encoded {
    /// A value with nothing at hand as JS (bytes, or a value that came from elsewhere).
    pub fn plain(value: Value) -> Self {
        Encoded {
            value,
            cache: None,
            text: None,
        }
    }

    /// A write's value (`None`: a delete) as the parts the write path keeps apart.
    pub fn into_parts(encoded: Option<Self>) -> (Option<Value>, Option<JsValue>, Option<JsString>) {
        match encoded {
            Some(e) => (Some(e.value), e.cache, e.text),
            None => (None, None, None),
        }
    }
}

/// Converts a JS value: a `Uint8Array` becomes bytes, anything JSON can represent becomes JSON
/// text; everything else is an `InvalidValue` error.
pub fn value_from_js(value: &JsValue) -> StoreResult<Encoded> {
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(Encoded::plain(Value::Bytes(bytes.to_vec())));
    }
    let primitive = value.is_string()
        || value.is_null()
        || value.as_bool().is_some()
        || value.as_f64().is_some_and(f64::is_finite);
    match to_json(value) {
        // `JSON.stringify` escapes lone surrogates, so its text converts to UTF-8 exactly.
        Ok(text) => Ok(Encoded {
            value: Value::Json(String::from(&text)),
            cache: primitive.then(|| value.clone()),
            text: Some(text),
        }),
        Err(why) => Err(StoreError::InvalidValue(why)),
    }
}

/// A fresh JS value for a stored value: a new object graph from `JSON.parse`, or a new
/// `Uint8Array` copy, so mutating it never changes the store.
/// Stored JSON text that does not parse is [`StoreError::CorruptValue`] (with empty plugin and
/// key: the caller knows them, see `Db::corrupt_value`).
pub fn value_to_js(value: &Value) -> StoreResult<JsValue> {
    match value {
        Value::Json(text) => js_sys::JSON::parse(text).map_err(|_| StoreError::CorruptValue {
            plugin: String::new(),
            key: String::new(),
            reason: "stored JSON text does not parse".into(),
        }),
        Value::Bytes(bytes) => Ok(Uint8Array::from(bytes.as_slice()).into()),
        Value::Ref(_) => Err(StoreError::NotHydrated {
            plugin: String::new(),
            key: String::new(),
        }),
    }
}

/// Whether a decoded value may be cached and returned as is (not an object).
pub fn is_shareable(value: &JsValue) -> bool {
    !value.is_object()
}

/// A key from JS: a string, valid UTF-16 (a lone surrogate would be silently replaced by U+FFFD
/// and alias another key), and valid under [`Key`]'s rules.
pub fn key_from_js(key: &JsValue) -> StoreResult<Key> {
    let invalid = |reason| {
        StoreError::Core(Error::InvalidKey {
            key: key.as_string().unwrap_or_default(),
            reason,
        })
    };
    let Some(text) = key.dyn_ref::<JsString>() else {
        return Err(invalid("must be a string"));
    };
    if !text.is_valid_utf16() {
        return Err(invalid("must be valid UTF-16 (no lone surrogates)"));
    }
    Ok(Key::new(String::from(text))?)
}

/// A plugin id from JS.
pub fn plugin_from_js(id: &JsValue) -> StoreResult<PluginId> {
    match id.as_string() {
        Some(text) => Ok(PluginId::new(text)?),
        None => Err(StoreError::Core(Error::InvalidPluginId {
            id: String::new(),
            reason: "must be a string",
        })),
    }
}

/// The records-store row of a record.
pub fn record_to_row(record: &Record) -> JsValue {
    let (v, b, r) = match &record.value {
        None => (None, None, None),
        Some(Value::Json(text)) => (Some(text.clone()), None, None),
        Some(Value::Bytes(bytes)) => (None, Some(Uint8Array::from(bytes.as_slice())), None),
        Some(Value::Ref(c)) => (None, None, Some(c.encode())),
    };
    record_row(
        record.plugin.as_str(),
        record.key.as_str(),
        &record.hlc.encode(),
        v,
        b,
        r,
    )
}

/// The records-store row of a record whose JSON text is also at hand as a JS string (`text`:
/// the same text as its `Value::Json`, see [`Encoded::text`]); the row takes that string
/// instead of a copy out of wasm. Other values, or no `text`: [`record_to_row`].
pub fn record_to_row_with(record: &Record, text: Option<&JsString>) -> JsValue {
    match (&record.value, text) {
        (Some(Value::Json(_)), Some(text)) => record_row_text(
            record.plugin.as_str(),
            record.key.as_str(),
            &record.hlc.encode(),
            text,
        ),
        _ => record_to_row(record),
    }
}

/// What a local write's journal entry and row are joined from in JS: `Some(Some(text))` for a
/// JSON value with its JS text, `Some(None)` for a tombstone; `None` for anything else (bytes),
/// whose entry and row are made from the record.
pub fn joined_value(record: &Record, text: Option<&JsString>) -> Option<Option<JsString>> {
    match (&record.value, text) {
        (Some(Value::Json(_)), Some(text)) => Some(Some(text.clone())),
        (None, _) => Some(None),
        _ => None,
    }
}

/// The row of a local write that [`JsIds`] name, when [`joined_value`] says it is joined in JS.
pub fn local_row(record: &Record, ids: &JsIds, text: Option<&JsString>) -> Option<JsValue> {
    joined_value(record, text).map(|v| record_row_js(&ids.plugin, &ids.key, &ids.stamp, v))
}

thread_local! {
    /// A row's field names as JS strings, made once: opening reads them from every row (a JS
    /// string made from Rust per field and row cost more than the read itself).
    static ROW_FIELDS: [JsValue; 6] = ["p", "k", "h", "v", "b", "r"].map(JsValue::from_str);
}

/// A record from a row, validating every field; a malformed row (it may come from another
/// build, or storage edited outside this library) is a [`Quarantined`] naming its place and
/// what is wrong, never trusted.
pub fn row_to_record(row: &JsValue) -> Result<Record, Quarantined> {
    ROW_FIELDS.with(|[p, k, h, v, b, r]| {
        let get = |name: &JsValue| Reflect::get(row, name).unwrap_or(JsValue::UNDEFINED);
        let (ps, ks) = (get(p).as_string(), get(k).as_string());
        let bad = |reason: &str| Quarantined {
            place: Place::Row(format!(
                "{}/{}",
                ps.as_deref().unwrap_or("?"),
                ks.as_deref().unwrap_or("?")
            )),
            reason: reason.to_owned(),
        };
        let plugin = ps
            .as_deref()
            .and_then(|p| PluginId::new(p).ok())
            .ok_or_else(|| bad("invalid plugin id"))?;
        let key = ks
            .as_deref()
            .and_then(|k| Key::new(k).ok())
            .ok_or_else(|| bad("invalid key"))?;
        // A lone surrogate reads into Rust as U+FFFD (and would alias another key, or change
        // a value): look at the JS string again only when the copy holds one.
        let lossy = |js: &JsValue, text: &str| {
            text.contains('\u{FFFD}')
                && !js
                    .dyn_ref::<JsString>()
                    .is_some_and(JsString::is_valid_utf16)
        };
        if lossy(&get(k), key.as_str()) {
            return Err(bad(journal::LOSSY.0));
        }
        let hlc = get(h)
            .as_string()
            .and_then(|h| Hlc::parse(&h).ok())
            .ok_or_else(|| bad("invalid stamp"))?;
        let (v, b, r) = (get(v), get(b), get(r));
        let value = if let Some(text) = r.as_string() {
            // A value not hydrated yet: its reference (`core::content`).
            Some(Value::Ref(
                ContentRef::decode(&text).ok_or_else(|| bad("invalid content reference"))?,
            ))
        } else if let Some(text) = v.as_string() {
            if lossy(&v, &text) {
                return Err(bad(journal::LOSSY.0));
            }
            Some(Value::Json(text))
        } else if let Some(bytes) = b.dyn_ref::<Uint8Array>() {
            Some(Value::Bytes(bytes.to_vec()))
        } else if v.is_undefined() && b.is_undefined() && r.is_undefined() {
            None
        } else {
            return Err(bad("invalid value"));
        };
        Ok(Record {
            plugin,
            key,
            hlc,
            value,
        })
    })
}

/// Sorts a browser failure (usually a `DOMException`) into a typed error: a
/// `QuotaExceededError` becomes [`StoreError::BrowserQuota`], anything else
/// [`StoreError::Storage`] with the browser's message.
pub fn js_failure(error: &JsValue) -> StoreError {
    let text = |name: &str| field(error, name).as_string().unwrap_or_default();
    let (name, message) = (text("name"), text("message"));
    let detail = if name.is_empty() && message.is_empty() {
        error
            .as_string()
            .unwrap_or_else(|| "unknown failure".into())
    } else {
        format!("{name}: {message}")
    };
    if name == "LockLostError" {
        let newer = field(error, "newer").as_f64().unwrap_or(0.0) as u64;
        StoreError::LockLost {
            lock: String::new(),
            epoch: 0,
            newer,
        }
    } else if name == "QuotaExceededError" {
        StoreError::BrowserQuota(detail)
    } else {
        StoreError::Storage(detail)
    }
}
