//! Read-only connections for rounds that push nothing. In WAL mode readers never wait for the
//! writer nor it for them, so a user's long unscoped read round no longer holds the one write
//! connection that every other user's round needs.

use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use clientdata::core::replica::{serve, ReplicaError, ServeStats};
use clientdata::core::{ExchangeRequest, ExchangeResponse, Limits};

use super::{SqliteError, SqliteTx};
use crate::auth::UserId;
use crate::backend::{node_verdict, NodeVerdict};
use crate::devices;
use crate::gc;
use crate::quota::UserCaps;
use crate::scope::Scope;

/// A fixed set of read-only connections; a round waits for a free one.
#[derive(Debug)]
pub(super) struct Readers {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl Readers {
    /// Opens `count` read-only connections to the (already migrated, WAL) database at `path`.
    pub(super) fn open(path: &Path, count: usize) -> Result<Self, SqliteError> {
        let idle = (0..count)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Readers {
            idle: Mutex::new(idle),
            freed: Condvar::new(),
        })
    }

    /// Answers a round that pushes nothing from one snapshot of a read connection, or `None`
    /// when it must run on the writer after all: a user (or dataset) without a row yet (the writer creates
    /// it), a node claim to write, a reader to write down (`gc::observation_due`) or a device to
    /// remember (`devices::read_only`).
    pub(super) fn exchange(
        &self,
        user: &UserId,
        request: &ExchangeRequest,
        limits: &Limits,
        caps: &UserCaps,
        now_ms: u64,
    ) -> Result<Option<(ExchangeResponse, ServeStats)>, ReplicaError<SqliteError>> {
        debug_assert!(request.push.is_empty());
        let mut conn = self.take();
        let answer = read_round(&mut conn, user, request, limits, caps, now_ms);
        self.give_back(conn);
        answer
    }

    fn take(&self) -> Connection {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = idle.pop() {
                return conn;
            }
            idle = self
                .freed
                .wait(idle)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        self.freed.notify_one();
    }
}

fn read_round(
    conn: &mut Connection,
    user: &UserId,
    request: &ExchangeRequest,
    limits: &Limits,
    caps: &UserCaps,
    now_ms: u64,
) -> Result<Option<(ExchangeResponse, ServeStats)>, ReplicaError<SqliteError>> {
    let store = |e: rusqlite::Error| ReplicaError::Store(SqliteError::from(e));
    // The round reads the request's dataset, as the writer's would (`backend::exchange`).
    if let Some(dataset) = &request.dataset {
        clientdata::core::protocol::check_dataset(dataset)?;
    }
    let scope = Scope::dataset(user.clone(), request.dataset.as_deref());
    // DEFERRED: the snapshot is taken by the first read and no lock is ever asked for.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(store)?;
    let id: Option<i64> = tx
        .prepare_cached("SELECT id FROM users WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([scope.row_name().as_ref()], |row| row.get(0))
                .optional()
        })
        .map_err(store)?;
    let Some(id) = id else { return Ok(None) };
    let mut tx = SqliteTx::new(tx, id, scope.user_id().clone(), None);
    // An empty push: `serve` only reads. The transaction is dropped (ended) either way.
    let (mut reply, stats) = serve(&mut tx, request, limits, now_ms)?;
    if let NodeVerdict::Claim(_) = node_verdict(&mut tx, request)? {
        return Ok(None);
    }
    // The same tombstone-collection answers as the writer's (`backend::exchange`).
    let gc_store = ReplicaError::Store;
    // A device to remember (new, another epoch, stale) is the writer's.
    if !devices::read_only(&mut tx, request, now_ms).map_err(gc_store)? {
        return Ok(None);
    }
    if gc::needs_full_resync(&mut tx, request).map_err(gc_store)? {
        return Ok(Some((gc::full_resync_reply(), ServeStats::default())));
    }
    let horizon = gc::horizon(caps.tombstone_horizon_secs);
    if gc::observation_due(&mut tx, request, now_ms, horizon).map_err(gc_store)? {
        return Ok(None);
    }
    reply.collected = gc::reported(&mut tx, &reply).map_err(gc_store)?;
    Ok(Some((reply, stats)))
}

fn open_reader(path: &Path) -> Result<Connection, SqliteError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // 16 MiB of page cache each (the writer has 64).
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(32);
    // The same fixed plans as the writer's (see `SqliteBackend::configure`).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(conn)
}
