//! Convergence: seeded random schedules of 3–5 replicas exchanging through a simulated server
//! (the real `replica::serve` over a `MemoryStore`), with many same-key writes, deletes, page
//! sizes 1–50, scoped rounds, skewed clocks, and dropped, duplicated and late deliveries; devices
//! wiped and coming back (a new store with a new node id that pulls everything; its writes the
//! server never covered are gone, and the model forgets exactly those); devices reloaded with
//! their wall clock set back (the persisted clock keeps their stamps monotonic); and a server
//! whose clock is skewed and jumps. Every schedule must end with every replica and the server
//! byte-equal to a reference LWW model.
//!
//! 10,000 schedules per run, spread over the machine's cores (`CONVERGENCE_SCHEDULES=N` and
//! `CONVERGENCE_BASE=B` run seeds B..B+N, `CONVERGENCE_THREADS` caps the threads;
//! scripts/convergence.sh --long runs 10^6 from a random base it prints). A failure
//! names its seed; replay one with `CONVERGENCE_SEED=N cargo test --test core_convergence`.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};

use clientdata::core::replica::{serve, Client, MemoryStore, Outgoing, Store, VectorKind};
use clientdata::core::{
    ClockState, ExchangeResponse, Hlc, HlcClock, Key, Limits, NodeId, PluginId, Record, Value,
};

const T0: u64 = 1_700_000_000_000;
const PLUGINS: [&str; 3] = ["notes", "todo", "prefs"];

struct Replica {
    client: Client,
    store: MemoryStore,
    clock: HlcClock,
    skew_ms: i64,
    /// A reply held back to be delivered late, after newer rounds.
    late: Option<(Outgoing, ExchangeResponse)>,
    /// The last stamp this replica wrote: every next one must be greater (persisted clock).
    last_stamp: Option<Hlc>,
}

/// How far any clock (a device's or the server's) is off true time: within ±20 s, so any stamp
/// is at most 40 s ahead of any receiver, inside the 60 s drift bound.
const MAX_SKEW_MS: i64 = 20_000;

/// What one schedule did, summed over a run.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    writes: usize,
    rounds: usize,
    wipes: usize,
    lost_by_wipes: usize,
    reloads: usize,
    server_jumps: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.writes += o.writes;
        self.rounds += o.rounds;
        self.wipes += o.wipes;
        self.lost_by_wipes += o.lost_by_wipes;
        self.reloads += o.reloads;
        self.server_jumps += o.server_jumps;
    }
}

struct Sim {
    rng: fastrand::Rng,
    now: u64,
    server: MemoryStore,
    /// The server's clock offset from true time (it validates drift against its own clock).
    server_skew_ms: i64,
    limits: Limits,
    replicas: Vec<Replica>,
    /// Every write ever made that can still reach the server; the model is their LWW.
    log: Vec<Record>,
    /// The stamps of every record the server has received in a push (applied or not).
    received: BTreeSet<Hlc>,
    nodes: BTreeSet<NodeId>,
    tally: Tally,
}

impl Replica {
    fn fresh(node: NodeId, skew_ms: i64) -> Replica {
        Replica {
            client: Client::new(node),
            store: MemoryStore::new(),
            clock: HlcClock::new(node, ClockState::default(), 60_000),
            skew_ms,
            late: None,
            last_stamp: None,
        }
    }

    fn now(&self, true_now: u64) -> u64 {
        (true_now as i64 + self.skew_ms) as u64
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let rng = fastrand::Rng::with_seed(seed);
        let mut sim = Sim {
            rng,
            now: T0,
            server: MemoryStore::new(),
            server_skew_ms: 0,
            limits: Limits::default(),
            replicas: Vec::new(),
            log: Vec::new(),
            received: BTreeSet::new(),
            nodes: BTreeSet::new(),
            tally: Tally::default(),
        };
        sim.server_skew_ms = sim.rng.i64(-MAX_SKEW_MS..=MAX_SKEW_MS);
        for _ in 0..sim.rng.usize(3..=5) {
            let replica = sim.new_replica();
            sim.replicas.push(replica);
        }
        sim
    }

    /// A device never seen before: a node id no other device had, an empty store.
    fn new_replica(&mut self) -> Replica {
        let node = loop {
            let node = NodeId::new(self.rng.u64(1..)).unwrap();
            if self.nodes.insert(node) {
                break node;
            }
        };
        Replica::fresh(node, self.rng.i64(-MAX_SKEW_MS..=MAX_SKEW_MS))
    }

    fn server_now(&self) -> u64 {
        (self.now as i64 + self.server_skew_ms) as u64
    }

    /// Device `r` is wiped (site data cleared) and comes back as a new store with a new node id.
    /// Its writes the server never received are gone with it, and leave the model too: those
    /// above the server's coverage, and older ones it overwrote itself before pushing them. A
    /// reply still on its way to the old device is never delivered.
    fn wipe(&mut self, r: usize) -> Result<(), String> {
        let old = self.replicas[r].client.node;
        let plugins: Vec<PluginId> = PLUGINS.iter().map(|p| PluginId::new(*p).unwrap()).collect();
        let coverage = self.server.vectors(VectorKind::Coverage, &plugins).unwrap();
        if let Some(rec) = self
            .log
            .iter()
            .find(|rec| self.received.contains(&rec.hlc) && !coverage.covers(rec))
        {
            return Err(format!("the server received {rec:?} but does not cover it"));
        }
        let before = self.log.len();
        let received = &self.received;
        self.log
            .retain(|rec| rec.hlc.node != old || received.contains(&rec.hlc));
        self.tally.lost_by_wipes += before - self.log.len();
        self.tally.wipes += 1;
        self.replicas[r] = self.new_replica();
        Ok(())
    }

    /// Device `r` reloads with its wall clock set somewhere else (often back): the store and the
    /// persisted clock state survive, the physical clock does not.
    fn reload(&mut self, r: usize) {
        let replica = &mut self.replicas[r];
        let node = replica.client.node;
        replica.clock = HlcClock::new(node, replica.clock.state(), 60_000);
        replica.skew_ms = self.rng.i64(-MAX_SKEW_MS..=MAX_SKEW_MS);
        self.tally.reloads += 1;
    }

    fn write(&mut self, r: usize) -> Result<(), String> {
        let plugin = PluginId::new(PLUGINS[self.rng.usize(..PLUGINS.len())]).unwrap();
        // A handful of keys per plugin: far more than 30% of writes hit a key written before.
        let key = Key::new(format!("k{}", self.rng.usize(0..4))).unwrap();
        let replica = &mut self.replicas[r];
        let hlc = replica
            .clock
            .tick(replica.now(self.now))
            .map_err(|e| e.to_string())?;
        if replica.last_stamp.is_some_and(|last| hlc <= last) {
            return Err(format!(
                "replica {r} stamped {hlc} after {:?}: not monotonic",
                replica.last_stamp
            ));
        }
        replica.last_stamp = Some(hlc);
        let record = if self.rng.u8(0..5) == 0 {
            Record::tombstone(plugin.clone(), key.clone(), hlc)
        } else {
            Record::put(
                plugin.clone(),
                key.clone(),
                Value::Json(format!("{{\"by\":{r},\"n\":{}}}", self.tally.writes)),
                hlc,
            )
        };
        self.tally.writes += 1;
        replica
            .store
            .commit(clientdata::core::Batch {
                records: vec![record.clone()],
                vectors: vec![],
            })
            .unwrap();
        self.log.push(record);
        Ok(())
    }

    /// One round of replica `r`; returns (applied, pushed, more) when the reply arrived.
    fn round(
        &mut self,
        r: usize,
        scope: Option<Vec<PluginId>>,
        lossy: bool,
    ) -> Result<Option<(usize, usize, bool)>, String> {
        self.tally.rounds += 1;
        let limit = self.rng.u32(1..=50);
        let replica = &mut self.replicas[r];
        let out = replica
            .client
            .request(&mut replica.store, &replica.clock, scope.as_deref(), limit)
            .map_err(|e| e.to_string())?;
        if lossy && self.rng.u8(0..10) == 0 {
            return Ok(None); // request lost on the way
        }
        let server_now = self.server_now();
        let serve_once = |server: &mut MemoryStore, limits: &Limits| {
            serve(server, &out.request, limits, server_now)
                .map(|(reply, _)| reply)
                .map_err(|e| format!("server: {e}"))
        };
        let mut reply = serve_once(&mut self.server, &self.limits)?;
        self.received
            .extend(out.request.push.iter().map(|rec| rec.hlc));
        if lossy && self.rng.u8(0..10) == 0 {
            // The request is delivered twice; either reply may be the one that comes back.
            let second = serve_once(&mut self.server, &self.limits)?;
            if self.rng.bool() {
                reply = second;
            }
        }
        if lossy && self.rng.u8(0..10) == 0 {
            return Ok(None); // reply lost: the server applied, the client never hears
        }
        if lossy && self.rng.u8(0..20) == 0 {
            if let Some(old) = self.replicas[r].late.replace((out.clone(), reply.clone())) {
                self.deliver(r, &old.0, &old.1)?;
            }
            return Ok(None);
        }
        let applied = self.deliver(r, &out, &reply)?;
        if lossy && self.rng.u8(0..10) == 0 {
            self.deliver(r, &out, &reply)?; // duplicated delivery
        }
        Ok(Some((
            applied,
            out.request.push.len(),
            reply.has_more || out.more_to_push,
        )))
    }

    fn deliver(
        &mut self,
        r: usize,
        out: &Outgoing,
        reply: &ExchangeResponse,
    ) -> Result<usize, String> {
        let replica = &mut self.replicas[r];
        let now = replica.now(self.now);
        let plan = replica
            .client
            .plan(&mut replica.store, &out.request, reply, &replica.clock, now)
            .map_err(|e| format!("replica {r}: {e}"))?;
        replica.store.commit(plan.batch).unwrap();
        replica.clock = plan.clock;
        Ok(plan.applied)
    }

    fn random_scope(&mut self) -> Option<Vec<PluginId>> {
        (self.rng.u8(0..4) == 0).then(|| {
            PLUGINS
                .iter()
                .filter(|_| self.rng.bool())
                .map(|p| PluginId::new(*p).unwrap())
                .collect()
        })
    }

    fn run(&mut self) -> Result<(), String> {
        let steps = self.rng.usize(50..200);
        for _ in 0..steps {
            self.now += self.rng.u64(0..50);
            let r = self.rng.usize(..self.replicas.len());
            match self.rng.u16(0..1000) {
                0..=5 => self.wipe(r)?,
                6..=15 => self.reload(r),
                16..=20 => {
                    // The server's clock is reset (NTP step, a restart on another host).
                    self.server_skew_ms = self.rng.i64(-MAX_SKEW_MS..=MAX_SKEW_MS);
                    self.tally.server_jumps += 1;
                }
                21..=600 => self.write(r)?,
                _ => {
                    let scope = self.random_scope();
                    self.round(r, scope, true)?;
                }
            }
        }
        // Late replies arrive at last, then everyone syncs everything until nothing moves.
        for r in 0..self.replicas.len() {
            if let Some((out, reply)) = self.replicas[r].late.take() {
                self.deliver(r, &out, &reply)?;
            }
        }
        self.settle()?;
        self.check()
    }

    /// Everyone syncs everything, losslessly, until nothing moves.
    fn settle(&mut self) -> Result<(), String> {
        self.settle_with(|sim, r| {
            let (applied, pushed, more) = sim.round(r, None, false)?.expect("lossless round");
            Ok((applied > 0 || pushed > 0, more))
        })
    }

    /// Runs `round` (whether it moved anything, whether more follows) for every replica until
    /// it has nothing more, pass after pass, until a pass moves nothing (at most 200 passes).
    fn settle_with(
        &mut self,
        mut round: impl FnMut(&mut Self, usize) -> Result<(bool, bool), String>,
    ) -> Result<(), String> {
        for pass in 0.. {
            if pass > 200 {
                return Err("no quiescence after 200 passes".into());
            }
            let mut moved = false;
            for r in 0..self.replicas.len() {
                loop {
                    let (changed, more) = round(self, r)?;
                    moved |= changed;
                    if !more {
                        break;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }

    /// The reference: per (plugin, key), the write with the greatest HLC among those not lost.
    fn model(&self) -> BTreeMap<(&PluginId, &Key), &Record> {
        let mut model: BTreeMap<(&PluginId, &Key), &Record> = BTreeMap::new();
        for rec in &self.log {
            let slot = model.entry((&rec.plugin, &rec.key)).or_insert(rec);
            if rec.hlc > slot.hlc {
                *slot = rec;
            }
        }
        model
    }

    fn check(&self) -> Result<(), String> {
        let expected = serde_json::to_string(&self.model().values().collect::<Vec<_>>()).unwrap();
        let server = serde_json::to_string(&self.server.records().collect::<Vec<_>>()).unwrap();
        if server != expected {
            return Err(format!(
                "server differs from the model\nserver: {server}\nmodel:  {expected}"
            ));
        }
        for (i, replica) in self.replicas.iter().enumerate() {
            let got = serde_json::to_string(&replica.store.records().collect::<Vec<_>>()).unwrap();
            if got != expected {
                return Err(format!(
                    "replica {i} differs from the model\nreplica: {got}\nmodel:   {expected}"
                ));
            }
        }
        Ok(())
    }
}

fn run_seed(seed: u64) -> Result<Tally, String> {
    let mut sim = Sim::new(seed);
    sim.run()?;
    Ok(sim.tally)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number"))
    })
}

/// Runs `seeds` on every core; the first failing seed (lowest of its thread) fails the test.
fn run_seeds(seeds: std::ops::Range<u64>) -> Tally {
    let threads = env_u64("CONVERGENCE_THREADS")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as u64)
        .max(1);
    let results: Vec<Result<Tally, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    for seed in seeds.skip(t as usize).step_by(threads as usize) {
                        match run_seed(seed) {
                            Ok(t) => tally += t,
                            Err(e) => {
                                return Err(format!(
                                    "seed {seed} failed (replay: CONVERGENCE_SEED={seed}): {e}"
                                ))
                            }
                        }
                    }
                    Ok(tally)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Tally::default();
    for result in results {
        match result {
            Ok(t) => total += t,
            Err(e) => panic!("{e}"),
        }
    }
    total
}

#[test]
fn ten_thousand_random_schedules_converge_to_the_lww_model() {
    let started = std::time::Instant::now();
    let seeds = match env_u64("CONVERGENCE_SEED") {
        Some(seed) => seed..seed + 1,
        None => {
            let base = env_u64("CONVERGENCE_BASE").unwrap_or(0);
            base..base + env_u64("CONVERGENCE_SCHEDULES").unwrap_or(10_000)
        }
    };
    let n = (seeds.end - seeds.start) as usize;
    let first = seeds.start;
    let t = run_seeds(seeds);
    eprintln!(
        "{n} schedules from seed {first} in {:.1} s: {} writes, {} rounds, {} wipes \
         ({} uncovered writes lost with them), {} reloads with the clock reset, {} server clock jumps",
        started.elapsed().as_secs_f64(),
        t.writes,
        t.rounds,
        t.wipes,
        t.lost_by_wipes,
        t.reloads,
        t.server_jumps
    );
    assert!(t.writes > n * 20, "schedules too small to mean anything");
    if n >= 1_000 {
        // The faults this simulation is about must actually happen, not just be possible.
        assert!(
            t.wipes > n / 10 && t.lost_by_wipes > 0,
            "too few wipes: {t:?}"
        );
        assert!(
            t.reloads > n / 2 && t.server_jumps > n / 10,
            "too few clock faults: {t:?}"
        );
    }
}

#[test]
fn a_reply_that_lost_its_way_is_harmless_and_the_next_round_retries() {
    let mut sim = Sim::new(99);
    for r in 0..sim.replicas.len() {
        for _ in 0..10 {
            sim.write(r).unwrap();
        }
    }
    // Every first reply is lost; the server applied those pushes anyway.
    for r in 0..sim.replicas.len() {
        let replica = &mut sim.replicas[r];
        let out = replica
            .client
            .request(&mut replica.store, &replica.clock, None, 50)
            .unwrap();
        serve(&mut sim.server, &out.request, &sim.limits, sim.now).unwrap();
    }
    sim.run().unwrap();
}

// ---- Tombstone collection with a horizon, and full resync (core::gc) ----
//
// This drives the pure decisions of `core::gc` around the real `serve` and `Client`, as the
// server (server/src/gc.rs) and the browser (src/sync/full_resync.rs) do: the server remembers its
// readers and collects tombstones, a reader that missed a collected deletion
// (`missed_collection`, the server's test) walks the server's rows by key.

use clientdata::core::gc::{drop_collected, missed_collection, Horizon, Reader, ResyncPage};
use clientdata::core::replica::effective_seen;
use clientdata::core::{Batch, Watermarks};

const HORIZON_MS: u64 = 10_000;

#[derive(Default)]
struct Gc {
    readers: BTreeMap<NodeId, Reader>,
    /// Server time each stored row was stored at, with the stamp it was stored for.
    stored: BTreeMap<(PluginId, Key), (clientdata::core::Hlc, u64)>,
    collected: usize,
    /// Per plugin and writer, the highest stamp collected (what replies would report).
    collected_floor: Watermarks,
    full_resyncs: usize,
    resync_pages: usize,
    resync_removed: usize,
}

impl Sim {
    /// A lossless round under collection: a reader that missed a collected deletion resyncs
    /// fully first (what the server answers `fullResync`).
    fn gc_round(&mut self, gc: &mut Gc, r: usize, resync: bool) -> Result<(usize, bool), String> {
        let limit = self.rng.u32(1..=50);
        let replica = &mut self.replicas[r];
        let out = replica
            .client
            .request(&mut replica.store, &replica.clock, None, limit)
            .map_err(|e| e.to_string())?;
        let node = replica.client.node;
        let seen = effective_seen(&out.request);
        if resync && missed_collection(&seen, &gc.collected_floor) {
            self.full_resync(gc, r)?;
            return Ok((1, true));
        }
        let (reply, _) = serve(&mut self.server, &out.request, &self.limits, self.now)
            .map_err(|e| format!("server: {e}"))?;
        for pushed in &out.request.push {
            let id = (pushed.plugin.clone(), pushed.key.clone());
            if self.server.get(&id.0, &id.1).map(|s| s.hlc) == Some(pushed.hlc)
                && gc.stored.get(&id).map(|(h, _)| *h) != Some(pushed.hlc)
            {
                gc.stored.insert(id, (pushed.hlc, self.now));
            }
        }
        gc.readers
            .entry(node)
            .or_insert_with(|| Reader {
                node,
                last_round_ms: self.now,
                seen: Watermarks::new(),
            })
            .observe(self.now, &effective_seen(&out.request));
        self.drop_collected(gc, r);
        let applied = self.deliver(r, &out, &reply)?;
        Ok((
            applied + out.request.push.len(),
            reply.has_more || out.more_to_push,
        ))
    }

    /// The walk by key, in random page sizes; then the walk's first coverage becomes the
    /// reader's `seen` and its copy of the server's coverage (rows changed during the walk are
    /// above it, so the next partial rounds bring them).
    fn full_resync(&mut self, gc: &mut Gc, r: usize) -> Result<(), String> {
        gc.full_resyncs += 1;
        let plugins = self.server.plugins().unwrap();
        let mut cursor: Option<(PluginId, Key)> = None;
        let mut base: Option<Watermarks> = None;
        loop {
            gc.resync_pages += 1;
            let limit = self.rng.usize(1..=20);
            let mut rows: Vec<Record> = self
                .server
                .records()
                .filter(|row| {
                    cursor
                        .as_ref()
                        .is_none_or(|c| (row.plugin.clone(), row.key.clone()) > *c)
                })
                .take(limit + 1)
                .cloned()
                .collect();
            let complete = rows.len() <= limit;
            rows.truncate(limit);
            let coverage = self.server.vectors(VectorKind::Coverage, &plugins).unwrap();
            let base = base.get_or_insert_with(|| coverage.clone()).clone();
            let replica = &mut self.replicas[r];
            let step = ResyncPage {
                after: cursor.as_ref(),
                rows: &rows,
                complete,
                coverage: &coverage,
            }
            .step(replica.store.records());
            let now = replica.now(self.now);
            if let Some(max) = rows.iter().map(|r| r.hlc).max() {
                replica.clock.observe(max, now).map_err(|e| e.to_string())?;
            }
            gc.resync_removed += step.removals.len();
            for (p, k) in &step.removals {
                replica.store.remove(p, k);
            }
            replica
                .store
                .commit(Batch {
                    records: step.upserts,
                    vectors: vec![],
                })
                .unwrap();
            cursor = step.cursor;
            if complete {
                replica
                    .store
                    .commit(Batch {
                        records: vec![],
                        vectors: vec![
                            (VectorKind::Seen, base.clone()),
                            (VectorKind::PeerCoverage, base.clone()),
                        ],
                    })
                    .unwrap();
                let node = replica.client.node;
                gc.readers.insert(
                    node,
                    Reader {
                        node,
                        last_round_ms: self.now,
                        seen: base,
                    },
                );
                return Ok(());
            }
        }
    }

    /// Drops every collectable tombstone from the server.
    fn collect(&mut self, gc: &mut Gc) {
        let horizon = Horizon { ms: HORIZON_MS };
        let readers: Vec<Reader> = gc.readers.values().cloned().collect();
        let doomed: Vec<(PluginId, Key)> = self
            .server
            .records()
            .filter(|row| {
                let stored = gc
                    .stored
                    .get(&(row.plugin.clone(), row.key.clone()))
                    .map_or(0, |(_, ms)| *ms);
                horizon.collectable(row, stored, &readers, self.now)
            })
            .map(|row| (row.plugin.clone(), row.key.clone()))
            .collect();
        for (p, k) in doomed {
            if let Some(row) = self.server.remove(&p, &k) {
                gc.collected_floor.advance(&row.plugin, row.hlc);
            }
            gc.stored.remove(&(p, k));
            gc.collected += 1;
        }
    }

    /// What a reply reporting the server's collected floor makes the client drop.
    fn drop_collected(&mut self, gc: &Gc, r: usize) {
        let store = &mut self.replicas[r].store;
        for (p, k) in drop_collected(&gc.collected_floor, store.records()) {
            store.remove(&p, &k);
        }
    }

    fn live(store: &MemoryStore) -> Vec<&Record> {
        store.records().filter(|r| !r.is_tombstone()).collect()
    }

    /// Replica 0 goes offline for three horizons (writing now and then) while the others write,
    /// delete, sync and collect; then everyone syncs until nothing moves.
    fn run_with_gc(&mut self, resync: bool) -> Result<Gc, String> {
        let mut gc = Gc::default();
        let steps = |rng: &mut fastrand::Rng| rng.usize(60..150);
        for phase in 0..2 {
            for _ in 0..steps(&mut self.rng) {
                self.now += if phase == 0 {
                    self.rng.u64(0..50)
                } else {
                    self.rng.u64(0..600)
                };
                let r = self.rng.usize(..self.replicas.len());
                if self.rng.u8(0..10) < 6 {
                    self.write(r)?;
                } else if phase == 0 || r != 0 {
                    self.gc_round(&mut gc, r, resync)?;
                }
                if phase == 1 {
                    self.collect(&mut gc);
                }
            }
            if phase == 1 {
                // Long enough that replica 0 is past the horizon, and one more collection.
                self.now += 3 * HORIZON_MS;
                for r in 1..self.replicas.len() {
                    while self.gc_round(&mut gc, r, resync)?.1 {}
                }
                self.collect(&mut gc);
            }
        }
        self.settle_with(|sim, r| {
            let (changed, more) = sim.gc_round(&mut gc, r, resync)?;
            Ok((changed > 0, more))
        })?;
        // Converged: every replica's live set is the server's.
        let server = serde_json::to_string(&Sim::live(&self.server)).unwrap();
        for (i, replica) in self.replicas.iter().enumerate() {
            let got = serde_json::to_string(&Sim::live(&replica.store)).unwrap();
            if got != server {
                return Err(format!(
                    "replica {i} differs from the server\nreplica: {got}\nserver:  {server}"
                ));
            }
        }
        // Nothing the model keeps is lost: collection only ever drops deletions.
        for ((p, k), winner) in self.model().into_iter().filter(|(_, r)| !r.is_tombstone()) {
            if self.server.get(p, k) != Some(winner) {
                return Err(format!("{p}/{k}: the winner {} was lost", winner.hlc));
            }
        }
        Ok(gc)
    }
}

#[test]
fn a_device_offline_past_the_horizon_converges_by_full_resync() {
    let seeds: Vec<u64> = match std::env::var("CONVERGENCE_SEED") {
        Ok(s) => vec![s.parse().expect("CONVERGENCE_SEED must be a number")],
        Err(_) => (0..300).collect(),
    };
    let (mut collected, mut resyncs, mut pages, mut removed) = (0, 0, 0, 0);
    for seed in &seeds {
        let mut sim = Sim::new(seed + 10_000);
        match sim.run_with_gc(true) {
            Ok(gc) => {
                collected += gc.collected;
                resyncs += gc.full_resyncs;
                pages += gc.resync_pages;
                removed += gc.resync_removed;
            }
            Err(e) => panic!("seed {seed} failed (replay: CONVERGENCE_SEED={seed}): {e}"),
        }
    }
    eprintln!(
        "{} schedules: {collected} tombstones collected, {resyncs} full resyncs over {pages} pages removed {removed} records deleted while offline",
        seeds.len()
    );
    assert!(collected > seeds.len() && resyncs >= seeds.len() && removed > 0);
}

#[test]
fn without_full_resync_a_device_offline_past_the_horizon_diverges() {
    // The control: the same schedules without the resync must fail somewhere, or the test
    // above could not fail either.
    let diverged = (0..300)
        .filter(|seed| Sim::new(seed + 10_000).run_with_gc(false).is_err())
        .count();
    eprintln!("without full resync: {diverged} of 300 schedules diverge");
    assert!(diverged > 0);
}

/// One device creates and deletes 100 keys per cycle (2 s apart), another reads along; the
/// server's rows and their bytes (`Record::wire_size`) at the end, with or without collection.
fn churn(collect: bool) -> (usize, usize, usize) {
    let mut sim = Sim::new(7);
    sim.replicas.truncate(2);
    for replica in &mut sim.replicas {
        replica.skew_ms = 0;
    }
    let mut gc = Gc::default();
    let p = PluginId::new("churn").unwrap();
    for cycle in 0..50 {
        for delete in [false, true] {
            for i in 0..100 {
                let replica = &mut sim.replicas[0];
                let hlc = replica.clock.tick(replica.now(sim.now)).unwrap();
                let key = Key::new(format!("c{cycle}-{i}")).unwrap();
                let record = if delete {
                    Record::tombstone(p.clone(), key, hlc)
                } else {
                    let value = Value::Json(format!("{{\"v\":\"{}\"}}", "x".repeat(64)));
                    Record::put(p.clone(), key, value, hlc)
                };
                replica
                    .store
                    .commit(Batch {
                        records: vec![record],
                        vectors: vec![],
                    })
                    .unwrap();
            }
            for r in 0..2 {
                while sim.gc_round(&mut gc, r, true).unwrap().1 {}
            }
            sim.now += 1_000;
        }
        if collect {
            sim.collect(&mut gc);
        }
    }
    let rows = sim.server.records().count();
    let bytes = sim.server.records().map(Record::wire_size).sum();
    (rows, bytes, gc.collected)
}

#[test]
fn storage_stays_bounded_under_create_delete_churn() {
    let (rows, bytes, _) = churn(false);
    let (kept, kept_bytes, collected) = churn(true);
    eprintln!(
        "churn, 50 cycles x 100 keys created then deleted, 2 s per cycle, horizon {HORIZON_MS} ms: server rows without collection {rows} ({bytes} bytes), with collection {kept} ({kept_bytes} bytes), {collected} collected"
    );
    assert_eq!(
        rows, 5_000,
        "without collection every deleted key stays a row"
    );
    assert_eq!(kept + collected, rows);
    assert!(
        kept <= 100 * (HORIZON_MS as usize / 2_000 + 1),
        "bounded by the churn within one horizon: {kept}"
    );
}

#[test]
fn a_wiped_device_loses_only_what_the_server_never_covered_and_pulls_everything_back() {
    let mut sim = Sim::new(7);
    for _ in 0..20 {
        sim.write(0).unwrap();
        sim.write(1).unwrap();
    }
    // Device 0 pushes everything it has, then writes 5 more it never syncs.
    while let Some((_, _, true)) = sim.round(0, None, false).unwrap() {}
    let mut unsynced = Vec::new();
    for _ in 0..5 {
        sim.now += 1;
        sim.write(0).unwrap();
        unsynced.push(sim.replicas[0].last_stamp.unwrap());
    }
    let old = sim.replicas[0].client.node;
    let pushed = sim.received.iter().filter(|h| h.node == old).count();
    assert!(pushed > 0);
    sim.wipe(0).unwrap();
    // Gone: the 5 unsynced writes (and older ones it overwrote itself before pushing them).
    assert!(sim.tally.lost_by_wipes >= 5);
    assert!(sim.log.iter().all(|r| !unsynced.contains(&r.hlc)));
    // Kept: everything the server received.
    let kept = sim.log.iter().filter(|r| r.hlc.node == old).count();
    assert_eq!(kept, pushed, "exactly what the server received survives");
    assert_ne!(
        sim.replicas[0].client.node, old,
        "a wiped device is a new node"
    );
    assert_eq!(sim.replicas[0].store.records().count(), 0);
    // The new device pulls everything: device 1's writes and device 0's synced ones.
    sim.settle().unwrap();
    sim.check().unwrap();
    assert!(sim.replicas[0].store.records().count() > 0);
}

#[test]
fn a_reload_with_the_wall_clock_set_back_keeps_stamps_monotonic() {
    let mut sim = Sim::new(8);
    sim.replicas[0].skew_ms = MAX_SKEW_MS;
    sim.write(0).unwrap();
    let before = sim.replicas[0].last_stamp.unwrap();
    // Reloaded with the clock 40 s behind where it was: the persisted state wins.
    sim.reload(0);
    sim.replicas[0].skew_ms = -MAX_SKEW_MS;
    sim.now += 1;
    sim.write(0).unwrap();
    let after = sim.replicas[0].last_stamp.unwrap();
    assert!(after > before, "{after} after {before}");
    assert_eq!(
        after.wall_ms, before.wall_ms,
        "the wall part held where it was"
    );
}
