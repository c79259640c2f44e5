//! Node-id integrity: a record stamped with another device's node id never reaches that device.

use clientdata::core::NodeId;

use crate::support::{token, Device, Server, TestDb};

/// A forged record (same user, victim's node id, stamped above everything the victim wrote) used
/// to be answered to the victim, which then refused every reply as `own_node_echoed` until it
/// wrote again. The server now leaves the requester's own node out of every answer.
fn a_record_forged_with_a_victims_node_never_reaches_the_victim(db: &TestDb) {
    let server = Server::with_tokens(db);
    let victim_node = NodeId::random().unwrap();
    let mut victim = Device::with_node(&token("alice"), victim_node);
    victim.put("notes", "mine", "1");
    victim.sync(&server, 10);

    let mut attacker = Device::new(&token("alice"));
    attacker.put("notes", "theirs", "2");
    let mut forged = attacker.put("notes", "forged", "3");
    forged.hlc.node = victim_node;
    forged.hlc.wall_ms += 1_000;
    let out = attacker
        .client
        .request(&mut attacker.store, &attacker.clock, None, 10)
        .unwrap();
    let mut request = out.request;
    request.push.push(forged);
    server.exchange(&attacker.token, &request);

    // Several rounds in a row: none refused, none carries the victim's own node.
    for _ in 0..3 {
        let (_, more, applied) = victim.round(&server, None, 10);
        assert!(!more);
        assert!(victim.store.records().all(|r| r.key.as_str() != "forged"));
        let _ = applied;
    }
    assert!(victim.store.records().any(|r| r.key.as_str() == "theirs"));
}

on_both!(a_record_forged_with_a_victims_node_never_reaches_the_victim);

/// The request a device would send next (its local writes pushed), without sending it.
fn next_request(device: &mut Device) -> Vec<u8> {
    let out = device
        .client
        .request(&mut device.store, &device.clock, None, 10)
        .unwrap();
    serde_json::to_vec(&out.request).unwrap()
}

/// A node id belongs to the device whose secret first claimed it, per user: another secret, or
/// none, is refused with 403 `node_id_taken` and nothing of its push is stored; the owner and
/// other users are unaffected; a malformed secret is a 400.
fn a_node_id_belongs_to_the_device_that_claimed_it(db: &TestDb) {
    let server = Server::with_tokens(db);
    let node = NodeId::random().unwrap();
    let mut owner = Device::with_node(&token("alice"), node);
    owner.client.secret = Some("owner-secret-0123456789".into());
    owner.put("notes", "owner", "1");
    owner.sync(&server, 10);

    for secret in [Some("thief-secret-0123456789"), None] {
        let mut thief = Device::with_node(&token("alice"), node);
        thief.client.secret = secret.map(str::to_owned);
        thief.put("notes", "stolen", "2");
        let body = next_request(&mut thief);
        let reply = server.post(&thief.token, body);
        assert_eq!(
            (reply.status, reply.code()),
            (403, "node_id_taken".into()),
            "{}",
            reply.text()
        );
    }
    let mut short = Device::with_node(&token("alice"), NodeId::random().unwrap());
    short.client.secret = Some("short".into());
    short.put("notes", "short", "3");
    let body = next_request(&mut short);
    let reply = server.post(&short.token, body);
    assert_eq!(
        (reply.status, reply.code()),
        (400, "invalid_request".into()),
        "{}",
        reply.text()
    );

    // Nothing of the refused pushes was stored; the owner keeps syncing.
    let mut reader = Device::new(&token("alice"));
    reader.sync(&server, 10);
    let keys: Vec<String> = reader.store.records().map(|r| r.key.to_string()).collect();
    assert_eq!(keys, ["owner"]);
    owner.put("notes", "later", "4");
    owner.sync(&server, 10);

    // Claims are per user: bob may use the same node id with his own secret.
    let mut bob = Device::with_node(&token("bob"), node);
    bob.client.secret = Some("bob-secret-0123456789".into());
    bob.put("notes", "bob", "5");
    bob.sync(&server, 10);
}

on_both!(a_node_id_belongs_to_the_device_that_claimed_it);
