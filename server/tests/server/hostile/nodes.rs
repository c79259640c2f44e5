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
