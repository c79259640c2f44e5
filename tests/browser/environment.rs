//! Browser tier for what the browser around the store decides (issue 18): the answer to a
//! request for persistent storage (Firefox prompts; a prompt nobody answers must not hold up
//! `open()`), and the automatic fallback when IndexedDB or localStorage is unavailable. Runs in
//! every engine (scripts/browser-tier.sh). Where a test replaces a browser API (to play a
//! prompt nobody answers, or a page where `indexedDB.open` throws), it restores it before it
//! ends, pass or fail.

use crate::support::*;
use clientdata::api::ClientData;
use futures::future::{select, Either};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

/// Replaces `path`'s property `prop` (e.g. `navigator.storage`, `persist`) with `value` for
/// the guard's life: an own property shadowing the prototype's, deleted on drop.
struct Replaced {
    target: Object,
    prop: &'static str,
    saved: Option<JsValue>,
}

impl Replaced {
    fn new(target: JsValue, prop: &'static str, value: JsValue) -> Self {
        let desc = Object::new();
        Reflect::set(&desc, &"value".into(), &value).unwrap();
        Reflect::set(&desc, &"writable".into(), &true.into()).unwrap();
        Self::with_descriptor(target, prop, desc)
    }

    /// Replaces the property by one described by `desc` (e.g. a throwing getter). Window's
    /// attributes (`indexedDB`, `localStorage`) are own properties of the global: saved and put
    /// back, not just deleted.
    fn with_descriptor(target: JsValue, prop: &'static str, desc: Object) -> Self {
        let target: Object = target.unchecked_into();
        let own = Object::get_own_property_descriptor(&target, &prop.into());
        let saved = (!own.is_undefined()).then_some(own);
        Reflect::set(&desc, &"configurable".into(), &true.into()).unwrap();
        Object::define_property(&target, &prop.into(), &desc);
        Replaced {
            target,
            prop,
            saved,
        }
    }
}

impl Drop for Replaced {
    fn drop(&mut self) {
        let _ = Reflect::delete_property(&self.target, &self.prop.into());
        if let Some(desc) = &self.saved {
            Object::define_property(&self.target, &self.prop.into(), desc.unchecked_ref());
        }
    }
}

fn navigator() -> JsValue {
    web_sys::window().unwrap().navigator().into()
}

/// A `navigator.storage` whose `persisted()` answers false and whose `persist()` answers with
/// `body`'s promise (`calls.n` counts the requests). The whole object is played, not just the
/// two methods, because WebKitGTK has no `navigator.storage` at all.
fn play_persist(body: &str) -> (Replaced, Object) {
    play_storage("return Promise.resolve(false)", body)
}

fn play_storage(persisted: &str, persist: &str) -> (Replaced, Object) {
    let calls = Object::new();
    Reflect::set(&calls, &"n".into(), &0.into()).unwrap();
    let make = Function::new_with_args(
        "calls",
        &format!(
            "return {{ persisted() {{ {persisted} }}, persist() {{ calls.n++; {persist} }}, \
             estimate() {{ return Promise.resolve({{ quota: 1e9, usage: 0 }}); }} }}"
        ),
    );
    let manager = make.call1(&JsValue::NULL, &calls).unwrap();
    (Replaced::new(navigator(), "storage", manager), calls)
}

/// Opens with `persist` on `engine`, failing the test if that takes over 5 s.
async fn open_within_5s(name: &str, engine: &str, persist: bool) -> ClientData {
    let opening = Box::pin(ClientData::open_async(options(
        name,
        engine,
        &[("persist", persist.into())],
    )));
    match select(opening, Box::pin(sleep(5_000))).await {
        Either::Left((opened, _)) => opened.unwrap_or_else(|e| panic!("open: {e:?}")),
        Either::Right(_) => panic!("open({engine}, persist: {persist}) waited over 5 s"),
    }
}

fn persist_state(cd: &ClientData) -> (String, bool) {
    let m = cd.metadata().unwrap();
    (
        field(&m, "persistRequest").as_string().unwrap(),
        field(&m, "persisted").as_bool().unwrap(),
    )
}

#[wasm_bindgen_test]
async fn open_does_not_wait_for_a_persistence_prompt_nobody_answers() {
    // Firefox answers persist() with a prompt; unanswered, its promise never settles.
    let (_storage, calls) = play_persist("return new Promise(() => {})");
    for engine in ["auto", "indexeddb", "localstorage"] {
        let cd = open_within_5s(&fresh_name("prompt"), engine, true).await;
        assert_eq!(persist_state(&cd), ("pending".into(), false), "{engine}");
        cd.close_async().await.unwrap();
    }
    assert_eq!(field(&calls, "n").as_f64(), Some(3.0));
}

#[wasm_bindgen_test]
async fn the_browsers_answer_to_the_persistence_request_reaches_metadata() {
    for (answer, want) in [
        ("Promise.resolve(true)", ("granted", true)),
        ("Promise.resolve(false)", ("denied", false)),
        ("Promise.reject(new Error('no'))", ("denied", false)),
        ("(() => { throw new Error('sync') })()", ("denied", false)),
    ] {
        let (_storage, _calls) = play_persist(&format!("return {answer}"));
        let cd = open_within_5s(&fresh_name("answer"), "indexeddb", true).await;
        eventually(answer, || persist_state(&cd).0 != "pending").await;
        assert_eq!(persist_state(&cd), (want.0.into(), want.1), "{answer}");
        cd.close_async().await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn persistence_is_not_asked_for_when_not_wanted_needed_or_possible() {
    let (_storage, calls) = play_persist("return Promise.resolve(true)");
    // persist: false, and the memory engine (nothing to keep).
    for (engine, persist) in [("indexeddb", false), ("memory", true)] {
        let cd = open_within_5s(&fresh_name("no-ask"), engine, persist).await;
        assert_eq!(persist_state(&cd), ("not-asked".into(), false), "{engine}");
        cd.close_async().await.unwrap();
    }
    assert_eq!(field(&calls, "n").as_f64(), Some(0.0));
    drop(_storage);
    // Already persistent: nothing to ask.
    let (_storage, calls) = play_storage(
        "return Promise.resolve(true)",
        "return Promise.resolve(true)",
    );
    let cd = open_within_5s(&fresh_name("already"), "indexeddb", true).await;
    assert_eq!(persist_state(&cd), ("not-asked".into(), true));
    cd.close_async().await.unwrap();
    assert_eq!(field(&calls, "n").as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
async fn without_the_storage_api_open_reports_nothing_persisted_and_no_quota() {
    // WebKitGTK's case everywhere: no `navigator.storage`.
    let _gone = Replaced::new(navigator(), "storage", JsValue::UNDEFINED);
    let cd = open_within_5s(&fresh_name("no-api"), "indexeddb", true).await;
    assert_eq!(persist_state(&cd), ("not-asked".into(), false));
    assert_eq!(field(&cd.metadata().unwrap(), "quota"), JsValue::NULL);
    cd.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn this_browser_answers_a_real_persistence_request_without_holding_up_open() {
    // The real API, as a user's page meets it: Chromium decides at once, Firefox prompts (and
    // headless never answers), WebKitGTK has no `navigator.storage`.
    let cd = open_within_5s(&fresh_name("real"), "auto", true).await;
    let (request, persisted) = persist_state(&cd);
    match request.as_str() {
        "not-asked" | "pending" | "denied" => {}
        "granted" => assert!(persisted),
        other => panic!("persistRequest {other:?}"),
    }
    cd.close_async().await.unwrap();
}

/// Listens for `clientdata:storage-fallback` on the global scope until dropped; `events` holds
/// each event's `detail`.
struct FallbackEvents {
    events: js_sys::Array,
    listener: Function,
}

impl FallbackEvents {
    fn listen() -> Self {
        let events = js_sys::Array::new();
        let listener = Function::new_with_args("events", "return (e) => events.push(e.detail)")
            .call1(&JsValue::NULL, &events)
            .unwrap()
            .unchecked_into::<Function>();
        let target: web_sys::EventTarget = js_sys::global().unchecked_into();
        target
            .add_event_listener_with_callback("clientdata:storage-fallback", &listener)
            .unwrap();
        FallbackEvents { events, listener }
    }

    /// `(name, engine, reason)` of each event.
    fn seen(&self) -> Vec<(String, String, String)> {
        self.events
            .iter()
            .map(|d| {
                let s = |k| field(&d, k).as_string().unwrap_or_default();
                (s("name"), s("engine"), s("reason"))
            })
            .collect()
    }
}

impl Drop for FallbackEvents {
    fn drop(&mut self) {
        let target: web_sys::EventTarget = js_sys::global().unchecked_into();
        let _ = target
            .remove_event_listener_with_callback("clientdata:storage-fallback", &self.listener);
    }
}

/// Opens `name` with the default engine choice; checks the engine, that `fallbackReason`
/// contains `why`, and that one fallback event said the same.
async fn check_fallback(name: &str, engine: &str, why: &str) -> ClientData {
    let events = FallbackEvents::listen();
    let cd = open_within_5s(name, "auto", false).await;
    let m = cd.metadata().unwrap();
    assert_eq!(field(&m, "engine").as_string().unwrap(), engine);
    let reason = field(&m, "fallbackReason").as_string().unwrap_or_default();
    assert!(reason.contains(why), "{reason:?} lacks {why:?}");
    assert_eq!(
        events.seen(),
        vec![(name.to_owned(), engine.to_owned(), reason)],
        "the fallback event"
    );
    cd
}

fn indexed_db() -> JsValue {
    field(&js_sys::global(), "indexedDB")
}

#[wasm_bindgen_test]
async fn indexeddb_open_throwing_falls_back_to_localstorage_and_says_so() {
    // A page where indexedDB.open throws (Firefox private windows did: InvalidStateError).
    let _throws = Replaced::new(
        indexed_db(),
        "open",
        Function::new_no_args(
            "throw new DOMException('A mutation operation was attempted', 'InvalidStateError')",
        )
        .into(),
    );
    let name = fresh_name("idb-throws");
    let cd = check_fallback(&name, "localstorage", "IndexedDB could not be opened").await;
    // The fallback is a working store.
    let kv = plugin(&cd, "p");
    kv.set("k".into(), 1.into()).unwrap();
    cd.flush_async().await.unwrap();
    cd.close_async().await.unwrap();
    drop(_throws);
    let again = ClientData::open_async(options(&name, "localstorage", &[]))
        .await
        .unwrap();
    assert_eq!(
        plugin(&again, "p").get("k".into()).unwrap().as_f64(),
        Some(1.0)
    );
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_newer_database_on_disk_falls_back_to_localstorage_with_the_version_error() {
    // No stand-in: the real VersionError a user meets after downgrading the app (the database
    // on disk is at a version this build does not know).
    let name = fresh_name("newer");
    let created = Function::new_with_args(
        "name",
        "return new Promise((ok, fail) => { const r = indexedDB.open(name, 99); \
         r.onsuccess = () => { r.result.close(); ok(); }; r.onerror = () => fail(r.error); })",
    )
    .call1(&JsValue::NULL, &name.as_str().into())
    .unwrap();
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(created))
        .await
        .unwrap();
    let cd = check_fallback(&name, "localstorage", "IndexedDB could not be opened").await;
    cd.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn neither_indexeddb_nor_localstorage_falls_back_to_memory_and_says_so() {
    // Storage blocked for the site: no indexedDB, and reading localStorage throws SecurityError.
    let _no_idb = Replaced::new(js_sys::global().into(), "indexedDB", JsValue::UNDEFINED);
    let throwing = Object::new();
    let getter = Function::new_no_args("throw new DOMException('denied', 'SecurityError')");
    Reflect::set(&throwing, &"get".into(), &getter).unwrap();
    let no_ls = Replaced::with_descriptor(js_sys::global().into(), "localStorage", throwing);
    let name = fresh_name("nothing");
    let cd = check_fallback(&name, "memory", "localStorage is not available").await;
    let reason = field(&cd.metadata().unwrap(), "fallbackReason")
        .as_string()
        .unwrap();
    assert!(reason.contains("IndexedDB is not available"), "{reason}");
    cd.close_async().await.unwrap();
    drop(no_ls);
    drop(_no_idb);
    // Both back: IndexedDB again, no event.
    let events = FallbackEvents::listen();
    let cd = open_within_5s(&fresh_name("back"), "auto", false).await;
    assert_eq!(
        field(&cd.metadata().unwrap(), "engine")
            .as_string()
            .unwrap(),
        "indexeddb"
    );
    assert!(events.seen().is_empty());
    cd.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_newer_build_upgrading_the_database_is_not_blocked_and_the_app_is_told() {
    // Another tab with a newer build opens the database at the next version while this store
    // holds it open: this connection closes on `versionchange` (so the upgrade is never
    // blocked) and `clientdata:versionchange` tells the app to reload.
    let name = fresh_name("upgrade");
    let cd = open_within_5s(&name, "indexeddb", false).await;
    let seen = js_sys::Array::new();
    let listener = Function::new_with_args("seen", "return (e) => seen.push(e.detail.name)")
        .call1(&JsValue::NULL, &seen)
        .unwrap()
        .unchecked_into::<Function>();
    let target: web_sys::EventTarget = js_sys::global().unchecked_into();
    target
        .add_event_listener_with_callback("clientdata:versionchange", &listener)
        .unwrap();
    let upgrade = Function::new_with_args(
        "name",
        "return new Promise((ok, fail) => { let blocked = false; \
         const r = indexedDB.open(name, 1000); r.onblocked = () => { blocked = true; }; \
         r.onsuccess = () => { r.result.close(); ok(blocked); }; r.onerror = () => fail(r.error); })",
    )
    .call1(&JsValue::NULL, &name.as_str().into())
    .unwrap();
    let upgraded = Box::pin(wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(
        upgrade,
    )));
    let blocked = match select(upgraded, Box::pin(sleep(5_000))).await {
        Either::Left((result, _)) => result.unwrap(),
        Either::Right(_) => panic!("the newer version's open waited over 5 s"),
    };
    assert_eq!(blocked, JsValue::FALSE, "the upgrade was blocked");
    target
        .remove_event_listener_with_callback("clientdata:versionchange", &listener)
        .unwrap();
    let names: Vec<String> = seen.iter().filter_map(|v| v.as_string()).collect();
    assert_eq!(names, vec![name.clone()]);
    // Reads still serve what this store held; close works.
    cd.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn an_upgrade_blocked_by_an_old_connection_is_announced_and_completes_when_it_closes() {
    // Another tab (here a raw connection of this page) holds version 1 open and ignores
    // `versionchange`: the upgrade, and so open(), wait for it, and `clientdata:upgrade-blocked`
    // tells the app meanwhile.
    let name = fresh_name("blocked");
    let hold_v1 = Function::new_with_args(
        "name",
        "return new Promise((ok, fail) => { const r = indexedDB.open(name, 1); \
         r.onupgradeneeded = () => { const db = r.result; \
           db.createObjectStore('records', { keyPath: ['p', 'k'] }).createIndex('by_hlc', 'h'); \
           db.createObjectStore('meta'); db.createObjectStore('vectors', { keyPath: ['kind', 'plugin'] }); \
           db.createObjectStore('slots', { keyPath: 'slot' }); db.createObjectStore('epochs'); }; \
         r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); })",
    );
    let held = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(
        hold_v1
            .call1(&JsValue::NULL, &name.as_str().into())
            .unwrap(),
    ))
    .await
    .unwrap();
    let seen = js_sys::Array::new();
    let listener = Function::new_with_args("seen", "return (e) => seen.push(e.detail)")
        .call1(&JsValue::NULL, &seen)
        .unwrap()
        .unchecked_into::<Function>();
    let target: web_sys::EventTarget = js_sys::global().unchecked_into();
    target
        .add_event_listener_with_callback("clientdata:upgrade-blocked", &listener)
        .unwrap();

    let opening = Box::pin(ClientData::open_async(options(
        &name,
        "indexeddb",
        &[("persist", false.into())],
    )));
    let opening = match select(opening, Box::pin(sleep(1_000))).await {
        Either::Left(_) => panic!("open() settled while an older connection blocked the upgrade"),
        Either::Right((_, opening)) => opening,
    };
    assert_eq!(seen.length(), 1, "one clientdata:upgrade-blocked event");
    let detail = seen.get(0);
    assert_eq!(field(&detail, "name").as_string(), Some(name.clone()));
    assert_eq!(field(&detail, "oldVersion").as_f64(), Some(1.0));
    assert_eq!(
        field(&detail, "newVersion").as_f64(),
        Some(clientdata::store::schema::VERSION as f64)
    );

    // The old connection lets go: the upgrade runs and open() completes on IndexedDB.
    Reflect::get(&held, &"close".into())
        .unwrap()
        .unchecked_into::<Function>()
        .call0(&held)
        .unwrap();
    let cd = match select(opening, Box::pin(sleep(5_000))).await {
        Either::Left((opened, _)) => opened.unwrap_or_else(|e| panic!("open: {e:?}")),
        Either::Right(_) => panic!("open() still waited 5 s after the old connection closed"),
    };
    assert_eq!(
        field(&cd.metadata().unwrap(), "engine").as_string(),
        Some("indexeddb".into())
    );
    target
        .remove_event_listener_with_callback("clientdata:upgrade-blocked", &listener)
        .unwrap();
    cd.close_async().await.unwrap();
}
