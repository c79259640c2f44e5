//! Browser tier for the key/value store (issue 3): real IndexedDB, localStorage, Web Locks and
//! BroadcastChannel in headless Chromium. Each test uses its own database name.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::*;
use clientdata::api::{ClientData, PluginStore};
use clientdata::core::replica::{Batch, Store, VectorKind};
use clientdata::core::{Hlc, Key, NodeId, PluginId, Record, Value, Watermarks};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

const ENGINES: [&str; 3] = ["indexeddb", "localstorage", "memory"];

fn values() -> Vec<(&'static str, JsValue)> {
    let bytes = |b: &[u8]| -> JsValue { Uint8Array::from(b).into() };
    vec![
        ("null", JsValue::NULL),
        ("true", JsValue::TRUE),
        ("false", JsValue::FALSE),
        ("zero", JsValue::from(0)),
        ("negative", JsValue::from(-1.5)),
        ("huge", JsValue::from(1e300)),
        ("empty-string", JsValue::from_str("")),
        ("string", JsValue::from_str("héllo \"wörld\" \\ 🦀 \u{1}")),
        ("empty-array", js("[]")),
        ("array", js(r#"[1, "a", null, [true], {"x": 2}]"#)),
        ("object", js(r#"{"a": {"b": [1, 2.5]}, "c": "d"}"#)),
        ("proto-object", js(r#"{"__proto__": 1, "constructor": 2}"#)),
        ("bytes", bytes(&[0, 1, 127, 128, 255])),
        ("empty-bytes", bytes(&[])),
    ]
}

fn check_value(kind: &str, got: &JsValue, want: &JsValue) {
    if let Some(want) = want.dyn_ref::<Uint8Array>() {
        let got = got
            .dyn_ref::<Uint8Array>()
            .unwrap_or_else(|| panic!("{kind}: expected Uint8Array, got {got:?}"));
        assert_eq!(got.to_vec(), want.to_vec(), "{kind}");
        return;
    }
    assert!(!got.is_instance_of::<Uint8Array>(), "{kind}");
    assert_eq!(json(got), json(want), "{kind}");
    assert_eq!(got.js_typeof(), want.js_typeof(), "{kind}");
    assert_eq!(got.is_null(), want.is_null(), "{kind}");
}

fn check_proto_object(got: &JsValue) {
    // {"__proto__": 1} must come back as an own data property, not as a prototype.
    let own = Object::get_own_property_names(got.unchecked_ref::<Object>());
    let names: Vec<String> = own.iter().filter_map(|v| v.as_string()).collect();
    assert!(names.contains(&"__proto__".to_string()), "{names:?}");
    let proto = Object::get_prototype_of(got);
    assert!(
        JsValue::from(proto) == JsValue::from(Object::get_prototype_of(&Object::new())),
        "prototype was replaced"
    );
    assert_eq!(field(got, "__proto__").as_f64(), Some(1.0));
}

async fn round_trip_every_value_kind(engine: &str) {
    let name = fresh_name("values");
    let cd = open(&name, engine).await;
    let kv = plugin(&cd, "values");
    for (kind, value) in values() {
        kv.set(kind.into(), value.clone()).unwrap();
        check_value(kind, &kv.get(kind.into()).unwrap(), &value);
    }
    // `__proto__` is an ordinary key.
    kv.set("__proto__".into(), js(r#"{"x": 1}"#)).unwrap();
    assert_eq!(json(&kv.get("__proto__".into()).unwrap()), r#"{"x":1}"#);
    assert!(kv.has("__proto__".into()).unwrap());
    check_proto_object(&kv.get("proto-object".into()).unwrap());

    // Returned objects never alias stored state.
    let got = kv.get("object".into()).unwrap();
    Reflect::set(&got, &"c".into(), &"mutated".into()).unwrap();
    let bytes = kv.get("bytes".into()).unwrap();
    Uint8Array::from(bytes).set_index(0, 99);
    assert_eq!(
        json(&kv.get("object".into()).unwrap()),
        r#"{"a":{"b":[1,2.5]},"c":"d"}"#
    );
    assert_eq!(
        Uint8Array::from(kv.get("bytes".into()).unwrap()).to_vec(),
        [0, 1, 127, 128, 255]
    );
    // Mutating the object passed to set() afterwards does not change the store either.
    let input = js(r#"{"n": 1}"#);
    kv.set("input".into(), input.clone()).unwrap();
    Reflect::set(&input, &"n".into(), &2.into()).unwrap();
    assert_eq!(json(&kv.get("input".into()).unwrap()), r#"{"n":1}"#);

    assert!(kv.get("missing".into()).unwrap().is_undefined());
    kv.delete("string".into()).unwrap();
    assert!(kv.get("string".into()).unwrap().is_undefined());
    assert!(!kv.has("string".into()).unwrap());

    if engine == "memory" {
        cd.close_async().await.unwrap();
        return;
    }
    cd.close_async().await.unwrap();
    let again = open(&name, engine).await;
    let kv = plugin(&again, "values");
    for (kind, value) in values() {
        if kind == "string" {
            assert!(
                kv.get(kind.into()).unwrap().is_undefined(),
                "delete persisted"
            );
            continue;
        }
        check_value(kind, &kv.get(kind.into()).unwrap(), &value);
    }
    check_proto_object(&kv.get("proto-object".into()).unwrap());
    assert_eq!(json(&kv.get("__proto__".into()).unwrap()), r#"{"x":1}"#);
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn round_trip_every_value_kind_indexeddb() {
    round_trip_every_value_kind("indexeddb").await
}
#[wasm_bindgen_test]
async fn round_trip_every_value_kind_localstorage() {
    round_trip_every_value_kind("localstorage").await
}
#[wasm_bindgen_test]
async fn round_trip_every_value_kind_memory() {
    round_trip_every_value_kind("memory").await
}

#[wasm_bindgen_test]
async fn ten_thousand_fuzzed_pairs_never_read_across_namespaces() {
    let name = fresh_name("fuzz");
    let cd = open(&name, "indexeddb").await;
    let mut rng = fastrand::Rng::with_seed(3);
    // Plugin ids and keys chosen to collide if identity were a concatenated string.
    let plugin_ids = ["a", "a.b", "a-b", "ab", "a_b", "b", "0", "a.b.c", "x", "xy"];
    let key_parts = [
        "",
        "a",
        "b",
        ".",
        "/",
        ":",
        "a.b",
        "__proto__",
        "é",
        "🦀",
        " ",
    ];
    let stores: Vec<PluginStore> = plugin_ids.iter().map(|p| plugin(&cd, p)).collect();
    let mut model: BTreeMap<(usize, String), String> = BTreeMap::new();
    for i in 0..10_000 {
        let p = rng.usize(0..plugin_ids.len());
        let mut key = String::new();
        for _ in 0..rng.usize(1..4) {
            key.push_str(key_parts[rng.usize(0..key_parts.len())]);
        }
        if key.is_empty() {
            key.push('k');
        }
        let value = format!("{}|{}|{}", plugin_ids[p], key, i);
        stores[p]
            .set(key.as_str().into(), value.as_str().into())
            .unwrap();
        model.insert((p, key), value);
    }
    let check = |stores: &[PluginStore]| {
        let mut cross = 0;
        let all_keys: BTreeSet<&String> = model.keys().map(|(_, k)| k).collect();
        for (p, store) in stores.iter().enumerate() {
            for key in &all_keys {
                let got = store.get(key.as_str().into()).unwrap();
                match model.get(&(p, (*key).clone())) {
                    Some(want) => assert_eq!(got.as_string().as_ref(), Some(want)),
                    None if got.is_undefined() => {}
                    None => cross += 1,
                }
            }
            let want: Vec<&String> = model
                .keys()
                .filter(|(q, _)| *q == p)
                .map(|(_, k)| k)
                .collect();
            let got: Vec<String> = store
                .keys(js(r#"{"limit": 100000}"#))
                .unwrap()
                .iter()
                .map(|k| k.as_string().unwrap())
                .collect();
            assert_eq!(got.len(), want.len(), "plugin {}", plugin_ids[p]);
            assert!(got.iter().zip(want).all(|(a, b)| a == b));
        }
        assert_eq!(cross, 0, "cross-namespace reads");
    };
    check(&stores);
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let stores: Vec<PluginStore> = plugin_ids.iter().map(|p| plugin(&again, p)).collect();
    check(&stores);
    again.close_async().await.unwrap();
}

async fn crash_recovery_replays_the_journal(engine: &str) {
    let name = fresh_name("crash");
    let a = open(&name, engine).await;
    let kv = plugin(&a, "notes");
    kv.set("flushed".into(), "old".into()).unwrap();
    kv.set("doomed".into(), 1.into()).unwrap();
    kv.flush().await.unwrap();
    let slot = field(&a.metadata().unwrap(), "slot");
    let node = field(&a.metadata().unwrap(), "nodeId");
    // Synchronous writes, then the tab dies before the batch commits.
    for i in 0..50 {
        kv.set(format!("k{i}").into(), i.into()).unwrap();
    }
    kv.set("flushed".into(), "new".into()).unwrap();
    kv.delete("doomed".into()).unwrap();
    kv.set("bytes".into(), Uint8Array::from(&[9u8, 8, 7][..]).into())
        .unwrap();
    let last_hlc = a.db().with_index(|ix| {
        ix.entry(&PluginId::new("notes").unwrap(), "bytes")
            .unwrap()
            .hlc
    });
    a.simulate_crash();
    let journal = ls_keys(&format!("clientdata:{name}:journal:"));
    assert_eq!(journal.len(), 53, "every unflushed write is journaled");

    // The storage itself does not have them: only the journal can bring them back.
    {
        let probe = open(&format!("{name}-probe"), engine).await;
        probe.close().await.unwrap();
    }
    let b = open(&name, engine).await;
    let meta = b.metadata().unwrap();
    assert_eq!(field(&meta, "slot"), slot, "the freed slot is reused");
    assert_eq!(field(&meta, "nodeId"), node, "the slot keeps its node id");
    let kv = plugin(&b, "notes");
    for i in 0..50 {
        assert_eq!(
            kv.get(format!("k{i}").into()).unwrap().as_f64(),
            Some(i as f64)
        );
    }
    assert_eq!(
        kv.get("flushed".into()).unwrap().as_string().unwrap(),
        "new"
    );
    assert!(kv.get("doomed".into()).unwrap().is_undefined());
    assert_eq!(
        Uint8Array::from(kv.get("bytes".into()).unwrap()).to_vec(),
        [9, 8, 7]
    );
    // The restarted slot stays monotonic past what the dead tab stamped.
    kv.set("bytes".into(), 1.into()).unwrap();
    let next = b.db().with_index(|ix| {
        ix.entry(&PluginId::new("notes").unwrap(), "bytes")
            .unwrap()
            .hlc
    });
    assert!(next > last_hlc, "{next} must follow {last_hlc}");
    b.flush().await.unwrap();
    assert!(
        ls_keys(&format!("clientdata:{name}:journal:")).is_empty(),
        "replayed entries are removed once committed"
    );
    b.close().await.unwrap();

    // Now from storage alone.
    let c = open(&name, engine).await;
    let kv = plugin(&c, "notes");
    assert_eq!(kv.keys(JsValue::UNDEFINED).unwrap().length(), 52);
    assert_eq!(kv.get("k49".into()).unwrap().as_f64(), Some(49.0));
    assert!(kv.get("doomed".into()).unwrap().is_undefined());
    c.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn crash_recovery_replays_the_journal_indexeddb() {
    crash_recovery_replays_the_journal("indexeddb").await
}
#[wasm_bindgen_test]
async fn crash_recovery_replays_the_journal_localstorage() {
    crash_recovery_replays_the_journal("localstorage").await
}

#[wasm_bindgen_test]
async fn without_the_journal_a_crash_would_lose_the_writes() {
    // The control for the test above: the same crash, with the journal removed by hand,
    // loses the writes. So the recovery really comes from the journal.
    let name = fresh_name("control");
    let a = open(&name, "indexeddb").await;
    let kv = plugin(&a, "notes");
    kv.set("k".into(), 1.into()).unwrap();
    a.simulate_crash();
    for key in ls_keys(&format!("clientdata:{name}:journal:")) {
        local_storage().remove_item(&key).unwrap();
    }
    let b = open(&name, "indexeddb").await;
    assert!(plugin(&b, "notes").get("k".into()).unwrap().is_undefined());
    b.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn two_instances_see_each_others_writes_and_hold_different_slots() {
    let name = fresh_name("tabs");
    let a = open(&name, "indexeddb").await;
    let b = open(&name, "indexeddb").await;
    let (ma, mb) = (a.metadata().unwrap(), b.metadata().unwrap());
    assert_eq!(field(&ma, "slot").as_f64(), Some(0.0));
    assert_eq!(field(&mb, "slot").as_f64(), Some(1.0));
    assert_ne!(field(&ma, "nodeId"), field(&mb, "nodeId"));

    let collected = collect_events(&b, "local-change-recorded");
    let (events, off) = (&collected.events, &collected.off);

    let (ka, kb) = (plugin(&a, "shared"), plugin(&b, "shared"));
    ka.set("k".into(), js(r#"{"from": "a"}"#)).unwrap();
    eventually("b sees a's write", || {
        kb.get("k".into()).map(|v| json(&v)).ok() == Some(r#"{"from":"a"}"#.into())
    })
    .await;
    let e = events.get(0);
    assert_eq!(field(&e, "plugin").as_string().unwrap(), "shared");
    assert_eq!(json(&field(&e, "keys")), r#"["k"]"#);
    assert_eq!(field(&e, "fromThisInstance"), JsValue::FALSE);

    kb.set("k".into(), 2.into()).unwrap();
    eventually("a sees b's write", || {
        ka.get("k".into()).unwrap().as_f64() == Some(2.0)
    })
    .await;
    ka.delete("k".into()).unwrap();
    eventually("b sees a's delete", || {
        kb.get("k".into()).unwrap().is_undefined()
    })
    .await;
    // b's own write is reported as its own.
    let own = events.length();
    kb.set("mine".into(), 1.into()).unwrap();
    b.flush().await.unwrap();
    let e = events.get(events.length() - 1);
    assert!(events.length() > own);
    assert_eq!(field(&e, "fromThisInstance"), JsValue::TRUE);
    off.call0(&JsValue::UNDEFINED).unwrap();
    let count = events.length();
    ka.set("after-off".into(), 1.into()).unwrap();
    eventually("b sees the write", || kb.has("after-off".into()).unwrap()).await;
    assert_eq!(events.length(), count, "unsubscribed listener was called");

    // Concurrent writes to one key converge to the same winner in both instances.
    for i in 0..20 {
        ka.set("race".into(), format!("a{i}").into()).unwrap();
        kb.set("race".into(), format!("b{i}").into()).unwrap();
    }
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    eventually("convergence", || {
        ka.get("race".into()).unwrap().as_string() == kb.get("race".into()).unwrap().as_string()
    })
    .await;

    a.close().await.unwrap();
    let c = open(&name, "indexeddb").await;
    assert_eq!(
        field(&c.metadata().unwrap(), "slot").as_f64(),
        Some(0.0),
        "slot 0 reused"
    );
    assert_eq!(
        plugin(&c, "shared").get("race".into()).unwrap().as_string(),
        kb.get("race".into()).unwrap().as_string(),
        "storage holds the winner"
    );
    b.close().await.unwrap();
    c.close().await.unwrap();
}

async fn flush_then_reopen_and_scan(engine: &str) {
    let name = fresh_name("reopen");
    let cd = open(&name, engine).await;
    let kv = plugin(&cd, "docs");
    for i in 0..250 {
        kv.set(format!("p/{i:03}").into(), js(&format!(r#"{{"i": {i}}}"#)))
            .unwrap();
    }
    kv.set("q".into(), 1.into()).unwrap();
    kv.set("o".into(), 1.into()).unwrap();
    kv.delete("p/007".into()).unwrap();
    plugin(&cd, "other")
        .set("p/001".into(), "x".into())
        .unwrap();
    // scan flushes first, so unflushed writes are visible.
    let seen = collect_scan(&kv, r#"{"prefix": "p/", "pageSize": 7}"#).await;
    assert_eq!(seen.len(), 249);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    assert!(!seen.iter().any(|(k, _)| k == "p/007"), "tombstone skipped");
    assert!(seen
        .iter()
        .all(|(k, v)| v == &format!(r#"{{"i":{}}}"#, k[2..].parse::<u32>().unwrap())));
    kv.flush().await.unwrap();
    cd.close_async().await.unwrap();
    if engine == "memory" {
        return;
    }
    let again = open(&name, engine).await;
    let kv = plugin(&again, "docs");
    assert_eq!(
        kv.keys(js(r#"{"prefix": "p/", "limit": 1000}"#))
            .unwrap()
            .length(),
        249
    );
    assert_eq!(json(&kv.get("p/123".into()).unwrap()), r#"{"i":123}"#);
    assert_eq!(kv.keys(js(r#"{"limit": 2}"#)).unwrap().length(), 2);
    let all = collect_scan(&kv, r#"{"pageSize": 1000}"#).await;
    assert_eq!(all.len(), 251);
    again.close_async().await.unwrap();
}

async fn collect_scan(kv: &PluginStore, options: &str) -> Vec<(String, String)> {
    let iterator = kv.scan(js(options)).unwrap();
    let next: js_sys::Function = field(&iterator, "next").unchecked_into();
    let mut out = Vec::new();
    loop {
        let step = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(
            next.call0(&iterator).unwrap(),
        ))
        .await
        .unwrap();
        if field(&step, "done") == JsValue::TRUE {
            return out;
        }
        let pair: Array = field(&step, "value").unchecked_into();
        out.push((pair.get(0).as_string().unwrap(), json(&pair.get(1))));
    }
}

#[wasm_bindgen_test]
async fn flush_then_reopen_and_scan_indexeddb() {
    flush_then_reopen_and_scan("indexeddb").await
}
#[wasm_bindgen_test]
async fn flush_then_reopen_and_scan_localstorage() {
    flush_then_reopen_and_scan("localstorage").await
}
#[wasm_bindgen_test]
async fn flush_then_reopen_and_scan_memory() {
    flush_then_reopen_and_scan("memory").await
}

fn expect_error(what: &str, result: Result<impl std::fmt::Debug, JsValue>, name: &str, code: &str) {
    match result {
        Ok(v) => panic!("{what}: expected {name}, got Ok({v:?})"),
        Err(e) => assert_eq!(
            name_code(&e),
            (name.to_string(), code.to_string()),
            "{what}"
        ),
    }
}

fn snapshot(cd: &ClientData, kv: &PluginStore) -> (String, String, f64) {
    let keys = json(&kv.keys(JsValue::UNDEFINED).unwrap());
    let values: Vec<String> = kv
        .keys(JsValue::UNDEFINED)
        .unwrap()
        .iter()
        .map(|k| json(&kv.get(k).unwrap()))
        .collect();
    let journal = field(&cd.metadata().unwrap(), "journalBytes")
        .as_f64()
        .unwrap();
    (keys, values.join(","), journal)
}

async fn bad_inputs_give_typed_errors(engine: &str) {
    let name = fresh_name("errors");
    let cd = open(&name, engine).await;
    let kv = plugin(&cd, "p");
    kv.set("k".into(), js(r#"{"v": 1}"#)).unwrap();
    let before = snapshot(&cd, &kv);

    expect_error(
        "plugin id",
        cd.plugin("Bad".into(), JsValue::UNDEFINED),
        "InvalidPluginIdError",
        "invalid_plugin_id",
    );
    expect_error(
        "plugin id type",
        cd.plugin(5.into(), JsValue::UNDEFINED),
        "InvalidPluginIdError",
        "invalid_plugin_id",
    );
    let lone = js_sys::JsString::from_char_code1(0xD800);
    let bad_keys: Vec<(&str, JsValue)> = vec![
        ("empty key", "".into()),
        ("NUL key", "a\0b".into()),
        ("long key", "x".repeat(1025).into()),
        ("lone surrogate", lone.clone().into()),
        ("number key", 5.into()),
    ];
    for (what, key) in &bad_keys {
        expect_error(
            what,
            kv.set(key.clone(), 1.into()),
            "InvalidKeyError",
            "invalid_key",
        );
        expect_error(what, kv.get(key.clone()), "InvalidKeyError", "invalid_key");
        expect_error(
            what,
            kv.delete(key.clone()),
            "InvalidKeyError",
            "invalid_key",
        );
    }
    let cycle = Object::new();
    Reflect::set(&cycle, &"self".into(), &cycle).unwrap();
    let f = js_sys::Function::new_no_args("return 1");
    let bad_values: Vec<(&str, JsValue)> = vec![
        ("undefined", JsValue::UNDEFINED),
        ("function", f.clone().into()),
        ("NaN", f64::NAN.into()),
        ("Infinity", f64::INFINITY.into()),
        ("-Infinity", f64::NEG_INFINITY.into()),
        ("BigInt", js_sys::BigInt::from(5u32).into()),
        ("symbol", js_sys::Symbol::for_("s").into()),
        ("cycle", cycle.into()),
        ("nested undefined", {
            let o = Object::new();
            Reflect::set(&o, &"a".into(), &JsValue::UNDEFINED).unwrap();
            o.into()
        }),
        ("nested function", {
            let a = Array::new();
            a.push(&f);
            a.into()
        }),
        ("nested NaN", {
            let o = Object::new();
            Reflect::set(&o, &"a".into(), &f64::NAN.into()).unwrap();
            o.into()
        }),
        ("nested bytes", {
            let o = Object::new();
            Reflect::set(&o, &"a".into(), &Uint8Array::new_with_length(2)).unwrap();
            o.into()
        }),
    ];
    for (what, value) in bad_values {
        expect_error(
            what,
            kv.set("k".into(), value.clone()),
            "InvalidValueError",
            "invalid_value",
        );
        expect_error(
            what,
            kv.set("new".into(), value),
            "InvalidValueError",
            "invalid_value",
        );
    }
    let big = Uint8Array::new_with_length(64 * 1024 + 1);
    expect_error(
        "64 KiB + 1",
        kv.set("k".into(), big.into()),
        "ValueTooLargeError",
        "value_too_large",
    );
    let big_json: JsValue = "x".repeat(64 * 1024).into(); // 64 KiB + 2 quotes
    expect_error(
        "big JSON",
        kv.set("k".into(), big_json),
        "ValueTooLargeError",
        "value_too_large",
    );
    kv.set("edge".into(), Uint8Array::new_with_length(64 * 1024).into())
        .expect("exactly 64 KiB is accepted");
    kv.delete("edge".into()).unwrap();
    kv.flush().await.unwrap();
    expect_error(
        "keys limit",
        kv.keys(js(r#"{"limit": -1}"#)),
        "InvalidOptionsError",
        "invalid_options",
    );
    expect_error(
        "keys prefix",
        kv.keys(js(r#"{"prefix": 1}"#)),
        "InvalidOptionsError",
        "invalid_options",
    );
    expect_error(
        "scan size",
        kv.scan(js(r#"{"pageSize": 0}"#)),
        "InvalidOptionsError",
        "invalid_options",
    );
    expect_error(
        "event type",
        cd.on("nope".into(), f.clone()),
        "InvalidOptionsError",
        "invalid_options",
    );

    // Per-plugin quota, checked before the browser's.
    let small = cd
        .plugin("small".into(), js(r#"{"quotaBytes": 20}"#))
        .unwrap();
    small.set("a".into(), "12345".into()).unwrap(); // 1 + 7 bytes
    expect_error(
        "quota",
        small.set("b".into(), "x".repeat(20).into()),
        "QuotaExceededError",
        "quota_exceeded",
    );
    small.set("a".into(), "1234567890123".into()).unwrap(); // replace: 1 + 15 = 16
    expect_error(
        "quota replace",
        small.set("a".into(), "12345678901234567890".into()),
        "QuotaExceededError",
        "quota_exceeded",
    );
    assert_eq!(
        small.get("a".into()).unwrap().as_string().unwrap(),
        "1234567890123"
    );
    assert!(!small.has("b".into()).unwrap());
    small.delete("a".into()).unwrap();
    small
        .set("b".into(), "x".repeat(15).into())
        .expect("delete frees quota");
    expect_error(
        "quota setMany",
        wasm_bindgen_futures::JsFuture::from(wasm_bindgen_futures::future_to_promise({
            let small = small.clone();
            async move {
                small
                    .set_many(
                        js(r#"[["c", "1"], ["d", "22222222222222222222"]]"#),
                        JsValue::UNDEFINED,
                    )
                    .await
                    .map(|_| JsValue::UNDEFINED)
            }
        }))
        .await,
        "QuotaExceededError",
        "quota_exceeded",
    );
    assert!(!small.has("c".into()).unwrap(), "setMany is all-or-nothing");

    let after = snapshot(&cd, &kv);
    assert_eq!(before.0, after.0, "keys unchanged");
    assert_eq!(before.1, after.1, "values unchanged");
    cd.flush_async().await.unwrap();

    cd.close_async().await.unwrap();
    expect_error(
        "get after close",
        kv.get("k".into()),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "set after close",
        kv.set("k".into(), 1.into()),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "delete after close",
        kv.delete("k".into()),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "has after close",
        kv.has("k".into()),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "keys after close",
        kv.keys(JsValue::UNDEFINED),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "scan after close",
        kv.scan(JsValue::UNDEFINED),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "plugin after close",
        cd.plugin("p".into(), JsValue::UNDEFINED),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "metadata after close",
        cd.metadata(),
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "flush after close",
        kv.flush().await,
        "StoreClosedError",
        "store_closed",
    );
    expect_error(
        "setAsync after close",
        kv.set_async("k".into(), 1.into(), JsValue::UNDEFINED).await,
        "StoreClosedError",
        "store_closed",
    );
    cd.close_async().await.expect("close is idempotent");

    if engine != "memory" {
        let again = open(&name, engine).await;
        let kv = plugin(&again, "p");
        assert_eq!(
            json(&kv.get("k".into()).unwrap()),
            r#"{"v":1}"#,
            "storage unchanged"
        );
        assert!(!kv.has("new".into()).unwrap());
        again.close_async().await.unwrap();
    }
    expect_error(
        "bad open options",
        ClientData::open_async(js(r#"{"name": ""}"#))
            .await
            .map(|_| ()),
        "InvalidOptionsError",
        "invalid_options",
    );
    expect_error(
        "bad engine",
        ClientData::open_async(options(&name, "floppy", &[]))
            .await
            .map(|_| ()),
        "InvalidOptionsError",
        "invalid_options",
    );
}

#[wasm_bindgen_test]
async fn bad_inputs_give_typed_errors_indexeddb() {
    bad_inputs_give_typed_errors("indexeddb").await
}
#[wasm_bindgen_test]
async fn bad_inputs_give_typed_errors_localstorage() {
    bad_inputs_give_typed_errors("localstorage").await
}
#[wasm_bindgen_test]
async fn bad_inputs_give_typed_errors_memory() {
    bad_inputs_give_typed_errors("memory").await
}

/// Fills localStorage until it refuses, and empties it again when dropped.
struct Filler(Vec<String>);

impl Filler {
    fn fill(tag: &str) -> Filler {
        let storage = local_storage();
        let mut keys = Vec::new();
        let mut chunk = 1 << 20;
        while chunk >= 256 {
            let key = format!("filler:{tag}:{}", keys.len());
            if storage.set_item(&key, &"f".repeat(chunk)).is_ok() {
                keys.push(key);
            } else {
                chunk /= 2;
            }
        }
        Filler(keys)
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        for key in &self.0 {
            let _ = local_storage().remove_item(key);
        }
    }
}

async fn browser_quota_is_typed_and_changes_nothing(engine: &str) {
    let name = fresh_name("full");
    let budget = [("journalBudgetBytes", JsValue::from(100_000_000))];
    let cd = ClientData::open_async(options(&name, engine, &budget))
        .await
        .unwrap();
    let kv = plugin(&cd, "p");
    kv.set("k".into(), "before".into()).unwrap();
    kv.flush().await.unwrap();
    let before = snapshot(&cd, &kv);
    let filler = Filler::fill(&name);
    assert!(!filler.0.is_empty());
    let result = kv.set("k".into(), "x".repeat(20_000).into());
    let result2 = kv.set("other".into(), "x".repeat(20_000).into());
    drop(filler);
    expect_error(
        "journal full",
        result,
        "QuotaExceededError",
        "quota_exceeded",
    );
    expect_error(
        "journal full",
        result2,
        "QuotaExceededError",
        "quota_exceeded",
    );
    assert_eq!(snapshot(&cd, &kv), before, "index and journal unchanged");
    assert_eq!(kv.get("k".into()).unwrap().as_string().unwrap(), "before");
    kv.set("k".into(), "after".into())
        .expect("works again once space is free");
    cd.close_async().await.unwrap();
    let again = open(&name, engine).await;
    assert_eq!(
        plugin(&again, "p")
            .get("k".into())
            .unwrap()
            .as_string()
            .unwrap(),
        "after"
    );
    assert!(!plugin(&again, "p").has("other".into()).unwrap());
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn browser_quota_is_typed_and_changes_nothing_indexeddb() {
    browser_quota_is_typed_and_changes_nothing("indexeddb").await
}
#[wasm_bindgen_test]
async fn browser_quota_is_typed_and_changes_nothing_localstorage() {
    browser_quota_is_typed_and_changes_nothing("localstorage").await
}

#[wasm_bindgen_test]
async fn close_takes_effect_at_the_call_not_at_its_promise() {
    // From JS, close()'s promise starts its work a microtask later; "every later call fails"
    // must still hold for a call in the same task, and the write made before close() is kept.
    let name = fresh_name("closecall");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set("before".into(), 1.into()).unwrap();
    let closing = cd.close();
    expect_error(
        "set in the task that called close()",
        kv.set("after".into(), 2.into()),
        "StoreClosedError",
        "store_closed",
    );
    closing.await.unwrap();
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    assert_eq!(kv.get("before".into()).unwrap().as_f64(), Some(1.0));
    assert!(!kv.has("after".into()).unwrap());
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn set_async_and_set_many_take_their_values_at_the_call() {
    // As IndexedDB's put() clones its value at the call: an object changed after setAsync() or
    // setMany() returned, before its promise settles, is stored as it was at the call.
    let name = fresh_name("asynccall");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    let value = js(r#"{"n": 1}"#);
    let entries = js(r#"[["b", {"n": 1}]]"#);
    let one = kv.set_async("a".into(), value.clone(), JsValue::UNDEFINED);
    let many = kv.set_many(entries.clone(), JsValue::UNDEFINED);
    Reflect::set(&value, &"n".into(), &2.into()).unwrap();
    let pair = Array::from(&Array::from(&entries).get(0));
    Reflect::set(&pair.get(1), &"n".into(), &2.into()).unwrap();
    pair.set(0, "c".into());
    assert!(
        !kv.has("a".into()).unwrap(),
        "visible once durable, not before"
    );
    one.await.unwrap();
    many.await.unwrap();
    assert_eq!(json(&kv.get("a".into()).unwrap()), r#"{"n":1}"#);
    assert_eq!(json(&kv.get("b".into()).unwrap()), r#"{"n":1}"#);
    assert!(!kv.has("c".into()).unwrap());
    cd.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn set_many_takes_any_iterable_and_refuses_everything_else_with_a_typed_error() {
    // Not iterable, an iterator that throws, an entry that is not a pair: a rejected promise
    // with InvalidOptionsError (never a TypeError thrown through wasm), and nothing written.
    let name = fresh_name("setmanyin");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    let make = |body: &str| {
        js_sys::Function::new_no_args(body)
            .call0(&JsValue::NULL)
            .unwrap()
    };
    let bad = [
        ("undefined", JsValue::UNDEFINED),
        ("null", JsValue::NULL),
        ("a number", 123.into()),
        ("a plain object", js(r#"{"a": 1}"#)),
        (
            "a throwing iterator",
            make("return { [Symbol.iterator]() { throw new Error('boom'); } }"),
        ),
        (
            "an iterator whose next() throws",
            make("return { [Symbol.iterator]() { return { next() { throw new Error('boom'); } }; } }"),
        ),
        ("a string", "ab".into()),
        (
            "a proxy whose Symbol.iterator getter throws",
            make("return new Proxy({}, { get() { throw new Error('boom'); } })"),
        ),
    ];
    for (what, entries) in bad {
        let rejected = kv.set_many(entries, JsValue::UNDEFINED);
        expect_error(
            what,
            rejected.await,
            "InvalidOptionsError",
            "invalid_options",
        );
    }
    assert_eq!(
        kv.keys(JsValue::UNDEFINED).unwrap().length(),
        0,
        "nothing written"
    );
    // Any iterable of pairs: a Map, a generator.
    kv.set_many(make("return new Map([['m', 1]])"), JsValue::UNDEFINED)
        .await
        .unwrap();
    kv.set_many(
        make("return (function* () { yield ['g', 2]; })()"),
        JsValue::UNDEFINED,
    )
    .await
    .unwrap();
    assert_eq!(kv.get("m".into()).unwrap().as_f64(), Some(1.0));
    assert_eq!(kv.get("g".into()).unwrap().as_f64(), Some(2.0));
    cd.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_set_after_set_async_in_the_same_task_is_the_later_write() {
    // Program order is write order: set() called after setAsync() (or setMany()) for the same
    // key must win, in memory and after a reopen, though the async write commits later.
    let name = fresh_name("asyncorder");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    let one = kv.set_async("a".into(), 1.into(), JsValue::UNDEFINED);
    let many = kv.set_many(js(r#"[["b", 1]]"#), JsValue::UNDEFINED);
    kv.set("a".into(), 2.into()).unwrap();
    kv.set("b".into(), 2.into()).unwrap();
    one.await.unwrap();
    many.await.unwrap();
    assert_eq!(kv.get("a".into()).unwrap().as_f64(), Some(2.0));
    assert_eq!(kv.get("b".into()).unwrap().as_f64(), Some(2.0));
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    assert_eq!(kv.get("a".into()).unwrap().as_f64(), Some(2.0));
    assert_eq!(kv.get("b".into()).unwrap().as_f64(), Some(2.0));
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn localstorage_engine_commit_hitting_the_browser_quota_reports_write_failed() {
    // The journal fits, the engine's own copy does not: the write stays journaled (durable),
    // flush() rejects with the typed error, write-failed fires, and a later flush succeeds.
    let name = fresh_name("commitfull");
    let cd = ClientData::open_async(options(&name, "localstorage", &[]))
        .await
        .unwrap();
    let kv = plugin(&cd, "p");
    let collected = collect_events(&cd, "write-failed");
    let failures = &collected.events;
    let filler = Filler::fill(&name);
    // Free just enough for the journal entry, not for the record copy too.
    let storage = local_storage();
    let freed = filler.0.last().unwrap().clone();
    let size = storage.get_item(&freed).unwrap().unwrap().len();
    storage.remove_item(&freed).unwrap();
    let value = "v".repeat(size.min(60_000) * 2 / 3);
    let set = kv.set("k".into(), value.as_str().into());
    let flushed = kv.flush().await;
    drop(filler);
    if set.is_ok() {
        expect_error("commit", flushed, "QuotaExceededError", "quota_exceeded");
        assert_eq!(failures.length(), 1);
        assert_eq!(name_code(&failures.get(0)).1, "quota_exceeded");
        kv.flush().await.expect("retried once space is free");
        cd.close_async().await.unwrap();
        let again = open(&name, "localstorage").await;
        assert_eq!(
            plugin(&again, "p")
                .get("k".into())
                .unwrap()
                .as_string()
                .unwrap(),
            value
        );
        again.close_async().await.unwrap();
    } else {
        panic!("the journal entry should have fit: {set:?}");
    }
}

async fn journal_budget_overflow_is_reported_as_pending(engine: &str) {
    let name = fresh_name("budget");
    let budget = [("journalBudgetBytes", JsValue::from(4_000))];
    let cd = ClientData::open_async(options(&name, engine, &budget))
        .await
        .unwrap();
    let kv = plugin(&cd, "p");
    for i in 0..10 {
        kv.set(format!("k{i}").into(), "x".repeat(500).into())
            .unwrap();
    }
    let meta = cd.metadata().unwrap();
    let journal = field(&meta, "journalBytes").as_f64().unwrap();
    let pending = field(&meta, "pendingBytes").as_f64().unwrap();
    assert!(journal > 0.0 && journal <= 4_000.0, "journal {journal}");
    assert!(pending >= 5.0 * 500.0, "pending {pending}");
    assert_eq!(
        ls_keys(&format!("clientdata:{name}:journal:")).len(),
        3,
        "3 entries of ~1.1 kB fit 4 kB"
    );
    cd.flush_async().await.unwrap();
    let meta = cd.metadata().unwrap();
    assert_eq!(field(&meta, "pendingBytes").as_f64(), Some(0.0));
    assert_eq!(field(&meta, "journalBytes").as_f64(), Some(0.0));
    assert!(ls_keys(&format!("clientdata:{name}:journal:")).is_empty());
    cd.close_async().await.unwrap();
    let again = open(&name, engine).await;
    assert_eq!(
        plugin(&again, "p")
            .keys(JsValue::UNDEFINED)
            .unwrap()
            .length(),
        10
    );
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn journal_budget_overflow_is_reported_as_pending_indexeddb() {
    journal_budget_overflow_is_reported_as_pending("indexeddb").await
}
#[wasm_bindgen_test]
async fn journal_budget_overflow_is_reported_as_pending_localstorage() {
    journal_budget_overflow_is_reported_as_pending("localstorage").await
}

async fn async_path_takes_large_values(engine: &str) {
    let name = fresh_name("async");
    let cd = open(&name, engine).await;
    let kv = plugin(&cd, "bulk");
    let big = Uint8Array::new_with_length(500_000);
    big.fill(7, 0, 500_000);
    expect_error(
        "sync path",
        kv.set("big".into(), big.clone().into()),
        "ValueTooLargeError",
        "value_too_large",
    );
    kv.set_async("big".into(), big.clone().into(), JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(
        Uint8Array::from(kv.get("big".into()).unwrap()).length(),
        500_000
    );
    assert_eq!(
        field(&cd.metadata().unwrap(), "journalBytes").as_f64(),
        Some(0.0),
        "the async path skips the journal"
    );
    // The async path's limit is 8 MiB (values over 32 KiB sync by reference, so no exchange
    // body carries them); 8 MiB + 1 is refused.
    let too_big = Uint8Array::new_with_length((8 << 20) + 1);
    expect_error(
        "8 MiB + 1",
        kv.set_async("x".into(), too_big.into(), JsValue::UNDEFINED)
            .await,
        "ValueTooLargeError",
        "value_too_large",
    );
    let entries = Array::new();
    for i in 0..100 {
        entries.push(&Array::of2(&format!("m{i}").into(), &js(&format!("[{i}]"))));
    }
    kv.set_many(entries.into(), JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(json(&kv.get("m42".into()).unwrap()), "[42]");
    expect_error(
        "setMany with a bad entry",
        kv.set_many(js(r#"[["ok", 1], ["", 2]]"#), JsValue::UNDEFINED)
            .await,
        "InvalidKeyError",
        "invalid_key",
    );
    assert!(!kv.has("ok".into()).unwrap(), "nothing written");
    // Simulated crash right after: async writes are durable without the journal.
    cd.simulate_crash();
    if engine == "memory" {
        return;
    }
    let again = open(&name, engine).await;
    let kv = plugin(&again, "bulk");
    let got = Uint8Array::from(kv.get("big".into()).unwrap()).to_vec();
    assert!(got.len() == 500_000 && got.iter().all(|b| *b == 7));
    assert_eq!(kv.keys(js(r#"{"prefix": "m"}"#)).unwrap().length(), 100);
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn async_path_takes_large_values_indexeddb() {
    async_path_takes_large_values("indexeddb").await
}
#[wasm_bindgen_test]
async fn async_path_takes_large_values_localstorage() {
    async_path_takes_large_values("localstorage").await
}
#[wasm_bindgen_test]
async fn async_path_takes_large_values_memory() {
    async_path_takes_large_values("memory").await
}

#[wasm_bindgen_test]
async fn metadata_reports_each_engine() {
    for engine in ENGINES {
        let cd = open(&fresh_name("meta"), engine).await;
        let m = cd.metadata().unwrap();
        assert_eq!(field(&m, "engine").as_string().unwrap(), engine);
        assert!(NodeId::parse(&field(&m, "nodeId").as_string().unwrap()).is_ok());
        assert_eq!(field(&m, "fallbackReason"), JsValue::NULL);
        assert!(field(&m, "persisted").as_bool().is_some());
        assert_eq!(field(&m, "pendingBytes").as_f64(), Some(0.0));
        // A window has localStorage: the persistent engines journal there.
        assert_eq!(field(&m, "journal").as_bool(), Some(engine != "memory"));
        if engine == "memory" {
            assert_eq!(field(&m, "slot"), JsValue::NULL);
        } else {
            assert_eq!(field(&m, "slot").as_f64(), Some(0.0));
            // WebKit's `estimate()` reports no quota: then null, else a positive number.
            let quota = field(&m, "quota");
            assert!(
                quota.is_null() || quota.as_f64().is_some_and(|q| q > 0.0),
                "{quota:?}"
            );
        }
        cd.close_async().await.unwrap();
    }
    // The default picks IndexedDB here.
    let cd = ClientData::open_async(js(&format!(r#"{{"name": "{}"}}"#, fresh_name("auto"))))
        .await
        .unwrap();
    assert_eq!(
        field(&cd.metadata().unwrap(), "engine")
            .as_string()
            .unwrap(),
        "indexeddb"
    );
    cd.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn apply_remote_writes_records_and_vectors_in_one_commit() {
    let name = fresh_name("remote");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set("local".into(), 1.into()).unwrap();
    kv.flush().await.unwrap();
    let p = PluginId::new("p").unwrap();
    let remote = NodeId::new(7).unwrap();
    let now = js_sys::Date::now() as u64;
    let old = Hlc::new(1, 0, remote).unwrap();
    let new = Hlc::new(now, 0, remote).unwrap();
    let mut seen = Watermarks::new();
    seen.advance(&p, new);
    let batch = Batch {
        records: vec![
            Record::put(
                p.clone(),
                Key::new("remote").unwrap(),
                Value::Json("\"r\"".into()),
                new,
            ),
            // Loses LWW against the local write: must not replace it, here or in storage.
            Record::put(
                p.clone(),
                Key::new("local").unwrap(),
                Value::Json("0".into()),
                old,
            ),
        ],
        vectors: vec![(VectorKind::Seen, seen.clone())],
    };
    let changed = cd.db().apply_remote(batch).await.unwrap();
    assert_eq!(changed, vec![(p.clone(), Key::new("remote").unwrap())]);
    assert_eq!(kv.get("remote".into()).unwrap().as_string().unwrap(), "r");
    assert_eq!(kv.get("local".into()).unwrap().as_f64(), Some(1.0));
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    assert_eq!(kv.get("remote".into()).unwrap().as_string().unwrap(), "r");
    assert_eq!(kv.get("local".into()).unwrap().as_f64(), Some(1.0));
    let vectors = again.db().with_index(|ix| {
        ix.vectors(VectorKind::Seen, std::slice::from_ref(&p))
            .unwrap()
    });
    assert_eq!(vectors, seen);
    let above = again.db().with_index(|ix| {
        ix.records_above(std::slice::from_ref(&p), &Watermarks::new(), 10)
            .unwrap()
    });
    assert_eq!(above.len(), 2);
    assert!(above[0].hlc < above[1].hlc);
    again.close_async().await.unwrap();
}

/// Puts raw rows into database `name`'s IndexedDB `records` store, bypassing every check.
async fn put_raw_rows(name: &str, rows: &JsValue) {
    raw_idb(
        name,
        rows,
        "const tx = db.transaction('records', 'readwrite'); \
         for (const row of arg) tx.objectStore('records').put(row); \
         await complete(tx);",
    )
    .await;
}

/// localStorage and IndexedDB contents are input: corrupt journal entries (one with a
/// multi-byte tag, which used to panic and abort the wasm instance) and a corrupt row are
/// quarantined at open while the rest opens; a corrupt stored value makes `get` throw
/// CorruptValueError while `scan` and `keys` skip it.
async fn corrupt_storage_is_quarantined_and_the_rest_opens(engine: &str) {
    let name = fresh_name("corrupt");
    let a = open(&name, engine).await;
    let kv = plugin(&a, "notes");
    for k in ["a", "b", "c"] {
        kv.set(k.into(), js(r#"{"ok": true}"#)).unwrap();
    }
    kv.flush().await.unwrap();
    a.close().await.unwrap();

    let hlc = Hlc::new(1_700_000_000_000, 0, NodeId::new(7).unwrap())
        .unwrap()
        .encode();
    let storage = local_storage();
    // Journal entries of a dead lockless slot: two corrupt, one good.
    let journal = |seq: u32| format!("clientdata:{name}:journal:1048600:{seq}");
    let head = format!("{hlc}\u{1}notes\u{1}");
    storage
        .set_item(&journal(1), &format!("{head}j1\u{1}é"))
        .unwrap(); // key "j1\u{1}é": a control character in the key
    storage
        .set_item(&journal(2), &format!("{head}mb\u{1}é{{}}"))
        .unwrap(); // multi-byte tag
    storage
        .set_item(&journal(3), &format!("{head}replayed\u{1}j42"))
        .unwrap();
    match engine {
        "indexeddb" => {
            let rows = Array::new();
            rows.push(&js(
                r#"{"p": "notes", "k": "bad-stamp", "h": "not a stamp", "v": "1"}"#,
            ));
            rows.push(&js(&format!(
                r#"{{"p": "notes", "k": "poison", "h": "{hlc}", "v": "{{not json"}}"#
            )));
            put_raw_rows(&name, &rows.into()).await;
        }
        _ => {
            let rec = |k: &str| format!("clientdata:{name}:rec:notes\u{1}{k}");
            storage
                .set_item(
                    &rec("bad-stamp"),
                    "not a stamp\u{1}notes\u{1}bad-stamp\u{1}j1",
                )
                .unwrap();
            storage
                .set_item(&rec("poison"), &format!("{head}poison\u{1}j{{not json"))
                .unwrap();
        }
    }

    let b = open(&name, engine).await;
    let collected = collect_events(&b, "data-quarantined");
    let events = &collected.events;
    let meta = b.metadata().unwrap();
    assert_eq!(
        field(&meta, "quarantined").as_f64(),
        Some(3.0),
        "{}",
        json(&meta)
    );
    let items: Array = field(&meta, "quarantinedItems").unchecked_into();
    let kinds: Vec<String> = items
        .iter()
        .map(|i| field(&i, "kind").as_string().unwrap())
        .collect();
    assert_eq!(kinds, ["row", "journal", "journal"], "{}", json(&items));
    assert_eq!(
        ls_keys(&format!("clientdata:{name}:quarantine:")).len(),
        2,
        "corrupt journal entries are kept aside"
    );
    let kv = plugin(&b, "notes");
    assert_eq!(kv.get("replayed".into()).unwrap().as_f64(), Some(42.0));
    assert_eq!(json(&kv.get("a".into()).unwrap()), r#"{"ok":true}"#);

    // The corrupt value: scan skips it and goes on; get throws; keys skips it from then on.
    let scanned: Vec<String> = collect_scan(&kv, "{}")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(scanned, ["a", "b", "c", "replayed"]);
    expect_error(
        "get of a corrupt value",
        kv.get("poison".into()),
        "CorruptValueError",
        "corrupt_value",
    );
    let error = kv.get("poison".into()).unwrap_err();
    assert_eq!(field(&error, "key").as_string().as_deref(), Some("poison"));
    assert_eq!(
        json(&kv.keys(JsValue::UNDEFINED).unwrap()),
        r#"["a","b","c","replayed"]"#
    );
    assert_eq!(events.length(), 1, "one data-quarantined event");
    assert_eq!(name_code(&events.get(0)).1, "corrupt_value");
    let meta = b.metadata().unwrap();
    assert_eq!(field(&meta, "quarantined").as_f64(), Some(4.0));
    let report = b.create_verifier().unwrap().verify().await.unwrap();
    let details = field(&report, "details");
    assert_eq!(field(&details, "quarantined").as_f64(), Some(4.0));

    // A write replaces it; so does one to the key of the row with a corrupt stamp (whose
    // text must not outrank real stamps in the put-if-newer comparison).
    kv.set("poison".into(), 5.into()).unwrap();
    assert_eq!(kv.get("poison".into()).unwrap().as_f64(), Some(5.0));
    assert_eq!(kv.keys(JsValue::UNDEFINED).unwrap().length(), 5);
    kv.set("bad-stamp".into(), 6.into()).unwrap();
    b.close().await.unwrap();
    let c = open(&name, engine).await;
    let kv = plugin(&c, "notes");
    assert_eq!(kv.get("poison".into()).unwrap().as_f64(), Some(5.0));
    assert_eq!(kv.get("bad-stamp".into()).unwrap().as_f64(), Some(6.0));
    assert_eq!(
        field(&c.metadata().unwrap(), "quarantined").as_f64(),
        Some(0.0)
    );
    c.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn corrupt_storage_is_quarantined_and_the_rest_opens_indexeddb() {
    corrupt_storage_is_quarantined_and_the_rest_opens("indexeddb").await
}
#[wasm_bindgen_test]
async fn corrupt_storage_is_quarantined_and_the_rest_opens_localstorage() {
    corrupt_storage_is_quarantined_and_the_rest_opens("localstorage").await
}

/// Stored text is input: a key or value holding a lone surrogate (only by writing storage
/// directly; `set()` refuses such keys) would read into wasm as U+FFFD, so a planted key "a\uD800"
/// would alias the real key "a\uFFFD" and overwrite it at open. Each such journal entry and row
/// is quarantined instead, and the real key keeps its value.
async fn lone_surrogates_in_storage_are_quarantined_not_aliased(engine: &str) {
    let name = fresh_name("surrogate");
    let a = open(&name, engine).await;
    let kv = plugin(&a, "notes");
    kv.set("a\u{FFFD}".into(), "real".into()).unwrap();
    kv.set("v".into(), "real".into()).unwrap();
    kv.flush().await.unwrap();
    a.close().await.unwrap();

    // Newer than the real writes, so an alias would win at open.
    let hlc = Hlc::new(
        js_sys::Date::now() as u64 + 60_000,
        0,
        NodeId::new(7).unwrap(),
    )
    .unwrap()
    .encode();
    // Rust strings cannot hold a lone surrogate: JS writes the planted text.
    let plant = js_sys::Function::new_with_args(
        "name, hlc, engine",
        "const lone = String.fromCharCode(0xD800);
         const head = hlc + '\\u0001notes\\u0001';
         localStorage.setItem(`clientdata:${name}:journal:1048600:1`, head + 'a' + lone + '\\u0001j\"planted\"');
         localStorage.setItem(`clientdata:${name}:journal:1048600:2`, head + 'j' + '\\u0001j\"' + lone + '\"');
         if (engine === 'localstorage') {
           localStorage.setItem(`clientdata:${name}:rec:notes\\u0001w`, head + 'w\\u0001j\"' + lone + '\"');
         }",
    );
    plant
        .call3(
            &JsValue::NULL,
            &name.as_str().into(),
            &hlc.as_str().into(),
            &engine.into(),
        )
        .unwrap();
    if engine == "indexeddb" {
        let rows = js_sys::Function::new_with_args(
            "hlc",
            "const lone = String.fromCharCode(0xD800);
             return [{ p: 'notes', k: 'a' + lone, h: hlc, v: '\"planted\"' },
                     { p: 'notes', k: 'w', h: hlc, v: '\"' + lone + '\"' }];",
        )
        .call1(&JsValue::NULL, &hlc.as_str().into())
        .unwrap();
        put_raw_rows(&name, &rows).await;
    }

    let b = open(&name, engine).await;
    let kv = plugin(&b, "notes");
    assert_eq!(
        kv.get("a\u{FFFD}".into()).unwrap().as_string().as_deref(),
        Some("real")
    );
    assert_eq!(
        kv.get("v".into()).unwrap().as_string().as_deref(),
        Some("real")
    );
    for k in ["j", "w"] {
        assert!(
            kv.get(k.into()).unwrap().is_undefined(),
            "{k}: a lossy value"
        );
    }
    let meta = b.metadata().unwrap();
    let items: Array = field(&meta, "quarantinedItems").unchecked_into();
    let mut seen: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                field(&i, "kind").as_string().unwrap(),
                field(&i, "reason").as_string().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let lossy = "not valid UTF-16 (a lone surrogate)".to_string();
    let rows = if engine == "indexeddb" { 2 } else { 1 };
    let mut expected = vec![("journal".to_string(), lossy.clone()); 2];
    expected.extend(vec![("row".to_string(), lossy); rows]);
    assert_eq!(seen, expected, "{}", json(&items));
    // The entries moved aside keep their text exactly, lone surrogate included.
    let aside = js_sys::Function::new_with_args(
        "prefix",
        "return Object.keys(localStorage).filter((k) => k.startsWith(prefix)).map((k) => localStorage.getItem(k)).filter((t) => !t.isWellFormed()).length",
    )
    .call1(&JsValue::NULL, &format!("clientdata:{name}:quarantine:").into())
    .unwrap();
    assert_eq!(aside.as_f64(), Some(2.0));
    b.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn lone_surrogates_in_storage_are_quarantined_not_aliased_indexeddb() {
    lone_surrogates_in_storage_are_quarantined_not_aliased("indexeddb").await
}
#[wasm_bindgen_test]
async fn lone_surrogates_in_storage_are_quarantined_not_aliased_localstorage() {
    lone_surrogates_in_storage_are_quarantined_not_aliased("localstorage").await
}

#[wasm_bindgen_test]
async fn database_names_with_a_colon_are_refused() {
    // db "a" + lock "x:slot:0" and db "a:lock:x" + writer slot 0 named the same Web Lock.
    let name = format!("{}:lock:x", fresh_name("colon"));
    for engine in ENGINES {
        match ClientData::open_async(options(&name, engine, &[])).await {
            Ok(_) => panic!("{engine}: a name with ':' opened"),
            Err(e) => assert_eq!(
                name_code(&e),
                ("InvalidOptionsError".into(), "invalid_options".into())
            ),
        }
    }
    assert!(
        ls_keys(&format!("clientdata:{name}")).is_empty(),
        "nothing written"
    );
}

/// A `quotas` object whose getter or key listing throws is refused with the typed error (a
/// TypeError or the getter's own error must not cross wasm untyped), and nothing is opened.
#[wasm_bindgen_test]
async fn quotas_that_throw_when_read_are_invalid_options() {
    let make = |body: &str| {
        js_sys::Function::new_no_args(body)
            .call0(&JsValue::NULL)
            .unwrap()
    };
    let throwing = [
        (
            "a throwing getter",
            "return { get p() { throw new Error('boom'); } }",
        ),
        (
            "a proxy whose keys throw",
            "return new Proxy({}, { ownKeys() { throw new Error('boom'); } })",
        ),
    ];
    for (what, body) in throwing {
        let name = fresh_name("quotathrow");
        match ClientData::open_async(options(&name, "indexeddb", &[("quotas", make(body))])).await {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => assert_eq!(
                name_code(&e),
                ("InvalidOptionsError".into(), "invalid_options".into()),
                "{what}"
            ),
        }
        assert!(
            ls_keys(&format!("clientdata:{name}")).is_empty(),
            "{what}: nothing written"
        );
    }
}

/// Records a sync round applies are applied past the plugin's quota (refusing them would leave
/// this device diverged), then reported over quota; local growth stays refused.
#[wasm_bindgen_test]
async fn sync_past_a_quota_is_applied_then_reported_and_local_growth_refused() {
    let name = fresh_name("overquota");
    let quotas = js(r#"{"p": 100}"#);
    let cd = ClientData::open_async(options(&name, "indexeddb", &[("quotas", quotas)]))
        .await
        .unwrap();
    let collected = collect_events(&cd, "over-quota");
    let events = &collected.events;
    let kv = plugin(&cd, "p");
    kv.set("local".into(), js(r#""0123456789""#)).unwrap(); // 5 + 12 bytes
    assert_eq!(json(&field(&cd.metadata().unwrap(), "overQuota")), "[]");
    let p = PluginId::new("p").unwrap();
    let now = js_sys::Date::now() as u64;
    let remote = NodeId::new(7).unwrap();
    let big = format!("\"{}\"", "x".repeat(150));
    let batch = Batch {
        records: vec![Record::put(
            p.clone(),
            Key::new("remote").unwrap(),
            Value::Json(big.clone()),
            Hlc::new(now, 0, remote).unwrap(),
        )],
        vectors: vec![],
    };
    cd.db().apply_remote(batch).await.unwrap();
    assert_eq!(
        kv.get("remote".into()).unwrap().as_string().unwrap().len(),
        150,
        "applied"
    );
    let used = 5 + 12 + 6 + big.len();
    let want = format!(r#"[{{"plugin":"p","usedBytes":{used},"quotaBytes":100}}]"#);
    assert_eq!(json(&field(&cd.metadata().unwrap(), "overQuota")), want);
    assert_eq!(events.length(), 1);
    assert_eq!(json(&events.get(0)), want[1..want.len() - 1]);
    expect_error(
        "local growth over quota",
        kv.set("more".into(), 1.into()),
        "QuotaExceededError",
        "quota_exceeded",
    );
    // Deletes make room again.
    kv.delete("remote".into()).unwrap();
    assert_eq!(json(&field(&cd.metadata().unwrap(), "overQuota")), "[]");
    kv.set("more".into(), 1.into()).unwrap();
    cd.close_async().await.unwrap();
}

/// `Date.now()` runs `offset_ms` off real time until dropped (the HLC reads it through JsClock).
struct ShiftedDateNow {
    date: JsValue,
    original: JsValue,
}

impl ShiftedDateNow {
    fn new(offset_ms: f64) -> ShiftedDateNow {
        let date = Reflect::get(&js_sys::global(), &"Date".into()).unwrap();
        let original = Reflect::get(&date, &"now".into()).unwrap();
        let make = js_sys::Function::new_with_args(
            "orig, off",
            "return function () { return orig.call(Date) + off; };",
        );
        let shifted = make
            .call2(&JsValue::NULL, &original, &offset_ms.into())
            .unwrap();
        Reflect::set(&date, &"now".into(), &shifted).unwrap();
        ShiftedDateNow { date, original }
    }
}

impl Drop for ShiftedDateNow {
    fn drop(&mut self) {
        Reflect::set(&self.date, &"now".into(), &self.original).unwrap();
    }
}

fn stamp_of(cd: &ClientData, key: &str) -> Hlc {
    cd.db()
        .with_index(|ix| ix.entry(&PluginId::new("notes").unwrap(), key).unwrap().hlc)
}

async fn reload_with_the_wall_clock_set_back_keeps_stamps_monotonic(engine: &str) {
    let name = fresh_name("clockback");
    let a = open(&name, engine).await;
    let kv = plugin(&a, "notes");
    kv.set("k".into(), 1.into()).unwrap();
    kv.flush().await.unwrap();
    let first = stamp_of(&a, "k");
    a.close().await.unwrap();

    // Reopened with the wall clock a day behind: the persisted clock state wins.
    let day = 86_400_000.0;
    let back = ShiftedDateNow::new(-day);
    let b = open(&name, engine).await;
    let kv = plugin(&b, "notes");
    kv.set("k".into(), 2.into()).unwrap();
    // Whichever writer slot it got (slot 0 with its persisted clock, or a new slot whose clock
    // starts from the wall clock a day behind), its write supersedes the stored one.
    assert_eq!(
        kv.get("k".into()).unwrap().as_f64(),
        Some(2.0),
        "read your writes"
    );
    let second = stamp_of(&b, "k");
    assert!(second > first, "{second} must follow {first}");
    assert!(
        second.wall_ms >= first.wall_ms,
        "the wall part did not go back a day"
    );
    // The tab dies without closing, then a reload with the clock set back a week.
    kv.set("k".into(), 3.into()).unwrap();
    let third = stamp_of(&b, "k");
    b.simulate_crash();
    drop(back);
    let _further = ShiftedDateNow::new(-7.0 * day);
    let c = open(&name, engine).await;
    let kv = plugin(&c, "notes");
    assert_eq!(kv.get("k".into()).unwrap().as_f64(), Some(3.0));
    kv.set("k".into(), 4.into()).unwrap();
    assert_eq!(
        kv.get("k".into()).unwrap().as_f64(),
        Some(4.0),
        "read your writes"
    );
    let fourth = stamp_of(&c, "k");
    assert!(fourth > third, "{fourth} must follow {third}");
    c.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn reload_with_the_wall_clock_set_back_keeps_stamps_monotonic_indexeddb() {
    reload_with_the_wall_clock_set_back_keeps_stamps_monotonic("indexeddb").await
}

#[wasm_bindgen_test]
async fn reload_with_the_wall_clock_set_back_keeps_stamps_monotonic_localstorage() {
    reload_with_the_wall_clock_set_back_keeps_stamps_monotonic("localstorage").await
}

/// A `token` provider that throws, rejects or returns a non-string fails the round with
/// `SyncTokenError` / `token_failed` before anything is sent (the server address is closed: a
/// request would have been a network error), and changes nothing.
#[wasm_bindgen_test]
async fn a_failing_token_provider_is_token_failed_and_changes_nothing() {
    for (what, body) in [
        ("throws", "throw new Error('no token today')"),
        ("rejects", "return Promise.reject(new Error('denied'))"),
        ("returns a number", "return 42"),
    ] {
        let name = fresh_name("token");
        let token = js_sys::Function::new_no_args(body);
        let cd = ClientData::open_async(options(
            &name,
            "indexeddb",
            &[
                ("server", "http://127.0.0.1:9".into()),
                ("token", token.into()),
                ("sync", js(r#"{"retries": 0}"#)),
            ],
        ))
        .await
        .unwrap();
        let kv = plugin(&cd, "notes");
        kv.set("k".into(), 1.into()).unwrap();
        kv.flush().await.unwrap();
        let before = json(&cd.metadata().unwrap());
        let err = cd.exchange_async(JsValue::UNDEFINED).await.unwrap_err();
        assert_eq!(
            name_code(&err),
            ("SyncTokenError".into(), "token_failed".into()),
            "{what}"
        );
        let err = cd.sync_async(JsValue::UNDEFINED).await.unwrap_err();
        assert_eq!(name_code(&err).1, "token_failed", "{what}");
        assert_eq!(
            json(&cd.metadata().unwrap()),
            before,
            "{what}: nothing changed"
        );
        assert_eq!(kv.get("k".into()).unwrap().as_f64(), Some(1.0), "{what}");
        cd.close_async().await.unwrap();
    }
}

/// Every record row of database `name` in IndexedDB, read raw: the `records` store's rows, then
/// the rows held in `packs` (where a commit of many records stores them).
async fn raw_rows(name: &str) -> Array {
    raw_idb(
        name,
        &JsValue::UNDEFINED,
        "const tx = db.transaction(['records', 'packs']); \
         const rows = request(tx.objectStore('records').getAll()), packs = request(tx.objectStore('packs').getAll()); \
         return [...(await rows), ...(await packs).flatMap((p) => p.rows)];",
    )
    .await
    .unchecked_into()
}

/// Issue 17: a written value's JSON text is made once in JS and the journal entry and the
/// IndexedDB row take that string. What they hold must be exactly what the copies out of wasm
/// made before: an entry `journal::decode` reads back to the written record (and the budget
/// counts its UTF-8 bytes), a row whose `v` is `JSON.stringify(value)`; a key written twice
/// before its commit stores the newer version; bytes, tombstones and `setMany` rows too; and
/// another instance hears the rows over the bus.
async fn written_text_reaches_journal_and_rows_unchanged(engine: &str) {
    use clientdata::store::journal::{decode, Budget};
    let name = fresh_name("text");
    let a = open(&name, engine).await;
    let b = open(&name, engine).await;
    let kv = plugin(&a, "notes");
    let long: String = "é🦀x".repeat(300);
    let values: Vec<(&str, JsValue)> = vec![
        (
            "object",
            js(r#"{"a": [1, "é🦀", null], "s": "x\u0001", "__proto__": 2}"#),
        ),
        ("string", JsValue::from_str("héllo \"wörld\" \\ 🦀")),
        ("long", JsValue::from_str(&long)),
        ("lone", js(r#""\ud800""#)),
        ("number", JsValue::from(1.5)),
        ("null", JsValue::NULL),
        // The key's own JS string goes into the entry and the row (issue 17).
        ("ké🦀 \u{fffd}", JsValue::from(2)),
    ];
    kv.set("gone".into(), 1.into()).unwrap();
    kv.flush().await.unwrap();
    let prefix = format!("clientdata:{name}:journal:");
    assert!(ls_keys(&prefix).is_empty());

    for (k, v) in &values {
        kv.set((*k).into(), v.clone()).unwrap();
    }
    kv.set("over".into(), "first".into()).unwrap();
    kv.set("over".into(), js(r#"{"second": "é"}"#)).unwrap();
    kv.set("mix".into(), "text first".into()).unwrap();
    kv.set("mix".into(), Uint8Array::from(&[1u8, 2, 3][..]).into())
        .unwrap();
    kv.delete("gone".into()).unwrap();

    // Before the commit: one entry per write, each decoding to the record in the index.
    let p = PluginId::new("notes").unwrap();
    let stringify = |v: &JsValue| js_sys::JSON::stringify(v).unwrap().as_string().unwrap();
    let mut want: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    let mut bytes = 0;
    let storage = local_storage();
    for key in ls_keys(&prefix) {
        let entry = storage.get_item(&key).unwrap().unwrap();
        bytes += Budget::cost(&key, &entry);
        let record = decode(&entry).unwrap_or_else(|e| panic!("{key}: {e}"));
        want.entry(record.key.to_string()).or_default().push(record);
    }
    assert_eq!(want.values().map(Vec::len).sum::<usize>(), values.len() + 5);
    let journal_bytes = field(&a.metadata().unwrap(), "journalBytes").as_f64();
    assert_eq!(journal_bytes, Some(bytes as f64), "UTF-8 bytes, as before");
    for (k, v) in &values {
        let got = &want[*k];
        assert_eq!(got.len(), 1, "{k}");
        assert_eq!(got[0].value, Some(Value::Json(stringify(v))), "{k}");
        let hlc = a.db().with_index(|ix| ix.entry(&p, k).unwrap().hlc);
        assert_eq!(got[0].hlc, hlc, "{k}");
        assert_eq!(got[0].plugin, p);
    }
    let mut over: Vec<_> = want["over"].iter().map(|r| r.value.clone()).collect();
    over.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(
        over,
        [
            Some(Value::Json(r#""first""#.into())),
            Some(Value::Json(r#"{"second":"é"}"#.into())),
        ]
    );
    assert_eq!(want["gone"][0].value, None);
    assert!(want["mix"]
        .iter()
        .any(|r| r.value == Some(Value::Bytes(vec![1, 2, 3]))));

    // setMany while nothing is queued, and once more with set()s queued before it.
    kv.flush().await.unwrap();
    let many = Array::new();
    many.push(&Array::of2(&"many-a".into(), &js(r#"{"m": ["é🦀"]}"#)));
    many.push(&Array::of2(&"many-b".into(), &"b".into()));
    kv.set_many(many.into(), JsValue::UNDEFINED).await.unwrap();
    kv.set("queued".into(), js(r#"[1, {"q": 2}]"#)).unwrap();
    let many = Array::new();
    many.push(&Array::of2(&"many-c".into(), &js(r#"{"c": 3}"#)));
    kv.set_many(many.into(), JsValue::UNDEFINED).await.unwrap();
    kv.flush().await.unwrap();
    assert!(ls_keys(&prefix).is_empty(), "committed entries are removed");
    assert_eq!(
        field(&a.metadata().unwrap(), "journalBytes").as_f64(),
        Some(0.0)
    );

    let mut expect: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| (k.to_string(), stringify(v)))
        .collect();
    for (k, v) in [
        ("over", r#"{"second":"é"}"#),
        ("many-a", r#"{"m":["é🦀"]}"#),
        ("many-b", r#""b""#),
        ("queued", r#"[1,{"q":2}]"#),
        ("many-c", r#"{"c":3}"#),
    ] {
        expect.push((k.into(), v.into()));
    }
    if engine == "indexeddb" {
        let rows: BTreeMap<String, JsValue> = raw_rows(&name)
            .await
            .iter()
            .map(|row| (field(&row, "k").as_string().unwrap(), row))
            .collect();
        for (k, v) in &expect {
            let row = &rows[k];
            assert_eq!(field(row, "v").as_string().as_ref(), Some(v), "{k}");
            assert!(field(row, "b").is_undefined(), "{k}");
            let hlc = a.db().with_index(|ix| ix.entry(&p, k).unwrap().hlc);
            assert_eq!(field(row, "h").as_string(), Some(hlc.encode()), "{k}");
        }
        let mix = &rows["mix"];
        assert!(
            field(mix, "v").is_undefined(),
            "the newer bytes replace the text"
        );
        assert_eq!(Uint8Array::from(field(mix, "b")).to_vec(), [1, 2, 3]);
        let gone = &rows["gone"];
        assert!(field(gone, "v").is_undefined() && field(gone, "b").is_undefined());
    }

    // The other instance heard every row over the bus, and storage alone gives them back.
    let kb = plugin(&b, "notes");
    for (k, v) in &expect {
        eventually(&format!("{k} reaches the other instance"), || {
            kb.get(k.as_str().into()).is_ok_and(|got| json(&got) == *v)
        })
        .await;
    }
    assert!(kb.get("gone".into()).unwrap().is_undefined());
    a.close().await.unwrap();
    b.close().await.unwrap();
    let c = open(&name, engine).await;
    let kc = plugin(&c, "notes");
    for (k, v) in &expect {
        assert_eq!(json(&kc.get(k.as_str().into()).unwrap()), *v, "{k}");
    }
    assert_eq!(
        Uint8Array::from(kc.get("mix".into()).unwrap()).to_vec(),
        [1, 2, 3]
    );
    c.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn written_text_reaches_journal_and_rows_unchanged_indexeddb() {
    written_text_reaches_journal_and_rows_unchanged("indexeddb").await
}
#[wasm_bindgen_test]
async fn written_text_reaches_journal_and_rows_unchanged_localstorage() {
    written_text_reaches_journal_and_rows_unchanged("localstorage").await
}
