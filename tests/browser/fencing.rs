//! Store writes fenced by a lock grant: checked inside the write's own IndexedDB transaction.

use crate::support::*;
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

fn entries(pairs: &[(&str, &str)]) -> JsValue {
    pairs
        .iter()
        .map(|(k, v)| Array::of2(&(*k).into(), &js(v)))
        .collect::<Array>()
        .into()
}

fn fenced(grant: &JsValue) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"fence".into(), grant).unwrap();
    o.into()
}

#[wasm_bindgen_test]
async fn a_write_fenced_by_a_superseded_grant_is_rejected_and_writes_nothing() {
    let name = fresh_name("fence");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    let holder = cd.create_lock("p/export", None).unwrap();
    let grant = JsFuture::from(holder.acquire()).await.unwrap();
    let epoch = field(&grant, "epoch").as_f64().unwrap();

    // Under the current grant the write goes through.
    kv.set_many(entries(&[("a", "1")]), fenced(&grant))
        .await
        .unwrap();
    assert_eq!(json(&kv.get("a".into()).unwrap()), "1");

    // An admin force-releases the lock and takes it: the old grant is superseded.
    let nonce = field(&JsFuture::from(holder.inspect()).await.unwrap(), "nonce");
    let admin = cd.create_lock("p/export", None).unwrap();
    let freed = JsFuture::from(admin.force_release(nonce.as_string().unwrap()))
        .await
        .unwrap();
    assert_eq!(freed, JsValue::TRUE);
    let newer = JsFuture::from(admin.acquire()).await.unwrap();
    assert!(field(&newer, "epoch").as_f64().unwrap() > epoch);

    // The old holder's fenced write is refused inside the transaction; nothing changes.
    let err = kv
        .set_many(entries(&[("a", "2"), ("b", "3")]), fenced(&grant))
        .await
        .unwrap_err();
    assert_eq!(
        name_code(&err),
        ("LockLostError".into(), "lock_lost".into())
    );
    assert_eq!(json(&kv.get("a".into()).unwrap()), "1");
    assert!(kv.get("b".into()).unwrap().is_undefined());
    let err = kv
        .set_async("b".into(), js("4"), fenced(&grant))
        .await
        .unwrap_err();
    assert_eq!(name_code(&err).1, "lock_lost");

    // The new holder writes; and after reopening, storage agrees with the index.
    kv.set_many(entries(&[("b", "5")]), fenced(&newer))
        .await
        .unwrap();
    JsFuture::from(admin.release()).await.unwrap();
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    assert_eq!(json(&kv.get("a".into()).unwrap()), "1");
    assert_eq!(json(&kv.get("b".into()).unwrap()), "5");
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn fencing_needs_indexeddb_and_a_well_formed_grant() {
    let cd = open(&fresh_name("fence-mem"), "memory").await;
    let kv = plugin(&cd, "p");
    let grant = js(r#"{"lockName": "clientdata:x:lock:y", "epoch": 1}"#);
    let err = kv
        .set_many(entries(&[("a", "1")]), fenced(&grant))
        .await
        .unwrap_err();
    assert_eq!(name_code(&err).1, "storage_unavailable");
    assert!(kv.get("a".into()).unwrap().is_undefined());

    let cd = open(&fresh_name("fence-bad"), "indexeddb").await;
    let kv = plugin(&cd, "p");
    for bad in [
        r#"{"epoch": 1}"#,
        r#"{"lockName": "l", "epoch": 0}"#,
        r#"{"lockName": "l", "epoch": 1.5}"#,
        r#"{"lockName": "", "epoch": 1}"#,
        r#""grant""#,
    ] {
        let err = kv
            .set_many(entries(&[("a", "1")]), fenced(&js(bad)))
            .await
            .unwrap_err();
        assert_eq!(name_code(&err).1, "invalid_options", "{bad}");
    }
    assert!(kv.get("a".into()).unwrap().is_undefined());
    cd.close_async().await.unwrap();
}

/// The epoch rule through the store's fenced writes: two contexts that never heard of each
/// other's grants are given the same epoch; each grant's first fenced write claims a newer
/// one, so a write fenced with an older grant is refused and the current one keeps writing.
#[wasm_bindgen_test]
async fn store_writes_fenced_by_grants_of_contexts_that_never_talked_never_share_an_epoch() {
    let name = fresh_name("fence-claims");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    let mut grants = Vec::new();
    for i in 0..3 {
        clientdata::lock::DistributedLock::forget_tab_epochs();
        let lock = cd.create_lock("p/export", None).unwrap();
        let grant = JsFuture::from(lock.acquire()).await.unwrap();
        assert_eq!(field(&grant, "epoch").as_f64(), Some(1.0));
        let value = i.to_string();
        kv.set_many(entries(&[("a", &value)]), fenced(&grant))
            .await
            .unwrap();
        kv.set_many(entries(&[("b", &value)]), fenced(&grant))
            .await
            .unwrap();
        JsFuture::from(lock.release()).await.unwrap();
        grants.push(grant);
    }
    for grant in &grants {
        let err = kv
            .set_many(entries(&[("a", "\"late\"")]), fenced(grant))
            .await
            .unwrap_err();
        assert_eq!(name_code(&err).1, "lock_lost");
    }
    assert_eq!(json(&kv.get("a".into()).unwrap()), "2");
    assert_eq!(json(&kv.get("b".into()).unwrap()), "2");
    // A grant still held keeps writing under the epoch it claimed.
    clientdata::lock::DistributedLock::forget_tab_epochs();
    let lock = cd.create_lock("p/export", None).unwrap();
    let grant = JsFuture::from(lock.acquire()).await.unwrap();
    for v in ["3", "4"] {
        kv.set_many(entries(&[("a", v)]), fenced(&grant))
            .await
            .unwrap();
    }
    assert_eq!(json(&kv.get("a".into()).unwrap()), "4");
    JsFuture::from(lock.release()).await.unwrap();
    cd.close_async().await.unwrap();
}
