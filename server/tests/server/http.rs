//! `/health`, CORS, static files, dev mode, and what the log must never contain.

use crate::support::{token, Device, Server, TestDb};

fn health_reports_its_shape(db: &TestDb) {
    let server = Server::with_tokens(db);
    let reply = server.send("GET", "/health", &[], Vec::new());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["database", "healthy", "latencyMs", "version"]);
    assert_eq!(body["healthy"], true);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["database"], db.kind());
    let latency = body["latencyMs"].as_f64().unwrap();
    assert!((0.0..5_000.0).contains(&latency), "{latency}");
}

fn preflight(server: &Server, origin: &str) -> crate::support::Reply {
    server.send(
        "OPTIONS",
        "/sync/exchange",
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ],
        Vec::new(),
    )
}

#[test]
fn cors_allows_exactly_the_configured_origins() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = crate::support::tokens_file(dir.path());
    let tokens = tokens.to_str().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--tokens",
            tokens,
            "--allow-origin",
            "http://app.test:5173",
            "--allow-origin",
            "http://other.test",
        ],
        &[],
    );
    let ok = preflight(&server, "http://app.test:5173");
    assert!((200..300).contains(&ok.status), "{}", ok.status);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://app.test:5173")
    );
    let methods = ok
        .header("access-control-allow-methods")
        .unwrap()
        .to_ascii_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = ok
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(
        preflight(&server, "http://other.test").header("access-control-allow-origin"),
        Some("http://other.test")
    );
    assert_eq!(
        preflight(&server, "http://evil.test").header("access-control-allow-origin"),
        None
    );

    // Real answers carry the header too, errors included, so the page can read the code.
    let auth = format!("Bearer {}", token("alice"));
    let body = br#"{"version":2,"node":"0000000000000001","limit":1}"#.to_vec();
    let ok = server.send(
        "POST",
        "/sync/exchange",
        &[
            ("origin", "http://app.test:5173"),
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    );
    assert_eq!(
        (ok.status, ok.header("access-control-allow-origin")),
        (200, Some("http://app.test:5173"))
    );
    let denied = server.send(
        "POST",
        "/sync/exchange",
        &[
            ("origin", "http://app.test:5173"),
            ("content-type", "application/json"),
        ],
        b"{}".to_vec(),
    );
    assert_eq!(
        (denied.status, denied.header("access-control-allow-origin")),
        (401, Some("http://app.test:5173"))
    );

    // Any origin with `*`; none without the option.
    let star = Server::start(
        dir.path(),
        &[
            "--database",
            "star.sqlite",
            "--tokens",
            tokens,
            "--allow-origin",
            "*",
        ],
        &[],
    );
    assert_eq!(
        preflight(&star, "http://anything.test").header("access-control-allow-origin"),
        Some("*")
    );
    let none = Server::start(
        dir.path(),
        &["--database", "none.sqlite", "--tokens", tokens],
        &[],
    );
    assert_eq!(
        preflight(&none, "http://app.test:5173").header("access-control-allow-origin"),
        None
    );
}

#[test]
fn static_directories_are_served_under_their_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www/sub")).unwrap();
    std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
    std::fs::write(dir.path().join("www/index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(dir.path().join("www/sub/app.js"), "console.log(1)").unwrap();
    std::fs::write(
        dir.path().join("pkg/clientdata_bg.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
    let server = Server::start(
        dir.path(),
        &["--static", "www", "--static", "/pkg=pkg"],
        &[],
    );

    let index = server.send("GET", "/", &[], Vec::new());
    assert_eq!(
        (index.status, index.text().as_str()),
        (200, "<h1>demo</h1>")
    );
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        server.send("GET", "/sub/app.js", &[], Vec::new()).text(),
        "console.log(1)"
    );
    let wasm = server.send("GET", "/pkg/clientdata_bg.wasm", &[], Vec::new());
    assert_eq!(
        (wasm.status, wasm.header("content-type")),
        (200, Some("application/wasm"))
    );
    for missing in [
        "/nope.html",
        "/pkg/nope.js",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
    ] {
        let reply = server.send("GET", missing, &[], Vec::new());
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (404, "not_found"),
            "{missing}"
        );
    }
    // The API still wins over the root mount.
    assert_eq!(
        server.send("GET", "/health", &[], Vec::new()).json()["healthy"],
        true
    );
}

#[test]
fn dev_mode_accepts_dev_tokens_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let mut alice = Device::new("dev-token-alice");
    alice.put("p", "k", "1");
    alice.sync(&server, 10);
    let mut bob = Device::new("dev-token-bob");
    assert_eq!(
        bob.sync(&server, 10).applied,
        0,
        "dev users are separate users"
    );
    assert_eq!(server.post("dev-token-", b"{}".to_vec()).status, 401);
    assert_eq!(
        server.post("token-alice-0123456789", b"{}".to_vec()).status,
        401
    );
    let log = server.log_and_kill();
    assert!(log.iter().any(|l| l.contains("DEV MODE")), "{log:#?}");
    // Created in the working directory by default.
    assert!(dir.path().join("clientdata.sqlite").exists());
}

#[test]
fn tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--tokens",
            crate::support::tokens_file(dir.path()).to_str().unwrap(),
            "--log",
            "debug",
        ],
        &[],
    );
    let mut device = Device::new(&token("alice"));
    device.put("p", "k", "1");
    device.sync(&server, 10);
    assert_eq!(
        server
            .post("token-unknown-secret-value", b"{}".to_vec())
            .status,
        401
    );
    assert_eq!(server.post(&token("alice"), b"{".to_vec()).status, 400);
    let log = server.log_and_kill();
    assert!(
        log.iter()
            .any(|l| l.contains("exchange") && l.contains("user=alice")),
        "{log:#?}"
    );
    for line in &log {
        assert!(
            !line.contains("token-alice")
                && !line.contains("token-unknown")
                && !line.contains("Bearer"),
            "{line}"
        );
    }
}

on_both!(health_reports_its_shape);

#[test]
fn a_range_outside_a_static_file_gets_416_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/a.txt"), "0123456789").unwrap();
    let server = Server::start(dir.path(), &["--static", "www"], &[]);
    let part = server.send("GET", "/a.txt", &[("range", "bytes=2-4")], Vec::new());
    assert_eq!((part.status, part.text().as_str()), (206, "234"));
    let reply = server.send("GET", "/a.txt", &[("range", "bytes=100-200")], Vec::new());
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (416, "range_not_satisfiable")
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // Nothing changed: the file is served whole as before.
    assert_eq!(
        server.send("GET", "/a.txt", &[], Vec::new()).text(),
        "0123456789"
    );
}
