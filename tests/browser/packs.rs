//! Packed rows (schema version 3, src/store/schema.rs): a commit of many records is one row of
//! the `packs` store. Versions of a key may then live in a row and in packs at once; these tests
//! hold the invariants that keep that invisible: what opening reads back is the newest version,
//! a removal leaves no older version to come back, hydration survives a reopen, a version 2
//! database opens under version 3.

use crate::support::*;
use clientdata::core::content::{ContentKind, ContentRef, Digest};
use clientdata::core::replica::Batch;
use clientdata::core::{Hlc, Key, NodeId, PluginId, Record, Value};
use clientdata::store::engine::indexeddb::{COMPACT_MIN, PACK_MIN};
use js_sys::{Array, Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

/// `[rows in records, rows in packs, record rows held in packs]`.
async fn counts(name: &str) -> (u32, u32, u32) {
    let out: Array = raw_idb(
        name,
        &JsValue::UNDEFINED,
        "const tx = db.transaction(['records', 'packs']); \
         const req = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); }); \
         const rows = await req(tx.objectStore('records').count()); \
         const packs = await req(tx.objectStore('packs').getAll()); \
         return [rows, packs.length, packs.reduce((n, p) => n + p.rows.length, 0)];",
    )
    .await
    .unchecked_into();
    let n = |i| out.get(i).as_f64().unwrap() as u32;
    (n(0), n(1), n(2))
}

fn entries(n: u32, value: &str) -> JsValue {
    let list: Array = (0..n)
        .map(|i| JsValue::from(Array::of2(&format!("k{i:03}").into(), &js(value))))
        .collect();
    list.into()
}

fn p() -> PluginId {
    PluginId::new("p").unwrap()
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// A stamp of a remote node `ms` after the current time (so it is newer than local writes).
fn remote_stamp(ms: u64) -> Hlc {
    Hlc::new(js_sys::Date::now() as u64 + ms, 0, NodeId::new(7).unwrap()).unwrap()
}

#[wasm_bindgen_test]
async fn a_big_commit_is_one_pack_and_a_small_one_stays_rows() {
    let name = fresh_name("pack-big");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set_many(entries(PACK_MIN + 36, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(counts(&name).await, (0, 1, PACK_MIN + 36), "one pack row");
    kv.set_many(entries(3, "2"), JsValue::UNDEFINED)
        .await
        .unwrap();
    kv.set("single".into(), 3.into()).unwrap();
    kv.flush().await.unwrap();
    assert_eq!(
        counts(&name).await,
        (4, 1, PACK_MIN + 36),
        "small commits: rows"
    );
    cd.close_async().await.unwrap();

    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    assert_eq!(kv.keys(JsValue::UNDEFINED).unwrap().length(), PACK_MIN + 37);
    // The rows (newer) win over the pack's versions of k000..k002; the rest read from the pack.
    assert_eq!(kv.get("k000".into()).unwrap().as_f64(), Some(2.0));
    assert_eq!(kv.get("k003".into()).unwrap().as_f64(), Some(1.0));
    assert_eq!(kv.get("single".into()).unwrap().as_f64(), Some(3.0));
    again.close_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn scan_reads_records_held_in_packs() {
    let name = fresh_name("pack-scan");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set_many(entries(PACK_MIN, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    kv.set("k001".into(), 2.into()).unwrap();
    kv.flush().await.unwrap();
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    let scanned = JsFuture::from(
        js_sys::Function::new_with_args(
            "it",
            "return (async () => { const out = []; for await (const [k, v] of it) out.push(k + '=' + v); return out.join(','); })()",
        )
        .call1(&JsValue::NULL, &kv.scan(js(r#"{"pageSize": 7}"#)).unwrap())
        .unwrap()
        .unchecked_into::<Promise>(),
    )
    .await
    .unwrap()
    .as_string()
    .unwrap();
    let expected: Vec<String> = (0..PACK_MIN)
        .map(|i| format!("k{i:03}={}", if i == 1 { 2 } else { 1 }))
        .collect();
    assert_eq!(scanned, expected.join(","));
    again.close_async().await.unwrap();
}

/// Invariant (1): a key's older version lives in a pack, its tombstone in a row; collecting
/// the tombstone must take the packed version too, or it comes back at the next open.
#[wasm_bindgen_test]
async fn a_collected_tombstone_does_not_resurrect_a_packed_version() {
    let name = fresh_name("pack-gc");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set_many(entries(PACK_MIN, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    kv.delete("k005".into()).unwrap();
    kv.flush().await.unwrap();
    let tomb = cd
        .db()
        .with_index(|ix| ix.record(&p(), &key("k005")))
        .unwrap();
    assert!(tomb.value.is_none());
    cd.db().remove_synced(&[tomb]).await.unwrap();
    assert_eq!(
        counts(&name).await,
        (0, 1, PACK_MIN - 1),
        "the pack lost k005"
    );
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    assert!(plugin(&again, "p")
        .get("k005".into())
        .unwrap()
        .is_undefined());
    assert!(
        again
            .db()
            .with_index(|ix| ix.record(&p(), &key("k005")))
            .is_none(),
        "no trace of k005 after a reopen"
    );
    assert_eq!(again.db().with_index(|ix| ix.len()), PACK_MIN as usize - 1);
    again.close_async().await.unwrap();
}

/// Invariant (1) the other way round: the tombstones arrive in a pack (a pulled page), the
/// older value is a row; collecting them takes the row as well.
#[wasm_bindgen_test]
async fn collected_packed_tombstones_take_older_rows_with_them() {
    let name = fresh_name("pack-gc-rows");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set("k000".into(), 1.into()).unwrap();
    kv.set("k001".into(), 1.into()).unwrap();
    kv.flush().await.unwrap();
    let h = remote_stamp(1_000);
    let tombs: Vec<Record> = (0..PACK_MIN)
        .map(|i| Record::tombstone(p(), key(&format!("k{i:03}")), h))
        .collect();
    cd.db()
        .apply_remote(Batch {
            records: tombs.clone(),
            vectors: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(counts(&name).await, (2, 1, PACK_MIN));
    cd.db().remove_synced(&tombs).await.unwrap();
    assert_eq!(
        counts(&name).await,
        (0, 0, 0),
        "rows and the emptied pack are gone"
    );
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    assert!(plugin(&again, "p")
        .get("k000".into())
        .unwrap()
        .is_undefined());
    assert_eq!(again.db().with_index(|ix| ix.len()), 0);
    again.close_async().await.unwrap();
}

/// Invariant (2): a full resync's deletions remove live values that sit in a pack, and a newer
/// write of one of the keys (a row) stays.
#[wasm_bindgen_test]
async fn resync_deletions_remove_packed_values_and_keep_newer_writes() {
    let name = fresh_name("pack-resync");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set_many(entries(PACK_MIN, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    let deleted: Vec<Record> = ["k010", "k011"]
        .iter()
        .map(|k| cd.db().with_index(|ix| ix.record(&p(), &key(k))).unwrap())
        .collect();
    kv.set("k011".into(), 2.into()).unwrap();
    kv.flush().await.unwrap();
    cd.db().remove_synced(&deleted).await.unwrap();
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    assert!(kv.get("k010".into()).unwrap().is_undefined());
    assert_eq!(kv.get("k011".into()).unwrap().as_f64(), Some(2.0));
    assert_eq!(again.db().with_index(|ix| ix.len()), PACK_MIN as usize - 1);
    again.close_async().await.unwrap();
}

/// Invariant (3): a reference replaced by its content at the same stamp (hydration) survives a
/// reopen wherever each lives: content in a row over a packed reference, content in a pack over
/// a reference in a row, content in a pack over a reference in an older pack.
#[wasm_bindgen_test]
async fn hydration_of_a_packed_reference_survives_a_reopen() {
    let name = fresh_name("pack-hydrate");
    let cd = open(&name, "indexeddb").await;
    let h = remote_stamp(1_000);
    let reference = Value::Ref(ContentRef {
        kind: ContentKind::Json,
        size: 9,
        sha256: Digest::parse(&"ab".repeat(32)).unwrap(),
    });
    let content = Value::Json("\"content\"".into());
    let commit = |records: Vec<Record>| {
        cd.db().apply_remote(Batch {
            records,
            vectors: Vec::new(),
        })
    };
    let refs = (0..100)
        .map(|i| Record::put(p(), key(&format!("k{i:03}")), reference.clone(), h))
        .collect();
    commit(refs).await.unwrap();
    commit(vec![Record::put(p(), key("k007"), content.clone(), h)])
        .await
        .unwrap();
    commit(vec![Record::put(p(), key("solo"), reference.clone(), h)])
        .await
        .unwrap();
    let hydrated = std::iter::once("solo".to_owned())
        .chain((10..10 + PACK_MIN - 1).map(|i| format!("k{i:03}")))
        .map(|k| Record::put(p(), key(&k), content.clone(), h))
        .collect();
    commit(hydrated).await.unwrap();
    assert_eq!(counts(&name).await, (2, 2, 100 + PACK_MIN));
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let value = |k: &str| {
        again
            .db()
            .with_index(|ix| ix.record(&p(), &key(k)))
            .unwrap()
            .value
    };
    for k in ["k007", "solo", "k010", "k072"] {
        assert_eq!(value(k), Some(content.clone()), "{k}: hydrated");
    }
    assert_eq!(value("k008"), Some(reference.clone()), "k008: not hydrated");
    again.close_async().await.unwrap();
}

/// Invariant (4): two instances write the same keys in big commits, one after the other, and a
/// single newer write lands between: every open sees the newest version of each key.
#[wasm_bindgen_test]
async fn concurrent_instances_writing_packs_reopen_to_the_newest() {
    let name = fresh_name("pack-tabs");
    let a = open(&name, "indexeddb").await;
    let b = open(&name, "indexeddb").await;
    let (kv_a, kv_b) = (plugin(&a, "p"), plugin(&b, "p"));
    kv_a.set_many(entries(PACK_MIN, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    kv_b.set_many(entries(PACK_MIN, "2"), JsValue::UNDEFINED)
        .await
        .unwrap();
    kv_a.set("k003".into(), 3.into()).unwrap();
    kv_a.flush().await.unwrap();
    // Both started before either committed: their order in IndexedDB is the transactions'.
    let (x, y) = (
        JsFuture::from(kv_a.set_many(entries(PACK_MIN, "4"), JsValue::UNDEFINED)),
        JsFuture::from(kv_b.set_many(entries(PACK_MIN, "5"), JsValue::UNDEFINED)),
    );
    let (x, y) = futures::join!(x, y);
    x.unwrap();
    y.unwrap();
    // Whichever wrote its stamps last is newest; both instances agree on it once settled.
    let newest = |k: &str| {
        let ra = a.db().with_index(|ix| ix.record(&p(), &key(k))).unwrap();
        let rb = b.db().with_index(|ix| ix.record(&p(), &key(k))).unwrap();
        if ra.hlc > rb.hlc {
            ra
        } else {
            rb
        }
    };
    let want: Vec<Record> = (0..PACK_MIN).map(|i| newest(&format!("k{i:03}"))).collect();
    a.close().await.unwrap();
    b.close().await.unwrap();
    assert_eq!(counts(&name).await, (1, 4, 4 * PACK_MIN));
    let again = open(&name, "indexeddb").await;
    for record in &want {
        let got = again.db().with_index(|ix| ix.record(&p(), &record.key));
        assert_eq!(got.as_ref(), Some(record), "{}", record.key.as_str());
    }
    again.close_async().await.unwrap();
}

/// A database written in version 2's layout (no `packs` store) opens under version 3 with its
/// rows, on IndexedDB, and is version 3 with a `packs` store afterwards.
#[wasm_bindgen_test]
async fn a_version_2_database_opens_under_version_3() {
    let name = fresh_name("pack-v2");
    let h = remote_stamp(0).encode();
    let make_v2 = Function::new_with_args(
        "name, h",
        "return new Promise((ok, fail) => { const r = indexedDB.open(name, 2); r.onerror = () => fail(r.error); \
         r.onupgradeneeded = () => { const db = r.result; \
           db.createObjectStore('records', { keyPath: ['p', 'k'] }); db.createObjectStore('meta'); \
           db.createObjectStore('vectors', { keyPath: ['kind', 'plugin'] }); \
           db.createObjectStore('slots', { keyPath: 'slot' }); db.createObjectStore('epochs'); }; \
         r.onsuccess = () => { const db = r.result; const tx = db.transaction('records', 'readwrite'); \
           tx.objectStore('records').put({ p: 'notes', k: 'draft', h, v: '{\"title\":\"kept\"}' }); \
           tx.objectStore('records').put({ p: 'notes', k: 'gone', h }); \
           tx.oncomplete = () => { db.close(); ok(); }; tx.onabort = () => fail(tx.error); }; })",
    );
    let made: Promise = make_v2
        .call2(&JsValue::NULL, &name.clone().into(), &h.into())
        .unwrap()
        .unchecked_into();
    JsFuture::from(made).await.unwrap();

    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "notes");
    assert_eq!(
        json(&kv.get("draft".into()).unwrap()),
        r#"{"title":"kept"}"#
    );
    assert!(kv.get("gone".into()).unwrap().is_undefined());
    let tomb = cd
        .db()
        .with_index(|ix| ix.record(&PluginId::new("notes").unwrap(), &key("gone")));
    assert!(
        tomb.is_some_and(|r| r.value.is_none()),
        "the tombstone is read"
    );
    kv.set_many(entries(PACK_MIN, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    cd.close_async().await.unwrap();
    let after = raw_idb(
        &name,
        &JsValue::UNDEFINED,
        "return [db.version, [...db.objectStoreNames].includes('packs')];",
    )
    .await;
    assert_eq!(json(&after), "[3,true]");
    assert_eq!(counts(&name).await, (2, 1, PACK_MIN));
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "notes");
    assert_eq!(
        json(&kv.get("draft".into()).unwrap()),
        r#"{"title":"kept"}"#
    );
    assert_eq!(kv.keys(JsValue::UNDEFINED).unwrap().length(), PACK_MIN + 1);
    again.close_async().await.unwrap();
}

/// `[plugin, key, stamp, value text]` of every entry held in packs, sorted.
async fn packed_entries(name: &str) -> String {
    let out = raw_idb(
        name,
        &JsValue::UNDEFINED,
        "const req = db.transaction('packs').objectStore('packs').getAll(); \
         const packs = await new Promise((ok, fail) => { req.onsuccess = () => ok(req.result); req.onerror = () => fail(req.error); }); \
         return JSON.stringify(packs.flatMap((p) => p.rows).map((r) => [r.p, r.k, r.v ?? null]).sort());",
    )
    .await;
    out.as_string().unwrap()
}

/// Compaction: packs whose entries were superseded by later packs are rewritten at open as one
/// pack of what is still live, and everything reads back the same.
#[wasm_bindgen_test]
async fn superseded_packs_are_compacted_at_open() {
    let name = fresh_name("pack-compact");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    for v in ["1", "2", "3"] {
        kv.set_many(entries(100, v), JsValue::UNDEFINED)
            .await
            .unwrap();
    }
    kv.set("k000".into(), 4.into()).unwrap();
    kv.flush().await.unwrap();
    cd.close_async().await.unwrap();
    assert_eq!(counts(&name).await, (1, 3, 300));
    let again = open(&name, "indexeddb").await;
    // The two superseded packs are gone; the newest is at least half live and stays as it is.
    assert_eq!(counts(&name).await, (1, 1, 100));
    let kv = plugin(&again, "p");
    assert_eq!(kv.get("k000".into()).unwrap().as_f64(), Some(4.0));
    assert_eq!(kv.get("k099".into()).unwrap().as_f64(), Some(3.0));
    assert_eq!(again.db().with_index(|ix| ix.len()), 100);
    again.close_async().await.unwrap();
}

/// A long-lived instance whose big commits keep replacing the same keys compacts on its own:
/// rows were overwritten in place, pack entries are only superseded, so without it the packs
/// would grow with every commit until the next open (here 140 commits of the same 64 keys:
/// 8,960 entries stored for 64 live).
#[wasm_bindgen_test]
async fn packs_superseded_by_later_commits_are_compacted_while_open() {
    let name = fresh_name("pack-compact-live");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    let rounds = 140;
    assert!(
        rounds * PACK_MIN as usize > 2 * COMPACT_MIN,
        "enough to be due once"
    );
    for round in 0..rounds {
        kv.set_many(entries(PACK_MIN, &round.to_string()), JsValue::UNDEFINED)
            .await
            .unwrap();
    }
    // The compaction runs after the commit that made it due; later commits go on meanwhile.
    let mut held = counts(&name).await.2;
    for _ in 0..100 {
        if held <= 20 * PACK_MIN {
            break;
        }
        sleep(50).await;
        held = counts(&name).await.2;
    }
    assert!(
        held <= 20 * PACK_MIN,
        "{held} entries held in packs for {PACK_MIN} live keys"
    );
    cd.close_async().await.unwrap();
    let again = open(&name, "indexeddb").await;
    let kv = plugin(&again, "p");
    let last = (rounds - 1) as f64;
    for i in [0, PACK_MIN - 1] {
        let k = format!("k{i:03}");
        assert_eq!(
            kv.get(k.as_str().into()).unwrap().as_f64(),
            Some(last),
            "{k}"
        );
    }
    assert_eq!(again.db().with_index(|ix| ix.len()), PACK_MIN as usize);
    again.close_async().await.unwrap();
}

/// Packs are compacted only when they hold superseded versions: a first big commit of new
/// keys (more entries than the doubling trigger alone waits for) queues no compaction, which
/// would read every pack and rewrite none; writing the same keys twice more does.
#[wasm_bindgen_test]
async fn packs_of_live_records_only_are_not_compacted() {
    let name = fresh_name("pack-compact-fresh");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    let n = 2 * COMPACT_MIN as u32 + PACK_MIN;
    kv.set_many(entries(n, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    assert_eq!(cd.db().compactions_queued(), 0, "{n} live records in packs");
    for v in ["2", "3"] {
        kv.set_many(entries(n, v), JsValue::UNDEFINED)
            .await
            .unwrap();
    }
    assert_eq!(
        cd.db().compactions_queued(),
        1,
        "two thirds of the entries superseded"
    );
    cd.close_async().await.unwrap();
}

/// Invariant (5): a key's newest version is only in the journal (the tab died before its
/// commit); compaction at the next open must keep the packed older version, the only copy in
/// IndexedDB, even though its pack is otherwise dead and gets rewritten.
#[wasm_bindgen_test]
async fn compaction_keeps_a_version_whose_replacement_is_only_journaled() {
    let name = fresh_name("pack-compact-journal");
    let cd = open(&name, "indexeddb").await;
    let kv = plugin(&cd, "p");
    kv.set_many(entries(100, "1"), JsValue::UNDEFINED)
        .await
        .unwrap();
    // k000 stays only in the first pack; the rest are superseded twice.
    for v in ["2", "3"] {
        let rest: Array = (1..100)
            .map(|i| JsValue::from(Array::of2(&format!("k{i:03}").into(), &js(v))))
            .collect();
        kv.set_many(rest.into(), JsValue::UNDEFINED).await.unwrap();
    }
    kv.set("k000".into(), 9.into()).unwrap();
    cd.simulate_crash();
    assert_eq!(
        counts(&name).await,
        (0, 3, 298),
        "k000 = 9 is only journaled"
    );
    let again = open(&name, "indexeddb").await;
    again.simulate_crash();
    // Compaction ran at that open (2 dead packs rewritten into one) and kept k000's version 1.
    let packed = packed_entries(&name).await;
    assert!(packed.contains(r#"["p","k000","1"]"#), "{packed}");
    assert_eq!(counts(&name).await.1, 2, "the first pack was rewritten");
    let third = open(&name, "indexeddb").await;
    let kv = plugin(&third, "p");
    assert_eq!(kv.get("k000".into()).unwrap().as_f64(), Some(9.0));
    assert_eq!(kv.get("k050".into()).unwrap().as_f64(), Some(3.0));
    third.close().await.unwrap();
}
