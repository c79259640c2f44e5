//! Tombstone collection in the store: `Db::remove_synced` removes records without a trace, only
//! the version it names, on IndexedDB and localStorage, and the removal survives a reopen.

use crate::support::*;
use clientdata::core::{Key, PluginId};
use wasm_bindgen_test::*;

async fn removes_only_the_named_version_and_survives_a_reopen(engine: &str) {
    let name = fresh_name("gc-remove");
    let cd = open(&name, engine).await;
    let kv = plugin(&cd, "p");
    kv.set("gone".into(), 1.into()).unwrap();
    kv.set("stays".into(), 2.into()).unwrap();
    kv.delete("tomb".into()).unwrap();
    kv.flush().await.unwrap();
    let p = PluginId::new("p").unwrap();
    let record = |k: &str| {
        cd.db()
            .with_index(|ix| ix.record(&p, &Key::new(k).unwrap()))
            .unwrap()
    };
    let (gone, tomb, stale) = (record("gone"), record("tomb"), record("stays"));
    // A newer version of "stays" is written after the removal was decided: it must survive.
    kv.set("stays".into(), 3.into()).unwrap();
    kv.flush().await.unwrap();
    let removed = cd
        .db()
        .remove_synced(&[gone.clone(), tomb.clone(), stale])
        .await
        .unwrap();
    assert_eq!(
        removed,
        vec![(p.clone(), gone.key.clone()), (p.clone(), tomb.key.clone())]
    );
    assert!(kv.get("gone".into()).unwrap().is_undefined());
    assert_eq!(kv.get("stays".into()).unwrap().as_f64(), Some(3.0));
    assert!(
        cd.db().with_index(|ix| ix.record(&p, &tomb.key)).is_none(),
        "no trace"
    );
    cd.close_async().await.unwrap();
    let again = open(&name, engine).await;
    let kv = plugin(&again, "p");
    assert!(kv.get("gone".into()).unwrap().is_undefined());
    assert_eq!(kv.get("stays".into()).unwrap().as_f64(), Some(3.0));
    let left = again.db().with_index(|ix| ix.len());
    assert_eq!(left, 1, "only 'stays' is stored after a reopen");
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn remove_synced_on_indexeddb() {
    removes_only_the_named_version_and_survives_a_reopen("indexeddb").await;
}

#[wasm_bindgen_test]
async fn remove_synced_on_localstorage() {
    removes_only_the_named_version_and_survives_a_reopen("localstorage").await;
}

/// Polls `f` every 20 ms for up to 3 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..150 {
        if f() {
            return;
        }
        sleep(20).await;
    }
    panic!("{what}: not within 3 s");
}

#[wasm_bindgen_test]
async fn another_tab_removes_the_same_version() {
    let name = fresh_name("gc-tabs");
    let a = open(&name, "indexeddb").await;
    let b = open(&name, "indexeddb").await;
    let (kv_a, kv_b) = (plugin(&a, "p"), plugin(&b, "p"));
    kv_a.set("k".into(), 1.into()).unwrap();
    kv_a.set("newer-in-b".into(), 1.into()).unwrap();
    kv_a.flush().await.unwrap();
    eventually("b receives a's rows", || {
        kv_b.get("newer-in-b".into()).unwrap().as_f64() == Some(1.0)
    })
    .await;
    let p = PluginId::new("p").unwrap();
    let record = |k: &str| {
        a.db()
            .with_index(|ix| ix.record(&p, &Key::new(k).unwrap()))
            .unwrap()
    };
    let (k, stale) = (record("k"), record("newer-in-b"));
    kv_b.set("newer-in-b".into(), 2.into()).unwrap();
    kv_b.flush().await.unwrap();
    eventually("a receives b's newer version", || {
        kv_a.get("newer-in-b".into()).unwrap().as_f64() == Some(2.0)
    })
    .await;
    a.db().remove_synced(&[k, stale]).await.unwrap();
    eventually("b removes k too", || {
        kv_b.get("k".into()).unwrap().is_undefined()
    })
    .await;
    assert_eq!(kv_b.get("newer-in-b".into()).unwrap().as_f64(), Some(2.0));
    a.close().await.unwrap();
    b.close().await.unwrap();
}
