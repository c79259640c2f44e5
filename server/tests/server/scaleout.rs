//! Two server processes on one PostgreSQL database: devices talking to either converge, racing
//! pushes of the same keys keep the LWW winner, a process killed mid-push loses nothing it
//! acknowledged, and users stay apart across processes. PostgreSQL only (SQLite is one process).

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clientdata::core::{ExchangeResponse, NodeId, Record, Value};

use crate::support::{now_ms, token, Device, Server, TestDb};

/// The PostgreSQL test database, or `None` to skip (see `TestDb::postgres`).
fn shared_db() -> Option<TestDb> {
    TestDb::postgres()
}

/// (plugin, key) -> the value of the greatest HLC among `records` (tombstones as `None`).
fn lww(records: &[Record]) -> BTreeMap<(String, String), Option<Value>> {
    let mut best: BTreeMap<(String, String), &Record> = BTreeMap::new();
    for r in records {
        let slot = best
            .entry((r.plugin.to_string(), r.key.to_string()))
            .or_insert(r);
        if r.hlc > slot.hlc {
            *slot = r;
        }
    }
    best.into_iter()
        .map(|(k, r)| (k, r.value.clone()))
        .collect()
}

/// Every record `user` holds, read by a fresh device through `server`.
fn read_records(server: &Server, user: &str) -> BTreeMap<(String, String), Record> {
    let mut reader = Device::new(&token(user));
    reader.sync(server, 97);
    reader
        .store
        .records()
        .map(|r| ((r.plugin.to_string(), r.key.to_string()), r.clone()))
        .collect()
}

/// What `user` holds, as (plugin, key) -> value.
fn read_all(server: &Server, user: &str) -> BTreeMap<(String, String), Option<Value>> {
    read_records(server, user)
        .into_iter()
        .map(|(k, r)| (k, r.value))
        .collect()
}

#[test]
fn devices_on_two_processes_converge() {
    let Some(db) = shared_db() else { return };
    let (one, two) = (Server::with_tokens(&db), Server::with_tokens(&db));
    let mut a = Device::new(&token("alice"));
    let mut b = Device::new(&token("alice"));
    let mut written = Vec::new();
    for round in 0..20 {
        written.push(a.put("notes", &format!("a{}", round % 7), &round.to_string()));
        written.push(b.put("notes", &format!("b{}", round % 5), &round.to_string()));
        written.push(b.put("notes", "shared", &format!("\"b{round}\"")));
        if round % 3 == 0 {
            written.push(a.write("notes", "shared", None));
        }
        a.sync(&one, 4);
        b.sync(&two, 3);
    }
    a.sync(&one, 100);
    let expected = lww(&written);
    for (device, name) in [(&a, "A on process 1"), (&b, "B on process 2")] {
        let held: BTreeMap<_, _> = device
            .store
            .records()
            .map(|r| ((r.plugin.to_string(), r.key.to_string()), r.value.clone()))
            .collect();
        assert_eq!(held, expected, "{name}");
    }
    assert_eq!(read_all(&one, "alice"), expected);
    assert_eq!(read_all(&two, "alice"), expected);
}

#[test]
fn racing_pushes_of_the_same_keys_keep_the_lww_winner_on_both() {
    let Some(db) = shared_db() else { return };
    let servers = [Server::with_tokens(&db), Server::with_tokens(&db)];
    let bases = Arc::new([servers[0].base.clone(), servers[1].base.clone()]);
    const WRITERS: usize = 6;
    const ROUNDS: usize = 15;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (bases, barrier) = (Arc::clone(&bases), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut device = Device::new(&token("user-150"));
                // Skewed clocks, so the winner of a key is not simply the last writer.
                device.behind_ms = (w as u64 % 3) * 400;
                let (mut written, mut failures) = (Vec::new(), Vec::new());
                for round in 0..ROUNDS {
                    for k in 0..12 {
                        let value = format!("\"w{w}r{round}\"");
                        written.push(device.put("race", &format!("k{k}"), &value));
                    }
                    // Everyone pushes the same keys at the same moment, half through each.
                    barrier.wait();
                    // A failure is kept, not raised here: a panicking writer would leave the
                    // others waiting at the barrier forever.
                    match round_via(&mut device, &bases[(w + round) % 2]) {
                        Ok(Some(pushed)) if pushed.len() == 12 => {}
                        other => failures.push(format!("writer {w} round {round}: {other:?}")),
                    }
                }
                (written, failures)
            })
        })
        .collect();
    let mut written: Vec<Record> = Vec::new();
    for t in threads {
        let (records, failures) = t.join().unwrap();
        assert!(failures.is_empty(), "{failures:#?}");
        written.extend(records);
    }
    assert_eq!(written.len(), WRITERS * ROUNDS * 12);
    let expected = lww(&written);
    assert_eq!(expected.len(), 12);
    assert_eq!(
        read_all(&servers[0], "user-150"),
        expected,
        "through process 1"
    );
    assert_eq!(
        read_all(&servers[1], "user-150"),
        expected,
        "through process 2"
    );
}

/// POSTs `body` as `token`; `None` when the connection failed (the process died).
fn try_post(base: &str, token: &str, body: Vec<u8>) -> Option<(u16, Vec<u8>)> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    );
    let mut response = agent
        .post(format!("{base}/sync/exchange"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(body)
        .ok()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().ok()?;
    Some((status, body))
}

/// One round of `device` through the server at `base`: the records pushed, `Ok(None)` when the
/// connection failed (the process died), `Err` for an answer other than 200.
fn round_via(device: &mut Device, base: &str) -> Result<Option<Vec<Record>>, String> {
    let out = device
        .client
        .request(&mut device.store, &device.clock, None, 1000)
        .unwrap();
    let body = serde_json::to_vec(&out.request).unwrap();
    let Some((status, reply)) = try_post(base, &device.token, body) else {
        return Ok(None);
    };
    if status != 200 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&reply)));
    }
    let reply: ExchangeResponse = serde_json::from_slice(&reply).unwrap();
    let plan = device
        .client
        .plan(
            &mut device.store,
            &out.request,
            &reply,
            &device.clock,
            now_ms(),
        )
        .unwrap();
    clientdata::core::Store::commit(&mut device.store, plan.batch).unwrap();
    device.clock = plan.clock;
    Ok(Some(out.request.push))
}

#[test]
fn sigkill_of_one_process_mid_push_loses_nothing_acknowledged() {
    let Some(db) = shared_db() else { return };
    let victim = Server::with_tokens(&db);
    let survivor = Server::with_tokens(&db);
    let victim_base = victim.base.clone();
    const WRITERS: usize = 4;
    // Writers push through the victim as fast as they can until it dies; each keeps the
    // records of every push that was answered 200 (acknowledged).
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let base = victim_base.clone();
            std::thread::spawn(move || {
                let user = format!("user-{}", w % 2);
                let mut device = Device::new(&token(&user));
                let mut acknowledged: Vec<Record> = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                for round in 0.. {
                    assert!(Instant::now() < deadline, "the victim never died");
                    for k in 0..50 {
                        device.put("p", &format!("w{w}-k{k}"), &format!("{round}"));
                    }
                    match round_via(&mut device, &base) {
                        Ok(Some(pushed)) => acknowledged.extend(pushed),
                        Ok(None) => return (user, device, acknowledged, round),
                        Err(e) => panic!("writer {w} before the kill: {e}"),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    // Let every writer get some pushes acknowledged, then SIGKILL the victim mid-stream.
    std::thread::sleep(Duration::from_millis(1500));
    drop(victim.log_and_kill());
    let mut all = BTreeMap::new();
    for t in threads {
        let (user, mut device, acknowledged, rounds) = t.join().unwrap();
        assert!(
            rounds >= 2,
            "a writer got only {rounds} rounds in before the kill"
        );
        // Everything acknowledged is in the database (or a later write of the same key, from
        // a push that committed but whose answer the kill cut off).
        let held = read_records(&survivor, &user);
        for r in &acknowledged {
            let key = (r.plugin.to_string(), r.key.to_string());
            match held.get(&key) {
                Some(stored) => assert!(stored.hlc >= r.hlc, "acknowledged {key:?} rolled back"),
                None => panic!("acknowledged {key:?} lost"),
            }
        }
        // The unacknowledged push is pushed again through the survivor; nothing is missing.
        device.sync(&survivor, 1000);
        all.entry(user)
            .or_insert_with(Vec::new)
            .extend(device.store.records().cloned());
    }
    for (user, records) in all {
        assert_eq!(read_all(&survivor, &user), lww(&records), "{user}");
    }
}

#[test]
fn users_stay_apart_across_processes() {
    let Some(db) = shared_db() else { return };
    let servers = [Server::with_tokens(&db), Server::with_tokens(&db)];
    let node = NodeId::random().unwrap();
    // Same node id, plugin and keys for every user: only the user separates their rows.
    let mut writers: Vec<Device> = (0..6)
        .map(|u| Device::with_node(&token(&format!("user-{}", 100 + u)), node))
        .collect();
    for (u, writer) in writers.iter_mut().enumerate() {
        for k in 0..5 {
            writer.put("shared", &format!("k{k}"), &format!("\"owner:{u}\""));
        }
    }
    // Each user writes through one process and is read through the other.
    for (u, writer) in writers.iter_mut().enumerate() {
        writer.sync(&servers[u % 2], 3);
    }
    for (u, writer) in writers.iter().enumerate() {
        let user = format!("user-{}", 100 + u);
        let read = read_all(&servers[(u + 1) % 2], &user);
        assert_eq!(read.len(), 5);
        for value in read.values() {
            assert_eq!(
                value,
                &Some(Value::Json(format!("\"owner:{u}\""))),
                "{user}"
            );
        }
        assert_eq!(
            read,
            writer
                .store
                .records()
                .map(|r| ((r.plugin.to_string(), r.key.to_string()), r.value.clone()))
                .collect()
        );
    }
}

/// A round's answer and the coverage it reports must come from the same state: if a push through
/// one process committed between the two reads of a pull through the other, the reader's
/// watermark would pass records it never got, and it would never get them. The per-user lock
/// rules that out; here a reader pulls through process 2 while writers push through process 1.
#[test]
fn a_reader_on_one_process_misses_nothing_pushed_through_the_other() {
    let Some(db) = shared_db() else { return };
    let (one, two) = (Server::with_tokens(&db), Server::with_tokens(&db));
    let writer_base = one.base.clone();
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let base = writer_base.clone();
            std::thread::spawn(move || {
                let mut device = Device::new(&token("user-160"));
                let mut written = Vec::new();
                for round in 0..25 {
                    for k in 0..8 {
                        written.push(device.put("feed", &format!("w{w}-{round}-{k}"), "1"));
                    }
                    let pushed = round_via(&mut device, &base);
                    assert!(matches!(pushed, Ok(Some(_))), "writer {w}: {pushed:?}");
                }
                written
            })
        })
        .collect();
    let mut reader = Device::new(&token("user-160"));
    let mut rounds = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        // Small pages, so pulls interleave with the pushes as much as possible.
        reader.round(&two, None, 5);
        rounds += 1;
    }
    let written: Vec<Record> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    reader.sync(&two, 50);
    assert!(rounds > 10, "only {rounds} concurrent pulls");
    let held: BTreeMap<_, _> = reader
        .store
        .records()
        .map(|r| ((r.plugin.to_string(), r.key.to_string()), r.value.clone()))
        .collect();
    assert_eq!(held, lww(&written), "the reader missed records");
}
