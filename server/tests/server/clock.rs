//! Clock faults against the real server: a device whose clock is a year ahead is refused with
//! `clock_drift`, nothing is stored, and no other device's clock moves.

use clientdata::core::{Hlc, Record, Value};

use crate::support::{key, now_ms, plugin, token, Device, Server, TestDb};

const YEAR_MS: u64 = 365 * 24 * 3_600_000;

fn a_device_a_year_ahead_is_refused_and_moves_no_other_clock(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut honest = Device::new(&token("alice"));
    honest.put("notes", "mine", "1");
    honest.sync(&server, 100);

    // The device a year ahead stamps with its clock; its round is refused as a whole.
    let mut ahead = Device::new(&token("alice"));
    let hlc = ahead.clock.tick(now_ms() + YEAR_MS).unwrap();
    let record = Record {
        plugin: plugin("notes"),
        key: key("future"),
        hlc,
        value: Some(Value::Json("2".into())),
    };
    use clientdata::core::Store;
    ahead
        .store
        .commit(clientdata::core::Batch {
            records: vec![record],
            vectors: vec![],
        })
        .unwrap();
    let out = ahead
        .client
        .request(&mut ahead.store, &ahead.clock, None, 100)
        .unwrap();
    let reply = server.post(&ahead.token, serde_json::to_vec(&out.request).unwrap());
    assert_eq!(
        (reply.status, reply.code()),
        (400, "clock_drift".to_owned())
    );

    // Nothing of it is stored: another device pulls nothing, and its clock stays on real time.
    let mut other = Device::new(&token("alice"));
    let stats = other.sync(&server, 100);
    assert_eq!(other.contents().len(), 1, "only the honest record");
    assert_eq!(stats.applied, 1);
    let wall = other.clock.state().wall_ms;
    assert!(wall <= now_ms() + 1_000, "{} moved toward the future", wall);
    let stamped = other.put("notes", "after", "3").hlc;
    assert!(stamped < Hlc::new(now_ms() + 60_000, 0, stamped.node).unwrap());
    // The honest device too.
    honest.sync(&server, 100);
    assert!(honest.clock.state().wall_ms <= now_ms() + 1_000);
    assert!(honest
        .contents()
        .iter()
        .all(|(_, k, _)| k.as_str() != "future"));
}
on_both!(a_device_a_year_ahead_is_refused_and_moves_no_other_clock);
