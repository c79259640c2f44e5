//! The real server binary on a free loopback port with a temp database, a small HTTP client, and
//! simulated devices (the core's `Client` over a `MemoryStore`), and the database each test runs
//! on: [`on_both!`] makes a test run once on SQLite and once on PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use clientdata::core::gc::{drop_collected, ResyncPage};
use clientdata::core::hlc::{Clock, ClockState, SystemClock};
use clientdata::core::replica::Client;
use clientdata::core::resync::{ResyncRequest, ResyncResponse};
use clientdata::core::{
    Batch, ExchangeRequest, ExchangeResponse, Hlc, HlcClock, Key, MemoryStore, NodeId, PluginId,
    Record, Value, Watermarks,
};
use ureq::http;

#[macro_use]
mod db;
pub use db::TestDb;

/// The token file every test server gets: `alice`, `bob` and `carol`, plus `user-0..user-199`.
pub fn tokens_file(dir: &Path) -> PathBuf {
    let path = dir.join("tokens");
    let mut text = String::from("# test tokens\ntoken-alice-0123456789 alice\ntoken-alice-second-device alice\ntoken-bob-0123456789 bob\n");
    for i in 0..200 {
        text.push_str(&format!("token-user-{i:04}-0123456789 user-{i}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The token of a user named in [`tokens_file`].
pub fn token(user: &str) -> String {
    match user.strip_prefix("user-") {
        Some(i) => format!("token-user-{:04}-0123456789", i.parse::<u32>().unwrap()),
        None => format!("token-{user}-0123456789"),
    }
}

/// A running `clientdata-server`; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Lines the server wrote to stderr (its log).
    pub log: Receiver<String>,
    agent: ureq::Agent,
}

impl Server {
    /// Starts the binary with `args` plus `--listen 127.0.0.1:0`, and `env`, in `dir`.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_wrapped(dir, &[], args, env)
    }

    /// [`Server::start`] under a wrapper command (`prlimit --nofile=...`), if any.
    pub fn start_wrapped(
        dir: &Path,
        wrapper: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let binary = env!("CARGO_BIN_EXE_clientdata-server");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(binary);
                cmd
            }
            None => Command::new(binary),
        };
        cmd.current_dir(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Only what the test says: no stray CLIENTDATA_* from the environment.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CLIENTDATA_")) {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("start clientdata-server");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = mpsc::channel();
        // Drain stderr so the server never blocks on a full pipe; keep the lines for tests.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Server {
            child,
            base,
            log,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// A server with the test tokens file on `db`.
    pub fn with_tokens(db: &TestDb) -> Server {
        let tokens = tokens_file(db.dir());
        Server::start(
            db.dir(),
            &["--database", db.arg(), "--tokens", tokens.to_str().unwrap()],
            &[],
        )
    }

    /// Any request; the answer whatever its status.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = self
            .agent
            .run(request.body(body).unwrap())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Writes `request` as is on a new connection (write errors ignored: the server may answer
    /// and close early), then reads the answer: status and JSON body.
    pub fn raw(&self, request: &[u8]) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(self.base.trim_start_matches("http://")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let _ = stream.write_all(request);
        let mut answer = Vec::new();
        let mut buf = [0; 8192];
        // Read until the header and Content-Length bytes of body are in.
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "reading the answer: {e} (got {:?})",
                    String::from_utf8_lossy(&answer)
                ),
            }
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end].lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                });
                if length.is_some_and(|len| answer.len() >= end + 4 + len) {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| serde_json::from_str(b).unwrap_or_default())
            .unwrap_or_default();
        (status, body)
    }

    /// `POST /sync/exchange` with a bearer token and a JSON body.
    pub fn post(&self, token: &str, body: impl Into<Vec<u8>>) -> Reply {
        let auth = format!("Bearer {token}");
        self.send(
            "POST",
            "/sync/exchange",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.into(),
        )
    }

    /// One round that must succeed.
    pub fn exchange(&self, token: &str, request: &ExchangeRequest) -> ExchangeResponse {
        let reply = self.post(token, serde_json::to_vec(request).unwrap());
        assert_eq!(reply.status, 200, "{}", reply.text());
        serde_json::from_slice(&reply.body).unwrap()
    }

    /// `POST /sync/resync` (one page of a full-resync walk) that must succeed.
    pub fn resync(&self, token: &str, request: &ResyncRequest) -> ResyncResponse {
        let auth = format!("Bearer {token}");
        let reply = self.send(
            "POST",
            "/sync/resync",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            serde_json::to_vec(request).unwrap(),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        serde_json::from_slice(&reply.body).unwrap()
    }

    /// Every row the server holds for `token`'s user (tombstones included), walked as `node`.
    pub fn rows(&self, token: &str, node: NodeId) -> Vec<Record> {
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let page = self.resync(
                token,
                &ResyncRequest {
                    version: clientdata::core::PROTOCOL_VERSION,
                    node,
                    plugins: None,
                    after: after.take(),
                    limit: 1000,
                    secret: None,
                    dataset: None,
                },
            );
            rows.extend(page.rows);
            match page.next {
                Some(next) => after = Some(next),
                None => return rows,
            }
        }
    }

    /// One record in each of `plugins` plugins (`p000000`, ...) of the token's user, from one
    /// new node, pushed 1,000 plugins per scoped round.
    pub fn seed_plugins(&self, token: &str, plugins: usize) {
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
            self.exchange(token, &exchange_request(a, Some(ids), push));
        }
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    }

    /// Kills the process now (SIGKILL) and returns what it logged.
    pub fn log_and_kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.iter().collect()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit on its own.
    pub fn wait(mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL: the crash test relies on this being abrupt.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The `code` of an error answer.
    pub fn code(&self) -> String {
        self.json()["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {}", self.text()))
            .to_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An exchange request of `node` with nothing seen, in the default dataset, 1,000 records a page.
pub fn exchange_request(
    node: NodeId,
    plugins: Option<Vec<PluginId>>,
    push: Vec<Record>,
) -> ExchangeRequest {
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
        device: None,
    }
}

pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}
pub fn plugin(p: &str) -> PluginId {
    PluginId::new(p).unwrap()
}
pub fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// A simulated device: the core's client over a `MemoryStore`, with its own HLC.
pub struct Device {
    pub client: Client,
    pub store: MemoryStore,
    pub clock: HlcClock,
    pub token: String,
    /// How far this device's wall clock runs behind real time.
    pub behind_ms: u64,
    /// Where the next request continues the server's coverage (the last reply's `coverageNext`).
    pub coverage_from: Option<PluginId>,
    /// Full resyncs run (the server answered `fullResync`).
    pub full_resyncs: usize,
    /// Local records removed by full resyncs (deleted by a collected tombstone).
    pub resync_removed: usize,
}

/// What one `sync` did.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncStats {
    pub rounds: usize,
    pub applied: usize,
    pub pushed: usize,
}

impl Device {
    pub fn new(token: &str) -> Device {
        Device::with_node(token, NodeId::random().unwrap())
    }

    pub fn with_node(token: &str, node: NodeId) -> Device {
        let client = Client::new(node);
        let clock = HlcClock::new(node, ClockState::default(), client.limits.max_drift_ms);
        Device {
            client,
            store: MemoryStore::new(),
            clock,
            token: token.to_owned(),
            behind_ms: 0,
            coverage_from: None,
            full_resyncs: 0,
            resync_removed: 0,
        }
    }

    /// A local write (`None` deletes), stamped by this device's clock.
    pub fn write(&mut self, p: &str, k: &str, value: Option<Value>) -> Record {
        let hlc = self.clock.tick(now_ms() - self.behind_ms).unwrap();
        let record = Record {
            plugin: plugin(p),
            key: key(k),
            hlc,
            value,
        };
        use clientdata::core::Store;
        self.store
            .commit(Batch {
                records: vec![record.clone()],
                vectors: vec![],
            })
            .unwrap();
        record
    }

    pub fn put(&mut self, p: &str, k: &str, json: &str) -> Record {
        self.write(p, k, Some(Value::Json(json.to_owned())))
    }

    /// One round: request, answer, plan, commit.
    pub fn round(
        &mut self,
        server: &Server,
        plugins: Option<&[PluginId]>,
        limit: u32,
    ) -> (ExchangeRequest, bool, usize) {
        let out = self
            .client
            .request_from(
                &mut self.store,
                &self.clock,
                plugins,
                limit,
                self.coverage_from.take(),
            )
            .unwrap();
        let reply = server.exchange(&self.token, &out.request);
        if reply.full_resync {
            self.full_resync(server, limit);
            return (out.request, true, 0);
        }
        // Collected tombstones go before the reply's records land (core::gc::drop_collected).
        for (p, k) in drop_collected(&reply.collected, self.store.records()) {
            self.store.remove(&p, &k);
        }
        let plan = self
            .client
            .plan(&mut self.store, &out.request, &reply, &self.clock, now_ms())
            .unwrap();
        use clientdata::core::Store;
        self.store.commit(plan.batch).unwrap();
        self.clock = plan.clock;
        self.coverage_from = plan.coverage_next.clone();
        let more = plan.has_more || out.more_to_push || self.coverage_from.is_some();
        (out.request, more, plan.applied)
    }

    /// The full-resync walk (docs/PROTOCOL.md): pages of the server's rows by (plugin, key),
    /// each applied by `core::gc::ResyncPage`; then the walk's coverage becomes `seen` and the
    /// copy of the server's coverage, so the next rounds push what the server lacks.
    pub fn full_resync(&mut self, server: &Server, limit: u32) {
        use clientdata::core::{Store, VectorKind};
        self.full_resyncs += 1;
        let mut after = None;
        let mut base = Watermarks::new();
        loop {
            let request = ResyncRequest {
                version: clientdata::core::PROTOCOL_VERSION,
                node: self.client.node,
                plugins: None,
                after: after.clone(),
                limit,
                secret: self.client.secret.clone(),
                dataset: self.client.dataset.clone(),
            };
            let page = server.resync(&self.token, &request);
            page.check(&request, &self.client.limits, now_ms()).unwrap();
            for (p, v) in page.coverage.iter() {
                if base.plugin(p).is_empty() {
                    base.set(p.clone(), v.clone());
                }
            }
            let cursor = after.as_ref().map(clientdata::core::resync::Cursor::id);
            let step = ResyncPage {
                after: cursor.as_ref(),
                rows: &page.rows,
                complete: page.next.is_none(),
                coverage: &page.coverage,
            }
            .step(self.store.records());
            if let Some(max) = page.rows.iter().map(|r| r.hlc).max() {
                self.clock.observe(max, now_ms()).unwrap();
            }
            self.resync_removed += step.removals.len();
            for (p, k) in &step.removals {
                self.store.remove(p, k);
            }
            self.store
                .commit(Batch {
                    records: step.upserts,
                    vectors: vec![],
                })
                .unwrap();
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // Every local plugin's vectors become the walk's (empty where the server has none).
        let base: Watermarks = self
            .store
            .plugins()
            .unwrap()
            .into_iter()
            .map(|p| (p.clone(), base.plugin(&p)))
            .collect();
        self.store
            .commit(Batch {
                records: vec![],
                vectors: vec![
                    (VectorKind::Seen, base.clone()),
                    (VectorKind::PeerCoverage, base),
                ],
            })
            .unwrap();
    }

    /// Rounds until nothing is left to push or pull.
    pub fn sync(&mut self, server: &Server, limit: u32) -> SyncStats {
        let mut stats = SyncStats::default();
        loop {
            let (request, more, applied) = self.round(server, None, limit);
            stats.rounds += 1;
            stats.applied += applied;
            stats.pushed += request.push.len();
            assert!(stats.rounds < 10_000, "sync does not terminate");
            if !more {
                return stats;
            }
        }
    }

    /// The live (non-tombstone) contents: (plugin, key) -> value.
    pub fn contents(&self) -> Vec<(String, String, Value)> {
        self.store
            .records()
            .filter_map(|r| {
                r.value
                    .clone()
                    .map(|v| (r.plugin.to_string(), r.key.to_string(), v))
            })
            .collect()
    }
}
