//! Ingest, answer and no-change-round cost of the reference server, with 1 KiB values and pushes
//! of 1000 records, for 10k and 100k records; both through the store alone (the core's `serve`
//! inside one SQLite transaction, on a file database in WAL mode) and end to end (the server's
//! router on a loopback port, HTTP and JSON both ways, the client in the same process).
//!
//! Run: `cargo run --release -p clientdata-server --example ingest`
//!
//! An example rather than a `harness = false` bench: `cargo bench` builds the workspace root's
//! `cdylib` twice (the bench with unwinding, the server binary with the release profile's
//! `panic = "abort"`) into one unhashed file name, which breaks the build (cargo issue 6313).

use std::time::{Duration, Instant};

use clap::Parser;

use clientdata::core::hlc::{Clock, SystemClock};
use clientdata::core::{
    ExchangeRequest, ExchangeResponse, Hlc, Key, Limits, NodeId, PluginId, Record, Value,
    Watermarks,
};
use clientdata_server::app;
use clientdata_server::auth::UserId;
use clientdata_server::backend::exchange;
use clientdata_server::config::Config;
use clientdata_server::quota::UserCaps;
use clientdata_server::sqlite::{SqliteBackend, SqliteOptions};

const PUSH: usize = 1000;
const NO_CHANGE_ROUNDS: u32 = 2000;

fn main() {
    // Optional filters: `store` or `http`, and sizes, e.g. `-- store 100000`.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants = |what: &str| {
        !args.iter().any(|a| a == "store" || a == "http") || args.iter().any(|a| a == what)
    };
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    println!(
        "clientdata-server bench: 1 KiB values, pushes of {PUSH} records, answers of up to 1000"
    );
    for n in sizes {
        if wants("store") {
            store_level(n);
        }
        if wants("http") {
            http_level(n);
        }
    }
}

fn writer() -> NodeId {
    NodeId::new(0xbe11c4).unwrap()
}

fn plugin() -> PluginId {
    PluginId::new("bench").unwrap()
}

/// `n` records of one writer in `PUSH`-sized requests, stamps spread over the past.
fn pushes(n: usize) -> Vec<ExchangeRequest> {
    let base = SystemClock.now_ms() - 200_000;
    let value = format!("\"{}\"", "v".repeat(1022));
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let hlc = Hlc::new(base + i as u64 / 4, (i % 4) as u16, writer()).unwrap();
            Record::put(
                plugin(),
                Key::new(format!("key-{i:07}")).unwrap(),
                Value::Json(value.clone()),
                hlc,
            )
        })
        .collect();
    records
        .chunks(PUSH)
        .map(|push| ExchangeRequest {
            version: clientdata::core::PROTOCOL_VERSION,
            node: writer(),
            plugins: None,
            seen: Watermarks::new(),
            push: push.to_vec(),
            limit: 1000,
            secret: None,
            dataset: None,
            coverage_from: None,
            device: None,
        })
        .collect()
}

/// A reader's next request: everything above `seen`.
fn pull(seen: &Watermarks) -> ExchangeRequest {
    ExchangeRequest {
        version: clientdata::core::PROTOCOL_VERSION,
        node: NodeId::new(0x4ead).unwrap(),
        plugins: None,
        seen: seen.clone(),
        push: Vec::new(),
        limit: 1000,
        secret: None,
        dataset: None,
        coverage_from: None,
        device: None,
    }
}

/// Wall time and this process's CPU time (all threads: client, server, checkpointer), so figures
/// taken on a busy machine can be judged: wall far above CPU means waiting (disk, other load).
struct Timer {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Timer {
    fn start() -> Timer {
        Timer {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    fn cpu_secs(&self) -> f64 {
        cpu_time()
            .zip(self.cpu)
            .map_or(f64::NAN, |(now, then)| (now - then).as_secs_f64())
    }

    fn report(self, level: &str, what: &str, n: usize) {
        let (wall, cpu) = (self.wall.elapsed().as_secs_f64(), self.cpu_secs());
        let rate = n as f64 / wall;
        println!("{level:<5} {what:<7} {n:>7} records {wall:>7.3} s {rate:>9.0} records/s   cpu {cpu:>6.2} s");
    }

    fn report_round(self, level: &str) {
        let per_round = |secs: f64| secs * 1e6 / f64::from(NO_CHANGE_ROUNDS);
        let (wall, cpu) = (
            per_round(self.wall.elapsed().as_secs_f64()),
            per_round(self.cpu_secs()),
        );
        println!("{level:<5} no-change round, avg of {NO_CHANGE_ROUNDS}: {wall:>7.1} µs   cpu {cpu:>6.1} µs");
    }
}

/// User + system time of this process from /proc (Linux); `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (in parentheses), utime and stime are the 12th and 13th fields.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
}

fn store_level(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut db =
        SqliteBackend::open(&dir.path().join("bench.sqlite"), SqliteOptions::default()).unwrap();
    let (user, limits) = (UserId::new("bench").unwrap(), Limits::default());
    let requests = pushes(n);

    let timer = Timer::start();
    for request in &requests {
        let (_, stats) = exchange(
            &mut db,
            &user,
            request,
            &limits,
            &UserCaps::DEFAULT,
            SystemClock.now_ms(),
        )
        .unwrap();
        assert_eq!(stats.stored, request.push.len());
    }
    timer.report("store", "ingest", n);

    let mut seen = Watermarks::new();
    let (mut got, timer) = (0, Timer::start());
    loop {
        let (reply, _) = exchange(
            &mut db,
            &user,
            &pull(&seen),
            &limits,
            &UserCaps::DEFAULT,
            SystemClock.now_ms(),
        )
        .unwrap();
        got += reply.records.len();
        for r in &reply.records {
            seen.advance(&r.plugin, r.hlc);
        }
        if !reply.has_more {
            break;
        }
    }
    timer.report("store", "answer", got);
    assert_eq!(got, n);

    let request = pull(&seen);
    let timer = Timer::start();
    for _ in 0..NO_CHANGE_ROUNDS {
        let (reply, _) = exchange(
            &mut db,
            &user,
            &request,
            &limits,
            &UserCaps::DEFAULT,
            SystemClock.now_ms(),
        )
        .unwrap();
        assert!(reply.records.is_empty());
    }
    timer.report_round("store");
}

/// The server in this process on a free loopback port; stopped when the runtime is dropped.
fn start(dir: &std::path::Path) -> (tokio::runtime::Runtime, String) {
    let database = dir.join("bench.sqlite");
    let config = Config::parse_from([
        "clientdata-server",
        "--listen",
        "127.0.0.1:0",
        "--database",
        database.to_str().unwrap(),
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bound = runtime.block_on(app::bind(&config)).unwrap();
    let url = format!("http://{}/sync/exchange", bound.local_addr().unwrap());
    runtime.spawn(bound.serve(std::future::pending()));
    (runtime, url)
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8]) -> Vec<u8> {
    let mut response = agent
        .post(url)
        .header("authorization", "Bearer dev-token-bench")
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap()
}

fn http_level(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start(dir.path());
    let agent = ureq::Agent::new_with_defaults();
    // Serialised up front: the client's encoding is not what is measured.
    let bodies: Vec<Vec<u8>> = pushes(n)
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();

    let timer = Timer::start();
    for body in &bodies {
        post(&agent, &url, body);
    }
    timer.report("http", "ingest", n);

    // The reader decodes every answer: it needs the stamps for its next request.
    let mut seen = Watermarks::new();
    let (mut got, timer) = (0, Timer::start());
    loop {
        let reply: ExchangeResponse = serde_json::from_slice(&post(
            &agent,
            &url,
            &serde_json::to_vec(&pull(&seen)).unwrap(),
        ))
        .unwrap();
        got += reply.records.len();
        for r in &reply.records {
            seen.advance(&r.plugin, r.hlc);
        }
        if !reply.has_more {
            break;
        }
    }
    timer.report("http", "answer", got);
    assert_eq!(got, n);

    let body = serde_json::to_vec(&pull(&seen)).unwrap();
    let timer = Timer::start();
    for _ in 0..NO_CHANGE_ROUNDS {
        post(&agent, &url, &body);
    }
    timer.report_round("http");
}
