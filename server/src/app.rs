//! Startup and shutdown: load tokens, open the database, bind, serve until SIGINT/SIGTERM.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clientdata::core::Limits;
use tokio::net::TcpListener;

use crate::auth::{Tokens, TokensError, DEV_TOKEN_PREFIX};
use crate::config::Config;
use crate::database::DatabaseUrl;
use crate::limits::Intake;
use crate::postgres::{PgDatabase, PgOptions};
use crate::routes::{router, AppState};
use crate::serve::ConnectionOptions;
use crate::sqlite::{SqliteDatabase, SqliteOptions};
use crate::write_health::WriteHealth;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The tokens file is unusable.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// The database could not be opened or migrated.
    #[error("database {path}: {source}")]
    Database {
        /// The file or URL (without its password).
        path: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A static directory does not exist.
    #[error("static directory {0} does not exist")]
    StaticDir(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Dev mode asked for on an address other than loopback.
    #[error("dev mode (no --tokens) on {0}, which is not loopback: anyone reaching it could read any user's data. Pass --tokens, listen on 127.0.0.1, or add --dev-any-address")]
    DevModeNotLoopback(SocketAddr),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

/// A server bound to its address, ready to serve.
pub struct Bound {
    listener: TcpListener,
    app: axum::Router,
    connections: ConnectionOptions,
}

impl Bound {
    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets open requests finish within the grace.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::serve::serve(self.listener, self.app, &self.connections, shutdown).await
    }
}

/// Loads tokens, opens the database, checks the static directories and binds the address.
pub async fn bind(config: &Config) -> Result<Bound, StartError> {
    let tokens = match &config.tokens {
        Some(path) => Tokens::load(path)?,
        None => {
            tracing::warn!("DEV MODE: no --tokens file; any `{DEV_TOKEN_PREFIX}<user>` token is accepted as <user>. Never expose this server.");
            Tokens::Dev
        }
    };
    for mount in &config.statics {
        if !mount.dir.is_dir() {
            return Err(StartError::StaticDir(mount.dir.display().to_string()));
        }
    }
    let apply_delay = config.test_apply_delay_ms.map(Duration::from_millis);
    if let Some(ms) = config.test_apply_delay_ms {
        tracing::warn!(
            ms,
            "test apply delay is on: every push sleeps inside its transaction"
        );
    }
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| StartError::Database {
        path: config.database.to_string(),
        source,
    };
    let limits = Limits::default();
    let dev_mode = matches!(tokens, Tokens::Dev);
    config.database.check().map_err(|e| failed(e.into()))?;
    let app = match &config.database {
        DatabaseUrl::Unsupported(_) => return Err(failed("unsupported database URL".into())),
        DatabaseUrl::Sqlite(path) => {
            let database =
                SqliteDatabase::open(path, SqliteOptions { apply_delay }, config.sqlite_readers)
                    .map_err(|e| failed(e.into()))?;
            let state = AppState {
                database,
                tokens,
                limits,
                caps: config.caps,
                intake: Intake::new(&config.requests),
                writes: WriteHealth::default(),
            };
            router(Arc::new(state), &config.allow_origins, &config.statics)
        }
        DatabaseUrl::Postgres(url) => {
            let (url, options) = (
                url.clone(),
                PgOptions {
                    pool_size: config.pool_size,
                    apply_delay,
                    ..PgOptions::default()
                },
            );
            // Connecting and migrating block: off the async workers.
            let database = tokio::task::spawn_blocking(move || PgDatabase::open(&url, options))
                .await
                .map_err(|e| failed(e.into()))?
                .map_err(|e| failed(e.into()))?;
            let state = AppState {
                database,
                tokens,
                limits,
                caps: config.caps,
                intake: Intake::new(&config.requests),
                writes: WriteHealth::default(),
            };
            router(Arc::new(state), &config.allow_origins, &config.statics)
        }
    };
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr()?;
    if dev_mode && !addr.ip().is_loopback() && !config.dev_any_address {
        return Err(StartError::DevModeNotLoopback(addr));
    }
    Ok(Bound {
        listener,
        app,
        connections: config.connections.clone(),
    })
}

/// Runs the server until SIGINT or SIGTERM, then lets open requests finish.
pub async fn run(config: Config) -> Result<(), StartError> {
    ignore_file_size_signal();
    let bound = bind(&config).await?;
    let addr = bound.local_addr()?;
    // The one line on stdout, for scripts and tests that start the server on port 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%addr, database = %config.database, origins = config.allow_origins.len(), statics = config.statics.len(), "listening");
    bound.serve(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, which kills the process by
/// default; ignored, the write fails with EFBIG instead, the push gets a 500 and `/health` turns
/// unhealthy, like any other failed write.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(cause = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(cause = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
