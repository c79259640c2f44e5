//! The PostgreSQL schema, migrated forward at startup (and by `clientdata-server migrate`):
//! migration `i` takes the database from version `i` to `i + 1`, and `clientdata_schema` records
//! each one applied. Append only; never edit a migration that has shipped.
//!
//! Several processes may start at once: each migrates inside one transaction that first takes
//! the migration advisory lock, so exactly one applies a step and the others then find it done.

use postgres::Client;

use super::{PgError, LOCK_CLASS, MIGRATION_LOCK};

/// Every migration, in order. Every table carries `user_id` and every query names it, which is
/// what keeps one user's rows out of another's answers. No foreign keys, as in SQLite: a key
/// check per written row cost more than it guards (rows are only written for a user row found or
/// made in the same transaction; `delete-user` deletes all three tables' rows together). Text that is compared or ordered (HLCs,
/// plugins, keys) is `COLLATE "C"`: byte order, so the fixed-width HLC encoding sorts as HLCs do
/// whatever the database's locale.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE
);

-- The LWW winner per (user, plugin, key), tombstones included.
CREATE TABLE records (
    user_id bigint NOT NULL,
    plugin  text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    node    bigint NOT NULL,            -- the HLC's writer (u64 bits stored as i64)
    hlc     text COLLATE "C" NOT NULL,  -- fixed-width encoding: byte order is HLC order
    kind    smallint NOT NULL,          -- 0 tombstone, 1 JSON text (UTF-8), 2 bytes
    value   bytea,
    PRIMARY KEY (user_id, plugin, key)
);

-- Watermarks are per (plugin, node), so the records above one are a single range of this index,
-- in HLC order; it also serves the distinct-node and distinct-plugin walks. It carries the key,
-- so an answer picks its rows from the index alone and reads only the chosen rows' values (by
-- primary key). Two indexes per row, as in SQLite.
CREATE INDEX records_by_node ON records (user_id, plugin, node, hlc) INCLUDE (key);

-- The server's coverage vector per (user, plugin, node), kept on its own (DESIGN.md 4a).
CREATE TABLE coverage (
    user_id bigint NOT NULL,
    plugin  text COLLATE "C" NOT NULL,
    node    bigint NOT NULL,
    hlc     text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, plugin, node)
);
"#,
    r#"
-- Which device owns a node id: the SHA-256 of the secret that first claimed it (PROTOCOL.md).
CREATE TABLE nodes (
    user_id bigint NOT NULL,
    node    bigint NOT NULL,
    secret  bytea NOT NULL,
    PRIMARY KEY (user_id, node)
);
"#,
    r#"
-- Each user's salt for passphrase keys (end-to-end encryption, PROTOCOL.md `/sync/salt`).
CREATE TABLE salts (
    user_id bigint PRIMARY KEY,
    salt    bytea NOT NULL
);
"#,
    r#"
-- Tombstone collection (protocol v2, server/src/gc.rs). A reader is a node that ran rounds:
-- when it last did, and per (plugin, writer) the highest stamp its requests proved it holds.
CREATE TABLE readers (
    user_id       bigint NOT NULL,
    node          bigint NOT NULL,
    last_round_ms bigint NOT NULL,
    PRIMARY KEY (user_id, node)
);

CREATE TABLE reader_seen (
    user_id bigint NOT NULL,
    node    bigint NOT NULL,
    plugin  text COLLATE "C" NOT NULL,
    writer  bigint NOT NULL,
    hlc     text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, node, plugin, writer)
);

-- Per (plugin, writer) the highest stamp of a collected tombstone, reported in replies.
CREATE TABLE collected (
    user_id bigint NOT NULL,
    plugin  text COLLATE "C" NOT NULL,
    writer  bigint NOT NULL,
    hlc     text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, plugin, writer)
);

-- The oldest tombstones of a dataset, for the collection pass: one range of a partial index.
CREATE INDEX records_tombstones ON records (user_id, hlc) WHERE kind = 0;
"#,
    r#"
-- Content of values synced by reference (protocol v2), per dataset row, by SHA-256. Records of
-- kind 3 name it with `value` = `j|b:<size>:<sha256>` (core::content::ContentRef::encode).
CREATE TABLE content (
    user_id bigint NOT NULL,
    sha256  bytea NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (user_id, sha256)
);
"#,
    r#"
-- Wiped-store detection (the request's `device`, server/src/devices.rs): per dataset row and
-- app-named device, the store epoch last seen and when, for forgetting the oldest beyond the cap.
CREATE TABLE devices (
    user_id bigint NOT NULL,
    device  text COLLATE "C" NOT NULL,
    epoch   text COLLATE "C" NOT NULL,
    seen_ms bigint NOT NULL,
    PRIMARY KEY (user_id, device)
);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS clientdata_schema (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// The highest applied migration, 0 for a database clientdata never touched. Never writes.
pub fn version(client: &mut Client) -> Result<u32, PgError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('clientdata_schema') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    let found: Option<i32> = client
        .query_one("SELECT max(version) FROM clientdata_schema", &[])?
        .try_get(0)?;
    Ok(found.map_or(0, |v| v.max(0) as u32))
}

/// Brings the database up to [`SCHEMA_VERSION`] in one transaction; returns the version.
pub fn migrate(client: &mut Client) -> Result<u32, PgError> {
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &MIGRATION_LOCK],
    )?;
    tx.batch_execute(VERSION_TABLE)?;
    let found: Option<i32> = tx
        .query_one("SELECT max(version) FROM clientdata_schema", &[])?
        .try_get(0)?;
    let found = found.map_or(0, |v| v.max(0) as u32);
    if found > SCHEMA_VERSION {
        return Err(PgError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        let applied = version as i32 + 1;
        tx.execute(
            "INSERT INTO clientdata_schema (version) VALUES ($1)",
            &[&applied],
        )?;
        tracing::info!(version = applied, "database migrated");
    }
    tx.commit()?;
    Ok(SCHEMA_VERSION)
}
