//! Rounds between simulated devices through the real server.

use clientdata::core::replica::serve;
use clientdata::core::{Limits, MemoryStore, PluginId, Value};

use crate::support::{now_ms, plugin, token, Device, Server, TestDb};

/// A device's live values, sorted by (plugin, key).
fn live(device: &Device) -> Vec<(String, String, Value)> {
    let mut contents = device.contents();
    contents.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    contents
}

fn devices_of_one_user_converge(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut rng = fastrand::Rng::with_seed(1);
    let mut devices = vec![
        Device::new(&token("alice")),
        Device::new("token-alice-second-device"),
        Device::new(&token("alice")),
    ];
    devices[1].behind_ms = 3_000; // a slow wall clock: its later writes may still lose
    let mut written = 0;
    for step in 0..300 {
        let d = rng.usize(0..devices.len());
        let (p, k) = (
            ["notes", "prefs"][rng.usize(0..2)],
            format!("k{}", rng.u8(0..20)),
        );
        match rng.u8(0..10) {
            0 => drop(devices[d].write(p, &k, None)),
            1 => drop(devices[d].write(
                p,
                &k,
                Some(Value::Bytes(vec![rng.u8(..); rng.usize(0..16)])),
            )),
            _ => drop(devices[d].put(p, &k, &format!("{{\"step\":{step}}}"))),
        }
        written += 1;
        if rng.u8(0..4) == 0 {
            let d = rng.usize(0..devices.len());
            devices[d].sync(&server, rng.u32(1..8));
        }
    }
    // Two passes: the first pushes everything, the second pulls what others pushed after.
    for _ in 0..2 {
        for d in &mut devices {
            d.sync(&server, 5);
        }
    }
    let expected = live(&devices[0]);
    assert!(!expected.is_empty() && written == 300);
    for d in &devices[1..] {
        assert_eq!(live(d), expected);
        // Tombstones too: the full record sets are equal.
        assert_eq!(
            d.store.records().collect::<Vec<_>>(),
            devices[0].store.records().collect::<Vec<_>>()
        );
    }
    // A new device pulls the same state.
    let mut fresh = Device::new(&token("alice"));
    fresh.sync(&server, 1000);
    assert_eq!(live(&fresh), expected);
}

fn paging_with_small_limits_and_byte_budgets_delivers_everything(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut writer = Device::new(&token("bob"));
    for i in 0..250 {
        writer.put(
            ["a", "b", "c"][i % 3],
            &format!("key-{i:03}"),
            &i.to_string(),
        );
    }
    let pushed = writer.sync(&server, 7);
    assert_eq!(pushed.pushed, 250);
    assert!(pushed.rounds >= 250 / 7, "{pushed:?}");

    let mut reader = Device::new(&token("bob"));
    let pulled = reader.sync(&server, 3);
    assert_eq!(pulled.applied, 250);
    assert!(
        pulled.rounds > 250 / 3,
        "hasMore must have looped: {pulled:?}"
    );
    assert_eq!(live(&reader), live(&writer));

    // A scoped reader gets exactly its plugin.
    let mut scoped = Device::new(&token("bob"));
    let only_b = [plugin("b")];
    while scoped.round(&server, Some(&only_b), 4).1 {}
    assert_eq!(scoped.contents().len(), 250 / 3);
    assert!(scoped.contents().iter().all(|(p, _, _)| p == "b"));

    // Big values: the page byte budget (3 MiB) cuts long before the record limit.
    let big = format!("\"{}\"", "x".repeat(400 << 10));
    for i in 0..12 {
        writer.put("blobs", &format!("blob-{i}"), &big);
    }
    writer.sync(&server, 1000);
    let rounds_before = reader.sync(&server, 1000);
    assert_eq!(rounds_before.applied, 12);
    assert!(
        rounds_before.rounds >= 2,
        "a 4.8 MB answer must be cut: {rounds_before:?}"
    );
}

fn replaying_a_request_changes_nothing(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut other = Device::new(&token("alice"));
    other.put("p", "shared", "\"other\"");
    other.sync(&server, 100);

    let mut device = Device::new(&token("alice"));
    for i in 0..20 {
        device.put("p", &format!("k{i}"), &i.to_string());
    }
    device.put("p", "shared", "\"device\"");
    let out = device
        .client
        .request(&mut device.store, &device.clock, None, 100)
        .unwrap();
    let first = server.exchange(&device.token, &out.request);
    let snapshot = |server: &Server| {
        let mut observer = Device::new(&token("alice"));
        observer.sync(server, 1000);
        observer.store.records().cloned().collect::<Vec<_>>()
    };
    let before = snapshot(&server);
    for _ in 0..3 {
        assert_eq!(
            server.exchange(&device.token, &out.request),
            first,
            "a replay answers the same"
        );
    }
    assert_eq!(
        snapshot(&server),
        before,
        "a replay changes no stored record"
    );
    assert_eq!(before.len(), 21);
}

/// One round of `device`, also served by the core's `MemoryStore` model in-process: the two
/// answers must be identical. Returns whether more rounds are needed.
fn mirrored_round(
    server: &Server,
    model: &mut MemoryStore,
    device: &mut Device,
    scope: Option<&[PluginId]>,
    limit: u32,
) -> bool {
    let out = device
        .client
        .request(&mut device.store, &device.clock, scope, limit)
        .unwrap();
    let reply = server.exchange(&device.token, &out.request);
    let (expected, _) = serve(model, &out.request, &Limits::default(), now_ms()).unwrap();
    assert_eq!(reply, expected);
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
    plan.has_more || out.more_to_push
}

fn lww_conflicts_resolve_exactly_as_the_core_model(db: &TestDb) {
    let server = Server::with_tokens(db);
    let mut model = MemoryStore::new();
    let mut rng = fastrand::Rng::with_seed(42);
    let mut devices: Vec<Device> = (0..4).map(|_| Device::new(&token("bob"))).collect();
    for (i, d) in devices.iter_mut().enumerate() {
        d.behind_ms = i as u64 * 700; // skewed clocks: wall order and write order disagree
    }
    let mut rounds = 0;
    for step in 0..400 {
        let d = rng.usize(0..devices.len());
        let k = format!("k{}", rng.u8(0..5));
        if rng.u8(0..6) == 0 {
            devices[d].write("conflicts", &k, None);
        } else {
            devices[d].put(
                ["conflicts", "other"][rng.usize(0..2)],
                &k,
                &step.to_string(),
            );
        }
        if rng.bool() {
            let scope = rng.bool().then(|| vec![plugin("conflicts")]);
            let d = rng.usize(0..devices.len());
            mirrored_round(
                &server,
                &mut model,
                &mut devices[d],
                scope.as_deref(),
                rng.u32(1..6),
            );
            rounds += 1;
        }
    }
    assert!(rounds > 150);
    // Everyone converges on the model's winners.
    for _ in 0..2 {
        for d in &mut devices {
            while mirrored_round(&server, &mut model, d, None, 7) {}
        }
    }
    let winners: Vec<_> = model.records().cloned().collect();
    assert!(winners.len() == 10, "{}", winners.len());
    for d in &devices {
        assert_eq!(d.store.records().cloned().collect::<Vec<_>>(), winners);
    }
}

on_both!(devices_of_one_user_converge);
on_both!(paging_with_small_limits_and_byte_budgets_delivers_everything);
on_both!(replaying_a_request_changes_nothing);
on_both!(lww_conflicts_resolve_exactly_as_the_core_model);
