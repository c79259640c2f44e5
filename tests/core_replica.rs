//! The exchange round's rules, case by case: idempotent pushes, paging, scope, and replies that
//! must be refused with nothing applied and the clock unchanged.
#![cfg(not(target_arch = "wasm32"))]

use clientdata::core::replica::{serve, Batch, Client, MemoryStore, Outgoing, Store};
use clientdata::core::{
    ClockState, ExchangeResponse, HlcClock, Key, Limits, NodeId, PluginId, Record, Value,
};

const NOW: u64 = 1_700_000_000_000;

fn node(n: u64) -> NodeId {
    NodeId::new(n).unwrap()
}
fn plugin(p: &str) -> PluginId {
    PluginId::new(p).unwrap()
}

struct Device {
    client: Client,
    store: MemoryStore,
    clock: HlcClock,
}

impl Device {
    fn new(n: u64) -> Device {
        Device {
            client: Client::new(node(n)),
            store: MemoryStore::new(),
            clock: HlcClock::new(node(n), ClockState::default(), 60_000),
        }
    }
    fn write(&mut self, p: &str, k: &str, v: &str) -> Record {
        let hlc = self.clock.tick(NOW).unwrap();
        let r = Record::put(plugin(p), Key::new(k).unwrap(), Value::Json(v.into()), hlc);
        self.store
            .commit(Batch {
                records: vec![r.clone()],
                vectors: vec![],
            })
            .unwrap();
        r
    }
    fn request(&mut self, scope: Option<&[PluginId]>, limit: u32) -> Outgoing {
        self.client
            .request(&mut self.store, &self.clock, scope, limit)
            .unwrap()
    }
    fn apply(&mut self, out: &Outgoing, reply: &ExchangeResponse) -> Result<usize, String> {
        let plan = self
            .client
            .plan(&mut self.store, &out.request, reply, &self.clock, NOW)
            .map_err(|e| e.to_string())?;
        self.store.commit(plan.batch).unwrap();
        self.clock = plan.clock;
        Ok(plan.applied)
    }
    fn sync(&mut self, server: &mut MemoryStore, scope: Option<&[PluginId]>, limit: u32) -> usize {
        let mut rounds = 0;
        loop {
            rounds += 1;
            let out = self.request(scope, limit);
            let (reply, _) = serve(server, &out.request, &Limits::default(), NOW).unwrap();
            self.apply(&out, &reply).unwrap();
            if !reply.has_more && !out.more_to_push {
                return rounds;
            }
        }
    }
}

#[test]
fn replaying_the_same_request_changes_nothing() {
    let mut a = Device::new(1);
    for i in 0..5 {
        a.write("notes", &format!("k{i}"), "1");
    }
    let mut server = MemoryStore::new();
    let out = a.request(None, 100);
    let (first, stats) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    assert_eq!(stats.stored, 5);
    let after_first = server.clone();
    let (second, stats) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    assert_eq!(stats.stored, 0);
    assert_eq!(server, after_first);
    assert_eq!(first, second);
}

#[test]
fn paging_with_a_limit_of_one_moves_everything_and_sets_has_more() {
    let (mut a, mut b, mut server) = (Device::new(1), Device::new(2), MemoryStore::new());
    for i in 0..7 {
        a.write(["x", "y"][i % 2], &format!("k{i}"), "1");
    }
    assert_eq!(
        a.sync(&mut server, None, 1),
        7,
        "one record pushed per round"
    );
    let rounds = b.sync(&mut server, None, 1);
    assert_eq!(
        rounds, 7,
        "one record answered per round; the last one says no more"
    );
    assert_eq!(b.store.records().count(), 7);
    let out = b.request(None, 1);
    let (reply, _) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    assert!(
        reply.records.is_empty() && !reply.has_more,
        "a no-change round moves nothing"
    );
}

#[test]
fn a_no_change_round_grows_with_nodes_not_records() {
    let (mut a, mut b, mut server) = (Device::new(1), Device::new(2), MemoryStore::new());
    for i in 0..200 {
        a.write("notes", &format!("k{i}"), "1");
    }
    a.sync(&mut server, None, 1000);
    b.sync(&mut server, None, 1000);
    let small = serde_json::to_string(&b.request(None, 100).request)
        .unwrap()
        .len();
    for i in 200..2000 {
        a.write("notes", &format!("k{i}"), "1");
    }
    a.sync(&mut server, None, 1000);
    b.sync(&mut server, None, 1000);
    let large = serde_json::to_string(&b.request(None, 100).request)
        .unwrap()
        .len();
    assert_eq!(small, large, "request size must not grow with records");
}

#[test]
fn scoped_sync_moves_only_the_named_plugins_and_a_later_plugin_is_exact() {
    let (mut a, mut b, mut server) = (Device::new(1), Device::new(2), MemoryStore::new());
    a.write("notes", "n", "1");
    a.write("todo", "t", "2");
    a.sync(&mut server, None, 10);
    let notes = [plugin("notes")];
    b.sync(&mut server, Some(&notes), 10);
    let plugins: Vec<_> = b.store.records().map(|r| r.plugin.to_string()).collect();
    assert_eq!(plugins, ["notes"]);
    b.sync(&mut server, None, 10);
    assert_eq!(
        b.store.records().count(),
        2,
        "adding the other plugin later fetches it whole"
    );
}

#[test]
fn concurrent_writes_to_one_key_end_with_the_same_winner_everywhere() {
    let (mut a, mut b, mut server) = (Device::new(1), Device::new(2), MemoryStore::new());
    let ra = a.write("notes", "k", "\"a\"");
    let rb = b.write("notes", "k", "\"b\"");
    for _ in 0..2 {
        a.sync(&mut server, None, 10);
        b.sync(&mut server, None, 10);
    }
    let winner = if ra.hlc > rb.hlc { ra } else { rb };
    let key = Key::new("k").unwrap();
    assert_eq!(a.store.get(&plugin("notes"), &key), Some(&winner));
    assert_eq!(b.store.get(&plugin("notes"), &key), Some(&winner));
    assert_eq!(server.get(&plugin("notes"), &key), Some(&winner));
}

/// A device, an honest reply to its request, and the device's state before applying it.
fn honest_round() -> (Device, Outgoing, ExchangeResponse) {
    let (mut a, mut b, mut server) = (Device::new(1), Device::new(2), MemoryStore::new());
    a.write("notes", "k1", "1");
    a.write("notes", "k2", "2");
    a.sync(&mut server, None, 10);
    b.write("notes", "mine", "3");
    let out = b.request(None, 10);
    let (reply, _) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    assert_eq!(reply.records.len(), 2);
    (b, out, reply)
}

#[test]
fn tampered_replies_are_refused_with_nothing_applied_and_the_clock_unchanged() {
    type Tamper = fn(&mut ExchangeResponse, &Outgoing);
    let cases: [(&str, Tamper); 12] = [
        ("clock_drift", |r, _| {
            r.records[1].hlc.wall_ms = NOW + 3_600_000
        }),
        ("own_node_echoed", |r, _| r.records[1].hlc.node = node(2)),
        ("watermark_regression", |r, _| {
            r.coverage = Default::default()
        }),
        ("no_progress", |r, _| {
            r.records.clear();
            r.has_more = true;
        }),
        ("invalid_reply", |r, _| r.records.swap(0, 1)),
        ("invalid_reply", |r, o| {
            r.records.push(o.request.push[0].clone())
        }),
        ("watermark_regression", |r, _| {
            r.records[0].plugin = plugin("elsewhere")
        }),
        ("unsupported_version", |r, _| r.version = 9),
        // A wipe report answers only a request that named a device.
        ("invalid_reply", |r, _| {
            r.replaced_store_epoch = Some("00000000000000aa".into())
        }),
        ("value_too_large", |r, _| {
            r.records[0].value = Some(Value::Bytes(vec![0; (1 << 20) + 1]))
        }),
        // One record that is not JSON poisons nothing: the whole reply is refused.
        ("invalid_json", |r, _| {
            r.records[1].value = Some(Value::Json("{not json".into()))
        }),
        ("invalid_json", |r, _| {
            r.records[0].value = Some(Value::Json(String::new()))
        }),
    ];
    for (code, tamper) in cases {
        let (mut b, out, mut reply) = honest_round();
        tamper(&mut reply, &out);
        let (store_before, clock_before) = (b.store.clone(), b.clock.state());
        let err = b
            .client
            .plan(&mut b.store, &out.request, &reply, &b.clock, NOW)
            .unwrap_err();
        let got = match &err {
            clientdata::core::replica::ReplicaError::Protocol(e) => e.code(),
            other => panic!("{other}"),
        };
        assert_eq!(got, code, "{err}");
        if code == "invalid_json" {
            // The error names the record, so a report can point at the bad row.
            let bad = reply
                .records
                .iter()
                .find(|r| r.value.as_ref().is_some_and(|v| v.check_json().is_err()))
                .unwrap();
            assert!(
                err.to_string()
                    .contains(&format!("notes/{}@{}", bad.key, bad.hlc)),
                "{err}"
            );
        }
        assert_eq!(b.store, store_before);
        assert_eq!(b.clock.state(), clock_before);
    }
    // And the untampered reply applies.
    let (mut b, out, reply) = honest_round();
    assert_eq!(b.apply(&out, &reply).unwrap(), 2);
}

#[test]
fn a_scoped_request_refuses_records_and_coverage_of_other_plugins() {
    let (mut b, mut out, reply) = honest_round();
    out.request.plugins = Some(vec![plugin("todo")]);
    out.request.seen.retain(|p| p.as_str() == "todo");
    let err = b
        .client
        .plan(&mut b.store, &out.request, &reply, &b.clock, NOW)
        .unwrap_err();
    assert!(err.to_string().contains("outside the scope"), "{err}");
}

#[test]
fn a_reply_with_more_records_than_the_limit_is_refused() {
    let (mut b, out, mut reply) = honest_round();
    let mut limited = out.clone();
    limited.request.limit = 1;
    reply.has_more = false;
    let err = b
        .client
        .plan(&mut b.store, &limited.request, &reply, &b.clock, NOW)
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let _ = b.apply(&out, &reply).unwrap();
}

#[test]
fn a_server_restored_from_backup_gets_the_lost_records_pushed_again() {
    let (mut a, mut b, mut server) = (Device::new(1), Device::new(2), MemoryStore::new());
    a.write("notes", "old", "1");
    a.sync(&mut server, None, 10);
    let backup = server.clone();
    a.write("notes", "new", "2");
    a.sync(&mut server, None, 10);
    b.sync(&mut server, None, 10);
    // The server loses everything after the backup. The first round learns the lower coverage
    // (our copy is replaced, not merged); the next one pushes what the server lost.
    server = backup;
    let new = Key::new("new").unwrap();
    a.sync(&mut server, None, 10);
    assert!(server.get(&plugin("notes"), &new).is_none());
    a.sync(&mut server, None, 10);
    assert!(server.get(&plugin("notes"), &new).is_some());
}

#[test]
fn a_record_forged_with_the_requesters_node_is_never_answered_to_it() {
    let (mut a, mut b, mut server) = (Device::new(1), Device::new(2), MemoryStore::new());
    b.write("notes", "mine", "1");
    b.sync(&mut server, None, 10);
    // A pushes a record stamped with B's node, above everything B has written.
    let mut forged = a.write("notes", "forged", "2");
    forged.hlc.node = node(2);
    forged.hlc.wall_ms = NOW + 1;
    a.write("notes", "theirs", "3");
    let mut out = a.request(None, 10);
    out.request.push.push(forged);
    serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    // B keeps syncing: every round succeeds (no `own_node_echoed`), and it never receives it.
    for _ in 0..3 {
        let out = b.request(None, 10);
        let (reply, _) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
        assert!(
            reply.records.iter().all(|r| r.hlc.node != node(2)),
            "{reply:?}"
        );
        b.apply(&out, &reply).unwrap();
    }
    // A fresh device claiming the same node (no `seen` at all) is not answered them either.
    let mut c = Device::new(2);
    let out = c.request(None, 10);
    let (reply, _) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    assert!(reply.records.iter().all(|r| r.hlc.node != node(2)));
    assert_eq!(reply.records.len(), 1, "A's own record still arrives");
}

#[test]
fn serve_counts_what_a_push_adds_keys_plugins_and_writers() {
    let mut server = MemoryStore::new();
    let mut a = Device::new(1);
    a.write("p", "k1", "1");
    a.write("p", "k2", "1");
    a.write("q", "k1", "1");
    let out = a.request(None, 100);
    let (reply, stats) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    a.apply(&out, &reply).unwrap();
    assert_eq!(
        (stats.new_keys, stats.new_plugins, stats.new_writers),
        (3, 2, 2)
    );
    // Overwrites by a known writer add nothing; a second writer in a known plugin adds one writer.
    a.write("p", "k1", "2");
    let out = a.request(None, 100);
    let (reply, stats) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    a.apply(&out, &reply).unwrap();
    assert_eq!(
        (
            stats.stored,
            stats.new_keys,
            stats.new_plugins,
            stats.new_writers
        ),
        (1, 0, 0, 0)
    );
    let mut b = Device::new(2);
    b.write("p", "k3", "1");
    let out = b.request(None, 100);
    let (_, stats) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    assert_eq!(
        (stats.new_keys, stats.new_plugins, stats.new_writers),
        (1, 0, 1)
    );
}

/// Rounds until nothing is left, continuing each reply's coverage; returns the replies.
fn sync_paged(
    device: &mut Device,
    server: &mut MemoryStore,
    limits: &Limits,
) -> Vec<ExchangeResponse> {
    let mut replies = Vec::new();
    let mut from = None;
    loop {
        let out = device
            .client
            .request_from(&mut device.store, &device.clock, None, 100, from.take())
            .unwrap();
        let (reply, _) = serve(server, &out.request, limits, NOW).unwrap();
        let plan = device
            .client
            .plan(&mut device.store, &out.request, &reply, &device.clock, NOW)
            .unwrap();
        device.store.commit(plan.batch).unwrap();
        device.clock = plan.clock;
        from = plan.coverage_next.clone();
        replies.push(reply);
        assert!(replies.len() < 1000, "no end");
        if !plan.has_more && !out.more_to_push && from.is_none() {
            return replies;
        }
    }
}

#[test]
fn an_unscoped_reply_pages_its_coverage_and_the_client_continues() {
    let limits = Limits {
        page_bytes: 2_000,
        ..Limits::default()
    };
    let mut server = MemoryStore::new();
    let mut a = Device::new(1);
    a.client.limits = limits;
    for i in 0..300 {
        a.write(&format!("p{i:03}"), "k", "1");
    }
    sync_paged(&mut a, &mut server, &limits);

    let mut b = Device::new(2);
    b.client.limits = limits;
    let replies = sync_paged(&mut b, &mut server, &limits);
    assert!(replies.len() > 10, "{} rounds", replies.len());
    // Coverage stays within the budget, beside that of the page's own records (which the
    // records' budget bounds); all 300 plugins' would be about 20 kB.
    let within = |replies: &[ExchangeResponse]| {
        for reply in replies {
            let size = serde_json::to_vec(&reply.coverage).unwrap().len();
            assert!(size <= 2 * limits.page_bytes, "coverage of {size} bytes");
        }
    };
    within(&replies);
    assert_eq!(b.store.records().count(), 300);
    // Both devices hold the server's whole coverage: neither pushes anything again, and B's
    // rounds pull nothing more.
    for device in [&mut a, &mut b] {
        let out = device.request(None, 100);
        assert!(out.request.push.is_empty() && !out.more_to_push);
    }
    let again = sync_paged(&mut b, &mut server, &limits);
    assert!(again.len() > 5 && again.iter().all(|r| r.records.is_empty()));
    within(&again);
}

#[test]
fn a_coverage_cursor_that_does_not_move_is_refused() {
    let mut server = MemoryStore::new();
    let mut a = Device::new(1);
    a.write("p1", "k", "1");
    a.write("p2", "k", "1");
    let mut out = a.request(None, 100);
    out.request.coverage_from = Some(plugin("p2"));
    let (mut reply, _) = serve(&mut server, &out.request, &Limits::default(), NOW).unwrap();
    for next in ["p1", "p2"] {
        reply.coverage_next = Some(plugin(next));
        assert!(a.apply(&out, &reply).unwrap_err().contains("no progress"));
    }
}
