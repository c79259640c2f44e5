//! Fairness: user B's exchange latency while user A hammers unscoped rounds over many plugins,
//! against B's idle baseline, printed as a ratio (issue 14). The 100k-plugin run is `#[ignore]`d
//! (minutes in a debug build); a smaller variant runs the same code with 5,000 plugins (long enough rounds of A that B waiting one out would show).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clientdata::core::{ExchangeRequest, Hlc, Key, NodeId, PluginId, Record, Value, Watermarks};

use crate::support::{now_ms, token, tokens_file, Server, TestDb};

fn body(request: &ExchangeRequest) -> Vec<u8> {
    serde_json::to_vec(request).unwrap()
}

fn request(node: NodeId, plugins: Option<Vec<PluginId>>, push: Vec<Record>) -> ExchangeRequest {
    ExchangeRequest {
        version: clientdata::core::PROTOCOL_VERSION,
        node,
        plugins,
        seen: Watermarks::new(),
        push,
        limit: 1000,
        secret: None,
        dataset: None,
        coverage_from: None,
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

/// B's timed rounds of `body`: at least `samples`, for at least `span`.
fn timed(base: &str, body: &[u8], samples: usize, span: Duration) -> Vec<Duration> {
    let agent = new_agent();
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < samples || started.elapsed() < span {
        let round = Instant::now();
        assert_eq!(post(&agent, base, &token("bob"), body), 200);
        times.push(round.elapsed());
    }
    times
}

fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() * 99 / 100]
}

/// Idle and loaded phases alternate this many times, so that load from outside the test (a
/// shared machine) falls on both baselines alike instead of on whichever ran when it came.
const PHASES: u32 = 3;

/// What one fairness run measured.
struct Measured {
    /// B's p99 with A idle.
    idle: Duration,
    /// B's p99 while A hammers.
    loaded: Duration,
    /// A's fastest unscoped round: what one of its rounds costs the server, alone.
    a_round: Duration,
}

impl Measured {
    /// B's p99 under A's load divided by B's idle p99, the idle p99 taken as at least
    /// [`IDLE_FLOOR`]: on an idle 2-core machine B's idle p99 is under 1 ms, and any CPU-bound
    /// neighbour (A's rounds) costs B a scheduler time slice of a few ms whatever the server
    /// does, which alone made ratios of 8 against a sub-millisecond baseline. Queueing behind
    /// A's rounds (the fault this guards against) costs B whole rounds of A, 100+ ms.
    fn ratio(&self) -> f64 {
        self.loaded.as_secs_f64() / self.idle.max(IDLE_FLOOR).as_secs_f64()
    }
}

/// B's p99 idle and under A's load, and A's round time; prints them and the ratio.
fn measure(
    db: &TestDb,
    plugins: usize,
    hammers: usize,
    samples: usize,
    span: Duration,
) -> Measured {
    // A's plugins may exceed the default per-user cap.
    let tokens = tokens_file(db.dir());
    let server = Server::start(
        db.dir(),
        &[
            "--database",
            db.arg(),
            "--tokens",
            tokens.to_str().unwrap(),
            "--max-plugins-per-user",
            "1000000",
        ],
        &[],
    );
    let base = server.base.clone();
    let agent = new_agent();
    // A: one record in each of `plugins` plugins.
    server.seed_plugins(&token("alice"), plugins);
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

    // Warm (connection, caches, statements) first.
    timed(&base, &probe, 20, Duration::ZERO);
    // A hammers only while `active`; `busy` counts its rounds in flight.
    let (stop, active, busy) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let hammer = body(&request(NodeId::random().unwrap(), None, Vec::new()));
    let threads: Vec<_> = (0..hammers)
        .map(|_| {
            let (stop, active, busy) = (stop.clone(), active.clone(), busy.clone());
            let (base, hammer) = (base.clone(), hammer.clone());
            std::thread::spawn(move || {
                let agent = new_agent();
                let mut rounds = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if !active.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    busy.fetch_add(1, Ordering::SeqCst);
                    let round = Instant::now();
                    assert_eq!(post(&agent, &base, &token("alice"), &hammer), 200);
                    rounds.push(round.elapsed());
                    busy.fetch_sub(1, Ordering::SeqCst);
                }
                rounds
            })
        })
        .collect();
    let (mut idle, mut loaded) = (Vec::new(), Vec::new());
    for _ in 0..PHASES {
        // Idle: A's last rounds finished. At least a second, so one stray stall is not the p99.
        active.store(false, Ordering::SeqCst);
        while busy.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        idle.extend(timed(
            &base,
            &probe,
            samples / PHASES as usize,
            Duration::from_secs(1),
        ));
        active.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        loaded.extend(timed(&base, &probe, 10, span / PHASES));
    }
    stop.store(true, Ordering::SeqCst);
    let a_rounds: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let (idle, loaded) = (p99(idle), p99(loaded));
    let measured = Measured {
        idle,
        loaded,
        a_round: a_rounds.iter().copied().min().unwrap_or_default(),
    };
    println!(
        "fairness ({}): A {plugins} plugins, {hammers} hammering connections ({} unscoped rounds, \
         fastest {:?}); B p99 idle {idle:?}, under load {loaded:?}: ratio {:.1} (idle taken as at \
         least {IDLE_FLOOR:?}), {:.1} without that floor",
        db.kind(),
        a_rounds.len(),
        measured.a_round,
        measured.ratio(),
        loaded.as_secs_f64() / idle.as_secs_f64()
    );
    measured
}

/// How far one user's load may raise another's p99 exchange latency.
const MAX_RATIO: f64 = 5.0;

/// The least idle p99 the ratio divides by (see [`Measured::ratio`]).
const IDLE_FLOOR: Duration = Duration::from_millis(5);

/// One measurement at a time: two at once would be each other's load.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_users_load_barely_slows_another(db: &TestDb, plugins: usize, hammers: usize) {
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Under load: at least 10 rounds and 5 s per 20,000 plugins (A's rounds overlap many times).
    let span = Duration::from_secs(5 * (plugins as u64).div_ceil(20_000));
    // The ratio is a latency measurement on a shared machine: a burst of outside load (CI's
    // other steps, another process) can push one run past it. A second run decides then; the
    // regression this guards against (B queued behind A's rounds: ratio 20-101) fails both.
    let mut measured = measure(db, plugins, hammers, 100, span);
    if measured.ratio() >= MAX_RATIO {
        println!(
            "ratio {:.1} at or over {MAX_RATIO}: measuring once more",
            measured.ratio()
        );
        measured = measure(db, plugins, hammers, 100, span);
    }
    let ratio = measured.ratio();
    assert!(
        ratio < MAX_RATIO,
        "B's p99 rose {ratio:.1} times under A's load"
    );
    // Machine-independent: B never waits out one of A's rounds (as it did behind SQLite's one
    // connection, where B's p99 was A's round time).
    assert!(
        measured.loaded * 2 < measured.a_round,
        "B's p99 under load {:?} is more than half of A's round {:?}",
        measured.loaded,
        measured.a_round
    );
}

// SQLite failed before rounds that only read moved to read connections and rounds of one user
// were gated (one connection behind a mutex, every round taking the write lock): ratio 19.5 to
// 101 at 2,000 plugins, B's p99 = A's round. The 100k-plugin run is `#[ignore]`d (minutes to set
// up in a debug build): `cargo test -p clientdata-server --test fairness -- --ignored
// --nocapture` (alone on the machine: it measures latency).
macro_rules! fairness {
    ($name:ident, $plugins:expr, $hammers:expr $(, #[$ignore:meta])?) => {
        mod $name {
            #[test]
            $(#[$ignore])?
            fn sqlite() {
                let db = crate::support::TestDb::sqlite();
                super::one_users_load_barely_slows_another(&db, $plugins, $hammers);
            }
            #[test]
            $(#[$ignore])?
            fn postgres() {
                if let Some(db) = crate::support::TestDb::postgres() {
                    super::one_users_load_barely_slows_another(&db, $plugins, $hammers);
                }
            }
        }
    };
}

fairness!(with_5k_plugins, 5_000, 2);
fairness!(
    with_100k_plugins,
    100_000,
    4,
    #[ignore = "minutes in a debug build; run alone with --ignored --nocapture"]
);
