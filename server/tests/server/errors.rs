//! Every bad input gets its 4xx and its stable code, changes nothing, and never causes a 5xx.

use serde_json::json;

use crate::support::{now_ms, token, Device, Server, TestDb};

fn hlc(wall_ms: u64, node: &str) -> String {
    format!("{wall_ms:012x}-0000-{node}")
}

/// A valid request with one pushed record, as JSON, for tests to break.
fn valid() -> serde_json::Value {
    let node = "00000000000000a1";
    json!({
        "version": 2,
        "node": node,
        "push": [{ "plugin": "notes", "key": "k", "hlc": hlc(now_ms() - 1000, node), "value": { "json": "1" } }],
        "limit": 10
    })
}

fn with(mutate: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v = valid();
    mutate(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn bad_bodies_get_400_with_their_typed_code(db: &TestDb) {
    let server = Server::with_tokens(db);
    let alice = token("alice");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "truncated JSON",
            b"{\"version\":1,".to_vec(),
            400,
            "malformed_request",
        ),
        ("not JSON", b"hello".to_vec(), 400, "malformed_request"),
        ("empty body", Vec::new(), 400, "malformed_request"),
        ("an array", b"[1]".to_vec(), 400, "malformed_request"),
        (
            "unknown field",
            with(|v| v["extra"] = json!(true)),
            400,
            "malformed_request",
        ),
        (
            "missing limit",
            with(|v| drop(v.as_object_mut().unwrap().remove("limit"))),
            400,
            "malformed_request",
        ),
        (
            "limit not a number",
            with(|v| v["limit"] = json!("10")),
            400,
            "malformed_request",
        ),
        (
            "wrong version",
            with(|v| v["version"] = json!(1)),
            400,
            "unsupported_version",
        ),
        (
            "limit 0",
            with(|v| v["limit"] = json!(0)),
            400,
            "invalid_request",
        ),
        (
            "limit above max",
            with(|v| v["limit"] = json!(1001)),
            400,
            "invalid_request",
        ),
        (
            "invalid plugin id",
            with(|v| v["push"][0]["plugin"] = json!("Notes")),
            400,
            "invalid_plugin_id",
        ),
        (
            "invalid scope plugin",
            with(|v| v["plugins"] = json!(["a/b"])),
            400,
            "invalid_plugin_id",
        ),
        (
            "empty key",
            with(|v| v["push"][0]["key"] = json!("")),
            400,
            "invalid_key",
        ),
        (
            "key with NUL",
            with(|v| v["push"][0]["key"] = json!("a\u{0}b")),
            400,
            "invalid_key",
        ),
        (
            "key too long",
            with(|v| v["push"][0]["key"] = json!("k".repeat(1025))),
            400,
            "invalid_key",
        ),
        (
            "zero node",
            with(|v| v["node"] = json!("0000000000000000")),
            400,
            "invalid_node_id",
        ),
        (
            "bad hlc",
            with(|v| v["push"][0]["hlc"] = json!("yesterday")),
            400,
            "invalid_hlc",
        ),
        (
            "bad base64",
            with(|v| v["push"][0]["value"] = json!({ "bytes": "!!" })),
            400,
            "malformed_request",
        ),
        (
            "value too large",
            with(|v| v["push"][0]["value"] = json!({ "json": "x".repeat((1 << 20) + 1) })),
            400,
            "value_too_large",
        ),
        (
            "hlc beyond max drift",
            with(|v| v["push"][0]["hlc"] = json!(hlc(now_ms() + 120_000, "00000000000000a1"))),
            400,
            "clock_drift",
        ),
        (
            "watermark beyond max drift",
            with(
                |v| v["seen"] = json!({ "notes": { "00000000000000b2": hlc(now_ms() + 3_600_000, "00000000000000b2") } }),
            ),
            400,
            "clock_drift",
        ),
        (
            "push outside the scope",
            with(|v| v["plugins"] = json!(["other"])),
            400,
            "invalid_request",
        ),
        (
            "push not in HLC order",
            with(|v| {
                let mut second = v["push"][0].clone();
                second["key"] = json!("k2");
                second["hlc"] = json!(hlc(now_ms() - 5000, "00000000000000a1"));
                v["push"].as_array_mut().unwrap().push(second);
            }),
            400,
            "invalid_request",
        ),
    ];
    for (what, body, status, code) in cases {
        let reply = server.post(&alice, body);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{what}: {}",
            reply.text()
        );
        assert!(
            !reply.json()["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
    }
    assert_nothing_stored(&server);
    // The valid request itself passes, so the cases above failed for their own reason.
    assert_eq!(
        server
            .post(&alice, serde_json::to_vec(&valid()).unwrap())
            .status,
        200
    );
}

fn transport_errors_get_their_4xx(db: &TestDb) {
    let server = Server::with_tokens(db);
    let body = serde_json::to_vec(&valid()).unwrap();
    let auth = format!("Bearer {}", token("alice"));
    let json = ("content-type", "application/json");
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("no token", "POST", vec![json], 401, "unauthorized"),
        (
            "unknown token",
            "POST",
            vec![json, ("authorization", "Bearer token-nobody-0123456789")],
            401,
            "unauthorized",
        ),
        (
            "dev token without dev mode",
            "POST",
            vec![json, ("authorization", "Bearer dev-token-alice")],
            401,
            "unauthorized",
        ),
        (
            "not bearer",
            "POST",
            vec![json, ("authorization", "Basic YWxpY2U6cHc=")],
            401,
            "unauthorized",
        ),
        (
            "empty bearer",
            "POST",
            vec![json, ("authorization", "Bearer ")],
            401,
            "unauthorized",
        ),
        (
            "text/plain",
            "POST",
            vec![("content-type", "text/plain"), ("authorization", &auth)],
            415,
            "unsupported_media_type",
        ),
        (
            "form",
            "POST",
            vec![
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &auth),
            ],
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            "POST",
            vec![("authorization", &auth)],
            415,
            "unsupported_media_type",
        ),
        (
            "GET",
            "GET",
            vec![("authorization", &auth)],
            405,
            "method_not_allowed",
        ),
        (
            "PUT",
            "PUT",
            vec![json, ("authorization", &auth)],
            405,
            "method_not_allowed",
        ),
        (
            "DELETE",
            "DELETE",
            vec![("authorization", &auth)],
            405,
            "method_not_allowed",
        ),
    ];
    for (what, method, headers, status, code) in cases {
        let send_body = if method == "POST" || method == "PUT" {
            body.clone()
        } else {
            Vec::new()
        };
        let reply = server.send(method, "/sync/exchange", &headers, send_body);
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{what}: {}",
            reply.text()
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        if status == 401 {
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{what}");
        }
    }
    // A JSON media type with parameters is fine.
    let reply = server.send(
        "POST",
        "/sync/exchange",
        &[
            ("content-type", "Application/JSON; charset=utf-8"),
            ("authorization", &auth),
        ],
        body,
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Unknown paths and methods on other routes are JSON too.
    let reply = server.send("GET", "/nope", &[], Vec::new());
    assert_eq!((reply.status, reply.code().as_str()), (404, "not_found"));
    let reply = server.send("POST", "/health", &[json], b"{}".to_vec());
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (405, "method_not_allowed")
    );
}

fn oversized_bodies_get_413_declared_or_streamed(db: &TestDb) {
    let server = Server::with_tokens(db);
    let max = 8 << 20;
    let auth = format!(
        "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
        token("alice")
    );
    // Exactly at the limit is read (and then fails to parse).
    let at_limit = server.post(&token("alice"), vec![b' '; max]);
    assert_eq!(
        (at_limit.status, at_limit.code().as_str()),
        (400, "malformed_request")
    );
    // Declared too large: refused from the header, before the client sends the body.
    let head = format!("POST /sync/exchange HTTP/1.1\r\nhost: x\r\n{auth}content-length: {}\r\nexpect: 100-continue\r\n\r\n", max + 1);
    let (status, body) = server.raw(head.as_bytes());
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );
    // Chunked, so no length is declared: the limit applies while reading.
    let mut chunked = format!(
        "POST /sync/exchange HTTP/1.1\r\nhost: x\r\n{auth}transfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let chunk = 1 << 20;
    for _ in 0..=max / chunk {
        chunked.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', chunk));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, body) = server.raw(&chunked);
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );
    // An unauthenticated huge body is refused before it is read.
    let head = format!("POST /sync/exchange HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", max + 1);
    assert_eq!(server.raw(head.as_bytes()).0, 401);
    assert_nothing_stored(&server);
}

fn garbage_and_truncations_never_cause_a_5xx(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut rng = fastrand::Rng::with_seed(9);
    let valid = serde_json::to_vec(&valid()).unwrap();
    let mut bodies: Vec<Vec<u8>> = (0..valid.len())
        .step_by(7)
        .map(|n| valid[..n].to_vec())
        .collect();
    for _ in 0..100 {
        let mut b = valid.clone();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(0..b.len());
            b[i] = rng.u8(..);
        }
        bodies.push(b);
    }
    bodies.extend((0..50).map(|_| (0..rng.usize(0..200)).map(|_| rng.u8(..)).collect()));
    for body in bodies {
        let reply = server.post(&token("alice"), body.clone());
        assert!(
            reply.status == 200 || (400..500).contains(&reply.status),
            "{} for {:?}: {}",
            reply.status,
            String::from_utf8_lossy(&body),
            reply.text()
        );
        if reply.status != 200 {
            let _ = reply.code();
        }
    }
}

/// A fresh device of alice pulls nothing.
fn assert_nothing_stored(server: &Server) {
    let mut observer = Device::new(&token("alice"));
    let stats = observer.sync(server, 100);
    assert_eq!(stats.applied, 0);
    assert!(observer.store.records().next().is_none());
}

on_both!(bad_bodies_get_400_with_their_typed_code);
on_both!(transport_errors_get_their_4xx);
on_both!(oversized_bodies_get_413_declared_or_streamed);
on_both!(garbage_and_truncations_never_cause_a_5xx);
