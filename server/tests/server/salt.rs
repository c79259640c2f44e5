//! `POST /sync/salt`: one salt per user for passphrase keys (end-to-end encryption), made on
//! first use, the same on every later call and after a restart, never another user's.

use crate::support::{token, Server, TestDb};

fn salt_of(server: &Server, user: &str) -> serde_json::Value {
    let auth = format!("Bearer {}", token(user));
    let reply = server.send(
        "POST",
        "/sync/salt",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        b"{}".to_vec(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

fn each_user_gets_one_salt_that_never_changes(db: &TestDb) {
    let server = Server::with_tokens(db);
    let alice = salt_of(&server, "alice");
    let salt = alice["salt"].as_str().unwrap().to_owned();
    assert_eq!(salt.len(), 64);
    assert!(salt
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(alice["iterations"], 600_000);
    assert_eq!(salt_of(&server, "alice")["salt"], salt.as_str());
    let bob = salt_of(&server, "bob");
    assert_ne!(
        bob["salt"],
        salt.as_str(),
        "each user has a salt of their own"
    );
    // Without a token: refused like an exchange.
    let reply = server.send("POST", "/sync/salt", &[], Vec::new());
    assert_eq!((reply.status, reply.code().as_str()), (401, "unauthorized"));
    drop(server);
    let server = Server::with_tokens(db);
    assert_eq!(
        salt_of(&server, "alice")["salt"],
        salt.as_str(),
        "kept across restarts"
    );
    drop(server);
    let deleted = crate::ops::ops(db, &["delete-user", "alice"]);
    assert!(deleted.status.success(), "{deleted:?}");
    let server = Server::with_tokens(db);
    assert_ne!(
        salt_of(&server, "alice")["salt"],
        salt.as_str(),
        "delete-user takes the salt too"
    );
}

on_both!(each_user_gets_one_salt_that_never_changes);
