//! The PostgreSQL backend: a pool of connections (r2d2 over the synchronous `postgres` client),
//! one transaction per round on one pooled connection, no lock across users, so rounds of
//! different users run concurrently and several server processes can share one database.
//!
//! Exactness with several processes: a round takes a per-user advisory lock
//! (`pg_advisory_xact_lock`) as its first statement, in `READ COMMITTED`. Rounds of one user thus
//! run one at a time across every process, and each statement sees everything committed before
//! the lock was granted, which is what SQLite's one writer gives (no serialisation failures, no
//! retries). `REPEATABLE READ` would not do: its snapshot is taken by the first statement, i.e.
//! before the lock wait, so it could read stale rows. The writes are conditional all the same (a
//! record changes only for a greater HLC; coverage only moves up), so even a writer outside the
//! lock (an operator's import) can never lose an LWW winner.

mod admin;
mod gc;
mod schema;
mod store;

use std::time::Duration;

use clientdata::core::content::Digest;
use clientdata::core::replica::{ReplicaError, ServeStats};
use clientdata::core::resync::{ResyncRequest, ResyncResponse};
use clientdata::core::{ExchangeRequest, ExchangeResponse, Limits, VectorKind};
use postgres::{IsolationLevel, NoTls};
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use crate::auth::UserId;
use crate::backend::{self, Backend, Database};
use crate::quota::UserCaps;
use crate::scope::Scope;

pub use schema::SCHEMA_VERSION;
pub use store::PgTx;

/// The advisory-lock class of clientdata (first key of the two-key form), so its locks never
/// meet another application's single-key locks in a shared database.
const LOCK_CLASS: i32 = 0x0c1d_a7a0;
/// The second key of the migration lock (user locks use `hashtext(name)`).
const MIGRATION_LOCK: i32 = 0;

/// What can go wrong in the PostgreSQL backend.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The database failed or refused a statement.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// No connection could be had from the pool in time.
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The database was migrated by a newer server.
    #[error("database schema version {found} is newer than this server's {known}")]
    SchemaTooNew {
        /// The highest applied migration.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// A stored row did not decode (a hand-edited database).
    #[error("stored row: {0}")]
    Decode(#[from] clientdata::core::Error),
    /// The pool is being closed (shutdown).
    #[error("the connection pool is closed")]
    Closed,
    /// A stored value is not what its kind says (a hand-edited database).
    #[error("stored row: {0}")]
    Corrupt(String),
    /// The server keeps only its coverage vectors; the client-side kinds have no table.
    #[error("the server store keeps no {0:?} vectors")]
    UnsupportedVector(VectorKind),
}

/// Tuning that is not part of the schema.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections this process opens; rounds beyond it wait for a free one.
    pub pool_size: u32,
    /// How long a round waits for a connection before it fails (a 500, retried by the client).
    pub connect_timeout: Duration,
    /// Test-only: sleep this long inside the transaction after writing half of a push.
    pub apply_delay: Option<Duration>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            apply_delay: None,
        }
    }
}

type Manager = PostgresConnectionManager<NoTls>;

/// A PostgreSQL database holding every user's records: the pool, shared by request threads.
pub struct PgDatabase {
    /// `None` only while being dropped (see the `Drop` impl).
    pool: Option<Pool<Manager>>,
    options: PgOptions,
}

/// A `postgres::Client` blocks on its own runtime when dropped, which panics on an async worker
/// (where axum drops its state at shutdown): the pool is dropped on a thread of its own.
impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let closing = std::thread::Builder::new()
                .name("postgres-pool-close".into())
                .spawn(move || drop(pool));
            if let Ok(thread) = closing {
                let _ = thread.join();
            }
        }
    }
}

impl std::fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDatabase")
            .field("state", &self.pool.as_ref().map(Pool::state))
            .field("options", &self.options)
            .finish()
    }
}

impl PgDatabase {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`), migrates the schema and
    /// opens the pool. Blocking.
    pub fn open(url: &str, options: PgOptions) -> Result<Self, PgError> {
        let config: postgres::Config = url.parse()?;
        let mut first = config.connect(NoTls)?;
        schema::migrate(&mut first)?;
        drop(first);
        Self::pool(config, options)
    }

    /// Like [`PgDatabase::open`] but never migrates (operations that only read the version).
    pub fn open_unmigrated(url: &str, options: PgOptions) -> Result<Self, PgError> {
        Self::pool(url.parse()?, options)
    }

    fn pool(mut config: postgres::Config, options: PgOptions) -> Result<Self, PgError> {
        // No JIT: the recursive walks' row estimates are far above what they return, so the
        // planner JIT-compiled the records query of every unscoped round over 2,000 plugins:
        // 620 ms of compiling for 40 ms of work.
        let session = match config.get_options() {
            Some(given) => format!("{given} -c jit=off"),
            None => "-c jit=off".to_owned(),
        };
        config.options(&session);
        let pool = Pool::builder()
            .max_size(options.pool_size.max(1))
            // Connections open on demand: N idle processes do not hold N x pool_size sessions.
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            // An idle connection is checked (an empty query) before a round uses it, so one the
            // database closed (restart, idle timeout) is replaced instead of failing the round.
            .test_on_check_out(true)
            .build(PostgresConnectionManager::new(config, NoTls))?;
        Ok(PgDatabase {
            pool: Some(pool),
            options,
        })
    }

    /// One connection from the pool, as a [`Backend`].
    pub fn connection(&self) -> Result<PgConn, PgError> {
        let pool = self.pool.as_ref().ok_or(PgError::Closed)?;
        Ok(PgConn {
            client: pool.get()?,
            apply_delay: self.options.apply_delay,
        })
    }

    /// The applied schema version (0 for an empty database) and whether it is this build's.
    pub fn schema_version(&self) -> Result<u32, PgError> {
        schema::version(&mut self.connection()?.client)
    }

    /// Applies every pending migration.
    pub fn migrate(&self) -> Result<u32, PgError> {
        schema::migrate(&mut self.connection()?.client)
    }
}

impl Database for PgDatabase {
    type Error = PgError;
    const NAME: &'static str = "postgres";

    fn exchange(
        &self,
        user: &UserId,
        request: &ExchangeRequest,
        limits: &Limits,
        caps: &UserCaps,
        now_ms: u64,
    ) -> Result<(ExchangeResponse, ServeStats), ReplicaError<PgError>> {
        let mut conn = self.connection().map_err(ReplicaError::Store)?;
        backend::exchange(&mut conn, user, request, limits, caps, now_ms)
    }

    fn resync(
        &self,
        user: &UserId,
        request: &ResyncRequest,
        limits: &Limits,
        now_ms: u64,
    ) -> Result<ResyncResponse, ReplicaError<PgError>> {
        let mut conn = self.connection().map_err(ReplicaError::Store)?;
        backend::resync(&mut conn, user, request, limits, now_ms)
    }

    fn ping(&self) -> Result<(), PgError> {
        self.connection()?.ping()
    }

    fn salt(&self, user: &UserId, fresh: &[u8; 32]) -> Result<[u8; 32], PgError> {
        backend::salt(&mut self.connection()?, user, fresh)
    }

    fn put_content(
        &self,
        scope: &Scope,
        sha256: &Digest,
        data: &[u8],
        max_bytes: u64,
    ) -> Result<(), ReplicaError<PgError>> {
        let mut conn = self.connection().map_err(ReplicaError::Store)?;
        backend::put_content(&mut conn, scope, sha256, data, max_bytes)
    }

    fn get_content(&self, scope: &Scope, sha256: &Digest) -> Result<Option<Vec<u8>>, PgError> {
        backend::get_content(&mut self.connection()?, scope, sha256)
    }
}

/// One pooled connection; back to the pool when dropped.
pub struct PgConn {
    client: PooledConnection<Manager>,
    apply_delay: Option<Duration>,
}

impl Backend for PgConn {
    type Error = PgError;
    type Tx<'a> = PgTx<'a>;

    const NAME: &'static str = "postgres";

    fn begin(&mut self, scope: &Scope) -> Result<PgTx<'_>, PgError> {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()?;
        lock_user(&mut tx, scope.user_id())?;
        let user_id = scope_row(&mut tx, &scope.row_name())?;
        Ok(PgTx::new(
            tx,
            user_id,
            scope.user_id().clone(),
            self.apply_delay,
        ))
    }

    fn ping(&mut self) -> Result<(), PgError> {
        // Touches a real table: connected, and the schema is in place.
        self.client.query_one(
            "SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1) AS one",
            &[],
        )?;
        Ok(())
    }
}

/// Waits for `user`'s lock, held until the transaction ends: rounds (and operations) of one user,
/// whichever dataset, run one at a time across every process. A hash collision only serialises two users.
fn lock_user(tx: &mut postgres::Transaction<'_>, user: &UserId) -> Result<(), PgError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&LOCK_CLASS, &user.as_str()],
    )?;
    Ok(())
}

/// The row id of a scope (`Scope::row_name`), creating the row on first sight (under the user's
/// lock, which every dataset of the user shares, so no other transaction is creating it at the
/// same time).
fn scope_row(tx: &mut postgres::Transaction<'_>, name: &str) -> Result<i64, PgError> {
    let row = match tx.query_opt("SELECT id FROM users WHERE name = $1", &[&name])? {
        Some(row) => row,
        None => tx.query_one(
            "INSERT INTO users (name) VALUES ($1) RETURNING id",
            &[&name],
        )?,
    };
    Ok(row.try_get(0)?)
}

#[cfg(test)]
mod tests;
