//! Timings for the lead to quote (printed, not asserted):
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test --release --target wasm32-unknown-unknown --test bench_store -- --nocapture`
#![cfg(target_arch = "wasm32")]

mod support;

use clientdata::browser::js::{cd_put_rows, cd_tx_done};
use clientdata::core::{Hlc, Key, NodeId, PluginId, Record, Value};
use clientdata::store::codec::record_to_row;
use js_sys::Array;
use support::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::IdbTransactionMode;

wasm_bindgen_test_configure!(run_in_browser);

fn now() -> f64 {
    js_sys::Date::now()
}

fn rate(n: usize, ms: f64) -> String {
    format!(
        "{n} in {ms:.1} ms = {:.0}/s",
        n as f64 * 1000.0 / ms.max(0.001)
    )
}

fn rows(n: usize) -> Array {
    let p = PluginId::new("bench").unwrap();
    let node = NodeId::new(1).unwrap();
    (0..n)
        .map(|i| {
            record_to_row(&Record::put(
                p.clone(),
                Key::new(format!("key-{i:05}")).unwrap(),
                Value::Json(format!("{{\"i\":{i},\"text\":\"some value\"}}")),
                Hlc::new(1, i as u16, node).unwrap(),
            ))
        })
        .collect()
}

async fn raw_puts(n: usize, if_newer: bool) -> f64 {
    let db: web_sys::IdbDatabase = clientdata::store::schema::open(&fresh_name("raw"))
        .await
        .unwrap()
        .into();
    let rows = rows(n);
    let start = now();
    let tx = db
        .transaction_with_str_and_mode("records", IdbTransactionMode::Readwrite)
        .unwrap();
    let done = JsFuture::from(cd_tx_done(&tx));
    cd_put_rows(&tx.object_store("records").unwrap(), &rows, if_newer).unwrap();
    done.await.unwrap();
    let ms = now() - start;
    db.close();
    ms
}

async fn raw_awaited_single_puts(n: usize) -> f64 {
    let db: web_sys::IdbDatabase = clientdata::store::schema::open(&fresh_name("keyval"))
        .await
        .unwrap()
        .into();
    let rows = rows(n);
    let start = now();
    for row in rows.iter() {
        let tx = db
            .transaction_with_str_and_mode("records", IdbTransactionMode::Readwrite)
            .unwrap();
        let done = JsFuture::from(cd_tx_done(&tx));
        tx.object_store("records").unwrap().put(&row).unwrap();
        done.await.unwrap();
    }
    let ms = now() - start;
    db.close();
    ms
}

#[wasm_bindgen_test]
async fn measure_durable_sets_and_set_flush() {
    let awaited = raw_awaited_single_puts(300).await;
    console_log!(
        "baseline idb-keyval-style awaited single puts: {}",
        rate(300, awaited)
    );
    let raw = raw_puts(10_000, false).await;
    console_log!(
        "baseline raw IndexedDB, 10k puts in one transaction: {}",
        rate(10_000, raw)
    );
    let raw_cond = raw_puts(10_000, true).await;
    console_log!(
        "raw IndexedDB, 10k get+put-if-newer in one transaction: {}",
        rate(10_000, raw_cond)
    );

    let cd = open(&fresh_name("bench"), "indexeddb").await;
    let kv = plugin(&cd, "bench");
    let value = js(r#"{"text": "some value", "n": 1}"#);
    let start = now();
    for i in 0..1_000 {
        kv.set(JsValue::from_str(&format!("single-{i}")), value.clone())
            .unwrap();
    }
    let sync_ms = now() - start;
    kv.flush().await.unwrap();
    let total_ms = now() - start;
    console_log!(
        "clientdata 1,000 durable set() (journaled on return): {}; until committed: {}",
        rate(1_000, sync_ms),
        rate(1_000, total_ms)
    );

    let start = now();
    for i in 0..10_000 {
        kv.set(JsValue::from_str(&format!("bulk-{i:05}")), value.clone())
            .unwrap();
    }
    let sync_ms = now() - start;
    kv.flush().await.unwrap();
    let total_ms = now() - start;
    console_log!(
        "clientdata 10,000 set() + flush(): {} (set loop alone {:.1} ms); ratio to raw one-transaction puts: {:.2}",
        rate(10_000, total_ms),
        sync_ms,
        raw / total_ms
    );
    cd.close().await.unwrap();
}
