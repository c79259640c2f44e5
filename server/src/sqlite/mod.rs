//! The SQLite backend: one writer connection in WAL mode, one `IMMEDIATE` transaction per round
//! that writes; rounds that only read run on read-only connections ([`SqliteDatabase`]).
//!
//! Durability: `synchronous = NORMAL`. In WAL mode that never corrupts the database and loses
//! nothing when the process dies (SIGKILL, panic); only a power cut or OS crash may roll back the
//! last commits. The protocol absorbs that: clients keep their records and *replace* their copy
//! of the server's coverage with each reply's, so a rolled-back push is simply pushed again.
//! `FULL` would add an fsync to every round for a window the protocol already covers.

mod admin;
mod checkpoint;
mod database;
mod gc;
mod readers;
mod schema;
mod store;

use std::path::Path;
use std::time::Duration;

use clientdata::core::VectorKind;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::backend::Backend;
use crate::scope::Scope;

pub use database::{SqliteDatabase, DEFAULT_READERS};
pub(crate) use gc::wall_floor;
pub use schema::SCHEMA_VERSION;
pub use store::SqliteTx;

/// What can go wrong in the SQLite backend.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// SQLite itself failed, or a stored row did not decode.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer server.
    #[error("database schema version {found} is newer than this server's {known}")]
    SchemaTooNew {
        /// `user_version` in the file.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The checkpoint thread could not be started.
    #[error("checkpoint thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The server keeps only its coverage vectors; the client-side kinds have no table.
    #[error("the server store keeps no {0:?} vectors")]
    UnsupportedVector(VectorKind),
}

/// Tuning that is not part of the schema.
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    /// Test-only: sleep this long inside the transaction after writing half of a push's records,
    /// so a test can kill the process mid-apply.
    pub apply_delay: Option<Duration>,
}

/// A SQLite database holding every user's records, each row tagged with its user.
#[derive(Debug)]
pub struct SqliteBackend {
    conn: Connection,
    options: SqliteOptions,
    /// `None` for in-memory databases, which have no WAL.
    _checkpointer: Option<checkpoint::Checkpointer>,
}

impl SqliteBackend {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, SqliteError> {
        let conn = Connection::open(path)?;
        // journal_mode answers with the mode in force; anything but WAL is a misconfiguration
        // worth knowing about, but not fatal (e.g. a filesystem without shared memory).
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "database is not in WAL mode");
        }
        // Checkpoints run in the background; SQLite's own after 64 MiB of WAL remain only as
        // a backstop, and the WAL file is cut back to 64 MiB after each reset.
        conn.pragma_update(None, "wal_autocheckpoint", 16_384)?;
        conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
        let mut backend = Self::configure(conn, options)?;
        backend._checkpointer = Some(checkpoint::Checkpointer::start(path)?);
        Ok(backend)
    }

    /// A private in-memory database (unit tests and benchmarks of the store alone).
    pub fn open_in_memory(options: SqliteOptions) -> Result<Self, SqliteError> {
        Self::configure(Connection::open_in_memory()?, options)
    }

    fn configure(mut conn: Connection, options: SqliteOptions) -> Result<Self, SqliteError> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 64 MiB of page cache (negative means KiB): the primary-key lookups of every push stay
        // in memory for databases of a few hundred thousand records.
        conn.pragma_update(None, "cache_size", -65_536)?;
        // Another process (a backup, the sqlite3 shell) may hold the lock for a moment.
        conn.busy_timeout(Duration::from_secs(5))?;
        // Room for every statement the store prepares, so none is ever re-parsed.
        conn.set_prepared_statement_cache_capacity(32);
        // Query planner stability: plans are fixed when a statement is prepared. Without it,
        // SQLite re-prepares a statement whenever a new value is bound to a `LIMIT ?` (or, after
        // ANALYZE, to a range bound), which was a quarter of the ingest time; the plans are the
        // ones the query-plan test checks.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        schema::migrate(&mut conn)?;
        Ok(SqliteBackend {
            conn,
            options,
            _checkpointer: None,
        })
    }

    /// The schema version of the file at `path` (0 for an empty one), read without creating or
    /// migrating anything.
    pub fn stored_version(path: &Path) -> Result<u32, SqliteError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    /// The raw connection, for tests that inspect query plans.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Backend for SqliteBackend {
    type Error = SqliteError;
    type Tx<'a> = SqliteTx<'a>;

    const NAME: &'static str = "sqlite";

    fn begin(&mut self, scope: &Scope) -> Result<SqliteTx<'_>, SqliteError> {
        // IMMEDIATE takes the write lock up front, so a round that reads and then writes can
        // never fail half-way with SQLITE_BUSY_SNAPSHOT.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user_id = scope_row(&tx, &scope.row_name())?;
        Ok(SqliteTx::new(
            tx,
            user_id,
            scope.user_id().clone(),
            self.options.apply_delay,
        ))
    }

    fn ping(&mut self) -> Result<(), SqliteError> {
        // Touches a real table: the file is readable and the schema is in place.
        self.conn
            .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1)")?
            .query_row([], |_| Ok(()))?;
        Ok(())
    }
}

/// The row id of a scope (`Scope::row_name`), creating the row on first sight.
fn scope_row(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    let mut select = conn.prepare_cached("SELECT id FROM users WHERE name = ?1")?;
    if let Some(id) = select.query_row([name], |row| row.get(0)).optional()? {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO users (name) VALUES (?1)")?
        .execute([name])?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests;
