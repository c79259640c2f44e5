//! End-to-end encryption's pure rules (`core::sealed`), through whole rounds against the real
//! `serve` on a `MemoryStore` server. WebCrypto is not here, so a toy keyed function stands in
//! for HMAC and a toy AEAD (keystream XOR, keyed tag over associated data and ciphertext) for
//! AES-GCM: enough to prove what the layout binds; the browser tests use the real primitives.
#![cfg(not(target_arch = "wasm32"))]

use clientdata::core::replica::{serve, Batch, Client, MemoryStore, Store};
use clientdata::core::sealed::{self, KeyId, Names};
use clientdata::core::{
    ClockState, ExchangeRequest, ExchangeResponse, HlcClock, Key, Limits, NodeId, PluginId, Record,
    SealError, Value, Watermarks, PROTOCOL_VERSION,
};

const NOW: u64 = 1_700_000_000_000;

/// A toy keyed hash: 32 bytes of FNV-1a chains over key and input (not cryptography).
fn mac(key: &[u8], input: &[u8]) -> Vec<u8> {
    (0u8..4)
        .flat_map(|lane| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(lane);
            for b in key.iter().chain(&[0xff, lane]).chain(input) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h.to_be_bytes()
        })
        .collect()
}

/// A device's key material, the way `browser::sealed` derives it: a data key, a name key.
#[derive(Clone)]
struct Keys {
    data: Vec<u8>,
    names: Vec<u8>,
    blind_plugins: bool,
}

impl Keys {
    fn new(secret: &str) -> Keys {
        Keys {
            data: mac(secret.as_bytes(), b"data"),
            names: mac(secret.as_bytes(), b"names"),
            blind_plugins: true,
        }
    }
    fn id(&self) -> KeyId {
        KeyId::from_mac(&mac(&self.data, sealed::KEY_ID_INPUT)).unwrap()
    }
    fn seal(&self, plain: &[u8], ad: &[u8], iv: u8) -> Vec<u8> {
        let iv = [iv; sealed::IV_LEN];
        let stream = mac(&self.data, &iv);
        let ct: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ stream[i % 32])
            .collect();
        let tag = mac(&self.data, &[ad, &ct].concat());
        [&iv[..], &ct, &tag[..sealed::TAG_LEN]].concat()
    }
    fn open(&self, iv_and_sealed: &[u8], ad: &[u8]) -> Option<Vec<u8>> {
        let (iv, rest) = iv_and_sealed.split_at(sealed::IV_LEN);
        let (ct, tag) = rest.split_at(rest.len() - sealed::TAG_LEN);
        if mac(&self.data, &[ad, ct].concat())[..sealed::TAG_LEN] != *tag {
            return None;
        }
        let stream = mac(&self.data, iv);
        Some(
            ct.iter()
                .enumerate()
                .map(|(i, b)| b ^ stream[i % 32])
                .collect(),
        )
    }
}

struct Device {
    client: Client,
    store: MemoryStore,
    clock: HlcClock,
    keys: Keys,
    names: Names,
}

fn plugin(p: &str) -> PluginId {
    PluginId::new(p).unwrap()
}
fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

impl Device {
    fn new(n: u64, keys: Keys) -> Device {
        let node = NodeId::new(n).unwrap();
        Device {
            client: Client::new(node),
            store: MemoryStore::new(),
            clock: HlcClock::new(node, ClockState::default(), 60_000),
            keys,
            names: Names::default(),
        }
    }

    fn write(&mut self, p: &str, k: &str, v: Option<&str>) {
        let hlc = self.clock.tick(NOW).unwrap();
        let value = v.map(|v| Value::Json(v.into()));
        let r = Record {
            plugin: plugin(p),
            key: key(k),
            hlc,
            value,
        };
        self.store
            .commit(Batch {
                records: vec![r],
                vectors: vec![],
            })
            .unwrap();
    }

    fn get(&self, p: &str, k: &str) -> Option<Value> {
        self.store
            .get(&plugin(p), &key(k))
            .and_then(|r| r.value.clone())
    }

    fn seal(&mut self, request: &ExchangeRequest) -> ExchangeRequest {
        for p in self.names.unknown_in(request) {
            let wire = if self.keys.blind_plugins {
                sealed::blinded_plugin(&mac(&self.keys.names, &sealed::plugin_mac_input(&p)))
                    .unwrap()
            } else {
                p.clone()
            };
            self.names.learn(p, wire);
        }
        let wire_keys = request
            .push
            .iter()
            .map(|r| {
                sealed::blinded_key(&mac(
                    &self.keys.names,
                    &sealed::key_mac_input(&r.plugin, &r.key),
                ))
                .unwrap()
            })
            .collect();
        let jobs = sealed::seal_jobs(request, &self.names, wire_keys, self.keys.id()).unwrap();
        let envelopes = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| {
                sealed::envelope(self.keys.id(), &self.keys.seal(&j.plain, &j.ad, i as u8))
            })
            .collect();
        sealed::wire_request(request, &self.names, jobs, envelopes, None).unwrap()
    }

    fn open(&mut self, reply: &ExchangeResponse) -> Result<ExchangeResponse, SealError> {
        let id = self.keys.id();
        let jobs = sealed::open_jobs(reply, &[id], id)?;
        let opened = jobs
            .iter()
            .map(|j| self.keys.open(&j.iv_and_sealed, &j.ad))
            .collect();
        sealed::plain_reply(reply, &mut self.names, opened)
    }

    /// One sealed round against `server`.
    fn sync(&mut self, server: &mut MemoryStore) -> Result<usize, SealError> {
        let out = self
            .client
            .request(&mut self.store, &self.clock, None, 100)
            .unwrap();
        let wire = self.seal(&out.request);
        let (reply, _) = serve(server, &wire, &Limits::default(), NOW).unwrap();
        let plain = self.open(&reply)?;
        let plan = self
            .client
            .plan(&mut self.store, &out.request, &plain, &self.clock, NOW)
            .unwrap();
        let applied = plan.applied;
        self.store.commit(plan.batch).unwrap();
        self.clock = plan.clock;
        Ok(applied)
    }
}

fn server_bytes(server: &MemoryStore) -> String {
    format!("{:?}", server.records().collect::<Vec<_>>())
}

#[test]
fn blinded_names_pass_the_servers_rules_and_are_deterministic() {
    let m = mac(b"k", b"x");
    let p = sealed::blinded_plugin(&m).unwrap();
    assert_eq!(p.as_str().len(), 1 + sealed::BLIND_HEX);
    assert!(p.as_str().starts_with('b'));
    assert_eq!(p, sealed::blinded_plugin(&m).unwrap());
    let k = sealed::blinded_key(&m).unwrap();
    assert_eq!(k.as_str().len(), sealed::BLIND_HEX);
    assert_eq!(
        sealed::blinded_key(&[1, 2]).unwrap_err().code(),
        "encryption_unavailable"
    );
    // The plugin is part of a key's blinding input: "a" in two plugins are two keys.
    assert_ne!(
        sealed::key_mac_input(&plugin("p1"), &key("a")),
        sealed::key_mac_input(&plugin("p2"), &key("a"))
    );
}

#[test]
fn the_plaintext_round_trips_every_kind_and_refuses_garbage() {
    let hlc = clientdata::core::Hlc::new(NOW, 3, NodeId::new(9).unwrap()).unwrap();
    for value in [
        None,
        Some(Value::Json("{\"a\":[1,2]}".into())),
        Some(Value::Bytes(vec![0, 255, 7])),
        Some(Value::Json(String::new())),
    ] {
        let r = Record {
            plugin: plugin("notes-app"),
            key: key("__proto__/é"),
            hlc,
            value,
        };
        assert_eq!(sealed::parse_inner(&sealed::inner(&r), hlc).unwrap(), r);
    }
    for bad in [
        &[][..],
        &[1][..],
        &[1, 5, b'a'][..],
        &[9, 1, b'a', 0, 1, b'k'][..],
        &[0, 1, b'a', 0, 1, b'k', 1][..],
        &[1, 1, b'A', 0, 1, b'k'][..],
        &[1, 1, b'a', 0, 0][..],
    ] {
        assert_eq!(
            sealed::parse_inner(bad, hlc).unwrap_err().code(),
            "sealed_record_invalid",
            "{bad:?}"
        );
    }
}

#[test]
fn envelopes_that_are_not_envelopes_are_refused() {
    let hlc = clientdata::core::Hlc::new(NOW, 0, NodeId::new(2).unwrap()).unwrap();
    let mut r = Record::put(plugin("p"), key("k"), Value::Json("1".into()), hlc);
    assert_eq!(
        sealed::parse_envelope(&r).unwrap_err().code(),
        "sealed_record_invalid"
    );
    r.value = Some(Value::Bytes(vec![
        1;
        sealed::HEADER_LEN + sealed::TAG_LEN - 1
    ]));
    assert!(sealed::parse_envelope(&r).is_err());
    r.value = Some(Value::Bytes(vec![2; 64]));
    assert!(sealed::parse_envelope(&r).is_err(), "unknown version");
    r.value = None;
    assert!(sealed::parse_envelope(&r).is_err(), "a clear tombstone");
    let id = KeyId([1, 2, 3, 4]);
    r.value = Some(Value::Bytes(sealed::envelope(id, &[7; 40])));
    let e = sealed::parse_envelope(&r).unwrap();
    assert_eq!((e.key, e.iv.len(), e.sealed.len()), (id, 12, 28));
    assert_eq!(id.to_string(), "01020304");
}

#[test]
fn the_server_stores_no_plaintext_and_two_devices_converge() {
    let mut server = MemoryStore::new();
    let mut a = Device::new(1, Keys::new("secret"));
    let mut b = Device::new(2, Keys::new("secret"));
    a.write("notes-app", "shopping list", Some("\"milk and honey\""));
    a.write("notes-app", "gone", Some("\"soon deleted\""));
    a.write("notes-app", "gone", None);
    b.write("todo-app", "errand", Some("{\"buy\":\"bread\"}"));
    a.sync(&mut server).unwrap();
    assert_eq!(b.sync(&mut server).unwrap(), 2, "b gets a's two keys");
    a.sync(&mut server).unwrap();
    for d in [&a, &b] {
        assert_eq!(
            d.get("notes-app", "shopping list"),
            Some(Value::Json("\"milk and honey\"".into()))
        );
        assert_eq!(d.get("notes-app", "gone"), None);
        assert!(d.store.get(&plugin("notes-app"), &key("gone")).is_some());
        assert_eq!(
            d.get("todo-app", "errand"),
            Some(Value::Json("{\"buy\":\"bread\"}".into()))
        );
    }
    let stored = server_bytes(&server);
    for secret in [
        "notes-app",
        "todo-app",
        "shopping",
        "milk",
        "gone",
        "errand",
        "bread",
    ] {
        assert!(!stored.contains(secret), "{secret} in {stored}");
    }
    assert_eq!(server.records().count(), 3);
    assert!(
        server.records().all(|r| r.value.is_some()),
        "a delete travels sealed, like a write"
    );
    // LWW per key survives blinding: b overwrites a's key, a gets it.
    b.write("notes-app", "shopping list", Some("\"bread\""));
    b.sync(&mut server).unwrap();
    assert_eq!(a.sync(&mut server).unwrap(), 1);
    assert_eq!(
        a.get("notes-app", "shopping list"),
        Some(Value::Json("\"bread\"".into()))
    );
    assert_eq!(server.records().count(), 3, "the same blinded row replaced");
}

#[test]
fn plugin_blinding_can_be_turned_off_keys_and_values_stay_sealed() {
    let mut server = MemoryStore::new();
    let keys = Keys {
        blind_plugins: false,
        ..Keys::new("s")
    };
    let mut a = Device::new(1, keys.clone());
    let mut b = Device::new(2, keys);
    a.write("notes-app", "draft", Some("\"hello\""));
    a.sync(&mut server).unwrap();
    let stored = server_bytes(&server);
    assert!(stored.contains("notes-app") && !stored.contains("draft") && !stored.contains("hello"));
    b.sync(&mut server).unwrap();
    assert_eq!(
        b.get("notes-app", "draft"),
        Some(Value::Json("\"hello\"".into()))
    );
}

#[test]
fn a_wrong_key_gets_decryption_failed_and_applies_nothing() {
    let mut server = MemoryStore::new();
    let mut a = Device::new(1, Keys::new("right"));
    a.write("p", "k", Some("1"));
    a.sync(&mut server).unwrap();
    // Same key id (a guessed one, or a colliding id), different key: authentication fails.
    let mut wrong = Keys::new("wrong");
    wrong.names = Keys::new("right").names;
    let mut c = Device::new(3, wrong.clone());
    c.keys.data = Keys::new("wrong").data;
    let reply = fetch_all(&mut server, &c);
    let jobs = sealed::open_jobs(&reply, &[a.keys.id()], a.keys.id()).unwrap();
    let opened: Vec<_> = jobs
        .iter()
        .map(|j| wrong.open(&j.iv_and_sealed, &j.ad))
        .collect();
    let err = sealed::plain_reply(&reply, &mut Names::default(), opened).unwrap_err();
    assert_eq!(err.code(), "decryption_failed");
    // A key with another id: the typed rotation error, naming both ids.
    let err = c.sync(&mut server).unwrap_err();
    assert_eq!(err.code(), "encryption_key_unknown");
    assert!(err.to_string().contains(&a.keys.id().to_string()));
    assert!(c.store.records().next().is_none(), "nothing applied");
    assert_eq!(
        c.store
            .vectors(clientdata::core::VectorKind::Seen, &[])
            .unwrap(),
        Watermarks::new()
    );
}

fn fetch_all(server: &mut MemoryStore, d: &Device) -> ExchangeResponse {
    let ask = ExchangeRequest {
        version: PROTOCOL_VERSION,
        node: d.client.node,
        plugins: None,
        seen: Watermarks::new(),
        push: vec![],
        limit: 100,
        secret: None,
        dataset: None,
        coverage_from: None,
        device: None,
    };
    serve(server, &ask, &Limits::default(), NOW).unwrap().0
}

/// Rewrites the stored rows of `server` with `edit` (a database edited between syncs).
fn edit_rows(server: &mut MemoryStore, edit: impl FnOnce(&mut Vec<Record>)) {
    let mut rows: Vec<Record> = server.records().cloned().collect();
    edit(&mut rows);
    let mut fresh = MemoryStore::new();
    let plugins = server.plugins().unwrap();
    let coverage = server
        .vectors(clientdata::core::VectorKind::Coverage, &plugins)
        .unwrap();
    fresh
        .commit(Batch {
            records: rows,
            vectors: vec![(clientdata::core::VectorKind::Coverage, coverage)],
        })
        .unwrap();
    *server = fresh;
}

#[test]
fn a_server_that_swaps_two_ciphertexts_is_detected_and_nothing_applies() {
    let mut server = MemoryStore::new();
    let mut a = Device::new(1, Keys::new("s"));
    let mut b = Device::new(2, Keys::new("s"));
    a.write("p", "one", Some("1"));
    a.write("p", "two", Some("2"));
    a.sync(&mut server).unwrap();
    edit_rows(&mut server, |rows| {
        let first = rows[0].value.clone();
        rows[0].value = rows[1].value.clone();
        rows[1].value = first;
    });
    let err = b.sync(&mut server).unwrap_err();
    assert_eq!(err.code(), "decryption_failed");
    assert!(b.store.records().next().is_none());
}

#[test]
fn a_server_that_replays_an_old_value_under_a_newer_stamp_is_detected() {
    let mut server = MemoryStore::new();
    let mut a = Device::new(1, Keys::new("s"));
    let mut b = Device::new(2, Keys::new("s"));
    a.write("p", "k", Some("\"old\""));
    a.sync(&mut server).unwrap();
    let old = server.records().next().unwrap().value.clone();
    a.write("p", "k", Some("\"new\""));
    a.sync(&mut server).unwrap();
    edit_rows(&mut server, |rows| rows[0].value = old);
    assert_eq!(b.sync(&mut server).unwrap_err().code(), "decryption_failed");
    assert!(b.store.records().next().is_none());
}

#[test]
fn a_record_sealed_for_one_plugin_cannot_be_claimed_by_another() {
    let mut names = Names::default();
    names.learn(plugin("real"), plugin("bwire"));
    let mut server = MemoryStore::new();
    let mut a = Device::new(1, Keys::new("s"));
    a.write("other", "k", Some("1"));
    a.sync(&mut server).unwrap();
    let mut reply = fetch_all(&mut server, &Device::new(5, Keys::new("s")));
    // The plaintext says "other"; pretend the device already knows the wire id as "real"'s.
    let wire = reply.records[0].plugin.clone();
    names.learn(plugin("real"), wire);
    let id = a.keys.id();
    let jobs = sealed::open_jobs(&reply, &[id], id).unwrap();
    let opened = jobs
        .iter()
        .map(|j| a.keys.open(&j.iv_and_sealed, &j.ad))
        .collect();
    assert_eq!(
        sealed::plain_reply(&reply, &mut names, opened)
            .unwrap_err()
            .code(),
        "sealed_record_invalid"
    );
    // A clear value where a sealed one belongs.
    reply.records[0].value = Some(Value::Json("1".into()));
    assert_eq!(
        sealed::open_jobs(&reply, &[id], id).unwrap_err().code(),
        "sealed_record_invalid"
    );
}

#[test]
fn coverage_outside_a_paged_window_keeps_our_copy() {
    let mut names = Names::default();
    names.learn(plugin("a"), plugin("b2"));
    names.learn(plugin("z"), plugin("b0"));
    names.learn(plugin("m"), plugin("b5"));
    let hlc = clientdata::core::Hlc::new(NOW, 0, NodeId::new(4).unwrap()).unwrap();
    let mut peer = Watermarks::new();
    for p in ["a", "z", "m"] {
        peer.advance(&plugin(p), hlc);
    }
    let mut reply = ExchangeResponse {
        version: PROTOCOL_VERSION,
        records: vec![],
        coverage: Watermarks::new(),
        has_more: false,
        coverage_next: None,
        collected: Watermarks::new(),
        full_resync: false,
        replaced_store_epoch: None,
    };
    // Window [b1, b3): "a" (b2) is inside and absent means none; z (b0) and m (b5) are outside.
    let known = [plugin("a"), plugin("m"), plugin("z")];
    sealed::fill_outside_window(
        &mut reply,
        &names,
        &known,
        &peer,
        Some(&plugin("b1")),
        &plugin("b3"),
    );
    let carried: Vec<_> = reply.coverage.plugins().map(PluginId::as_str).collect();
    assert_eq!(carried, ["m", "z"]);
}
