//! Wiped-store detection (docs/PROTOCOL.md, `device` and `replacedStoreEpoch`): per user, dataset and
//! app-named device the server remembers the last store epoch, and says so once when a round
//! shows another. Pull-only rounds also run on SQLite's read-only connections, so every step is
//! taken both with and without a push.

use clientdata::core::{DeviceEpoch, ExchangeRequest, NodeId, Record, Value};

use crate::support::{
    exchange_request, key, now_ms, plugin, token, tokens_file, Device, Server, TestDb,
};

/// A round of a fresh node (a new store gets a new node) from `device` with `epoch` in
/// `dataset`, pushing one record when `push`; returns the reply's `replacedStoreEpoch`.
fn round(
    server: &Server,
    user: &str,
    dataset: Option<&str>,
    device: (&str, &str),
    push: bool,
) -> Option<String> {
    round_of(
        server,
        user,
        dataset,
        NodeId::random().unwrap(),
        device,
        push,
    )
}

/// [`round`] of `node`.
fn round_of(
    server: &Server,
    user: &str,
    dataset: Option<&str>,
    node: NodeId,
    (id, epoch): (&str, &str),
    push: bool,
) -> Option<String> {
    let records = if push {
        let hlc = clientdata::core::Hlc::new(now_ms(), 0, node).unwrap();
        vec![Record::put(
            plugin("notes"),
            key("k"),
            Value::Json("1".into()),
            hlc,
        )]
    } else {
        Vec::new()
    };
    let request = ExchangeRequest {
        dataset: dataset.map(str::to_owned),
        device: Some(DeviceEpoch {
            id: id.into(),
            epoch: epoch.into(),
        }),
        ..exchange_request(node, None, records)
    };
    let reply = server.exchange(&token(user), &request);
    reply.replaced_store_epoch
}

fn a_new_epoch_of_a_known_device_is_reported_once(db: &TestDb) {
    let server = Server::with_tokens(db);
    for push in [true, false] {
        // Each pass its own devices and epochs.
        let (a, b, laptop, phone) = if push {
            ("a1", "b1", "laptop1", "phone1")
        } else {
            ("a2", "b2", "laptop2", "phone2")
        };
        // The first epoch of a device is no replacement; the same one again neither.
        assert_eq!(round(&server, "alice", None, (laptop, a), push), None);
        assert_eq!(round(&server, "alice", None, (laptop, a), push), None);
        assert_eq!(round(&server, "alice", None, (phone, a), push), None);
        // The laptop's store was wiped: its next round says so, once.
        assert_eq!(
            round(&server, "alice", None, (laptop, b), push).as_deref(),
            Some(a),
            "push {push}"
        );
        assert_eq!(round(&server, "alice", None, (laptop, b), push), None);
        assert_eq!(round(&server, "alice", None, (laptop, b), !push), None);
        // Another device id of the user is not affected.
        assert_eq!(round(&server, "alice", None, (phone, a), push), None);
        // Another user with the same device id, and another dataset of the same user, keep
        // their own epochs and change nothing of this one.
        assert_eq!(round(&server, "bob", None, (laptop, "z"), push), None);
        assert_eq!(
            round(&server, "alice", Some("other"), (laptop, "y"), push),
            None
        );
        assert_eq!(round(&server, "alice", None, (laptop, b), push), None);
        assert_eq!(round(&server, "bob", None, (laptop, "z"), push), None);
        assert_eq!(
            round(&server, "alice", Some("other"), (laptop, "y"), push),
            None
        );
    }
    // A node that pulls again and again is answered by SQLite's read-only connections; a new
    // epoch (not the real case, where a new store has a new node, but the server must not rely
    // on it) still goes to the writer and is told.
    let node = NodeId::random().unwrap();
    for _ in 0..3 {
        assert_eq!(
            round_of(&server, "alice", None, node, ("desk", "x1"), false),
            None
        );
    }
    assert_eq!(
        round_of(&server, "alice", None, node, ("desk", "x2"), false).as_deref(),
        Some("x1")
    );
    assert_eq!(
        round_of(&server, "alice", None, node, ("desk", "x2"), false),
        None
    );
    // Requests without a device are answered as before, with no field.
    let plain = server.post(
        &token("alice"),
        serde_json::to_vec(&exchange_request(NodeId::random().unwrap(), None, vec![])).unwrap(),
    );
    assert_eq!(plain.status, 200);
    assert!(
        !plain.text().contains("replacedStoreEpoch"),
        "{}",
        plain.text()
    );
}

fn an_invalid_device_is_refused_and_nothing_is_remembered(db: &TestDb) {
    let server = Server::with_tokens(db);
    let body = |device: &str, limit: u32| {
        format!(
            r#"{{"version":2,"node":"{}","limit":{limit},"device":{device}}}"#,
            NodeId::random().unwrap()
        )
    };
    let long = "d".repeat(129);
    let cases = [
        (r#"{"id":"","epoch":"aa"}"#.to_owned(), "invalid_request"),
        (
            format!(r#"{{"id":"{long}","epoch":"aa"}}"#),
            "invalid_request",
        ),
        (
            r#"{"id":"a\nb","epoch":"aa"}"#.to_owned(),
            "invalid_request",
        ),
        (
            r#"{"id":"laptop","epoch":"a b"}"#.to_owned(),
            "invalid_request",
        ),
        (
            r#"{"id":"laptop","epoch":""}"#.to_owned(),
            "invalid_request",
        ),
        (
            format!(r#"{{"id":"laptop","epoch":"{}"}}"#, "e".repeat(65)),
            "invalid_request",
        ),
        (
            r#"{"id":"laptop","epoch":"aa","x":1}"#.to_owned(),
            "malformed_request",
        ),
        (r#""laptop""#.to_owned(), "malformed_request"),
    ];
    for (device, code) in &cases {
        let reply = server.post(&token("user-7"), body(device, 10));
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, *code),
            "{device}"
        );
    }
    // A valid device in a request refused for another reason is not remembered either.
    let refused = server.post(&token("user-7"), body(r#"{"id":"laptop","epoch":"e1"}"#, 0));
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (400, "invalid_request")
    );
    // So the first epoch the server remembers for the laptop is the next valid round's.
    assert_eq!(
        round(&server, "user-7", None, ("laptop", "e2"), false),
        None
    );
    assert_eq!(
        round(&server, "user-7", None, ("laptop", "e3"), false).as_deref(),
        Some("e2")
    );
}

fn a_dataset_remembers_a_bounded_number_of_devices(db: &TestDb) {
    let tokens = tokens_file(db.dir());
    let server = Server::start(
        db.dir(),
        &[
            "--database",
            db.arg(),
            "--tokens",
            tokens.to_str().unwrap(),
            "--max-devices-per-dataset",
            "2",
        ],
        &[],
    );
    let pause = || std::thread::sleep(std::time::Duration::from_millis(5));
    for d in ["d1", "d2", "d3"] {
        assert_eq!(round(&server, "alice", None, (d, "a"), true), None);
        pause();
    }
    // d1, the least recently seen, was forgotten: its new epoch looks like a new device (which
    // forgets d2 in turn); d3 was kept.
    assert_eq!(round(&server, "alice", None, ("d1", "b"), false), None);
    pause();
    assert_eq!(
        round(&server, "alice", None, ("d3", "b"), false).as_deref(),
        Some("a")
    );
    assert_eq!(round(&server, "alice", None, ("d2", "b"), true), None);
}

on_both!(a_new_epoch_of_a_known_device_is_reported_once);
on_both!(an_invalid_device_is_refused_and_nothing_is_remembered);
on_both!(a_dataset_remembers_a_bounded_number_of_devices);

/// A round answered `fullResync` keeps nothing, so it tells the new epoch and remembers none:
/// the round after the walk (the first that commits) tells it again, and then never.
fn a_full_resync_reply_says_it_too_and_the_round_after_the_walk_again(db: &TestDb) {
    let tokens = tokens_file(db.dir());
    let server = Server::start(
        db.dir(),
        &[
            "--database",
            db.arg(),
            "--tokens",
            tokens.to_str().unwrap(),
            "--tombstone-horizon-secs",
            "2",
        ],
        &[],
    );
    let device = |epoch: &str| {
        Some(DeviceEpoch {
            id: "tablet".into(),
            epoch: epoch.into(),
        })
    };
    let mut a = Device::new(&token("alice"));
    let mut b = Device::new(&token("alice"));
    b.client.device = device("e1");
    a.put("notes", "k1", "1");
    a.put("notes", "k2", "2");
    a.sync(&server, 100);
    b.sync(&server, 100);
    // a deletes k1 with an old stamp; past the horizon a's next round collects the tombstone,
    // which b has not seen.
    a.behind_ms = 10_000;
    a.write("notes", "k1", None);
    a.behind_ms = 0;
    a.sync(&server, 100);
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    a.put("notes", "k3", "3");
    a.sync(&server, 100);

    b.client.device = device("e2");
    let out = b.client.request(&mut b.store, &b.clock, None, 100).unwrap();
    for _ in 0..2 {
        let reply = server.exchange(&b.token, &out.request);
        assert!(reply.full_resync, "{reply:?}");
        assert_eq!(reply.replaced_store_epoch.as_deref(), Some("e1"));
    }
    b.sync(&server, 100);
    assert_eq!(b.full_resyncs, 1);
    let out = b.client.request(&mut b.store, &b.clock, None, 100).unwrap();
    let reply = server.exchange(&b.token, &out.request);
    assert!(!reply.full_resync);
    assert_eq!(
        reply.replaced_store_epoch, None,
        "remembered by the round after the walk"
    );
}

on_both!(a_full_resync_reply_says_it_too_and_the_round_after_the_walk_again);
