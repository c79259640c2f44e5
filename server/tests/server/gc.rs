//! Tombstone collection with a horizon, end to end against the real server on both backends:
//! collection happens exactly when the rule says (older than the horizon AND held by every reader
//! active within it), a reader offline past the horizon is told to run a full resync and
//! converges by it, an old (v1) client is refused, and storage stays bounded under churn.

use std::time::Duration;

use clientdata::core::{PluginId, Record, Watermarks};

use crate::ops::ops;
use crate::support::{token, tokens_file, Device, Server, TestDb};

/// A server whose tombstones are collected after `secs` seconds.
fn server(db: &TestDb, secs: &str) -> Server {
    let tokens = tokens_file(db.dir());
    Server::start(
        db.dir(),
        &[
            "--database",
            db.arg(),
            "--tokens",
            tokens.to_str().unwrap(),
            "--tombstone-horizon-secs",
            secs,
        ],
        &[],
    )
}

fn find<'r>(rows: &'r [Record], key: &str) -> Option<&'r Record> {
    rows.iter().find(|r| r.key.as_str() == key)
}

fn sorted(mut contents: Vec<(String, String, clientdata::core::Value)>) -> Vec<String> {
    contents.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    contents
        .into_iter()
        .map(|(p, k, v)| format!("{p}/{k}={v:?}"))
        .collect()
}

fn collection_happens_exactly_when_the_rule_says(db: &TestDb) {
    let server = server(db, "2");
    // a's clock runs 10 s behind (its stamps are older than the horizon at once); c's is right.
    let mut a = Device::new(&token("alice"));
    a.behind_ms = 10_000;
    let mut b = Device::new(&token("alice"));
    let mut c = Device::new(&token("alice"));
    // b has synced (the server knows it as a reader); a writes and deletes before its clock
    // observes a reply (an HLC never runs back).
    b.sync(&server, 100);
    a.put("notes", "old", "1");
    let old = a.write("notes", "old", None);
    a.sync(&server, 100);
    c.put("notes", "young", "2");
    c.sync(&server, 100);
    let young = c.write("notes", "young", None);
    c.sync(&server, 100);
    a.sync(&server, 100);
    assert!(
        old.hlc.wall_ms + 5_000 < young.hlc.wall_ms,
        "{old:?} {young:?}"
    );
    let rows = server.rows(&a.token, a.client.node);
    assert_eq!(
        find(&rows, "old"),
        Some(&old),
        "b, active, has not received it"
    );
    assert_eq!(find(&rows, "young"), Some(&young));

    // b receives both; its next round proves it and collects the old one only.
    b.sync(&server, 100);
    assert_eq!(b.store.get(&old.plugin, &old.key), Some(&old));
    assert!(
        find(&server.rows(&a.token, a.client.node), "old").is_some(),
        "c has not proved it holds it yet"
    );
    c.sync(&server, 100);
    b.put("notes", "poke-b", "0");
    b.round(&server, None, 100);
    let rows = server.rows(&a.token, a.client.node);
    assert_eq!(
        find(&rows, "old"),
        None,
        "older than the horizon, held by a, b and c"
    );
    assert_eq!(
        find(&rows, "young"),
        Some(&young),
        "held by everyone but younger than the horizon"
    );
    // Replies report the collected stamp; clients drop their copy of the tombstone.
    for device in [&mut a, &mut b, &mut c] {
        device.sync(&server, 100);
        assert_eq!(device.store.get(&old.plugin, &old.key), None);
        assert_eq!(device.store.get(&young.plugin, &young.key), Some(&young));
        assert_eq!(device.full_resyncs, 0, "nobody missed anything");
    }
    assert_eq!(sorted(a.contents()), sorted(b.contents()));
    assert_eq!(sorted(a.contents()), sorted(c.contents()));
}

fn a_reader_offline_past_the_horizon_resyncs_fully_and_keeps_its_offline_writes(db: &TestDb) {
    let server = server(db, "2");
    let mut a = Device::new(&token("alice"));
    let mut b = Device::new(&token("alice"));
    for k in ["k1", "k2", "k3"] {
        a.put("notes", k, "1");
    }
    a.sync(&server, 100);
    b.sync(&server, 100);
    // b goes offline and writes; a deletes k1 and k2 (stamps older than the horizon).
    let offline = b.put("notes", "offline", "\"b\"");
    a.behind_ms = 10_000;
    a.write("notes", "k1", None);
    a.write("notes", "k2", None);
    a.behind_ms = 0;
    a.sync(&server, 100);
    assert!(find(&server.rows(&a.token, a.client.node), "k1").is_some());
    std::thread::sleep(Duration::from_millis(2_500));
    // b is past the horizon: a's next round collects without waiting for it.
    a.put("notes", "k4", "4");
    a.sync(&server, 100);
    let rows = server.rows(&a.token, a.client.node);
    assert!(find(&rows, "k1").is_none() && find(&rows, "k2").is_none());

    // b's round is answered fullResync and applies nothing of it (its push waits).
    let out = b.client.request(&mut b.store, &b.clock, None, 100).unwrap();
    assert_eq!(out.request.push, vec![offline.clone()]);
    let reply = server.exchange(&b.token, &out.request);
    assert!(reply.full_resync && reply.records.is_empty(), "{reply:?}");
    assert!(find(&server.rows(&a.token, a.client.node), "offline").is_none());

    let stats = b.sync(&server, 2);
    println!(
        "b after the horizon: {stats:?}, {} records removed by the walk",
        b.resync_removed
    );
    assert_eq!(b.full_resyncs, 1);
    assert_eq!(b.resync_removed, 2, "k1 and k2, deleted while b was away");
    a.sync(&server, 100);
    assert_eq!(sorted(a.contents()), sorted(b.contents()));
    let keys: Vec<String> = sorted(b.contents());
    assert_eq!(keys.len(), 3, "k3, k4 and b's offline write: {keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("notes/offline=")));
    // Converged: the next round is a partial one.
    b.sync(&server, 100);
    assert_eq!(b.full_resyncs, 1);
}

fn an_old_client_gets_a_typed_error_never_data(db: &TestDb) {
    let server = server(db, "2");
    let mut a = Device::new(&token("alice"));
    a.put("notes", "k", "1");
    a.sync(&server, 100);
    let body = format!(
        r#"{{"version":1,"node":"{}","limit":10}}"#,
        clientdata::core::NodeId::random().unwrap()
    );
    let reply = server.post(&a.token, body.into_bytes());
    assert_eq!(
        (reply.status, reply.code()),
        (400, "unsupported_version".into())
    );
    assert!(reply.json().get("records").is_none());
    let walk = format!(r#"{{"version":1,"node":"{}","limit":10}}"#, a.client.node);
    let auth = format!("Bearer {}", a.token);
    let reply = server.send(
        "POST",
        "/sync/resync",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        walk.into_bytes(),
    );
    assert_eq!(
        (reply.status, reply.code()),
        (400, "unsupported_version".into())
    );
}

/// The walk's optional fields may be null as well as absent (docs/openapi.json marks them
/// nullable; schemathesis sends both): a null cursor starts from the first row.
fn a_walk_with_null_optional_fields_starts_from_the_first_row(db: &TestDb) {
    let server = server(db, "2");
    let mut a = Device::new(&token("alice"));
    a.put("notes", "k", "1");
    a.sync(&server, 100);
    let auth = format!("Bearer {}", a.token);
    let walk = |body: String| {
        server.send(
            "POST",
            "/sync/resync",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.into_bytes(),
        )
    };
    let node = a.client.node;
    let absent = walk(format!(r#"{{"version":2,"node":"{node}","limit":10}}"#));
    let null = walk(format!(
        r#"{{"version":2,"node":"{node}","limit":10,"after":null,"plugins":null,"secret":null,"dataset":null}}"#
    ));
    assert_eq!((absent.status, null.status), (200, 200), "{}", null.text());
    assert_eq!(null.json()["rows"], absent.json()["rows"]);
    assert_eq!(null.json()["rows"].as_array().map(Vec::len), Some(1));
}

/// Rows and bytes of alice's default dataset (`users`: key and value bytes), and the rows' wire
/// size as replies carry them.
fn storage(db: &TestDb, server: &Server, a: &Device) -> (u64, u64, usize) {
    let out = ops(db, &["users"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("alice"))
        .unwrap_or_else(|| panic!("{text}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    let wire = server
        .rows(&a.token, a.client.node)
        .iter()
        .map(Record::wire_size)
        .sum();
    (f[1].parse().unwrap(), f[2].parse().unwrap(), wire)
}

fn storage_stays_bounded_under_create_delete_churn(db: &TestDb) {
    const CYCLES: usize = 20;
    const KEYS: usize = 50;
    let server = server(db, "3");
    let mut a = Device::new(&token("alice"));
    let mut b = Device::new(&token("alice"));
    let mut last_delete = None;
    for cycle in 0..CYCLES {
        for k in 0..KEYS {
            a.put(
                "churn",
                &format!("c{cycle}-k{k}"),
                &format!("{{\"cycle\":{cycle},\"pad\":\"{}\"}}", "x".repeat(64)),
            );
        }
        a.sync(&server, 1000);
        b.sync(&server, 1000);
        for k in 0..KEYS {
            last_delete = Some(a.write("churn", &format!("c{cycle}-k{k}"), None));
        }
        a.sync(&server, 1000);
        b.sync(&server, 1000);
    }
    let last_delete = last_delete.unwrap();
    a.put("live", "k", "1");
    a.sync(&server, 1000);
    let before = storage(db, &server, &a);
    // Past the horizon, rounds of both readers collect (at most 500 tombstones a round).
    std::thread::sleep(Duration::from_millis(3_500));
    for i in 0..4 {
        b.sync(&server, 1000);
        a.put("live", "k", &i.to_string());
        a.sync(&server, 1000);
    }
    let after = storage(db, &server, &a);
    println!(
        "churn on {}: {CYCLES} cycles x {KEYS} keys created then deleted: before GC {} rows, {} bytes (users), {} wire bytes; after GC {} rows, {} bytes, {} wire bytes",
        db.kind(),
        before.0,
        before.1,
        before.2,
        after.0,
        after.1,
        after.2
    );
    assert_eq!(
        before.0,
        (CYCLES * KEYS + 1) as u64,
        "every deleted key is a row until collected"
    );
    assert_eq!(after.0, 1, "only the live record is left");
    for device in [&a, &b] {
        assert_eq!(
            device.store.records().count(),
            1,
            "clients dropped the tombstones too"
        );
        assert_eq!(device.full_resyncs, 0);
    }
    // A reply speaking for the plugin reports the highest collected stamp: the last delete.
    let plugin = PluginId::new("churn").unwrap();
    let out = a
        .client
        .request(
            &mut a.store,
            &a.clock,
            Some(std::slice::from_ref(&plugin)),
            10,
        )
        .unwrap();
    let collected: Watermarks = server.exchange(&a.token, &out.request).collected;
    assert_eq!(
        collected.plugin(&plugin).get(a.client.node),
        Some(last_delete.hlc)
    );
}

on_both!(collection_happens_exactly_when_the_rule_says);
on_both!(a_reader_offline_past_the_horizon_resyncs_fully_and_keeps_its_offline_writes);
on_both!(an_old_client_gets_a_typed_error_never_data);
on_both!(a_walk_with_null_optional_fields_starts_from_the_first_row);
on_both!(storage_stays_bounded_under_create_delete_churn);
