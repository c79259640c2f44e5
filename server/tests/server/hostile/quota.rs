//! Per-user caps: a push that would take its user past the plugins, nodes or records cap is
//! refused whole with 413 `user_quota_exceeded` naming the cap; other users are unaffected, and
//! rounds that add nothing new still pass at the cap.

use crate::support::{token, tokens_file, Device, Reply, Server, TestDb};

fn server_with(db: &TestDb, caps: &[&str]) -> Server {
    let tokens = tokens_file(db.dir());
    let mut args = vec!["--database", db.arg(), "--tokens", tokens.to_str().unwrap()];
    args.extend_from_slice(caps);
    Server::start(db.dir(), &args, &[])
}

/// Sends the device's next round (its local writes pushed) and returns the answer as it is.
fn push(server: &Server, device: &mut Device) -> Reply {
    let out = device
        .client
        .request(&mut device.store, &device.clock, None, 100)
        .unwrap();
    server.post(&device.token, serde_json::to_vec(&out.request).unwrap())
}

fn assert_over(reply: &Reply, cap: &str) {
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.code(), "user_quota_exceeded");
    let message = reply.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains(cap), "{message}");
}

/// What a fresh device of `user` pulls: (plugin, key, value) sorted.
fn pulled(server: &Server, user: &str) -> Vec<String> {
    let mut reader = Device::new(&token(user));
    reader.sync(server, 100);
    reader
        .contents()
        .into_iter()
        .map(|(p, k, v)| format!("{p}/{k}={v:?}"))
        .collect()
}

fn a_push_past_the_plugins_cap_is_refused_whole(db: &TestDb) {
    let server = server_with(db, &["--max-plugins-per-user", "3"]);
    let mut a = Device::new(&token("alice"));
    for p in ["p1", "p2", "p3"] {
        a.put(p, "k", "1");
    }
    a.sync(&server, 100);
    let before = pulled(&server, "alice");
    assert_eq!(before.len(), 3);

    // A fourth plugin, with an overwrite in a known one: neither is stored.
    let mut b = Device::new(&token("alice"));
    b.put("p1", "k", "2");
    b.put("p4", "k", "1");
    assert_over(&push(&server, &mut b), "plugins");
    assert_eq!(pulled(&server, "alice"), before);

    // At the cap, a round that adds no plugin passes.
    let mut c = Device::new(&token("alice"));
    c.put("p2", "k", "3");
    assert_eq!(push(&server, &mut c).status, 200);
    // Caps are per user.
    let mut bob = Device::new(&token("bob"));
    for p in ["p1", "p2", "p3"] {
        bob.put(p, "k", "1");
    }
    bob.sync(&server, 100);
    assert_eq!(pulled(&server, "bob").len(), 3);
}

on_both!(a_push_past_the_plugins_cap_is_refused_whole);

fn a_push_past_the_records_cap_is_refused_whole(db: &TestDb) {
    let server = server_with(db, &["--max-records-per-user", "5"]);
    let mut a = Device::new(&token("alice"));
    for k in 1..=5 {
        a.put("notes", &format!("k{k}"), "1");
    }
    a.sync(&server, 100);
    let before = pulled(&server, "alice");

    let mut b = Device::new(&token("alice"));
    b.put("notes", "k1", "2");
    b.put("notes", "k6", "1");
    assert_over(&push(&server, &mut b), "records");
    assert_eq!(pulled(&server, "alice"), before);

    // Overwrites (and tombstones of held keys) still pass at the cap.
    let mut c = Device::new(&token("alice"));
    c.put("notes", "k1", "3");
    c.write("notes", "k2", None);
    assert_eq!(push(&server, &mut c).status, 200);
}

on_both!(a_push_past_the_records_cap_is_refused_whole);

fn a_push_or_claim_past_the_nodes_cap_is_refused(db: &TestDb) {
    let server = server_with(db, &["--max-nodes-per-user", "2"]);
    for i in 0..2 {
        let mut d = Device::new(&token("alice"));
        d.put("notes", &format!("k{i}"), "1");
        d.sync(&server, 100);
    }
    let before = pulled(&server, "alice");

    // A third writer.
    let mut third = Device::new(&token("alice"));
    third.put("notes", "k3", "1");
    assert_over(&push(&server, &mut third), "nodes");
    assert_eq!(pulled(&server, "alice"), before);

    // A third device claiming its node with an empty round.
    let mut claimer = Device::new(&token("alice"));
    claimer.client.secret = Some("claimer-secret-0123456789".into());
    assert_over(&push(&server, &mut claimer), "nodes");
    // Without a secret it claims nothing and reads as before.
    claimer.client.secret = None;
    assert_eq!(push(&server, &mut claimer).status, 200);
}

on_both!(a_push_or_claim_past_the_nodes_cap_is_refused);

/// Caps count over every dataset of a user: a second dataset does not get caps of its own
/// (otherwise each new dataset name would multiply them).
fn caps_count_over_every_dataset_of_the_user(db: &TestDb) {
    let server = server_with(db, &["--max-records-per-user", "4"]);
    let mut a = Device::new(&token("alice"));
    a.client.dataset = Some("first".into());
    for k in 1..=3 {
        a.put("notes", &format!("k{k}"), "1");
    }
    a.sync(&server, 100);

    // One more record in another dataset fits; a second one is past the user's cap.
    let mut b = Device::new(&token("alice"));
    b.client.dataset = Some("second".into());
    b.put("notes", "k1", "1");
    assert_eq!(push(&server, &mut b).status, 200);
    let mut c = Device::new(&token("alice"));
    c.client.dataset = Some("third".into());
    c.put("todo", "k1", "1");
    assert_over(&push(&server, &mut c), "records");
    // The default dataset counts too.
    let mut d = Device::new(&token("alice"));
    d.put("other", "k1", "1");
    assert_over(&push(&server, &mut d), "records");
    // Plugins: "notes" in two datasets is two, so two more plugins are past the cap of 3.
    drop(server);
    let server = server_with(db, &["--max-plugins-per-user", "3"]);
    let mut e = Device::new(&token("alice"));
    e.client.dataset = Some("fourth".into());
    e.put("p1", "k", "1");
    e.put("p2", "k", "1");
    assert_over(&push(&server, &mut e), "plugins");
    // Another user is unaffected.
    let mut bob = Device::new(&token("bob"));
    bob.client.dataset = Some("first".into());
    bob.put("notes", "k1", "1");
    assert_eq!(push(&server, &mut bob).status, 200);
}

on_both!(caps_count_over_every_dataset_of_the_user);
