//! The hand-written wire (`core::wire`) against serde_json and the types' derives: seeded random
//! requests written by hand are byte for byte serde_json's text and read back equal; seeded
//! random replies written by serde_json are read by hand equal; hostile and mutated replies are
//! accepted by hand exactly when serde_json accepts them, with the same value.
#![cfg(not(target_arch = "wasm32"))]

mod common {
    pub mod wire_oracle;
}

use clientdata::core::content::{ContentKind, ContentRef, Digest};
use clientdata::core::resync::{Cursor, ResyncRequest, ResyncResponse};
use clientdata::core::{
    DeviceEpoch, ExchangeRequest, ExchangeResponse, Hlc, Key, NodeId, PluginId, Record, Value,
    VersionVector, Watermarks,
};
use common::wire_oracle::{agree_exchange, agree_resync};
use fastrand::Rng;

/// Characters a string may be made of: plain, JSON's escapes, controls, multi-byte, the
/// line separators JS once choked on.
const CHARS: &[char] = &[
    'a', 'z', '0', '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{1}', '\u{1f}', '\u{7f}',
    'é', '€', '😀', '\u{2028}', '\u{2029}', ' ', '{', ':',
];

fn text(rng: &mut Rng, max: usize) -> String {
    (0..rng.usize(0..=max))
        .map(|_| CHARS[rng.usize(..CHARS.len())])
        .collect()
}
fn plugin(rng: &mut Rng) -> PluginId {
    PluginId::new(["a", "notes", "b-2", "c.d_e", "9"][rng.usize(..5)]).unwrap()
}
fn key(rng: &mut Rng) -> Key {
    Key::new(format!(
        "k{}",
        text(rng, 6).replace(|c: char| c.is_ascii_control(), "")
    ))
    .unwrap()
}
fn node(rng: &mut Rng) -> NodeId {
    NodeId::new(if rng.bool() {
        rng.u64(1..4)
    } else {
        rng.u64(1..)
    })
    .unwrap()
}
fn hlc(rng: &mut Rng) -> Hlc {
    Hlc::new(rng.u64(0..1 << 48), rng.u16(..), node(rng)).unwrap()
}
fn value(rng: &mut Rng) -> Option<Value> {
    match rng.u8(0..4) {
        0 => None,
        1 => Some(Value::Json(text(rng, 40))),
        2 => Some(Value::Bytes(
            (0..rng.usize(0..20)).map(|_| rng.u8(..)).collect(),
        )),
        _ => Some(Value::Ref(ContentRef {
            kind: if rng.bool() {
                ContentKind::Json
            } else {
                ContentKind::Bytes
            },
            size: rng.u64(..),
            sha256: Digest([rng.u8(..); 32]),
        })),
    }
}
fn record(rng: &mut Rng) -> Record {
    Record {
        plugin: plugin(rng),
        key: key(rng),
        hlc: hlc(rng),
        value: value(rng),
    }
}
fn records(rng: &mut Rng) -> Vec<Record> {
    (0..rng.usize(0..4)).map(|_| record(rng)).collect()
}
fn watermarks(rng: &mut Rng) -> Watermarks {
    let mut w = Watermarks::new();
    for _ in 0..rng.usize(0..4) {
        let vector: VersionVector = (0..rng.usize(0..3))
            .map(|_| (node(rng), hlc(rng)))
            .collect();
        w.set(plugin(rng), vector);
    }
    w
}
fn some<T>(rng: &mut Rng, make: impl FnOnce(&mut Rng) -> T) -> Option<T> {
    rng.bool().then(|| make(rng))
}
fn plugins(rng: &mut Rng) -> Option<Vec<PluginId>> {
    some(rng, |rng| {
        (0..rng.usize(0..3)).map(|_| plugin(rng)).collect()
    })
}

fn exchange_request(rng: &mut Rng) -> ExchangeRequest {
    ExchangeRequest {
        version: rng.u32(..),
        node: node(rng),
        plugins: plugins(rng),
        seen: watermarks(rng),
        push: records(rng),
        limit: rng.u32(..),
        secret: some(rng, |rng| text(rng, 20)),
        dataset: some(rng, |rng| text(rng, 20)),
        coverage_from: some(rng, plugin),
        device: some(rng, |rng| DeviceEpoch {
            id: text(rng, 10),
            epoch: text(rng, 10),
        }),
    }
}
fn resync_request(rng: &mut Rng) -> ResyncRequest {
    ResyncRequest {
        version: rng.u32(..),
        node: node(rng),
        plugins: plugins(rng),
        after: some(rng, cursor),
        limit: rng.u32(..),
        secret: some(rng, |rng| text(rng, 20)),
        dataset: some(rng, |rng| text(rng, 20)),
    }
}
fn cursor(rng: &mut Rng) -> Cursor {
    Cursor {
        plugin: plugin(rng),
        key: key(rng),
    }
}
fn exchange_response(rng: &mut Rng) -> ExchangeResponse {
    ExchangeResponse {
        version: rng.u32(..),
        records: records(rng),
        coverage: watermarks(rng),
        has_more: rng.bool(),
        coverage_next: some(rng, plugin),
        collected: watermarks(rng),
        full_resync: rng.bool(),
        replaced_store_epoch: some(rng, |rng| text(rng, 10)),
    }
}
fn resync_response(rng: &mut Rng) -> ResyncResponse {
    ResyncResponse {
        version: rng.u32(..),
        rows: records(rng),
        coverage: watermarks(rng),
        next: some(rng, cursor),
    }
}

#[test]
fn requests_written_by_hand_are_serde_jsons_text() {
    let mut rng = Rng::with_seed(17);
    for _ in 0..5_000 {
        let request = exchange_request(&mut rng);
        let text = request.to_json();
        assert_eq!(text, serde_json::to_string(&request).unwrap());
        assert_eq!(
            serde_json::from_str::<ExchangeRequest>(&text).unwrap(),
            request
        );
        let request = resync_request(&mut rng);
        let text = request.to_json();
        assert_eq!(text, serde_json::to_string(&request).unwrap());
        assert_eq!(
            serde_json::from_str::<ResyncRequest>(&text).unwrap(),
            request
        );
    }
}

#[test]
fn replies_written_by_serde_json_are_read_by_hand_equal() {
    let mut rng = Rng::with_seed(18);
    for _ in 0..5_000 {
        // serde_json's reading, not the original: `collected` of empty vectors is not written.
        let reply = exchange_response(&mut rng);
        let text = serde_json::to_string(&reply).unwrap();
        let read: ExchangeResponse = serde_json::from_str(&text).unwrap();
        assert_eq!(
            ExchangeResponse::from_json(&text),
            Ok(read.clone()),
            "{text}"
        );
        let pretty = serde_json::to_string_pretty(&reply).unwrap();
        assert_eq!(ExchangeResponse::from_json(&pretty), Ok(read));
        let page = resync_response(&mut rng);
        let text = serde_json::to_string(&page).unwrap();
        assert_eq!(ResyncResponse::from_json(&text), Ok(page), "{text}");
    }
}

const HLC: &str = "018bcfe5a21b-0004-9f1c2e0a4b3d5e6f";

fn reply_with(members: &str) -> String {
    format!(r#"{{"version":2,"records":[],"coverage":{{}},"hasMore":false{members}}}"#)
}
fn reply_with_record(record: &str) -> String {
    format!(r#"{{"version":2,"records":[{record}],"coverage":{{}},"hasMore":false}}"#)
}

#[test]
fn hostile_replies_are_accepted_exactly_when_serde_json_accepts_them() {
    let sha = "ab".repeat(32);
    let accepted = [
        reply_with(""),
        reply_with(r#","coverageNext":null,"replacedStoreEpoch":null,"fullResync":true"#),
        reply_with(&format!(
            r#","collected":{{"a":{{"0000000000000001":"{HLC}"}}}}"#
        )),
        // A repeated plugin or node in a map keeps the last, as serde's BTreeMap does.
        reply_with(&format!(
            r#","collected":{{"a":{{"0000000000000001":"{HLC}"}},"a":{{}}}}"#
        )),
        reply_with(&format!(
            r#","collected":{{"a":{{"0000000000000001":"{HLC}","0000000000000001":"000000000001-0000-0000000000000002"}}}}"#
        )),
        format!(" \n{}\t\r\n ", reply_with("")),
        r#"{"hasMore":true,"coverage":{"a":{}},"records":[],"version":4294967295}"#.into(),
        reply_with_record(&format!(r#"{{"plugin":"a","key":"k","hlc":"{HLC}"}}"#)),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":null}}"#
        )),
        reply_with_record(&format!(
            r#"{{"value":{{"json":"{{\"a\":\"\u00e9\ud83d\ude00\/\"}}"}},"plugin":"a","key":"\u006b","hlc":"{HLC}"}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"bytes":"AP8H"}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"bytes":""}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":"bytes","size":18446744073709551615,"sha256":"{sha}"}}}}}}"#
        )),
        // A member name may be escaped: it is the decoded name that counts.
        r#"{"versio\u006e":2,"records":[],"coverage":{},"hasMore":false}"#.into(),
    ];
    for text in &accepted {
        assert!(agree_exchange(text), "refused: {text}");
    }
    let refused = [
        String::new(),
        "null".into(),
        "<!doctype html><title>proxy error</title>".into(),
        r#"{"version":2,"records":["#.into(),
        r#"{"version":2,"records":"nope","coverage":{},"hasMore":false}"#.into(),
        r#"{"version":2,"records":[],"coverage":{}}"#.into(),
        r#"{"version":2,"records":[],"hasMore":false}"#.into(),
        reply_with(r#","extra":1"#),
        reply_with(r#","version":2"#),
        reply_with(r#","hasMore":true"#),
        reply_with(r#","collected":null"#),
        reply_with(r#","fullResync":null"#),
        reply_with(r#","coverageNext":"Bad""#),
        reply_with(r#","coverageNext":7"#),
        reply_with(r#","replacedStoreEpoch":1"#),
        format!("{} x", reply_with("")),
        format!("{},", reply_with("")),
        r#"{"version":-2,"records":[],"coverage":{},"hasMore":false}"#.into(),
        r#"{"version":2.0,"records":[],"coverage":{},"hasMore":false}"#.into(),
        r#"{"version":2e0,"records":[],"coverage":{},"hasMore":false}"#.into(),
        r#"{"version":02,"records":[],"coverage":{},"hasMore":false}"#.into(),
        r#"{"version":4294967296,"records":[],"coverage":{},"hasMore":false}"#.into(),
        r#"{"version":99999999999999999999999,"records":[],"coverage":{},"hasMore":false}"#.into(),
        r#"{"version":2,"records":[],"coverage":{},"hasMore":False}"#.into(),
        r#"{"version":2,"records":[],"coverage":{},"hasMore":0}"#.into(),
        r#"{"version":2,"records":[],"coverage":{},"hasMore":false,}"#.into(),
        r#"{"version":2,"records":[,],"coverage":{},"hasMore":false}"#.into(),
        r#"{'version':2}"#.into(),
        r#"{"version":2,"records":[],"coverage":{"Bad":{}},"hasMore":false}"#.into(),
        r#"{"version":2,"records":[],"coverage":{"a":{"0000000000000000":"x"}},"hasMore":false}"#
            .into(),
        format!(
            r#"{{"version":2,"records":[],"coverage":{{"a":{{"0000000000000001":"{}"}}}},"hasMore":false}}"#,
            HLC.to_uppercase()
        ),
        r#"{"version":2,"records":[],"coverage":{"a":[]},"hasMore":false}"#.into(),
        reply_with_record(r#"{"plugin":"a","key":"k"}"#),
        reply_with_record(&format!(r#"{{"plugin":"a","key":"","hlc":"{HLC}"}}"#)),
        reply_with_record(&format!(r#"{{"plugin":"a","key":"\u0000","hlc":"{HLC}"}}"#)),
        reply_with_record(&format!(r#"{{"plugin":"a","key":"\ud800","hlc":"{HLC}"}}"#)),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"\udc00\ud800","hlc":"{HLC}"}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"\ud800\u0041","hlc":"{HLC}"}}"#
        )),
        reply_with_record(&format!(r#"{{"plugin":"a","key":"\x","hlc":"{HLC}"}}"#)),
        reply_with_record(&format!(
            "{{\"plugin\":\"a\",\"key\":\"a\tb\",\"hlc\":\"{HLC}\"}}"
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","key":"j","hlc":"{HLC}"}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","extra":1}}"#
        )),
        reply_with_record(r#"{"plugin":"a","key":"k","hlc":"nope"}"#),
        reply_with_record(r#"{"plugin":"a","key":"k","hlc":"000000000001-0000-0000000000000000"}"#),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":"json"}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"text":"1"}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"json":"1","bytes":""}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"json":1}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"bytes":"!!"}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"bytes":"AP8"}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"bytes":"AP9="}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":"text","size":1,"sha256":"{sha}"}}}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":"json","size":-1,"sha256":"{sha}"}}}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":"json","size":18446744073709551616,"sha256":"{sha}"}}}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":"json","size":1,"sha256":"{}"}}}}}}"#,
            sha.to_uppercase()
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":"json","size":1}}}}}}"#
        )),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":"json","size":1,"sha256":"{sha}","x":0}}}}}}"#
        )),
    ];
    for text in &refused {
        assert!(!agree_exchange(text), "accepted: {text}");
    }
    assert!(agree_resync(
        r#"{"version":2,"rows":[],"coverage":{},"next":null}"#
    ));
    assert!(agree_resync(
        r#"{"version":2,"rows":[],"coverage":{},"next":{"plugin":"a","key":"b"}}"#
    ));
    for text in [
        r#"{"version":2,"rows":[],"coverage":{}"#,
        r#"{"version":2,"rows":[],"coverage":{},"next":{"plugin":"a"}}"#,
        r#"{"version":2,"rows":[],"coverage":{},"next":{"plugin":"a","key":"b","x":1}}"#,
        r#"{"version":2,"rows":[],"coverage":{},"hasMore":false}"#,
        r#"{"version":2,"records":[],"coverage":{}}"#,
    ] {
        assert!(!agree_resync(text), "accepted: {text}");
    }
}

#[test]
fn serde_quirks_the_hand_reader_refuses_on_purpose() {
    let sha = "ab".repeat(32);
    for text in [
        "[2,[],{},false]".to_string(),
        reply_with_record(&format!(r#"["a","k","{HLC}"]"#)),
        reply_with_record(&format!(
            r#"{{"plugin":"a","key":"k","hlc":"{HLC}","value":{{"ref":{{"kind":{{"json":null}},"size":1,"sha256":"{sha}"}}}}}}"#
        )),
    ] {
        assert!(
            serde_json::from_str::<ExchangeResponse>(&text).is_ok(),
            "{text}"
        );
        assert!(ExchangeResponse::from_json(&text).is_err(), "{text}");
        assert!(!agree_exchange(&text));
    }
}

#[test]
fn mutated_replies_agree_with_serde_json() {
    let mut rng = Rng::with_seed(19);
    let tokens: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        ",",
        ":",
        "\\",
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5",
        "1e3",
        "01",
        "4294967296",
        "18446744073709551616",
        "\\u0000",
        "\\ud800",
        "\\udc00",
        "\\n",
        "é",
        "\u{1}",
        " ",
        "\"value\":",
        "{\"json\":\"1\"}",
        "\"a\":{}",
        HLC,
        "0000000000000000",
        "\"extra\":1,",
    ];
    let mut accepted = 0;
    let total = 30_000;
    for i in 0..total {
        let mut text = if i % 2 == 0 {
            serde_json::to_string(&exchange_response(&mut rng)).unwrap()
        } else {
            serde_json::to_string(&resync_response(&mut rng)).unwrap()
        };
        for _ in 0..rng.usize(0..3) {
            let mut at = rng.usize(..=text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.u8(0..4) {
                0 => text.truncate(at),
                1 => {
                    let end = (at + rng.usize(1..4)).min(text.len());
                    if text.is_char_boundary(end) {
                        text.replace_range(at..end, "");
                    }
                }
                _ => text.insert_str(at, tokens[rng.usize(..tokens.len())]),
            }
        }
        let ok = if i % 2 == 0 {
            agree_exchange(&text)
        } else {
            agree_resync(&text)
        };
        accepted += usize::from(ok);
    }
    // Both outcomes must be well represented, or the comparison proves little.
    assert!(
        accepted > total / 10 && accepted < total * 9 / 10,
        "{accepted} of {total} accepted"
    );
}

#[test]
fn errors_name_the_field_and_the_byte() {
    let text = reply_with_record(r#"{"plugin":"a","key":"k","hlc":"nope"}"#);
    let err = ExchangeResponse::from_json(&text).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("records[0].hlc: [invalid_hlc]"),
        "{message}"
    );
    assert_eq!(err.offset, text.find("\"nope\"").unwrap(), "{message}");
    let err = ExchangeResponse::from_json(
        r#"{"version":2,"records":"nope","coverage":{},"hasMore":false}"#,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "records: expected an array at byte 23");
}

/// A reply within the 8 MiB reply cap can cover 600,000 plugins; read one by one into the
/// sorted map, in reverse order, that moved O(n²) entries (minutes of a tab's time for one
/// lying server's reply). Each level is sorted once: seconds even in a debug build; the
/// thread gets a minute.
#[test]
fn a_reply_covering_many_plugins_in_reverse_order_is_read_in_one_sort() {
    let n = 600_000;
    let coverage = (0..n)
        .rev()
        .map(|i| format!(r#""p{i}":{{}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let text = format!(r#"{{"version":2,"records":[],"coverage":{{{coverage}}},"hasMore":false}}"#);
    assert!(text.len() < clientdata::core::Limits::default().max_body_bytes);
    let (done, read) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reply = ExchangeResponse::from_json(&text).map(|r| r.coverage.plugins().count());
        let _ = done.send(reply.map_err(|e| e.to_string()));
    });
    let plugins = read
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("read within a minute")
        .unwrap();
    assert_eq!(plugins, n);
}
