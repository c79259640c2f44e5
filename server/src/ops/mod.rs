//! Operations subcommands of the server binary, on either backend, so an operator never writes
//! SQL: `migrate`, `schema [--check]`, `users`, `export USER`, `import USER`, `delete-user USER`.
//!
//! Export and import go through the same [`Backend`] transaction the exchange uses (the core's
//! `Store`), so they follow its rules: an import keeps the LWW winner per key and only moves
//! coverage up, and it lands whole or not at all.

mod transfer;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

pub use transfer::{export, import};

use crate::auth::UserId;
use crate::backend::Backend;
use crate::config::Config;
use crate::database::DatabaseUrl;
use crate::postgres::{PgDatabase, PgError, PgOptions};
use crate::scope::Scope;
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
        /// A dataset of the user's other than the default (the `dataset` of the protocol).
        #[arg(long)]
        dataset: Option<String>,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read JSON lines written by `export` into USER (from stdin, or --input FILE): per key the
    /// greater HLC wins, coverage only moves up; all or nothing.
    Import {
        /// The user to import into.
        user: String,
        /// A dataset of the user's other than the default (the `dataset` of the protocol).
        #[arg(long)]
        dataset: Option<String>,
        /// Read from here instead of stdin.
        #[arg(long, short)]
        input: Option<PathBuf>,
    },
    /// Delete a user and every record and watermark of theirs, in every dataset.
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
    /// Whether `scope` (a user's dataset) has a row.
    fn has_scope(&mut self, scope: &Scope) -> Result<bool, Self::Error>;
    /// Deletes `user` and everything of theirs in every dataset; the number of records, or
    /// `None` if the user has no row in any dataset.
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
        Command::Export {
            user,
            dataset,
            output,
        } => {
            let user = scope(user, dataset.as_deref())?;
            let written = match output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
                    let n = export(backend, &user, &mut file)?;
                    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    n
                }
                None => export(backend, &user, &mut stdout)?,
            };
            eprintln!("exported {written} records of {}", user.row_name());
        }
        Command::Import {
            user,
            dataset,
            input,
        } => {
            let user = scope(user, dataset.as_deref())?;
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
                "imported into {}: {read} records read, {stored} stored (the rest lost LWW)",
                user.row_name()
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

fn scope(name: &str, dataset: Option<&str>) -> Result<Scope, OpsError> {
    if let Some(d) = dataset {
        clientdata::core::protocol::check_dataset(d)
            .map_err(|e| OpsError::User(format!("{name} dataset {d:?}: {e}")))?;
    }
    Ok(Scope::dataset(user_id(name)?, dataset))
}
