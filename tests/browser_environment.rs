//! Browser tier for what the browser around the store decides (issue 18): the answer to a
//! request for persistent storage (Firefox prompts; a prompt nobody answers must not hold up
//! `open()`), and the automatic fallback when IndexedDB or localStorage is unavailable. Runs in
//! every engine (scripts/browser-tier.sh). Where a test replaces a browser API (to play a
//! prompt nobody answers, or a page where `indexedDB.open` throws), it restores it before it
//! ends, pass or fail.
#![cfg(target_arch = "wasm32")]

mod support;

use clientdata::api::ClientData;
use futures::future::{select, Either};
use js_sys::{Function, Object, Reflect};
use support::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Replaces `path`'s property `prop` (e.g. `navigator.storage`, `persist`) with `value` for
/// the guard's life: an own property shadowing the prototype's, deleted on drop.
struct Replaced {
    target: Object,
    prop: &'static str,
    saved: Option<JsValue>,
}

impl Replaced {
    fn new(target: JsValue, prop: &'static str, value: JsValue) -> Self {
        let target: Object = target.unchecked_into();
        let own = Object::get_own_property_descriptor(&target, &prop.into());
        let saved = (!own.is_undefined()).then_some(own);
        let desc = Object::new();
        Reflect::set(&desc, &"value".into(), &value).unwrap();
        Reflect::set(&desc, &"configurable".into(), &true.into()).unwrap();
        Reflect::set(&desc, &"writable".into(), &true.into()).unwrap();
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

fn storage_manager() -> JsValue {
    field(&web_sys::window().unwrap().navigator().into(), "storage")
}

/// `navigator.storage.persisted()` answering false and `persist()` answering with `body`'s
/// promise (`calls` counts the requests).
fn play_persist(body: &str) -> (Replaced, Replaced, Object) {
    let calls = Object::new();
    Reflect::set(&calls, &"n".into(), &0.into()).unwrap();
    let persisted = Function::new_no_args("return Promise.resolve(false)");
    let persist = Function::new_with_args("calls", &format!("calls.n++; {body}"))
        .bind1(&JsValue::NULL, &calls);
    (
        Replaced::new(storage_manager(), "persisted", persisted.into()),
        Replaced::new(storage_manager(), "persist", persist.into()),
        calls,
    )
}

/// Opens with `persist` on `engine`, failing the test if that takes over 5 s.
async fn open_within_5s(name: &str, engine: &str, persist: bool) -> ClientData {
    let opening = Box::pin(ClientData::open(options(
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
    let (_a, _b, calls) = play_persist("return new Promise(() => {})");
    for engine in ["auto", "indexeddb", "localstorage"] {
        let cd = open_within_5s(&fresh_name("prompt"), engine, true).await;
        assert_eq!(persist_state(&cd), ("pending".into(), false), "{engine}");
        cd.close().await.unwrap();
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
        let (_a, _b, _calls) = play_persist(&format!("return {answer}"));
        let cd = open_within_5s(&fresh_name("answer"), "indexeddb", true).await;
        eventually(answer, || persist_state(&cd).0 != "pending").await;
        assert_eq!(persist_state(&cd), (want.0.into(), want.1), "{answer}");
        cd.close().await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn persistence_is_not_asked_for_when_not_wanted_needed_or_possible() {
    let (_a, _b, calls) = play_persist("return Promise.resolve(true)");
    // persist: false, and the memory engine (nothing to keep).
    for (engine, persist) in [("indexeddb", false), ("memory", true)] {
        let cd = open_within_5s(&fresh_name("no-ask"), engine, persist).await;
        assert_eq!(persist_state(&cd), ("not-asked".into(), false), "{engine}");
        cd.close().await.unwrap();
    }
    assert_eq!(field(&calls, "n").as_f64(), Some(0.0));
    drop((_a, _b));
    // Already persistent: nothing to ask.
    let _c = Replaced::new(
        storage_manager(),
        "persisted",
        Function::new_no_args("return Promise.resolve(true)").into(),
    );
    let cd = open_within_5s(&fresh_name("already"), "indexeddb", true).await;
    assert_eq!(persist_state(&cd), ("not-asked".into(), true));
    cd.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn this_browser_answers_a_real_persistence_request_without_holding_up_open() {
    // The real API, as a user's page meets it: Chromium decides at once, Firefox prompts (and
    // headless never answers), WebKit decides at once.
    let cd = open_within_5s(&fresh_name("real"), "auto", true).await;
    let (request, persisted) = persist_state(&cd);
    match request.as_str() {
        "not-asked" | "pending" | "denied" => {}
        "granted" => assert!(persisted),
        other => panic!("persistRequest {other:?}"),
    }
    cd.close().await.unwrap();
}
