//! The SQLite schema, migrated forward by `PRAGMA user_version`: migration `i` takes a database
//! from version `i` to `i + 1`. Append only; never edit a migration that has shipped.

use rusqlite::{Connection, TransactionBehavior};

use super::SqliteError;

/// Every migration, in order. Every table carries `user_id` and every query names it, which is
/// what keeps one user's rows out of another's answers.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE users (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

-- The LWW winner per (user, plugin, key), tombstones included. A rowid table, not WITHOUT ROWID,
-- because rows carry values up to 1 MiB; the primary key becomes a unique index.
CREATE TABLE records (
    user_id INTEGER NOT NULL,
    plugin  TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    node    INTEGER NOT NULL, -- the HLC's writer (u64 bits stored as i64)
    hlc     TEXT    NOT NULL, -- fixed-width encoding: text order is HLC order
    kind    INTEGER NOT NULL, -- 0 tombstone, 1 JSON text, 2 bytes
    value   ANY,
    PRIMARY KEY (user_id, plugin, key)
) STRICT;

-- Watermarks are per (plugin, node), so the records above one are a single range of this index,
-- already in HLC order; it also covers (node) for the distinct-node walk and (hlc, rowid) for the
-- range, so neither touches the table.
CREATE INDEX records_by_node ON records (user_id, plugin, node, hlc);

-- The server's coverage vector per (user, plugin, node), kept on its own (DESIGN.md 4a).
CREATE TABLE coverage (
    user_id INTEGER NOT NULL,
    plugin  TEXT    NOT NULL,
    node    INTEGER NOT NULL,
    hlc     TEXT    NOT NULL,
    PRIMARY KEY (user_id, plugin, node)
) STRICT, WITHOUT ROWID;
",
    r"
-- Which device owns a node id: the SHA-256 of the secret that first claimed it (protocol.md).
CREATE TABLE nodes (
    user_id INTEGER NOT NULL,
    node    INTEGER NOT NULL,
    secret  BLOB    NOT NULL,
    PRIMARY KEY (user_id, node)
) STRICT, WITHOUT ROWID;
",
    r"
-- Each user's salt for passphrase keys (end-to-end encryption, PROTOCOL.md `/sync/salt`).
CREATE TABLE salts (
    user_id INTEGER PRIMARY KEY,
    salt    BLOB    NOT NULL
) STRICT;
",
    r"
-- Tombstone collection (protocol v2, server/src/gc.rs). A reader is a node that ran rounds:
-- when it last did, and per (plugin, writer) the highest stamp its requests proved it holds.
CREATE TABLE readers (
    user_id       INTEGER NOT NULL,
    node          INTEGER NOT NULL,
    last_round_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, node)
) STRICT, WITHOUT ROWID;

CREATE TABLE reader_seen (
    user_id INTEGER NOT NULL,
    node    INTEGER NOT NULL,
    plugin  TEXT    NOT NULL,
    writer  INTEGER NOT NULL,
    hlc     TEXT    NOT NULL,
    PRIMARY KEY (user_id, node, plugin, writer)
) STRICT, WITHOUT ROWID;

-- Per (plugin, writer) the highest stamp of a collected tombstone, reported in replies.
CREATE TABLE collected (
    user_id INTEGER NOT NULL,
    plugin  TEXT    NOT NULL,
    writer  INTEGER NOT NULL,
    hlc     TEXT    NOT NULL,
    PRIMARY KEY (user_id, plugin, writer)
) STRICT, WITHOUT ROWID;

-- The oldest tombstones of a dataset, for the collection pass: one range of a partial index.
CREATE INDEX records_tombstones ON records (user_id, hlc) WHERE kind = 0;
",
    r"
-- Content of values synced by reference (protocol v2), per dataset row, by SHA-256. Records of
-- kind 3 name it with `value` = `j|b:<size>:<sha256>` (core::content::ContentRef::encode).
CREATE TABLE content (
    user_id INTEGER NOT NULL,
    sha256  BLOB    NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (user_id, sha256)
) STRICT;
",
    r"
-- Wiped-store detection (the request's `device`, server/src/devices.rs): per dataset row and
-- app-named device, the store epoch last seen and when, for forgetting the oldest beyond the cap.
CREATE TABLE devices (
    user_id INTEGER NOT NULL,
    device  TEXT    NOT NULL,
    epoch   TEXT    NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, device)
) STRICT, WITHOUT ROWID;
",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`], each step in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), SqliteError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(SqliteError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as u32 + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, "database migrated");
    }
    Ok(())
}
