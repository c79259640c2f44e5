//! Operations subcommands of the server binary, on either backend, so an operator never writes
//! SQL: `migrate`, `schema [--check]`, `users`, `export USER`, `import USER`, `delete-user USER`.
//!
//! Export and import go through the same [`Backend`] transaction the exchange uses (the core's
//! `Store`), so they follow its rules: an import keeps the LWW winner per key and only moves
//! coverage up, and it lands whole or not at all.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use clientdata::core::{Batch, Key, PluginId, Record, Store, VectorKind, Watermarks};
use serde::{Deserialize, Serialize};

use crate::auth::UserId;
use crate::backend::{Backend, Transaction};
use crate::config::Config;
use crate::database::DatabaseUrl;
use crate::postgres::{PgDatabase, PgError, PgOptions};
use crate::sqlite::{SqliteBackend, SqliteError, SqliteOptions};

/// An operation on the database named by `--database`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply pending schema migrations (the server also does at startup) and print the version.
    Migrate,
    /// Print the database's schema version and this build's; with --check, exit 1 unless equal.
    Schema {
        /// Exit 1 unless the database is at exactly this build's version.
        #[arg(long)]
        check: bool,
    },
    /// List users with their record counts and stored bytes (keys and values).
    Users,
    /// Write one user's records and coverage as JSON lines (to stdout, or --output FILE).
    Export {
        /// The user.
        user: String,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read JSON lines written by `export` into USER (from stdin, or --input FILE): per key the
    /// greater HLC wins, coverage only moves up; all or nothing.
    Import {
        /// The user to import into.
        user: String,
        /// Read from here instead of stdin.
        #[arg(long, short)]
        input: Option<PathBuf>,
    },
    /// Delete a user and every record and watermark of theirs.
    DeleteUser {
        /// The user.
        user: String,
    },
}

/// One user's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserStats {
    /// The user id.
    pub name: String,
    /// Stored records, tombstones included.
    pub records: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

/// What a backend offers beyond rounds.
pub trait Admin: Backend {
    /// Every user, by name.
    fn users(&mut self) -> Result<Vec<UserStats>, Self::Error>;
    /// Whether `user` has a row.
    fn has_user(&mut self, user: &UserId) -> Result<bool, Self::Error>;
    /// Deletes `user` and everything of theirs; the number of records, or `None` if unknown.
    fn delete_user(&mut self, user: &UserId) -> Result<Option<u64>, Self::Error>;
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The SQLite backend failed.
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    /// The PostgreSQL backend failed.
    #[error(transparent)]
    Postgres(#[from] PgError),
    /// Reading or writing a file or stream.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The `--database` value cannot be used.
    #[error("database {0}")]
    Database(String),
    /// A user name that is not a valid user id.
    #[error("invalid user {0:?}")]
    User(String),
    /// No such user.
    #[error("no user {0:?} in the database")]
    UnknownUser(String),
    /// An import line that is not what `export` writes.
    #[error("line {line}: {message}")]
    BadLine {
        /// 1-based.
        line: usize,
        /// Why.
        message: String,
    },
}

/// One line of an export: a header first, then records, then the coverage.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Export { format: u32, user: String },
    Record(Record),
    Coverage(Watermarks),
}

const FORMAT: u32 = 1;
/// Records per page of an export and per batch of an import.
const PAGE: usize = 1000;

/// Runs `command` against the configured database; the exit code says whether it succeeded.
pub fn run(command: &Command, config: &Config) -> Result<ExitCode, OpsError> {
    let options = PgOptions {
        pool_size: 1,
        ..PgOptions::default()
    };
    config
        .database
        .check()
        .map_err(|e| OpsError::Database(format!("{}: {e}", config.database)))?;
    match (command, &config.database) {
        (_, DatabaseUrl::Unsupported(_)) => Err(OpsError::Database(config.database.to_string())),
        (Command::Schema { check }, db) => {
            let found = match db {
                DatabaseUrl::Sqlite(path) => SqliteBackend::stored_version(path)?,
                DatabaseUrl::Postgres(url) | DatabaseUrl::Unsupported(url) => {
                    PgDatabase::open_unmigrated(url, options)?.schema_version()?
                }
            };
            let known = match db {
                DatabaseUrl::Sqlite(_) => crate::sqlite::SCHEMA_VERSION,
                DatabaseUrl::Postgres(_) | DatabaseUrl::Unsupported(_) => {
                    crate::postgres::SCHEMA_VERSION
                }
            };
            let verdict = match found.cmp(&known) {
                std::cmp::Ordering::Equal => "up to date",
                std::cmp::Ordering::Less => "behind: run `clientdata-server migrate`",
                std::cmp::Ordering::Greater => "NEWER than this build: upgrade the server",
            };
            println!(
                "{} schema version {found}; this build: {known} ({verdict})",
                db.kind()
            );
            Ok(if *check && found != known {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        (Command::Migrate, DatabaseUrl::Sqlite(path)) => {
            SqliteBackend::open(path, SqliteOptions::default())?;
            println!("sqlite schema version {}", crate::sqlite::SCHEMA_VERSION);
            Ok(ExitCode::SUCCESS)
        }
        (Command::Migrate, DatabaseUrl::Postgres(url)) => {
            let version = PgDatabase::open(url, options)?.schema_version()?;
            println!("postgres schema version {version}");
            Ok(ExitCode::SUCCESS)
        }
        (command, DatabaseUrl::Sqlite(path)) => on(
            &mut SqliteBackend::open(path, SqliteOptions::default())?,
            command,
        ),
        (command, DatabaseUrl::Postgres(url)) => {
            on(&mut PgDatabase::open(url, options)?.connection()?, command)
        }
    }
}

fn on<B: Admin>(backend: &mut B, command: &Command) -> Result<ExitCode, OpsError>
where
    OpsError: From<B::Error>,
{
    let mut stdout = std::io::stdout().lock();
    match command {
        Command::Users => {
            writeln!(stdout, "{:<32} {:>10} {:>14}", "user", "records", "bytes")?;
            for u in backend.users()? {
                writeln!(stdout, "{:<32} {:>10} {:>14}", u.name, u.records, u.bytes)?;
            }
        }
        Command::Export { user, output } => {
            let user = user_id(user)?;
            let written = match output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
                    let n = export(backend, &user, &mut file)?;
                    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    n
                }
                None => export(backend, &user, &mut stdout)?,
            };
            eprintln!("exported {written} records of {user}");
        }
        Command::Import { user, input } => {
            let user = user_id(user)?;
            let (read, stored) = match input {
                Some(path) => import(
                    backend,
                    &user,
                    std::io::BufReader::new(std::fs::File::open(path)?),
                )?,
                None => import(backend, &user, std::io::stdin().lock())?,
            };
            writeln!(
                stdout,
                "imported into {user}: {read} records read, {stored} stored (the rest lost LWW)"
            )?;
        }
        Command::DeleteUser { user } => {
            let id = user_id(user)?;
            match backend.delete_user(&id)? {
                Some(n) => writeln!(stdout, "deleted {id} and {n} records")?,
                None => return Err(OpsError::UnknownUser(user.clone())),
            }
        }
        Command::Migrate | Command::Schema { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn user_id(name: &str) -> Result<UserId, OpsError> {
    UserId::new(name).ok_or_else(|| OpsError::User(name.to_owned()))
}

/// Writes `user`'s records (in HLC order, a page at a time) and coverage, read in one
/// transaction so the export is a consistent snapshot. Returns the number of records.
pub fn export<B: Admin>(
    backend: &mut B,
    user: &UserId,
    out: &mut impl Write,
) -> Result<usize, OpsError>
where
    OpsError: From<B::Error>,
{
    if !backend.has_user(user)? {
        return Err(OpsError::UnknownUser(user.to_string()));
    }
    let mut tx = backend.begin(user)?;
    write_line(
        out,
        &Line::Export {
            format: FORMAT,
            user: user.to_string(),
        },
    )?;
    let plugins = tx.plugins()?;
    // Pages come in global HLC order, cut at some stamp h: every record at or below h is in
    // the page, so per node "the highest written" is an exact floor for the next page.
    let mut floor = Watermarks::new();
    let mut written = 0;
    loop {
        let page = tx.records_above(&plugins, &floor, PAGE)?;
        for record in &page {
            floor.advance(&record.plugin, record.hlc);
            write_line(out, &Line::Record(record.clone()))?;
        }
        written += page.len();
        if page.len() < PAGE {
            break;
        }
    }
    write_line(
        out,
        &Line::Coverage(tx.vectors(VectorKind::Coverage, &plugins)?),
    )?;
    out.flush()?;
    // Read only: dropping the transaction rolls back (nothing to keep).
    drop(tx);
    Ok(written)
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<(), OpsError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads an export into `user` in one transaction; returns (records read, records stored).
/// Any bad line fails the whole import before it commits.
pub fn import<B: Admin>(
    backend: &mut B,
    user: &UserId,
    input: impl BufRead,
) -> Result<(usize, usize), OpsError>
where
    OpsError: From<B::Error>,
{
    let mut tx = backend.begin(user)?;
    let (mut read, mut stored) = (0, 0);
    let mut coverage = Watermarks::new();
    let mut pending: Vec<Record> = Vec::new();
    let mut header = false;
    for (i, text) in input.lines().enumerate() {
        let bad = |message: String| OpsError::BadLine {
            line: i + 1,
            message,
        };
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        match line {
            Line::Export { format, .. } if !header && format == FORMAT => header = true,
            Line::Export { format, .. } if !header => {
                return Err(bad(format!("export format {format}, expected {FORMAT}")))
            }
            _ if !header => return Err(bad("the first line must be the export header".into())),
            Line::Export { .. } => return Err(bad("a second header".into())),
            Line::Record(record) => {
                read += 1;
                pending.push(record);
                if pending.len() == PAGE {
                    stored += apply(&mut tx, std::mem::take(&mut pending))?;
                }
            }
            Line::Coverage(vectors) => coverage.merge(&vectors),
        }
    }
    if !header {
        return Err(OpsError::BadLine {
            line: 1,
            message: "empty input: no export header".into(),
        });
    }
    stored += apply(&mut tx, pending)?;
    // The stored coverage merged with the imported (only ever up).
    let plugins: Vec<PluginId> = coverage.plugins().cloned().collect();
    let mut merged = tx.vectors(VectorKind::Coverage, &plugins)?;
    merged.merge(&coverage);
    tx.commit(Batch {
        records: Vec::new(),
        vectors: vec![(VectorKind::Coverage, merged)],
    })?;
    tx.commit_transaction()?;
    Ok((read, stored))
}

/// Stores the records that win LWW against the store and each other; returns how many.
fn apply<S: Store>(tx: &mut S, records: Vec<Record>) -> Result<usize, S::Error> {
    let mut best: BTreeMap<(PluginId, Key), Record> = BTreeMap::new();
    for r in records {
        match best.get(&(r.plugin.clone(), r.key.clone())) {
            Some(held) if held.hlc >= r.hlc => {}
            _ => {
                best.insert((r.plugin.clone(), r.key.clone()), r);
            }
        }
    }
    let keys: Vec<(&PluginId, &Key)> = best.keys().map(|(p, k)| (p, k)).collect();
    let stored = tx.versions(&keys)?;
    let winners: Vec<Record> = best
        .values()
        .zip(stored)
        .filter(|(r, s)| r.wins_over(s.as_ref()))
        .map(|(r, _)| r.clone())
        .collect();
    let n = winners.len();
    tx.commit(Batch {
        records: winners,
        vectors: Vec::new(),
    })?;
    Ok(n)
}
