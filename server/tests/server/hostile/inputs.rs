//! Bad input at every layer gets a typed 4xx with the JSON error body and changes nothing; many
//! large bodies at once stay within the memory budget.

use std::io::Write;
use std::time::{Duration, Instant};

use clientdata::core::{ExchangeRequest, Limits};
use serde_json::json;

use super::{connect, exchange_head, peak_rss, raw, read_answer};
use crate::support::{now_ms, token, Device, Server, TestDb};

fn hlc(wall_ms: u64) -> String {
    format!("{wall_ms:012x}-0000-00000000000000a1")
}

/// A valid push of one record.
fn push(value: serde_json::Value) -> serde_json::Value {
    json!({
        "version": 2,
        "node": "00000000000000a1",
        "push": [{ "plugin": "notes", "key": "k", "hlc": hlc(now_ms() - 1000), "value": value }],
        "limit": 10
    })
}

/// A fresh device of alice pulls nothing.
fn assert_nothing_stored(server: &Server) {
    let mut observer = Device::new(&token("alice"));
    observer.sync(server, 100);
    assert!(
        observer.store.records().next().is_none(),
        "something was stored"
    );
}

#[test]
fn the_http_layers_own_answers_carry_the_json_error_body() {
    let db = TestDb::sqlite();
    let server = Server::with_tokens(&db);
    let auth = format!("authorization: Bearer {}\r\n", token("alice"));
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(40 << 10)
    );
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..100)
            .map(|i| format!("x-h{i}: 1\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("head over 32 KiB", huge_header, 431, "headers_too_large"),
        ("100 headers", many_headers, 431, "headers_too_large"),
        ("bad Content-Length", format!("POST /sync/exchange HTTP/1.1\r\nhost: x\r\n{auth}content-length: abc\r\n\r\n"), 400, "bad_request"),
        ("two Content-Lengths", format!("POST /sync/exchange HTTP/1.1\r\nhost: x\r\n{auth}content-length: 2\r\ncontent-length: 3\r\n\r\n{{}}"), 400, "bad_request"),
        ("garbage request line", "\u{1}\u{2} nonsense\r\n\r\n".into(), 400, "bad_request"),
        ("header without colon", "GET /health HTTP/1.1\r\nhost x\r\n\r\n".into(), 400, "bad_request"),
        ("bad chunk size", format!("POST /sync/exchange HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"), 400, "body_read_failed"),
        ("unknown path", "GET /nope HTTP/1.1\r\nhost: x\r\n\r\n".into(), 404, "not_found"),
        ("wrong method", "DELETE /health HTTP/1.1\r\nhost: x\r\n\r\n".into(), 405, "method_not_allowed"),
    ];
    for (what, request, status, code) in cases {
        let answer =
            raw(&server, request.as_bytes()).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(
            (answer.status, answer.code().as_deref()),
            (status, Some(code)),
            "{what}: {answer:?}"
        );
        answer.assert_documented_error(what);
    }
    // A keep-alive connection survives the router's own 404.
    let mut stream = connect(&server);
    for (path, status) in [("/nope", 404), ("/health", 200)] {
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let answer = read_answer(&mut stream, Duration::from_secs(5)).unwrap();
        assert_eq!(answer.status, status, "{path}");
    }
}

#[test]
fn values_that_are_not_json_and_unknown_fields_are_refused_and_nothing_is_stored() {
    let db = TestDb::sqlite();
    let server = Server::with_tokens(&db);
    let alice = token("alice");
    let mut unknown_in_record = push(json!({ "json": "1" }));
    unknown_in_record["push"][0]["extra"] = json!(1);
    let cases = [
        (
            "not JSON",
            push(json!({ "json": "{not json" })),
            "invalid_json",
        ),
        ("empty", push(json!({ "json": "" })), "invalid_json"),
        ("two values", push(json!({ "json": "1 2" })), "invalid_json"),
        ("NaN", push(json!({ "json": "NaN" })), "invalid_json"),
        (
            "unknown field in a record",
            unknown_in_record,
            "malformed_request",
        ),
        (
            "unknown field in a value",
            push(json!({ "json": "1", "bytes": "" })),
            "malformed_request",
        ),
        (
            "unknown value kind",
            push(json!({ "text": "1" })),
            "malformed_request",
        ),
    ];
    for (what, body, code) in cases {
        let reply = server.post(&alice, serde_json::to_vec(&body).unwrap());
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, code),
            "{what}: {}",
            reply.text()
        );
        if code == "invalid_json" {
            // The message names the record.
            assert!(
                reply.json()["message"]
                    .as_str()
                    .unwrap()
                    .contains("notes/k@"),
                "{}",
                reply.text()
            );
        }
    }
    assert_nothing_stored(&server);
    // Valid JSON of every kind passes.
    for value in ["{\"a\":[1,2.5e3,null]}", "\"é\"", "-0", "true"] {
        let reply = server.post(
            &alice,
            serde_json::to_vec(&push(json!({ "json": value }))).unwrap(),
        );
        assert_eq!(reply.status, 200, "{value}: {}", reply.text());
    }
}

/// `{"seen":{"p":{<node>:<hlc>, ...}}}` of about `size` bytes: parsing it costs memory.
fn big_seen_body(size: usize) -> Vec<u8> {
    let wall = now_ms() - 60_000;
    let mut entries = String::with_capacity(size);
    let mut i = 1u64;
    while entries.len() + 200 < size {
        if i > 1 {
            entries.push(',');
        }
        entries.push_str(&format!("\"{i:016x}\":\"{wall:012x}-0000-{i:016x}\""));
        i += 1;
    }
    format!("{{\"version\":2,\"node\":\"00000000000000a1\",\"limit\":1,\"seen\":{{\"p\":{{{entries}}}}}}}").into_bytes()
}

#[test]
fn many_large_bodies_at_once_stay_within_the_memory_budget() {
    const BUDGET: usize = 32 << 20;
    const CLIENTS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let tokens = crate::support::tokens_file(dir.path());
    let server = Server::start(
        dir.path(),
        &[
            "--database",
            "db.sqlite",
            "--tokens",
            tokens.to_str().unwrap(),
            "--max-inflight-bytes",
            &BUDGET.to_string(),
        ],
        &[],
    );
    let body = std::sync::Arc::new(big_seen_body(8_000_000));
    let base = peak_rss(server.pid());
    let started = Instant::now();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let answers: Vec<(u16, Option<String>, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let body = std::sync::Arc::clone(&body);
                let addr = &addr;
                s.spawn(move || {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    let _ = stream.write_all(exchange_head(body.len()).as_bytes());
                    let _ = stream.write_all(&body);
                    let answer =
                        read_answer(&mut stream, Duration::from_secs(60)).expect("an answer");
                    (
                        answer.status,
                        answer.code(),
                        answer.head.contains("retry-after:"),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let peak = peak_rss(server.pid());
    let served = answers.iter().filter(|a| a.0 == 200).count();
    for (status, code, retry_after) in &answers {
        match status {
            200 => {}
            503 => assert!(
                code.as_deref() == Some("overloaded") && *retry_after,
                "{code:?}"
            ),
            other => panic!("answer {other} {code:?}"),
        }
    }
    assert!(served >= 1, "nothing was served");
    let grown = peak.saturating_sub(base);
    println!(
        "{CLIENTS} x {} MB bodies in {} ms: {served} served, {} refused; peak RSS {} MiB (+{} MiB, budget {} MiB)",
        body.len() / 1_000_000,
        started.elapsed().as_millis(),
        CLIENTS - served,
        peak >> 20,
        grown >> 20,
        BUDGET >> 20
    );
    // Bodies in flight within the budget, parsed at up to about 4 times their size, plus slack
    // for connection buffers and the runtime.
    assert!(
        grown < 4 * BUDGET as u64 + (64 << 20),
        "peak grew by {} MiB",
        grown >> 20
    );
}

#[test]
fn random_malformed_requests_never_cause_a_5xx_or_a_change() {
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    println!("random malformed requests: HOSTILE_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let tokens = crate::support::tokens_file(dir.path());
    // Short deadlines: a mutated head or length that leaves the server waiting is answered fast.
    let server = Server::start(
        dir.path(),
        &[
            "--database",
            "db.sqlite",
            "--tokens",
            tokens.to_str().unwrap(),
            "--header-timeout-secs",
            "0.3",
            "--body-timeout-secs",
            "0.3",
        ],
        &[],
    );
    let codes = super::documented_codes();
    let valid = serde_json::to_vec(&push(json!({ "json": "{\"a\":1}" }))).unwrap();
    let alphabet: &[u8] = b"{}[]\":,0123456789abcdef-\\ \r\n\x00\xff%/";
    let started = Instant::now();
    let (mut tried, mut typed) = (0, 0);
    while tried < 300 && started.elapsed() < Duration::from_secs(10) {
        let mut body = valid.clone();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(..body.len());
            match rng.u8(..3) {
                0 => body[i] = alphabet[rng.usize(..alphabet.len())],
                1 => drop(body.remove(i)),
                _ => body.insert(i, alphabet[rng.usize(..alphabet.len())]),
            }
        }
        // A mutation the protocol still accepts would be stored: not a bad input.
        if serde_json::from_slice::<ExchangeRequest>(&body)
            .is_ok_and(|r| r.validate(&Limits::default(), now_ms()).is_ok())
        {
            continue;
        }
        let mut head = exchange_head(body.len()).into_bytes();
        if rng.u8(..4) == 0 {
            // Break the HTTP layer instead: a byte of the head.
            let i = rng.usize(..head.len() - 4);
            head[i] = alphabet[rng.usize(..alphabet.len())];
        }
        let request = [head, body.clone()].concat();
        tried += 1;
        let shown = String::from_utf8_lossy(&request);
        let answer = raw(&server, &request)
            .unwrap_or_else(|| panic!("seed {seed}: no answer for {shown:?}"));
        assert!(
            (400..500).contains(&answer.status),
            "seed {seed}: {} for {shown:?}",
            answer.status
        );
        match answer.code() {
            Some(code) if codes.contains(&code) => typed += 1,
            other => panic!("seed {seed}: {other:?} in {answer:?} for {shown:?}"),
        }
    }
    println!(
        "{tried} malformed requests, {typed} typed 4xx answers in {} ms",
        started.elapsed().as_millis()
    );
    assert!(tried >= 50, "only {tried} tried");
    assert_eq!(typed, tried);
    assert_nothing_stored(&server);
}
