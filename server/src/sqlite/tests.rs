//! The SQLite store against the core's `MemoryStore` model, and its query plans.

use clientdata::core::replica::serve;
use clientdata::core::{
    ExchangeRequest, Hlc, Key, Limits, MemoryStore, NodeId, PluginId, Record, Store, Value,
    VersionVector, Watermarks,
};

use super::store::{NEXT_NODE, NEXT_PLUGIN, NODE_RANGE, RECORD_BY_ROWID, VERSION};
use super::*;
use crate::auth::UserId;
use crate::backend::{exchange, Transaction};
use crate::quota::UserCaps;
use crate::scope::Scope;

const NOW: u64 = 1_700_000_000_000;

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}
fn node(n: u64) -> NodeId {
    NodeId::new(n).unwrap()
}
fn plugin(p: &str) -> PluginId {
    PluginId::new(p).unwrap()
}
fn backend() -> SqliteBackend {
    SqliteBackend::open_in_memory(SqliteOptions::default()).unwrap()
}
fn request(
    from: u64,
    push: Vec<Record>,
    seen: Watermarks,
    plugins: Option<Vec<PluginId>>,
    limit: u32,
) -> ExchangeRequest {
    ExchangeRequest {
        version: clientdata::core::PROTOCOL_VERSION,
        node: node(from),
        plugins,
        seen,
        push,
        limit,
        secret: None,
        dataset: None,
        coverage_from: None,
        device: None,
    }
}

/// Random rounds from several nodes: unique stamps, a few keys (so LWW conflicts are common),
/// tombstones, bytes, replays, scopes, small limits.
struct Rounds {
    rng: fastrand::Rng,
    wall: u64,
    sent: Vec<Record>,
    /// An HLC names one write: never reuse one for different contents.
    used: std::collections::HashSet<Hlc>,
}

impl Rounds {
    fn record(&mut self) -> Record {
        // Stamps go forward in time mostly, but nodes also write "in the past" of others.
        let hlc = loop {
            self.wall += self.rng.u64(0..2);
            let wall = self.wall.saturating_sub(self.rng.u64(0..20));
            let hlc = Hlc::new(
                NOW - 100_000 + wall,
                self.rng.u16(0..3),
                node(self.rng.u64(1..5)),
            )
            .unwrap();
            if self.used.insert(hlc) {
                break hlc;
            }
        };
        let (p, k) = (
            plugin(["a", "b", "c"][self.rng.usize(0..3)]),
            Key::new(format!("k{}", self.rng.u8(0..6))).unwrap(),
        );
        match self.rng.u8(0..10) {
            0 => Record::tombstone(p, k, hlc),
            1 => Record::put(
                p,
                k,
                Value::Bytes(vec![self.rng.u8(..); self.rng.usize(0..8)]),
                hlc,
            ),
            _ => Record::put(p, k, Value::Json(format!("{}", self.rng.u32(..))), hlc),
        }
    }

    fn request(&mut self, coverage: &Watermarks) -> ExchangeRequest {
        let mut push: Vec<Record> = if self.rng.u8(0..5) == 0 && !self.sent.is_empty() {
            // Replay something already sent.
            let n = self.rng.usize(1..=self.sent.len().min(4));
            let start = self.rng.usize(0..=self.sent.len() - n);
            self.sent[start..start + n].to_vec()
        } else {
            (0..self.rng.usize(0..6)).map(|_| self.record()).collect()
        };
        push.sort_by_key(|r| r.hlc);
        push.dedup_by_key(|r| r.hlc);
        self.sent.extend(push.iter().cloned());
        let scope = (self.rng.u8(0..3) == 0).then(|| vec![plugin("a"), plugin("c")]);
        // Seen: part of what the server covers, per plugin and node, sometimes lowered.
        let mut seen = Watermarks::new();
        for (p, vector) in coverage.iter() {
            if scope.as_ref().is_some_and(|s| !s.contains(p)) || self.rng.bool() {
                continue;
            }
            let mut kept = VersionVector::new();
            for (n, h) in vector.iter() {
                if self.rng.bool() {
                    continue;
                }
                kept.advance(
                    n,
                    Hlc {
                        wall_ms: h.wall_ms.saturating_sub(self.rng.u64(0..5)),
                        ..h
                    },
                );
            }
            seen.set(p.clone(), kept);
        }
        if let Some(s) = &scope {
            push.retain(|r| s.contains(&r.plugin));
        }
        request(self.rng.u64(1..6), push, seen, scope, self.rng.u32(1..6))
    }
}

#[test]
fn rounds_answer_exactly_what_the_memory_model_answers() {
    let limits = Limits::default();
    let (mut paged, mut lost, mut stored) = (0, 0, 0);
    for seed in 0..20 {
        let mut model = MemoryStore::new();
        let mut db = backend();
        let alice = user("alice");
        let mut rounds = Rounds {
            rng: fastrand::Rng::with_seed(seed),
            wall: 0,
            sent: Vec::new(),
            used: Default::default(),
        };
        let mut coverage = Watermarks::new();
        for round in 0..60 {
            let req = rounds.request(&coverage);
            let expected = serve(&mut model, &req, &limits, NOW).map_err(|e| e.to_string());
            let got = exchange(&mut db, &alice, &req, &limits, &UserCaps::DEFAULT, NOW)
                .map_err(|e| e.to_string());
            assert_eq!(got, expected, "seed {seed} round {round}: {req:?}");
            if let Ok((reply, stats)) = &got {
                paged += usize::from(reply.has_more);
                lost += stats.received - stats.stored;
                stored += stats.stored;
            }
            let all = model.plugins().unwrap();
            coverage = model.vectors(VectorKind::Coverage, &all).unwrap();
        }
        // Same final state: every record (in HLC order) and every coverage vector.
        let all = model.plugins().unwrap();
        let mut tx = db.begin(&Scope::user(alice.clone())).unwrap();
        assert_eq!(tx.plugins().unwrap(), all);
        assert_eq!(
            tx.records_above(&all, &Watermarks::new(), usize::MAX)
                .unwrap(),
            model
                .records_above(&all, &Watermarks::new(), usize::MAX)
                .unwrap()
        );
        assert_eq!(
            tx.vectors(VectorKind::Coverage, &all).unwrap(),
            model.vectors(VectorKind::Coverage, &all).unwrap()
        );
    }
    // The rounds did exercise paging, LWW losses and replays, and storing.
    assert!(
        paged > 100 && lost > 100 && stored > 1000,
        "paged {paged}, lost {lost}, stored {stored}"
    );
}

#[test]
fn records_above_is_exact_per_node_and_respects_the_limit() {
    let mut db = backend();
    let u = user("u");
    let rec = |wall: u64, n: u64, key: &str| {
        Record::put(
            plugin("p"),
            Key::new(key).unwrap(),
            Value::Json("1".into()),
            Hlc::new(wall, 0, node(n)).unwrap(),
        )
    };
    let mut tx = db.begin(&Scope::user(u.clone())).unwrap();
    // Node 1 wrote early and late, node 2 in between; node 2's watermark is high, node 1's low.
    let records = vec![
        rec(1, 1, "a"),
        rec(2, 2, "b"),
        rec(3, 2, "c"),
        rec(4, 1, "d"),
        rec(5, 3, "e"),
        rec(6, u64::MAX, "f"),
    ];
    tx.commit(clientdata::core::Batch {
        records: records.clone(),
        vectors: vec![],
    })
    .unwrap();
    let mut floor = Watermarks::new();
    floor.advance(&plugin("p"), Hlc::new(3, 0, node(2)).unwrap());
    floor.advance(&plugin("p"), Hlc::new(1, 0, node(1)).unwrap());
    let walls = |v: Vec<Record>| v.into_iter().map(|r| r.hlc.wall_ms).collect::<Vec<_>>();
    let above = |tx: &mut SqliteTx<'_>, limit| {
        walls(tx.records_above(&[plugin("p")], &floor, limit).unwrap())
    };
    assert_eq!(
        above(&mut tx, 10),
        [4, 5, 6],
        "node ids above i64::MAX are stored and found"
    );
    assert_eq!(above(&mut tx, 2), [4, 5]);
    assert_eq!(above(&mut tx, 1), [4]);
    assert_eq!(above(&mut tx, 0), Vec::<u64>::new());
    assert_eq!(
        walls(tx.records_above(&[plugin("q")], &floor, 10).unwrap()),
        Vec::<u64>::new()
    );
    assert!(matches!(
        tx.vectors(VectorKind::Seen, &[]),
        Err(SqliteError::UnsupportedVector(VectorKind::Seen))
    ));
}

#[test]
fn a_user_never_sees_another_users_rows_even_with_equal_ids() {
    let limits = Limits::default();
    let mut db = backend();
    let hlc = Hlc::new(NOW - 10, 0, node(1)).unwrap();
    let mine = Record::put(
        plugin("p"),
        Key::new("k").unwrap(),
        Value::Json("\"alice\"".into()),
        hlc,
    );
    let theirs = Record::put(
        plugin("p"),
        Key::new("k").unwrap(),
        Value::Json("\"bob\"".into()),
        Hlc {
            wall_ms: hlc.wall_ms - 5,
            ..hlc
        },
    );
    exchange(
        &mut db,
        &user("alice"),
        &request(1, vec![mine.clone()], Watermarks::new(), None, 10),
        &limits,
        &UserCaps::DEFAULT,
        NOW,
    )
    .unwrap();
    exchange(
        &mut db,
        &user("bob"),
        &request(1, vec![theirs.clone()], Watermarks::new(), None, 10),
        &limits,
        &UserCaps::DEFAULT,
        NOW,
    )
    .unwrap();
    for (name, expected) in [("alice", &mine), ("bob", &theirs)] {
        let (reply, _) = exchange(
            &mut db,
            &user(name),
            &request(2, vec![], Watermarks::new(), None, 10),
            &limits,
            &UserCaps::DEFAULT,
            NOW,
        )
        .unwrap();
        assert_eq!(reply.records, vec![expected.clone()], "{name}");
        assert_eq!(
            reply.coverage.plugin(&plugin("p")).get(node(1)),
            Some(expected.hlc),
            "{name}"
        );
    }
    let (reply, _) = exchange(
        &mut db,
        &user("carol"),
        &request(2, vec![], Watermarks::new(), None, 10),
        &limits,
        &UserCaps::DEFAULT,
        NOW,
    )
    .unwrap();
    assert!(reply.records.is_empty() && reply.coverage.entries() == 0);
}

#[test]
fn a_failed_round_rolls_back_and_an_uncommitted_one_leaves_nothing() {
    let mut db = backend();
    let u = user("u");
    let r = Record::put(
        plugin("p"),
        Key::new("k").unwrap(),
        Value::Json("1".into()),
        Hlc::new(NOW, 0, node(1)).unwrap(),
    );
    {
        let mut tx = db.begin(&Scope::user(u.clone())).unwrap();
        tx.commit(clientdata::core::Batch {
            records: vec![r.clone()],
            vectors: vec![],
        })
        .unwrap();
        // dropped without commit_transaction
    }
    let mut tx = db.begin(&Scope::user(u.clone())).unwrap();
    assert_eq!(tx.version(&r.plugin, &r.key).unwrap(), None);
    tx.commit_transaction().unwrap();
}

#[test]
fn reopening_keeps_data_and_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let r = Record::put(
        plugin("p"),
        Key::new("k").unwrap(),
        Value::Bytes(vec![1, 2]),
        Hlc::new(NOW, 0, node(1)).unwrap(),
    );
    {
        let mut db = SqliteBackend::open(&path, SqliteOptions::default()).unwrap();
        let mut tx = db.begin(&Scope::user(user("u"))).unwrap();
        tx.commit(clientdata::core::Batch {
            records: vec![r.clone()],
            vectors: vec![],
        })
        .unwrap();
        tx.commit_transaction().unwrap();
        let mode: String = db
            .connection()
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    let mut db = SqliteBackend::open(&path, SqliteOptions::default()).unwrap();
    db.ping().unwrap();
    let mut tx = db.begin(&Scope::user(user("u"))).unwrap();
    assert_eq!(
        tx.records_above(&[plugin("p")], &Watermarks::new(), 5)
            .unwrap(),
        vec![r]
    );
    drop(tx);
    db.connection()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(db);
    assert!(matches!(
        SqliteBackend::open(&path, SqliteOptions::default()),
        Err(SqliteError::SchemaTooNew { .. })
    ));
}

/// The plan of every read on the exchange path: an index search, never a table scan or a sort.
#[test]
fn every_read_is_an_index_search() {
    let db = backend();
    let conn = db.connection();
    // Some rows, and statistics, so the planner decides as it would on a real database.
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO records (user_id, plugin, key, node, hlc, kind, value)
         SELECT i % 7, 'p' || (i % 5), 'k' || i, i % 3, printf('%012x-0000-%016x', i, i % 3), 1, '1' FROM n;
         ANALYZE;",
    )
    .unwrap();
    let cases: [(&str, &str, usize); 5] = [
        (NEXT_NODE, "SEARCH records USING COVERING INDEX records_by_node (user_id=? AND plugin=? AND node>?)", 3),
        (NODE_RANGE, "SEARCH records USING COVERING INDEX records_by_node (user_id=? AND plugin=? AND node=? AND hlc>? AND hlc<?)", 6),
        (RECORD_BY_ROWID, "SEARCH records USING INTEGER PRIMARY KEY (rowid=?)", 2),
        (VERSION, "SEARCH records USING INDEX sqlite_autoindex_records_1 (user_id=? AND plugin=? AND key=?)", 3),
        (NEXT_PLUGIN, "SEARCH records USING COVERING INDEX", 2),
    ];
    for (sql, expected, params) in cases {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let values: Vec<i64> = vec![1; params];
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(values), |row| {
                row.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let text = plan.join(" | ");
        assert!(
            text.contains(expected),
            "{sql}\n  plan: {text}\n  want: {expected}"
        );
        assert!(
            !text.contains("SCAN") && !text.contains("TEMP B-TREE"),
            "{sql}\n  plan: {text}"
        );
    }
}

/// Statements stay prepared: binding new values (a new `LIMIT`, new range bounds) must not make
/// SQLite re-prepare them, which SQLite 3.54 does for `LIMIT ?` unless QPSG is on (`configure`).
#[test]
fn binding_new_values_never_reprepares() {
    use rusqlite::StatementStatus;
    let db = backend();
    let conn = db.connection();
    let mut range = conn.prepare_cached(NODE_RANGE).unwrap();
    for limit in 1..20_i64 {
        let above = format!("{limit:012x}");
        let rows = range
            .query_map(rusqlite::params![1, "p", 1, above, "~", limit], |_| Ok(()))
            .unwrap();
        assert_eq!(rows.count(), 0);
    }
    assert_eq!(range.get_status(StatementStatus::RePrepare), 0);
}
