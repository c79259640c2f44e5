//! The operations subcommands on both backends: users, export/import (round trip, also from
//! SQLite to PostgreSQL), delete-user, schema, migrate, and bad input that changes nothing.

use std::process::{Command, Output};

use clientdata::core::Value;

use crate::support::{token, Device, Server, TestDb};

/// Runs `clientdata-server --database DB ARGS...` in the test's directory.
pub(crate) fn ops(db: &TestDb, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clientdata-server"));
    cmd.current_dir(db.dir())
        .args(["--database", db.arg()])
        .args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CLIENTDATA_")) {
        cmd.env_remove(k);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failed(out: Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `users` table as (user, records).
fn users(db: &TestDb) -> Vec<(String, u64)> {
    ok(ops(db, &["users"]))
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].parse().unwrap())
        })
        .collect()
}

/// Alice: JSON, bytes, a tombstone in two plugins; bob: one record. Returns alice's device.
fn seed(db: &TestDb) -> Device {
    let server = Server::with_tokens(db);
    let mut alice = Device::new(&token("alice"));
    for i in 0..30 {
        alice.put("notes", &format!("n{i}"), &format!("{{\"i\":{i}}}"));
    }
    alice.write("files", "blob", Some(Value::Bytes(vec![0, 1, 2, 255])));
    alice.put("notes", "gone", "1");
    alice.write("notes", "gone", None);
    alice.sync(&server, 7);
    let mut bob = Device::new(&token("bob"));
    bob.put("notes", "n0", "\"bob's\"");
    bob.sync(&server, 10);
    alice
}

/// What a fresh device of `user` pulls.
fn pulled(db: &TestDb, user: &str) -> Vec<(String, String, Option<Value>)> {
    let server = Server::with_tokens(db);
    let mut reader = Device::new(&token(user));
    reader.sync(&server, 50);
    let mut all: Vec<_> = reader
        .store
        .records()
        .map(|r| (r.plugin.to_string(), r.key.to_string(), r.value.clone()))
        .collect();
    all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    all
}

fn export_delete_import_round_trip(db: &TestDb) {
    seed(db);
    let before = pulled(db, "alice");
    assert_eq!(before.len(), 32);
    assert_eq!(users(db), [("alice".to_owned(), 32), ("bob".to_owned(), 1)]);

    let file = db.dir().join("alice.jsonl");
    let to_stdout = ok(ops(db, &["export", "alice"]));
    ok(ops(
        db,
        &["export", "alice", "--output", file.to_str().unwrap()],
    ));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported, to_stdout);
    assert_eq!(
        exported.lines().count(),
        1 + 32 + 1,
        "header, records, coverage"
    );

    let deleted = ok(ops(db, &["delete-user", "alice"]));
    assert!(
        deleted.contains("deleted alice and 32 records"),
        "{deleted}"
    );
    assert_eq!(users(db), [("bob".to_owned(), 1)]);
    assert!(pulled(db, "alice").is_empty());
    let unknown = failed(ops(db, &["delete-user", "nobody"]));
    assert!(unknown.contains("no user \"nobody\""), "{unknown}");
    assert!(failed(ops(db, &["export", "nobody"])).contains("no user"));

    let imported = ok(ops(
        db,
        &["import", "alice", "--input", file.to_str().unwrap()],
    ));
    assert!(
        imported.contains("32 records read, 32 stored"),
        "{imported}"
    );
    assert_eq!(ok(ops(db, &["export", "alice"])), exported, "round trip");
    assert_eq!(pulled(db, "alice"), before);
    // Importing again stores nothing: every record ties with itself.
    let again = ok(ops(
        db,
        &["import", "alice", "--input", file.to_str().unwrap()],
    ));
    assert!(again.contains("32 records read, 0 stored"), "{again}");
    assert_eq!(users(db), [("alice".to_owned(), 32), ("bob".to_owned(), 1)]);
}

on_both!(export_and_import_carry_the_content_of_references);

/// A value synced by reference keeps its content through export, delete-user and import: the
/// content line precedes its record, and a record whose content is missing or does not hash
/// to its digest fails the import before anything is stored.
fn export_and_import_carry_the_content_of_references(db: &TestDb) {
    use clientdata::core::content::{ContentKind, ContentRef, Digest};
    use sha2::Digest as _;
    let data = vec![5u8; 100_000];
    let sha256 = Digest(sha2::Sha256::digest(&data).into());
    let reference = ContentRef {
        kind: ContentKind::Bytes,
        size: data.len() as u64,
        sha256,
    };
    let server = Server::with_tokens(db);
    let alice = token("alice");
    let put = server.send(
        "PUT",
        &format!("/sync/content/{}", sha256.to_hex()),
        &[("authorization", &format!("Bearer {alice}"))],
        data.clone(),
    );
    assert_eq!(put.status, 204);
    let mut device = Device::new(&alice);
    device.write("files", "scan", Some(Value::Ref(reference.clone())));
    device.sync(&server, 10);
    drop(server);
    let exported = ok(ops(db, &["export", "alice"]));
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines.len(), 4, "header, content, record, coverage");
    assert!(lines[1].starts_with("{\"content\":") && lines[2].starts_with("{\"record\":"));
    let file = db.dir().join("alice.jsonl");
    std::fs::write(&file, &exported).unwrap();
    ok(ops(db, &["delete-user", "alice"]));
    // Without its content line, or with content that does not hash to it: nothing imported.
    let bad = db.dir().join("bad.jsonl");
    let forged = lines[1].replace("BQUF", "BgUF");
    for text in [
        [lines[0], lines[2], lines[3]].join("\n"),
        [lines[0], &forged, lines[2], lines[3]].join("\n"),
    ] {
        std::fs::write(&bad, text).unwrap();
        failed(ops(
            db,
            &["import", "alice", "--input", bad.to_str().unwrap()],
        ));
        assert!(
            users(db).iter().all(|(u, _)| u != "alice"),
            "nothing stored"
        );
    }
    ok(ops(
        db,
        &["import", "alice", "--input", file.to_str().unwrap()],
    ));
    assert_eq!(ok(ops(db, &["export", "alice"])), exported, "round trip");
    let server = Server::with_tokens(db);
    let got = server.send(
        "GET",
        &format!("/sync/content/{}", sha256.to_hex()),
        &[("authorization", &format!("Bearer {alice}"))],
        Vec::new(),
    );
    assert_eq!(got.status, 200);
    assert!(got.body == data);
}

fn bad_imports_change_nothing(db: &TestDb) {
    seed(db);
    let exported = ok(ops(db, &["export", "alice"]));
    let mut lines: Vec<String> = exported.lines().map(str::to_owned).collect();
    let good = lines[1].clone();
    let cases = [
        ("no header", lines[1..].join("\n")),
        ("empty", String::new()),
        ("not JSON", format!("{}\n{good}\n{{oops", lines[0])),
        (
            "invalid key",
            format!(
                "{}\n{good}\n{}",
                lines[0],
                good.replace("\"key\":\"n", "\"key\":\"\\u0000")
            ),
        ),
        ("unknown line", format!("{}\n{{\"other\":1}}", lines[0])),
    ];
    lines.truncate(1);
    for (what, text) in cases {
        let path = db.dir().join("bad.jsonl");
        std::fs::write(&path, text).unwrap();
        let err = failed(ops(
            db,
            &["import", "carol", "--input", path.to_str().unwrap()],
        ));
        assert!(err.contains("line "), "{what}: {err}");
        assert_eq!(
            users(db),
            [("alice".to_owned(), 32), ("bob".to_owned(), 1)],
            "{what} changed something"
        );
    }
    assert!(failed(ops(db, &["users", "extra"])).contains("unexpected argument"));
}

fn schema_is_shown_checked_and_migrated(db: &TestDb) {
    if db.kind() == "sqlite" {
        // An empty file is a SQLite database at version 0.
        std::fs::write(db.dir().join(db.arg()), b"").unwrap();
    }
    let out = ops(db, &["schema", "--check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("schema version 0; this build: 6 (behind"),
        "{text}"
    );
    assert!(ok(ops(db, &["schema"])).contains("version 0"));
    assert!(ok(ops(db, &["migrate"])).contains(&format!("{} schema version 6", db.kind())));
    assert!(ok(ops(db, &["schema", "--check"])).contains("(up to date)"));
    assert!(
        ok(ops(db, &["migrate"])).contains("version 6"),
        "idempotent"
    );
}

on_both!(export_delete_import_round_trip);
on_both!(bad_imports_change_nothing);
on_both!(schema_is_shown_checked_and_migrated);

#[test]
fn an_export_from_sqlite_imports_into_postgres_unchanged() {
    let Some(pg) = TestDb::postgres() else { return };
    let sqlite = TestDb::sqlite();
    seed(&sqlite);
    let exported = ok(ops(&sqlite, &["export", "alice"]));
    let file = pg.dir().join("from-sqlite.jsonl");
    std::fs::write(&file, &exported).unwrap();
    ok(ops(
        &pg,
        &["import", "alice", "--input", file.to_str().unwrap()],
    ));
    assert_eq!(ok(ops(&pg, &["export", "alice"])), exported);
    assert_eq!(pulled(&pg, "alice"), pulled(&sqlite, "alice"));
}
