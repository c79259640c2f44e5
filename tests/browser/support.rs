//! Helpers shared by the browser test files.

use clientdata::api::{ClientData, PluginStore};
use clientdata::core::NodeId;
use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A fresh database name (every test its own).
pub fn fresh_name(tag: &str) -> String {
    assert!(web_sys::window().is_some(), "must run in a browser window");
    format!("t-{tag}-{}", NodeId::random().unwrap())
}

/// `{ name, engine, ...extra }`.
pub fn options(name: &str, engine: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"name".into(), &name.into()).unwrap();
    Reflect::set(&o, &"engine".into(), &engine.into()).unwrap();
    Reflect::set(&o, &"persist".into(), &false.into()).unwrap();
    for (k, v) in extra {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

pub async fn open(name: &str, engine: &str) -> ClientData {
    ClientData::open_async(options(name, engine, &[]))
        .await
        .unwrap_or_else(|e| panic!("open {name} on {engine}: {e:?}"))
}

pub fn plugin(cd: &ClientData, id: &str) -> PluginStore {
    cd.plugin(id.into(), JsValue::UNDEFINED).unwrap()
}

/// Parses JSON text into a JS value.
pub fn js(text: &str) -> JsValue {
    js_sys::JSON::parse(text).unwrap()
}

/// `JSON.stringify`.
/// `JSON.stringify`, or `"undefined"` for what it does not serialize.
pub fn json(value: &JsValue) -> String {
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| "undefined".into())
}

/// A thrown error's `(name, code)`.
pub fn name_code(error: &JsValue) -> (String, String) {
    let get = |k: &str| {
        Reflect::get(error, &k.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    assert!(
        error.is_instance_of::<js_sys::Error>(),
        "{error:?} is not an Error"
    );
    (get("name"), get("code"))
}

pub fn field(obj: &JsValue, name: &str) -> JsValue {
    Reflect::get(obj, &name.into()).unwrap()
}

pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Waits up to 3 s for `ok()`.
pub async fn eventually(what: &str, ok: impl Fn() -> bool) {
    for _ in 0..300 {
        if ok() {
            return;
        }
        sleep(10).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn local_storage() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

/// localStorage keys starting with `prefix`.
pub fn ls_keys(prefix: &str) -> Vec<String> {
    let s = local_storage();
    (0..s.length().unwrap())
        .filter_map(|i| s.key(i).unwrap())
        .filter(|k| k.starts_with(prefix))
        .collect()
}

/// Every `name` event a store emits from the moment [`collect_events`] subscribed, in order.
pub struct Collected {
    /// The events' details so far.
    pub events: Array,
    /// `on`'s unsubscribe function.
    pub off: js_sys::Function,
    /// Kept alive while the store may call it.
    _listener: Closure<dyn FnMut(JsValue)>,
}

/// Subscribes to `cd`'s `name` events, collecting them into [`Collected::events`].
pub fn collect_events(cd: &ClientData, name: &str) -> Collected {
    let events = Array::new();
    let sink = events.clone();
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        sink.push(&e);
    });
    let off = cd
        .on(
            name.into(),
            listener
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .clone(),
        )
        .unwrap()
        .unchecked_into();
    Collected {
        events,
        off,
        _listener: listener,
    }
}

/// Runs `body` (JS, the body of an async function) against database `name` opened raw, with
/// `db` (the connection), `name`, `arg`, and `request(r)` / `complete(tx)` (promises of an
/// `IDBRequest`'s result and of a transaction's end) in scope; resolves to what it returns and
/// closes the connection. For tests that read or plant what the store itself never would.
pub async fn raw_idb(name: &str, arg: &JsValue, body: &str) -> JsValue {
    let f = js_sys::Function::new_with_args(
        "name, arg",
        &format!(
            "const request = (r) => new Promise((ok, fail) => {{ r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); }}); \
             const complete = (tx) => new Promise((ok, fail) => {{ tx.oncomplete = () => ok(); tx.onabort = () => fail(tx.error); }}); \
             return new Promise((ok, fail) => {{ const r = indexedDB.open(name); r.onerror = () => fail(r.error); \
             r.onsuccess = async () => {{ const db = r.result; try {{ ok(await (async () => {{ {body} }})()); }} \
             catch (e) {{ fail(e); }} finally {{ db.close(); }} }}; }})"
        ),
    );
    let p: Promise = f
        .call2(&JsValue::NULL, &name.into(), arg)
        .unwrap()
        .unchecked_into();
    JsFuture::from(p).await.unwrap()
}
