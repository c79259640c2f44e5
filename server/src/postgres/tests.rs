//! Unit tests on a real PostgreSQL (a fresh database in the cluster at `CLIENTDATA_TEST_PG`;
//! skipped without it unless `CLIENTDATA_REQUIRE_PG=1`).

use clientdata::core::{Batch, Hlc, Key, NodeId, PluginId, Record, Store, Value, VectorKind};
use clientdata::core::{VersionVector, Watermarks};

use super::{PgDatabase, PgOptions, SCHEMA_VERSION};
use crate::auth::UserId;
use crate::backend::{Backend, Transaction};
use crate::scope::Scope;

/// A fresh database's URL, or `None` to skip.
fn fresh() -> Option<String> {
    let Ok(admin) = std::env::var("CLIENTDATA_TEST_PG") else {
        assert_ne!(
            std::env::var("CLIENTDATA_REQUIRE_PG").as_deref(),
            Ok("1"),
            "CLIENTDATA_REQUIRE_PG=1 but CLIENTDATA_TEST_PG is not set"
        );
        return None;
    };
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "unit_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = ::postgres::Client::connect(&admin, ::postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let (server, _) = admin.rsplit_once('/').unwrap();
    Some(format!("{server}/{name}"))
}

fn record(key: &str, wall: u64, value: &str) -> Record {
    let hlc = Hlc::new(wall, 0, NodeId::new(7).unwrap()).unwrap();
    Record::put(
        PluginId::new("p").unwrap(),
        Key::new(key).unwrap(),
        Value::Json(value.into()),
        hlc,
    )
}

fn coverage(wall: u64) -> Watermarks {
    let hlc = Hlc::new(wall, 0, NodeId::new(7).unwrap()).unwrap();
    let mut vector = VersionVector::new();
    vector.advance(hlc.node, hlc);
    [(PluginId::new("p").unwrap(), vector)]
        .into_iter()
        .collect()
}

/// Even a batch the core would never build (an older write, a lower coverage) cannot replace
/// the stored winner or move coverage down: what makes racing processes safe.
#[test]
fn writes_are_conditional_on_a_greater_hlc() {
    let Some(url) = fresh() else { return };
    let db = PgDatabase::open(&url, PgOptions::default()).unwrap();
    let mut conn = db.connection().unwrap();
    let user = UserId::new("u").unwrap();
    let commit = |conn: &mut super::PgConn, r: Record, wall: u64| {
        let mut tx = conn.begin(&Scope::user(user.clone())).unwrap();
        tx.commit(Batch {
            records: vec![r],
            vectors: vec![(VectorKind::Coverage, coverage(wall))],
        })
        .unwrap();
        tx.commit_transaction().unwrap();
    };
    commit(&mut conn, record("k", 2_000, "\"new\""), 2_000);
    commit(&mut conn, record("k", 1_000, "\"old\""), 1_000);
    let mut tx = conn.begin(&Scope::user(user.clone())).unwrap();
    let plugin = PluginId::new("p").unwrap();
    let key = Key::new("k").unwrap();
    assert_eq!(
        tx.version(&plugin, &key).unwrap().map(|h| h.wall_ms),
        Some(2_000)
    );
    let held = tx
        .records_above(std::slice::from_ref(&plugin), &Watermarks::new(), 10)
        .unwrap();
    assert_eq!(held[0].value, Some(Value::Json("\"new\"".into())));
    let vectors = tx.vectors(VectorKind::Coverage, &[plugin]).unwrap();
    assert_eq!(vectors, coverage(2_000));
}

/// Several processes starting at once on an empty database: one migrates, all start.
#[test]
fn concurrent_startups_migrate_once() {
    let Some(url) = fresh() else { return };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                PgDatabase::open(&url, PgOptions::default())
                    .unwrap()
                    .schema_version()
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), SCHEMA_VERSION);
    }
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let applied: i64 = client
        .query_one("SELECT count(*) FROM clientdata_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied, i64::from(SCHEMA_VERSION));
}

#[test]
fn sessions_run_without_jit_and_keep_the_urls_own_options() {
    let Some(url) = fresh() else { return };
    // An option given in the URL survives beside `jit=off`.
    let url = format!("{url}?options=-c%20statement_timeout%3D12345");
    let db = PgDatabase::open(&url, PgOptions::default()).unwrap();
    let mut conn = db.connection().unwrap();
    let jit: String = conn.client.query_one("SHOW jit", &[]).unwrap().get(0);
    assert_eq!(jit, "off");
    let timeout: String = conn
        .client
        .query_one("SHOW statement_timeout", &[])
        .unwrap()
        .get(0);
    assert_eq!(timeout, "12345ms");
}
