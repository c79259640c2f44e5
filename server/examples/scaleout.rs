//! Aggregate ingest and answer throughput of real server processes on one database: several
//! users at once, each pushing its records (pushes of 1000 x 1 KiB) through one of the
//! processes and then pulling them back through another, all over HTTP on loopback.
//!
//! Run (after `cargo build --profile server -p clientdata-server --bins --examples`):
//! `target/server/examples/scaleout --database DB --processes N [--users U] [--records R]`
//! where DB is `sqlite` (a temp file; one process only) or a PostgreSQL admin URL (a fresh
//! database is created in that cluster for the run). bench/run.mjs runs it for the P rows.
//! Prints one line per phase, e.g.
//! `scaleout postgres 2 processes ingest 40000 records 1.234 s 32414 records/s`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use clap::Parser;
use clientdata::core::hlc::{Clock, SystemClock};
use clientdata::core::{
    ExchangeRequest, ExchangeResponse, Hlc, Key, NodeId, PluginId, Record, Value, Watermarks,
};

#[derive(Parser)]
struct Args {
    /// `sqlite`, or a PostgreSQL URL whose cluster gets a fresh database for the run.
    #[arg(long)]
    database: String,
    /// Server processes sharing the database.
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Users pushing at the same time (one client thread each).
    #[arg(long, default_value_t = 4)]
    users: usize,
    /// Records per user.
    #[arg(long, default_value_t = 10_000)]
    records: usize,
    /// The server binary (default: `clientdata-server` beside this example's directory).
    #[arg(long)]
    server: Option<PathBuf>,
}

const PUSH: usize = 1000;

/// A server process, killed when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &PathBuf, database: &str, dir: &std::path::Path) -> Process {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin)
        .current_dir(dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database",
            database,
            "--log",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Process {
        url: format!("{base}/sync/exchange"),
        child,
    }
}

/// A new database in the cluster of `admin`; returns its URL.
fn fresh_postgres(admin: &str) -> String {
    let name = format!("scaleout_{}_{}", std::process::id(), SystemClock.now_ms());
    let mut client = postgres::Client::connect(admin, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{server}/{name}{query}")
}

fn pushes(user: usize, n: usize) -> Vec<Vec<u8>> {
    let node = NodeId::new(0x5ca1e000 + user as u64).unwrap();
    let plugin = PluginId::new("bench").unwrap();
    let base = SystemClock.now_ms() - 200_000;
    let value = format!("\"{}\"", "v".repeat(1022));
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let hlc = Hlc::new(base + i as u64 / 4, (i % 4) as u16, node).unwrap();
            let key = Key::new(format!("key-{i:07}")).unwrap();
            Record::put(plugin.clone(), key, Value::Json(value.clone()), hlc)
        })
        .collect();
    records
        .chunks(PUSH)
        .map(|push| {
            serde_json::to_vec(&ExchangeRequest {
                version: clientdata::core::PROTOCOL_VERSION,
                node,
                plugins: None,
                seen: Watermarks::new(),
                push: push.to_vec(),
                limit: 1000,
                secret: None,
                dataset: None,
                coverage_from: None,
                device: None,
            })
            .unwrap()
        })
        .collect()
}

fn post(agent: &ureq::Agent, url: &str, user: usize, body: &[u8]) -> Vec<u8> {
    let mut response = agent
        .post(url)
        .header("authorization", format!("Bearer dev-token-bench-{user}"))
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap()
}

/// Pulls everything of `user` through `url`; returns how many records.
fn pull_all(agent: &ureq::Agent, url: &str, user: usize) -> usize {
    let (mut seen, mut got) = (Watermarks::new(), 0);
    loop {
        let request = ExchangeRequest {
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
        };
        let reply: ExchangeResponse = serde_json::from_slice(&post(
            agent,
            url,
            user,
            &serde_json::to_vec(&request).unwrap(),
        ))
        .unwrap();
        got += reply.records.len();
        for r in &reply.records {
            seen.advance(&r.plugin, r.hlc);
        }
        if !reply.has_more {
            return got;
        }
    }
}

fn report(kind: &str, processes: usize, what: &str, n: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    let plural = if processes == 1 {
        "process"
    } else {
        "processes"
    };
    println!(
        "scaleout {kind} {processes} {plural} {what} {n} records {secs:.3} s {rate:.0} records/s"
    );
}

fn main() {
    let args = Args::parse();
    let bin = args.server.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("clientdata-server")
    });
    let dir = tempfile::tempdir().unwrap();
    let (kind, database) = if args.database == "sqlite" {
        assert_eq!(args.processes, 1, "a SQLite file is served by one process");
        (
            "sqlite",
            dir.path().join("bench.sqlite").display().to_string(),
        )
    } else {
        ("postgres", fresh_postgres(&args.database))
    };
    let processes: Vec<Process> = (0..args.processes)
        .map(|_| start(&bin, &database, dir.path()))
        .collect();
    let urls: Vec<String> = processes.iter().map(|p| p.url.clone()).collect();
    let bodies: Vec<Vec<Vec<u8>>> = (0..args.users).map(|u| pushes(u, args.records)).collect();

    let started = Instant::now();
    std::thread::scope(|scope| {
        for (user, bodies) in bodies.iter().enumerate() {
            let url = &urls[user % urls.len()];
            scope.spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                for body in bodies {
                    post(&agent, url, user, body);
                }
            });
        }
    });
    let total = args.users * args.records;
    report(kind, args.processes, "ingest", total, started);

    let started = Instant::now();
    let got: usize = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..args.users)
            .map(|user| {
                let url = &urls[(user + 1) % urls.len()];
                scope.spawn(move || pull_all(&ureq::Agent::new_with_defaults(), url, user))
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(got, total);
    report(kind, args.processes, "answer", total, started);
    drop(processes);
}
