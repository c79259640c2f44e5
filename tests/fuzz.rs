//! Fuzzing on the stable toolchain (fuzz/README.md says why not cargo-fuzz): each target runs
//! its committed seed corpus (fuzz/corpus/<target>/), then mutated and `arbitrary`-built inputs
//! until its time budget is spent, and fails on the first panic or broken property, printing
//! the input and saving it to target/fuzz-crashes/.
//!
//! `FUZZ_SECS` (default 3) is the budget per target, `FUZZ_SEED` replays a run (every run prints
//! its seed). Targets: HLC text, ids (plugin id, key, node id), the wire protocol (exchange
//! request and reply, decoded, validated and served), the hand-written wire the browser uses
//! (against serde_json as the oracle), the journal / localStorage row codec, and the JSON
//! syntax check (against serde_json as the oracle).
#![cfg(not(target_arch = "wasm32"))]

mod common {
    pub mod wire_oracle;
}

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use clientdata::core::json::check_json;
use clientdata::core::replica::{serve, Client, MemoryStore};
use clientdata::core::{
    ExchangeRequest, ExchangeResponse, Hlc, HlcClock, Key, Limits, NodeId, PluginId, Record, Value,
};
use clientdata::store::journal;

const NOW: u64 = 1_700_000_000_000;

/// Byte strings a mutation splices in: the grammar's tokens and edge cases of each format.
const DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b",",
    b":",
    b"null",
    b"true",
    b"false",
    b"-0",
    b"1e999",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00",
    b"\"version\":1",
    b"\"limit\":",
    b"\"push\":[",
    b"\"seen\":{",
    b"\"plugins\":",
    b"\"node\":\"0000000000000001\"",
    b"\"hlc\":",
    b"\"value\":{\"json\":",
    b"\"bytes\":\"",
    b"\"secret\":",
    b"\"hasMore\":",
    b"\"coverage\":{",
    b"\"records\":[",
    b"\"rows\":[",
    b"\"next\":{\"plugin\":\"a\",\"key\":\"k\"}",
    b"\"collected\":{\"a\":{",
    b"\"coverageNext\":",
    b"\"fullResync\":true",
    b"\"replacedStoreEpoch\":",
    b"{\"ref\":{\"kind\":\"json\",\"size\":1,\"sha256\":\"",
    b"abababababababababababababababababababababababababababababababab",
    b"\"AP8H\"",
    b"\"0000000000000001\":",
    b"018bcfe5a21b-0004-9f1c2e0a4b3d5e6f",
    b"ffffffffffff-ffff-ffffffffffffffff",
    b"000000000000-0000-0000000000000000",
    b"\x01",
    b"\x01j",
    b"\x01b",
    b"\x01d",
    b"\x00",
    b"\x7f",
    "é".as_bytes(),
    "€".as_bytes(),
    "😀".as_bytes(),
    b"\xff",
    b"..",
    b"-",
    b"_",
    b".",
    b"__proto__",
    b"4294967296",
    b"18446744073709551616",
];

struct Fuzzer {
    name: &'static str,
    rng: fastrand::Rng,
    seed: u64,
    corpus: Vec<Vec<u8>>,
    execs: u64,
}

impl Fuzzer {
    fn new(name: &'static str) -> Fuzzer {
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .map(|s| s.parse().expect("FUZZ_SEED must be a number"))
            .unwrap_or_else(|| fastrand::u64(..));
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let corpus: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        assert!(!corpus.is_empty(), "no seed corpus in {}", dir.display());
        Fuzzer {
            name,
            rng: fastrand::Rng::with_seed(seed),
            seed,
            corpus,
            execs: 0,
        }
    }

    /// Runs `target` on one input; a panic (a crash or a broken property) fails the test.
    fn exec(&mut self, target: fn(&[u8]), input: &[u8]) {
        self.execs += 1;
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{}-{}-{}", self.name, self.seed, self.execs));
            let _ = std::fs::write(&file, input);
            panic!(
                "fuzz target {} failed on input {:?} (saved to {}; replay the run with FUZZ_SEED={})",
                self.name,
                String::from_utf8_lossy(input),
                file.display(),
                self.seed
            );
        }
    }

    fn mutate(&mut self, data: &mut Vec<u8>) {
        let rng = &mut self.rng;
        for _ in 0..rng.usize(1..=4) {
            let len = data.len();
            match rng.u8(0..9) {
                0 if len > 0 => data[rng.usize(..len)] ^= 1 << rng.u8(0..8),
                1 if len > 0 => data[rng.usize(..len)] = rng.u8(..),
                2 => {
                    let at = rng.usize(..=len);
                    let bytes: Vec<u8> = (0..rng.usize(1..=4)).map(|_| rng.u8(..)).collect();
                    data.splice(at..at, bytes);
                }
                3 if len > 0 => {
                    let from = rng.usize(..len);
                    let to = (from + rng.usize(1..=8)).min(len);
                    data.drain(from..to);
                }
                4 if len > 0 => {
                    let from = rng.usize(..len);
                    let to = (from + rng.usize(1..=16)).min(len);
                    let copy = data[from..to].to_vec();
                    let at = rng.usize(..=data.len());
                    data.splice(at..at, copy);
                }
                5 | 6 => {
                    let token = DICT[rng.usize(..DICT.len())];
                    let at = rng.usize(..=len);
                    if rng.bool() || len == 0 {
                        data.splice(at..at, token.iter().copied());
                    } else {
                        let to = (at + token.len()).min(len);
                        data.splice(at..to, token.iter().copied());
                    }
                }
                7 => {
                    let other = &self.corpus[rng.usize(..self.corpus.len())];
                    let cut = rng.usize(..=len);
                    let from = rng.usize(..=other.len());
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
                _ => data.truncate(rng.usize(..=len)),
            }
        }
    }

    /// The corpus as it is, then mutants of it and random bytes until the budget is spent.
    fn run(mut self, target: fn(&[u8])) {
        let secs: f64 = std::env::var("FUZZ_SECS")
            .ok()
            .map(|s| s.parse().expect("FUZZ_SECS must be a number"))
            .unwrap_or(3.0);
        let started = Instant::now();
        for input in self.corpus.clone() {
            self.exec(target, &input);
        }
        let deadline = started + Duration::from_secs_f64(secs);
        while Instant::now() < deadline {
            for _ in 0..64 {
                let mut input = if self.rng.u8(0..10) == 0 {
                    (0..self.rng.usize(0..64))
                        .map(|_| self.rng.u8(..))
                        .collect()
                } else {
                    self.corpus[self.rng.usize(..self.corpus.len())].clone()
                };
                self.mutate(&mut input);
                self.exec(target, &input);
            }
        }
        eprintln!(
            "fuzz {}: {} executions in {:.1} s, 0 failures (seed {}, {} corpus inputs)",
            self.name,
            self.execs,
            started.elapsed().as_secs_f64(),
            self.seed,
            self.corpus.len()
        );
        assert!(
            self.execs > self.corpus.len() as u64,
            "no mutated input ran"
        );
    }
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

/// An arbitrary record, valid by construction (for round trips).
fn arbitrary_record(u: &mut Unstructured) -> arbitrary::Result<Record> {
    let plugin: String = u.arbitrary()?;
    let plugin = PluginId::new(plugin).unwrap_or_else(|_| PluginId::new("p").unwrap());
    let key: String = u.arbitrary()?;
    let key = Key::new(key).unwrap_or_else(|_| Key::new("__proto__").unwrap());
    let node = NodeId::new(u.arbitrary::<u64>()?.max(1)).unwrap();
    let hlc = Hlc::new(u.int_in_range(0..=(1 << 48) - 1)?, u.arbitrary()?, node).unwrap();
    Ok(match u.int_in_range(0..=2u8)? {
        0 => Record::tombstone(plugin, key, hlc),
        1 => {
            let s: String = u.arbitrary()?;
            Record::put(
                plugin,
                key,
                Value::Json(serde_json::to_string(&s).unwrap()),
                hlc,
            )
        }
        _ => Record::put(plugin, key, Value::Bytes(u.arbitrary()?), hlc),
    })
}

fn hlc_target(input: &[u8]) {
    let text = text(input);
    if let Ok(hlc) = Hlc::parse(&text) {
        assert_eq!(hlc.encode(), text, "a parsed HLC re-encodes to its text");
        // Byte order of the text is HLC order: compare with a neighbour made from the input.
        let mut u = Unstructured::new(input);
        let other = Hlc::new(
            u.int_in_range(0..=(1 << 48) - 1).unwrap_or(0),
            u.arbitrary().unwrap_or(0),
            NodeId::new(u.arbitrary::<u64>().unwrap_or(1).max(1)).unwrap(),
        )
        .unwrap();
        assert_eq!(hlc.cmp(&other), hlc.encode().cmp(&other.encode()));
        let json = serde_json::to_string(&hlc).unwrap();
        assert_eq!(serde_json::from_str::<Hlc>(&json).unwrap(), hlc);
    }
    let _ = serde_json::from_slice::<Hlc>(input);
}

fn ids_target(input: &[u8]) {
    let text = text(input);
    // The documented rules (docs/ERRORS.md), written here independently of ids.rs.
    let plugin_ok = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && text.as_bytes()[0].is_ascii_alphanumeric()
        && !text.contains("..");
    match PluginId::new(text.clone()) {
        Ok(id) => {
            assert!(plugin_ok, "plugin id {text:?} accepted");
            assert_eq!(id.as_str(), text);
        }
        Err(e) => {
            assert!(!plugin_ok, "plugin id {text:?} refused: {e}");
            assert_eq!(e.code(), "invalid_plugin_id");
        }
    }
    let key_ok = (1..=1024).contains(&text.len()) && !text.chars().any(|c| c.is_ascii_control());
    match Key::new(text.clone()) {
        Ok(key) => {
            assert!(key_ok, "key {text:?} accepted");
            assert_eq!(key.as_str(), text);
        }
        Err(e) => {
            assert!(!key_ok, "key {text:?} refused: {e}");
            assert_eq!(e.code(), "invalid_key");
        }
    }
    let node_ok = text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0');
    match NodeId::parse(&text) {
        Ok(node) => {
            assert!(node_ok, "node id {text:?} accepted");
            assert_eq!(node.to_string(), text);
        }
        Err(e) => {
            assert!(!node_ok, "node id {text:?} refused: {e}");
            assert_eq!(e.code(), "invalid_node_id");
        }
    }
    // Through serde (the wire), the same answer.
    let quoted = serde_json::to_string(&text).unwrap();
    assert_eq!(serde_json::from_str::<PluginId>(&quoted).is_ok(), plugin_ok);
    assert_eq!(serde_json::from_str::<Key>(&quoted).is_ok(), key_ok);
    assert_eq!(serde_json::from_str::<NodeId>(&quoted).is_ok(), node_ok);
}

fn protocol_target(input: &[u8]) {
    let limits = Limits::default();
    match serde_json::from_slice::<ExchangeRequest>(input) {
        Ok(request) => {
            let again: ExchangeRequest =
                serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
            assert_eq!(again, request, "a decoded request survives a round trip");
            // The server's whole answer path: validate, apply, answer; errors are typed.
            let mut server = MemoryStore::new();
            match serve(&mut server, &request, &limits, NOW) {
                Ok((reply, _)) => {
                    reply
                        .validate(&limits, NOW)
                        .expect("the server's own reply is valid");
                    let client = Client::new(request.node);
                    let clock = HlcClock::new(request.node, Default::default(), 60_000);
                    client
                        .plan(&mut MemoryStore::new(), &request, &reply, &clock, NOW)
                        .expect("its own requester accepts the reply");
                }
                Err(e) => {
                    assert!(
                        request.validate(&limits, NOW).is_err(),
                        "served {e} after validating"
                    );
                }
            }
        }
        Err(e) => {
            // The server classifies the message into a code; it must be a known one.
            let body = clientdata::core::protocol::ErrorBody::from_parse_error(&e.to_string());
            assert!(!body.code.is_empty());
        }
    }
    if let Ok(reply) = serde_json::from_slice::<ExchangeResponse>(input) {
        let _ = reply.validate(&limits, NOW);
        let node = NodeId::new(7).unwrap();
        let request = ExchangeRequest {
            version: clientdata::core::PROTOCOL_VERSION,
            node,
            plugins: None,
            seen: Default::default(),
            push: vec![],
            limit: 1000,
            secret: None,
            dataset: None,
            coverage_from: None,
            device: None,
        };
        let clock = HlcClock::new(node, Default::default(), 60_000);
        let _ = Client::new(node).plan(&mut MemoryStore::new(), &request, &reply, &clock, NOW);
    }
}

fn journal_target(input: &[u8]) {
    let entry = text(input);
    // Any text: a record or a typed reason, never a panic (multi-byte tags included).
    if let Ok(record) = journal::decode(&entry) {
        assert_eq!(
            journal::decode(&journal::encode(&record)),
            Ok(record),
            "a decoded entry re-encodes to the same record"
        );
    }
    if let Some((slot, seq)) = journal::parse_suffix(&entry) {
        assert_eq!(
            journal::parse_suffix(&format!("{slot}:{seq}")),
            Some((slot, seq))
        );
    }
    if let Ok(record) = arbitrary_record(&mut Unstructured::new(input)) {
        assert_eq!(journal::decode(&journal::encode(&record)), Ok(record));
    }
}

fn json_target(input: &[u8]) {
    let text = text(input);
    let ours = check_json(&text);
    let oracle = serde_json::from_str::<serde::de::IgnoredAny>(&text);
    if let Err(e) = &oracle {
        if e.to_string().contains("recursion limit") {
            return; // serde_json stops at depth 128; ours is iterative and has no limit
        }
    }
    assert_eq!(
        ours.is_ok(),
        oracle.is_ok(),
        "check_json says {ours:?}, serde_json says {oracle:?}"
    );
    if let Err(e) = ours {
        assert!(e.offset <= text.len());
    }
}

/// The hand-written wire (`core::wire`, what the browser reads and writes) against serde_json:
/// a reply or page is accepted exactly when serde_json accepts it, with the same value; a
/// request built from the input is written as serde_json writes it.
fn wire_target(input: &[u8]) {
    let text = text(input);
    common::wire_oracle::agree_exchange(&text);
    common::wire_oracle::agree_resync(&text);
    let mut u = Unstructured::new(input);
    let Ok(push) = (0..u.int_in_range(0..=3u8).unwrap_or(0))
        .map(|_| arbitrary_record(&mut u))
        .collect::<arbitrary::Result<Vec<Record>>>()
    else {
        return;
    };
    let node = NodeId::new(u.arbitrary::<u64>().unwrap_or(1).max(1)).unwrap();
    let mut seen = clientdata::core::Watermarks::new();
    for record in &push {
        seen.advance(&record.plugin, record.hlc);
    }
    let request = ExchangeRequest {
        version: u.arbitrary().unwrap_or(2),
        node,
        plugins: u
            .arbitrary::<bool>()
            .unwrap_or(false)
            .then(|| push.iter().map(|r| r.plugin.clone()).collect()),
        seen,
        push,
        limit: u.arbitrary().unwrap_or(1),
        secret: u.arbitrary().unwrap_or(None),
        dataset: u.arbitrary().unwrap_or(None),
        coverage_from: None,
        device: None,
    };
    let json = request.to_json();
    assert_eq!(json, serde_json::to_string(&request).unwrap());
    assert_eq!(
        serde_json::from_str::<ExchangeRequest>(&json).unwrap(),
        request
    );
}

#[test]
fn fuzz_hlc() {
    Fuzzer::new("hlc").run(hlc_target);
}

#[test]
fn fuzz_ids() {
    Fuzzer::new("ids").run(ids_target);
}

#[test]
fn fuzz_protocol() {
    Fuzzer::new("protocol").run(protocol_target);
}

#[test]
fn fuzz_journal() {
    Fuzzer::new("journal").run(journal_target);
}

#[test]
fn fuzz_json() {
    Fuzzer::new("json").run(json_target);
}

#[test]
fn fuzz_wire() {
    Fuzzer::new("wire").run(wire_target);
}
