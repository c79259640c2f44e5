//! The store in a dedicated Worker (issue 18), as an app that moves its data work off the main
//! thread meets it: IndexedDB and Web Locks are there, localStorage is not, so there is no
//! synchronous journal (`set()` is durable when its batch commits, `metadata().journal` says
//! so) and lock leases are visible to this worker only (exclusion still comes from Web Locks).
//! Runs in every engine (scripts/browser-tier.sh).
#![cfg(target_arch = "wasm32")]

use clientdata::api::ClientData;
use clientdata::core::NodeId;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn field(obj: &JsValue, name: &str) -> JsValue {
    Reflect::get(obj, &name.into()).unwrap()
}

fn open_options(name: &str) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"name".into(), &name.into()).unwrap();
    o.into()
}

#[wasm_bindgen_test]
fn runs_in_a_dedicated_worker_without_local_storage() {
    let global = js_sys::global();
    assert!(
        global.has_type::<web_sys::WorkerGlobalScope>(),
        "not a worker"
    );
    assert!(field(&global, "localStorage").is_undefined());
    assert!(field(&global, "document").is_undefined());
}

#[wasm_bindgen_test]
async fn a_worker_store_is_indexeddb_without_a_journal_and_durable_at_commit() {
    let name = format!("t-worker-{}", NodeId::random().unwrap());
    let cd = ClientData::open_async(open_options(&name)).await.unwrap();
    let m = cd.metadata().unwrap();
    assert_eq!(field(&m, "engine").as_string().unwrap(), "indexeddb");
    assert_eq!(field(&m, "fallbackReason"), JsValue::NULL);
    assert_eq!(
        field(&m, "journal"),
        JsValue::FALSE,
        "no localStorage, no journal"
    );
    let kv = cd.plugin("p".into(), JsValue::UNDEFINED).unwrap();
    kv.set("k".into(), "v".into()).unwrap();
    // Not durable until the batch commits: counted as pending.
    let pending = field(&cd.metadata().unwrap(), "pendingBytes")
        .as_f64()
        .unwrap();
    assert!(pending > 0.0, "pendingBytes {pending}");
    cd.flush_async().await.unwrap();
    assert_eq!(
        field(&cd.metadata().unwrap(), "pendingBytes").as_f64(),
        Some(0.0)
    );
    cd.close_async().await.unwrap();
    let again = ClientData::open_async(open_options(&name)).await.unwrap();
    let kv = again.plugin("p".into(), JsValue::UNDEFINED).unwrap();
    assert_eq!(
        kv.get("k".into()).unwrap().as_string().as_deref(),
        Some("v")
    );
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn locks_in_a_worker_exclude_through_web_locks() {
    let name = format!("t-worker-lock-{}", NodeId::random().unwrap());
    let cd = ClientData::open_async(open_options(&name)).await.unwrap();
    let opts = || {
        let o = Object::new();
        Reflect::set(&o, &"maxWaitMs".into(), &200.into()).unwrap();
        Some(o)
    };
    let first = cd.create_lock("p/x", opts()).unwrap();
    let second = cd.create_lock("p/x", opts()).unwrap();
    let grant = JsFuture::from(first.acquire()).await.unwrap();
    assert!(field(&grant, "nonce").as_string().is_some());
    // Held by `first`: `second` gives up at maxWaitMs.
    let refused = JsFuture::from(second.acquire()).await.unwrap_err();
    assert_eq!(
        field(&refused, "code").as_string().as_deref(),
        Some("lock_timeout")
    );
    JsFuture::from(first.release()).await.unwrap();
    JsFuture::from(second.acquire()).await.unwrap();
    JsFuture::from(second.release()).await.unwrap();
    cd.close_async().await.unwrap();
}
