//! Fairness: user B's exchange latency while user A hammers unscoped rounds over many plugins,
//! against B's idle baseline, printed as a ratio (issue 14). The 100k-plugin run is `#[ignore]`d
//! (minutes in a debug build); a smaller variant runs the same code with 2,000 plugins.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clientdata::core::{ExchangeRequest, Hlc, Key, NodeId, PluginId, Record, Value, Watermarks};

use crate::support::{now_ms, token, Server, TestDb};

fn body(request: &ExchangeRequest) -> Vec<u8> {
    serde_json::to_vec(request).unwrap()
}

fn request(node: NodeId, plugins: Option<Vec<PluginId>>, push: Vec<Record>) -> ExchangeRequest {
    ExchangeRequest {
        version: 1,
        node,
        plugins,
        seen: Watermarks::new(),
        push,
        limit: 1000,
        secret: None,
        dataset: None,
    }
}

fn post(agent: &ureq::Agent, base: &str, token: &str, body: &[u8]) -> u16 {
    let response = agent
        .post(format!("{base}/sync/exchange"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let _ = response
        .into_body()
        .with_config()
        .limit(256 << 20)
        .read_to_vec();
    status
}

fn new_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build(),
    )
}

/// The 99th percentile of B's timed rounds of `body`: at least `samples`, for at least `span`
/// (so A's slow rounds overlap the measurement many times).
fn p99(base: &str, body: &[u8], samples: usize, span: Duration) -> Duration {
    let agent = new_agent();
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < samples || started.elapsed() < span {
        let round = Instant::now();
        assert_eq!(post(&agent, base, &token("bob"), body), 200);
        times.push(round.elapsed());
    }
    times.sort();
    times[times.len() * 99 / 100]
}

/// B's p99 under A's load divided by B's idle p99; prints both.
fn latency_ratio(
    db: &TestDb,
    plugins: usize,
    hammers: usize,
    samples: usize,
    span: Duration,
) -> f64 {
    let server = Server::with_tokens(db);
    let base = server.base.clone();
    let agent = new_agent();
    // A: one record in each of `plugins` plugins, pushed 1,000 plugins per scoped round.
    let a = NodeId::random().unwrap();
    let start = now_ms() - 60_000;
    for chunk in 0..plugins.div_ceil(1000) {
        let ids: Vec<PluginId> = (chunk * 1000..plugins.min((chunk + 1) * 1000))
            .map(|i| PluginId::new(format!("p{i:06}")).unwrap())
            .collect();
        let push = ids
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let hlc = Hlc::new(start + chunk as u64, i as u16, a).unwrap();
                Record::put(
                    p.clone(),
                    Key::new("k").unwrap(),
                    Value::Json("1".into()),
                    hlc,
                )
            })
            .collect();
        let status = post(
            &agent,
            &base,
            &token("alice"),
            &body(&request(a, Some(ids), push)),
        );
        assert_eq!(status, 200);
    }
    // B: one plugin, one record; its measured round is scoped to it.
    let b = NodeId::random().unwrap();
    let notes = PluginId::new("notes").unwrap();
    let hlc = Hlc::new(now_ms(), 0, b).unwrap();
    let push = vec![Record::put(
        notes.clone(),
        Key::new("k").unwrap(),
        Value::Json("1".into()),
        hlc,
    )];
    assert_eq!(
        post(
            &agent,
            &base,
            &token("bob"),
            &body(&request(b, Some(vec![notes.clone()]), push))
        ),
        200
    );
    let probe = body(&request(b, Some(vec![notes]), Vec::new()));

    let idle = p99(&base, &probe, samples, Duration::ZERO);
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = body(&request(NodeId::random().unwrap(), None, Vec::new()));
    let threads: Vec<_> = (0..hammers)
        .map(|_| {
            let (stop, base, hammer) = (stop.clone(), base.clone(), hammer.clone());
            std::thread::spawn(move || {
                let agent = new_agent();
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(post(&agent, &base, &token("alice"), &hammer), 200);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let loaded = p99(&base, &probe, 10, span);
    stop.store(true, Ordering::Relaxed);
    let rounds: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let ratio = loaded.as_secs_f64() / idle.as_secs_f64();
    println!(
        "fairness ({}): A {plugins} plugins, {hammers} hammering connections ({rounds} unscoped rounds); \
         B p99 idle {idle:?}, under load {loaded:?}: ratio {ratio:.1}",
        db.kind()
    );
    ratio
}

/// How far one user's load may raise another's p99 exchange latency.
const MAX_RATIO: f64 = 5.0;

fn one_users_load_barely_slows_another(db: &TestDb, plugins: usize, hammers: usize) {
    // Under load: at least 10 rounds and 5 s per 20,000 plugins (A's rounds overlap many times).
    let span = Duration::from_secs(5 * (plugins as u64).div_ceil(20_000));
    let ratio = latency_ratio(db, plugins, hammers, 100, span);
    assert!(
        ratio < MAX_RATIO,
        "B's p99 rose {ratio:.1} times under A's load"
    );
}

// Both `#[ignore]`d until the fix: SQLite fails today (one connection behind a mutex, and every
// round takes the write lock, so B waits behind each of A's rounds): ratio 19.5 at 2,000
// plugins. Run with `cargo test -p clientdata-server --test server fairness -- --ignored
// --nocapture` (the run must not share the machine with other tests: it measures latency).
macro_rules! fairness {
    ($name:ident, $plugins:expr, $hammers:expr) => {
        mod $name {
            #[test]
            #[ignore = "fails on SQLite until rounds of different users stop waiting on each other"]
            fn sqlite() {
                let db = crate::support::TestDb::sqlite();
                super::one_users_load_barely_slows_another(&db, $plugins, $hammers);
            }
            #[test]
            #[ignore = "fails on SQLite until rounds of different users stop waiting on each other"]
            fn postgres() {
                if let Some(db) = crate::support::TestDb::postgres() {
                    super::one_users_load_barely_slows_another(&db, $plugins, $hammers);
                }
            }
        }
    };
}

fairness!(with_2k_plugins, 2_000, 2);
fairness!(with_100k_plugins, 100_000, 4);
