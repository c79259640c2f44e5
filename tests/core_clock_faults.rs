//! Clock faults (CockroachDB's rule: a stamp too far ahead of the receiver's clock is refused,
//! never adopted): a device a year ahead is refused by the server with `clock_drift` and moves
//! nobody's clock; a reply carrying such a stamp is refused by the client with its clock and
//! store unchanged; a server whose clock is behind orders nothing by its own time, refuses what
//! is beyond the drift bound from its point of view without storing it, and converges once its
//! clock is back. (A reload with the wall clock set back: core_hlc.rs, core_convergence.rs and
//! the browser tier in tests/browser/store.rs.)
#![cfg(not(target_arch = "wasm32"))]

use clientdata::core::replica::{serve, Batch, Client, MemoryStore, Outgoing, Store};
use clientdata::core::{
    ClockState, ExchangeResponse, HlcClock, Key, Limits, NodeId, PluginId, Record, Value,
};

const NOW: u64 = 1_700_000_000_000;
const YEAR_MS: u64 = 365 * 24 * 3_600_000;

struct Device {
    client: Client,
    store: MemoryStore,
    clock: HlcClock,
    /// This device's wall clock minus true time.
    offset_ms: i64,
}

impl Device {
    fn new(n: u64, offset_ms: i64) -> Device {
        let node = NodeId::new(n).unwrap();
        Device {
            client: Client::new(node),
            store: MemoryStore::new(),
            clock: HlcClock::new(node, ClockState::default(), 60_000),
            offset_ms,
        }
    }
    fn now(&self, true_now: u64) -> u64 {
        (true_now as i64 + self.offset_ms) as u64
    }
    fn write(&mut self, true_now: u64, k: &str, v: &str) -> Record {
        let hlc = self.clock.tick(self.now(true_now)).unwrap();
        let r = Record::put(
            PluginId::new("notes").unwrap(),
            Key::new(k).unwrap(),
            Value::Json(v.into()),
            hlc,
        );
        self.store
            .commit(Batch {
                records: vec![r.clone()],
                vectors: vec![],
            })
            .unwrap();
        r
    }
    fn request(&mut self) -> Outgoing {
        self.client
            .request(&mut self.store, &self.clock, None, 100)
            .unwrap()
    }
    fn apply(
        &mut self,
        true_now: u64,
        out: &Outgoing,
        reply: &ExchangeResponse,
    ) -> Result<usize, clientdata::core::replica::ReplicaError<std::convert::Infallible>> {
        let now = self.now(true_now);
        let plan = self
            .client
            .plan(&mut self.store, &out.request, reply, &self.clock, now)?;
        self.store.commit(plan.batch).unwrap();
        self.clock = plan.clock;
        Ok(plan.applied)
    }
    /// One full round against `server` whose clock reads `server_now`.
    fn round(
        &mut self,
        server: &mut MemoryStore,
        true_now: u64,
        server_now: u64,
    ) -> Result<usize, String> {
        let out = self.request();
        let (reply, _) =
            serve(server, &out.request, &Limits::default(), server_now).map_err(|e| match e {
                clientdata::core::replica::ReplicaError::Protocol(p) => p.code().to_owned(),
                other => other.to_string(),
            })?;
        self.apply(true_now, &out, &reply)
            .map_err(|e| e.to_string())
    }
}

#[test]
fn a_device_a_year_ahead_is_refused_and_moves_no_other_clock() {
    let mut server = MemoryStore::new();
    let mut honest = Device::new(1, 0);
    honest.write(NOW, "a", "1");
    honest.round(&mut server, NOW, NOW).unwrap();
    let mut ahead = Device::new(2, YEAR_MS as i64);
    ahead.write(NOW, "b", "2");
    let before = server.clone();

    assert_eq!(
        ahead.round(&mut server, NOW, NOW).unwrap_err(),
        "clock_drift",
        "the server refuses the stamp a year ahead"
    );
    assert_eq!(server, before, "nothing stored, no coverage moved");

    // The honest device syncs: nothing arrives, and its clock follows only its own time (a
    // round observes the local reading; nothing a year ahead reached it).
    assert_eq!(honest.round(&mut server, NOW + 10, NOW + 10).unwrap(), 0);
    assert!(
        honest.clock.state().wall_ms <= NOW + 10,
        "{:?}",
        honest.clock.state()
    );
    let next = honest.write(NOW + 20, "c", "3");
    assert!(
        next.hlc.wall_ms < NOW + 60_000,
        "{} follows real time",
        next.hlc
    );

    // The refused device keeps its write queued: once its clock is fixed (and real time has
    // passed its stamps, as the drift rule requires), the next round delivers it.
    assert_eq!(ahead.store.records().count(), 1);
}

#[test]
fn a_reply_carrying_a_stamp_a_year_ahead_is_refused_with_clock_and_store_unchanged() {
    // A server that stored the bad record anyway (a server built before the check, or one whose
    // own clock was a year ahead when it took it).
    let mut server = MemoryStore::new();
    let mut ahead = Device::new(2, YEAR_MS as i64);
    ahead.write(NOW, "b", "2");
    let out = ahead.request();
    serve(&mut server, &out.request, &Limits::default(), NOW + YEAR_MS).unwrap();

    let mut honest = Device::new(1, 0);
    honest.write(NOW, "a", "1");
    let clock_before = honest.clock.state();
    let store_before = honest.store.clone();
    let out = honest.request();
    let (reply, _) = serve(&mut server, &out.request, &Limits::default(), NOW + YEAR_MS).unwrap();
    let err = honest.apply(NOW, &out, &reply).unwrap_err();
    match err {
        clientdata::core::replica::ReplicaError::Protocol(e) => assert_eq!(e.code(), "clock_drift"),
        other => panic!("{other}"),
    }
    assert_eq!(
        honest.clock.state(),
        clock_before,
        "the clock did not jump a year"
    );
    assert_eq!(
        honest.store, store_before,
        "nothing applied, no watermark moved"
    );
}

#[test]
fn a_server_clock_behind_does_not_change_the_order() {
    // The server's clock is 50 s behind: stamps up to 10 s ahead of real time are still within
    // its 60 s bound, and LWW picks by HLC, never by when the server received a record.
    let server_now = NOW - 50_000;
    let mut server = MemoryStore::new();
    let mut a = Device::new(1, 0);
    let mut b = Device::new(2, 5_000);
    let newer = b.write(NOW, "k", "\"b\"");
    a.write(NOW + 1_000, "k", "\"a\""); // later in real time, earlier stamp (b runs 5 s ahead)
                                        // b pushes first, a second: arrival order must not decide.
    b.round(&mut server, NOW + 2_000, server_now).unwrap();
    a.round(&mut server, NOW + 2_000, server_now).unwrap();
    b.round(&mut server, NOW + 3_000, server_now).unwrap();
    let key = Key::new("k").unwrap();
    let notes = PluginId::new("notes").unwrap();
    for (who, store) in [("server", &server), ("a", &a.store), ("b", &b.store)] {
        assert_eq!(store.get(&notes, &key), Some(&newer), "{who}");
    }
    // Records come back in HLC order whatever the server's clock says.
    let mut c = Device::new(3, 0);
    let out = c.request();
    let (reply, _) = serve(&mut server, &out.request, &Limits::default(), server_now).unwrap();
    assert!(reply.records.windows(2).all(|w| w[0].hlc < w[1].hlc));
}

#[test]
fn a_server_clock_far_behind_refuses_without_storing_and_converges_once_fixed() {
    // 2 minutes behind: an honest device's fresh stamps look 2 minutes ahead to it.
    let mut server = MemoryStore::new();
    let mut a = Device::new(1, 0);
    let mut b = Device::new(2, 0);
    a.write(NOW, "x", "1");
    b.write(NOW + 1, "x", "2");
    let before = server.clone();
    assert_eq!(
        a.round(&mut server, NOW + 10, NOW - 120_000).unwrap_err(),
        "clock_drift"
    );
    assert_eq!(
        b.round(&mut server, NOW + 10, NOW - 120_000).unwrap_err(),
        "clock_drift"
    );
    assert_eq!(server, before, "nothing stored while its clock was wrong");
    // Its clock is fixed: the queued writes go through and everyone agrees on the later stamp.
    for _ in 0..2 {
        a.round(&mut server, NOW + 20, NOW + 20).unwrap();
        b.round(&mut server, NOW + 20, NOW + 20).unwrap();
    }
    let x = (PluginId::new("notes").unwrap(), Key::new("x").unwrap());
    let winner = server.get(&x.0, &x.1).cloned().unwrap();
    assert_eq!(winner.value, Some(Value::Json("2".into())));
    assert_eq!(a.store.get(&x.0, &x.1), Some(&winner));
    assert_eq!(b.store.get(&x.0, &x.1), Some(&winner));
}
