//! clientdata's reference sync server: `POST /sync/exchange` answered by the same core the browser
//! runs (`clientdata::core::replica::serve`), inside one database transaction per round, on
//! SQLite (embedded, the default) or PostgreSQL (several server processes on one database).
//!
//! The map:
//! - [`config`]: command line and environment.
//! - [`app`]: startup, listening, graceful shutdown.
//! - [`serve`]: the connection layer (connection cap, header/idle/write timeouts, bounded drain).
//! - [`limits`]: request bodies within a deadline and a shared in-flight byte budget.
//! - [`routes`]: handlers, CORS; [`static_files`]: files confined to their directory.
//! - [`content`]: `/sync/content/{sha256}`, the bytes of values synced by reference.
//! - [`quota`]: per-user caps on plugins, nodes and records (and the tombstone horizon).
//! - [`gc`]: tombstone collection, readers, the full-resync walk (protocol v2).
//! - [`devices`]: wiped-store detection, the store epoch last seen per app-named device.
//! - [`write_health`]: `/health` turns unhealthy after a failed push.
//! - [`auth`]: bearer tokens and user ids.
//! - [`error`]: every error answer as JSON `{ code, message }`.
//! - [`backend`]: the storage seam (a transaction per round, scoped to one user's dataset).
//! - [`scope`]: a user's dataset, the unit every transaction reads and writes.
//! - [`database`]: which backend a `--database` value selects.
//! - [`sqlite`]: the SQLite backend (one writer, read-only connections for rounds that only read).
//! - [`user_gate`]: rounds of one user run one at a time.
//! - [`postgres`]: the PostgreSQL backend (a connection pool, no global lock).
//! - [`ops`]: the operations subcommands (users, export/import, delete, schema, migrate).
#![deny(missing_docs)]

pub mod app;
pub mod auth;
pub mod backend;
pub mod config;
pub mod content;
pub mod database;
pub mod devices;
pub mod error;
pub mod gc;
pub mod limits;
pub mod ops;
pub mod postgres;
pub mod quota;
pub mod routes;
pub mod scope;
pub mod serve;
pub mod sqlite;
pub mod static_files;
pub mod user_gate;
pub mod write_health;
