//! Safer defaults: dev mode only on loopback, no short tokens, static files inside their root,
//! `/health` that notices failing writes.

use std::process::Command;
use std::time::Duration;

use crate::support::{token, tokens_file, Device, Server, TestDb};

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clientdata-server"))
        .current_dir(dir)
        .args(args)
        .env_remove("CLIENTDATA_TOKENS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that did start is stopped after a moment; one that refused has exited.
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[test]
fn dev_mode_is_refused_off_loopback_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["--listen", "0.0.0.0:0", "--database", "x.sqlite"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.stdout.is_empty(), "it listened: {stderr}");
    assert!(stderr.contains("not loopback"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");

    let out = run(
        dir.path(),
        &[
            "--listen",
            "0.0.0.0:0",
            "--database",
            "x.sqlite",
            "--dev-any-address",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("listening on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With tokens, any address is fine.
    let tokens = tokens_file(dir.path());
    let out = run(
        dir.path(),
        &[
            "--listen",
            "0.0.0.0:0",
            "--database",
            "x.sqlite",
            "--tokens",
            tokens.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("listening on"));
}

#[test]
fn tokens_shorter_than_16_characters_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokens"),
        "long-enough-token-1 alice\nshort-tok bob\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["--database", "x.sqlite", "--tokens", "tokens"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.stdout.is_empty(), "it started: {stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("shorter than 16"),
        "{stderr}"
    );
    assert!(!stderr.contains("short-tok"), "a token reached the log");
}

#[cfg(unix)]
#[test]
fn static_symlinks_that_leave_the_root_are_not_followed() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("inner")).unwrap();
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("outside/secret.txt"), "secret").unwrap();
    std::fs::write(dir.path().join("outside/index.html"), "secret index").unwrap();
    std::fs::write(www.join("inner/page.txt"), "inside").unwrap();
    symlink(dir.path().join("outside/secret.txt"), www.join("leak.txt")).unwrap();
    symlink(dir.path().join("outside"), www.join("leakdir")).unwrap();
    symlink(
        dir.path().join("outside/index.html"),
        www.join("inner/index.html"),
    )
    .unwrap();
    symlink(www.join("inner/page.txt"), www.join("alias.txt")).unwrap();
    let server = Server::start(dir.path(), &["--static", "www", "--static", "/m=www"], &[]);
    for path in [
        "/leak.txt",
        "/leakdir/secret.txt",
        "/leakdir/",
        "/inner/",
        "/m/leak.txt",
        "/m/leakdir/index.html",
        "/%6ceak.txt",
    ] {
        let reply = server.send("GET", path, &[], Vec::new());
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (404, "not_found"),
            "{path}: {}",
            reply.text()
        );
        assert!(!reply.text().contains("secret"), "{path}");
    }
    // Links that stay inside the root still work.
    assert_eq!(
        server.send("GET", "/alias.txt", &[], Vec::new()).text(),
        "inside"
    );
    assert_eq!(
        server
            .send("GET", "/m/inner/page.txt", &[], Vec::new())
            .text(),
        "inside"
    );
}

#[test]
fn health_is_unhealthy_after_a_failed_write_until_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(dir.path());
    // Files may not grow past 1 MiB: a push of a large value cannot be written (as on a full
    // disk). The hard limit stays open so the test can lift the soft one later.
    let server = Server::start_wrapped(
        dir.path(),
        &["prlimit", "--fsize=1048576:unlimited", "--"],
        &[
            "--database",
            "db.sqlite",
            "--tokens",
            tokens.to_str().unwrap(),
        ],
        &[],
    );
    let health = || server.send("GET", "/health", &[], Vec::new());
    assert_eq!(health().status, 200);
    let mut device = Device::new(&token("alice"));
    device.put("p", "small", "1");
    device.sync(&server, 10);

    let big = format!("\"{}\"", "x".repeat(900 << 10));
    device.put("p", "big-1", &big);
    device.put("p", "big-2", &big);
    let out = device
        .client
        .request(&mut device.store, &device.clock, None, 10)
        .unwrap();
    let failed = server.post(&token("alice"), serde_json::to_vec(&out.request).unwrap());
    assert_eq!(
        (failed.status, failed.code().as_str()),
        (500, "internal"),
        "{}",
        failed.text()
    );
    let unhealthy = health();
    assert_eq!(unhealthy.status, 503, "{}", unhealthy.text());
    let body = unhealthy.json();
    assert_eq!(
        (body["healthy"].as_bool(), body["code"].as_str()),
        (Some(false), Some("write_failed")),
        "{body}"
    );
    // Reads still work, and the failure is still reported.
    assert_eq!(Device::new(&token("alice")).sync(&server, 10).applied, 1);
    assert_eq!(health().status, 503);

    // The "disk" has room again: the next push succeeds and /health recovers.
    let lifted = Command::new("prlimit")
        .args([
            "--pid",
            &server.pid().to_string(),
            "--fsize=unlimited:unlimited",
        ])
        .status()
        .unwrap();
    assert!(lifted.success());
    device.sync(&server, 10);
    let healthy = health();
    assert_eq!(healthy.status, 200, "{}", healthy.text());
    assert_eq!(Device::new(&token("alice")).sync(&server, 10).applied, 3);
}

/// PostgreSQL only (SQLite's one open connection cannot lose its database): with the database
/// gone, `/health` answers 503 `unavailable` (after the pool's wait for a connection, ~10 s).
#[test]
fn health_is_unavailable_while_the_database_does_not_answer() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let server = Server::with_tokens(&db);
    let health = || server.send("GET", "/health", &[], Vec::new());
    assert_eq!(health().status, 200);
    let (admin, name) = db.postgres_admin().unwrap();
    let mut client = postgres::Client::connect(admin, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
    let reply = health();
    assert_eq!(reply.status, 503, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["healthy"], false);
    assert_eq!(body["code"], "unavailable");
}
