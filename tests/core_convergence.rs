//! Convergence: seeded random schedules of 3–5 replicas exchanging through a simulated server
//! (the real `replica::serve` over a `MemoryStore`), with many same-key writes, deletes, page
//! sizes 1–50, scoped rounds, skewed clocks, and dropped, duplicated and late deliveries. Every
//! schedule must end with every replica and the server byte-equal to a reference LWW model.
//!
//! A failure names its seed; replay one with `CONVERGENCE_SEED=N cargo test --test core_convergence`.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;

use clientdata::core::replica::{serve, Client, MemoryStore, Outgoing, Store};
use clientdata::core::{
    ClockState, ExchangeResponse, HlcClock, Key, Limits, NodeId, PluginId, Record, Value,
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
}

struct Sim {
    rng: fastrand::Rng,
    now: u64,
    server: MemoryStore,
    limits: Limits,
    replicas: Vec<Replica>,
    model: BTreeMap<(PluginId, Key), Record>,
    writes: usize,
    rounds: usize,
}

impl Replica {
    fn now(&self, true_now: u64) -> u64 {
        (true_now as i64 + self.skew_ms) as u64
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = fastrand::Rng::with_seed(seed);
        let replicas = (0..rng.usize(3..=5))
            .map(|i| {
                let node = NodeId::new(rng.u64(1..) | (i as u64 + 1)).unwrap();
                Replica {
                    client: Client::new(node),
                    store: MemoryStore::new(),
                    clock: HlcClock::new(node, ClockState::default(), 60_000),
                    skew_ms: rng.i64(-20_000..=20_000),
                    late: None,
                }
            })
            .collect();
        Sim {
            rng,
            now: T0,
            server: MemoryStore::new(),
            limits: Limits::default(),
            replicas,
            model: BTreeMap::new(),
            writes: 0,
            rounds: 0,
        }
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
        let record = if self.rng.u8(0..5) == 0 {
            Record::tombstone(plugin.clone(), key.clone(), hlc)
        } else {
            Record::put(
                plugin.clone(),
                key.clone(),
                Value::Json(format!("{{\"by\":{r},\"n\":{}}}", self.writes)),
                hlc,
            )
        };
        self.writes += 1;
        replica
            .store
            .commit(clientdata::core::Batch {
                records: vec![record.clone()],
                vectors: vec![],
            })
            .unwrap();
        let slot = self
            .model
            .entry((plugin, key))
            .or_insert_with(|| record.clone());
        if record.hlc > slot.hlc {
            *slot = record;
        }
        Ok(())
    }

    /// One round of replica `r`; returns (applied, pushed, more) when the reply arrived.
    fn round(
        &mut self,
        r: usize,
        scope: Option<Vec<PluginId>>,
        lossy: bool,
    ) -> Result<Option<(usize, usize, bool)>, String> {
        self.rounds += 1;
        let limit = self.rng.u32(1..=50);
        let replica = &mut self.replicas[r];
        let out = replica
            .client
            .request(&mut replica.store, &replica.clock, scope.as_deref(), limit)
            .map_err(|e| e.to_string())?;
        if lossy && self.rng.u8(0..10) == 0 {
            return Ok(None); // request lost on the way
        }
        let serve_once = |server: &mut MemoryStore, limits: &Limits| {
            serve(server, &out.request, limits, self.now)
                .map(|(reply, _)| reply)
                .map_err(|e| format!("server: {e}"))
        };
        let mut reply = serve_once(&mut self.server, &self.limits)?;
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
            if self.rng.u8(0..10) < 6 {
                self.write(r)?;
            } else {
                let scope = self.random_scope();
                self.round(r, scope, true)?;
            }
        }
        // Late replies arrive at last, then everyone syncs everything until nothing moves.
        for r in 0..self.replicas.len() {
            if let Some((out, reply)) = self.replicas[r].late.take() {
                self.deliver(r, &out, &reply)?;
            }
        }
        for pass in 0.. {
            if pass > 200 {
                return Err("no quiescence after 200 passes".into());
            }
            let mut moved = false;
            for r in 0..self.replicas.len() {
                loop {
                    let (applied, pushed, more) =
                        self.round(r, None, false)?.expect("lossless round");
                    moved |= applied > 0 || pushed > 0;
                    if !more {
                        break;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        self.check()
    }

    fn check(&self) -> Result<(), String> {
        let expected = serde_json::to_string(&self.model.values().collect::<Vec<_>>()).unwrap();
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

fn run_seed(seed: u64) -> Result<(usize, usize), String> {
    let mut sim = Sim::new(seed);
    sim.run()?;
    Ok((sim.writes, sim.rounds))
}

#[test]
fn one_thousand_random_schedules_converge_to_the_lww_model() {
    let seeds: Vec<u64> = match std::env::var("CONVERGENCE_SEED") {
        Ok(s) => vec![s.parse().expect("CONVERGENCE_SEED must be a number")],
        Err(_) => (0..1_000).collect(),
    };
    let (mut writes, mut rounds) = (0, 0);
    for seed in &seeds {
        match run_seed(*seed) {
            Ok((w, r)) => {
                writes += w;
                rounds += r;
            }
            Err(e) => panic!("seed {seed} failed (replay: CONVERGENCE_SEED={seed}): {e}"),
        }
    }
    eprintln!(
        "{} schedules, {writes} writes, {rounds} rounds",
        seeds.len()
    );
    assert!(
        writes > seeds.len() * 20,
        "schedules too small to mean anything"
    );
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
