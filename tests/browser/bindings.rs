//! Browser tier for the core: the JS clock, node ids from the browser's CSPRNG, and the
//! IndexedDB schema, and typed errors as JS values, in a real headless browser (Chromium,
//! Firefox or WebKit: scripts/browser-tier.sh).

use clientdata::browser::clock::JsClock;
use clientdata::core::hlc::{Clock, HlcClock};
use clientdata::core::{ClockState, Hlc, NodeId};
use wasm_bindgen_test::*;

/// A misconfigured runner (Node instead of a browser) must fail, not pass silently.
#[wasm_bindgen_test]
fn runs_in_a_real_browser_window() {
    let window = web_sys::window().expect("these tests must run in a browser window");
    let agent = window.navigator().user_agent().unwrap();
    let engine = ["Chrome/", "Firefox/", "AppleWebKit/"];
    assert!(
        engine.iter().any(|e| agent.contains(e)),
        "unexpected user agent {agent}"
    );
}

#[wasm_bindgen_test]
fn hlc_ticks_from_the_js_clock_are_strictly_increasing_and_near_date_now() {
    let node = NodeId::random().unwrap();
    let mut clock = HlcClock::new(node, ClockState::default(), 60_000);
    let before = js_sys::Date::now() as u64;
    let mut last = clock.tick(JsClock.now_ms()).unwrap();
    assert!(last.wall_ms >= before && last.wall_ms <= before + 1_000);
    for _ in 0..10_000 {
        let next = clock.tick(JsClock.now_ms()).unwrap();
        assert!(next > last, "{next} after {last}");
        last = next;
    }
    assert_eq!(Hlc::parse(&last.encode()).unwrap(), last);
}

#[wasm_bindgen_test]
fn node_ids_come_from_crypto_get_random_values() {
    let ids: std::collections::BTreeSet<u64> = (0..1_000)
        .map(|_| NodeId::random().unwrap().get())
        .collect();
    assert_eq!(ids.len(), 1_000);
    assert!(!ids.contains(&0));
}

#[wasm_bindgen_test]
fn js_clock_rejects_unusable_readings() {
    use clientdata::core::hlc::reading_from_f64;
    for bad in [f64::NAN, -1.0, f64::INFINITY, 2f64.powi(48)] {
        assert_eq!(
            reading_from_f64(bad).unwrap_err().code(),
            "invalid_clock_reading",
            "{bad}"
        );
    }
    assert!(JsClock.try_now_ms().is_ok());
}

#[wasm_bindgen_test]
async fn schema_opens_with_every_store_and_reopens_without_migrating() {
    let name = format!("schema-test-{}", NodeId::random().unwrap());
    let db = clientdata::store::schema::open(&name).await.unwrap();
    let names = db.object_store_names();
    let mut stores: Vec<String> = (0..names.length()).filter_map(|i| names.get(i)).collect();
    stores.sort();
    assert_eq!(
        stores,
        ["epochs", "meta", "packs", "records", "slots", "vectors"]
    );
    assert_eq!(db.version(), f64::from(clientdata::store::schema::VERSION));
    db.close();
    let again = clientdata::store::schema::open(&name).await.unwrap();
    assert_eq!(again.object_store_names().length(), 6);
    again.close();
}

/// `src/error.rs` is the one place errors become JS values: a real `Error` with `name`, the
/// stable `code`, the message, and the extra fields of its kind, with the types JS expects.
#[wasm_bindgen_test]
fn errors_become_js_errors_with_name_code_and_their_fields() {
    use clientdata::lock::LockError;
    use clientdata::store::error::StoreError;
    use clientdata::sync::SyncError;
    use js_sys::Reflect;
    use wasm_bindgen::{JsCast, JsValue};

    let field = |v: &JsValue, name: &str| Reflect::get(v, &name.into()).unwrap();
    let http = JsValue::from(SyncError::Http {
        status: 401,
        code: "unauthorized".into(),
        message: "bad token".into(),
        retry_after_ms: None,
    });
    let error = http.dyn_ref::<js_sys::Error>().expect("a real Error");
    assert_eq!(String::from(error.name()), "SyncHttpError");
    assert!(String::from(error.message()).contains("bad token"));
    assert_eq!(
        field(&http, "code"),
        "unauthorized",
        "the server's code wins"
    );
    assert_eq!(field(&http, "status").as_f64(), Some(401.0));
    assert!(field(&http, "retryAfterMs").is_undefined());
    let busy = JsValue::from(SyncError::Http {
        status: 503,
        code: "overloaded".into(),
        message: "busy".into(),
        retry_after_ms: Some(2_000),
    });
    assert_eq!(field(&busy, "retryAfterMs").as_f64(), Some(2_000.0));

    let closed = JsValue::from(StoreError::StoreClosed);
    assert_eq!(field(&closed, "name"), "StoreClosedError");
    assert_eq!(field(&closed, "code"), "store_closed");
    assert!(field(&closed, "status").is_undefined());

    let timeout = JsValue::from(LockError::Timeout {
        path: "notes/export".into(),
        holder: "tab-7".into(),
        waited_ms: 250,
    });
    assert_eq!(field(&timeout, "code"), "lock_timeout");
    assert_eq!(field(&timeout, "holder"), "tab-7");
    assert_eq!(field(&timeout, "path"), "notes/export");
    assert_eq!(field(&timeout, "waitedMs").as_f64(), Some(250.0));
    let lost = JsValue::from(LockError::Lost {
        lock: "clientdata:db:lock:x".into(),
        epoch: 3,
        newer: Some(4),
    });
    assert_eq!(field(&lost, "name"), "LockLostError");
    assert_eq!(field(&lost, "epoch").as_f64(), Some(3.0));
}
