//! The connection layer: accepts connections and serves each with hyper (HTTP/1.1), with what
//! `axum::serve` lacks against slow or greedy clients:
//!
//! - a cap on open connections, kept below the process's file-descriptor limit; at the cap the
//!   connection idle the longest is closed for the newcomer (a flood of idle sockets cannot keep
//!   `/health` out), and when every connection is busy the newcomer gets 503 `overloaded`;
//! - header, idle and write deadlines ([`io`]);
//! - a graceful shutdown that drains for a bounded time, then exits.

mod conn;
mod io;
mod registry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::raw_error_response;
use io::Timeouts;
use registry::Registry;

/// Connection options (command line and environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionOptions {
    /// Most connections open at once. Lowered at startup to stay below the file-descriptor limit
    /// (`ulimit -n`), with a quarter of it (at least 64) kept for the database and files.
    #[arg(long, env = "CLIENTDATA_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Seconds a request head may take, from its first byte (or from the connection's start).
    #[arg(long, env = "CLIENTDATA_HEADER_TIMEOUT_SECS", default_value = "10", value_parser = parse_secs, value_name = "SECS")]
    pub header_timeout_secs: Duration,

    /// Seconds a keep-alive connection may wait for its next request.
    #[arg(long, env = "CLIENTDATA_IDLE_TIMEOUT_SECS", default_value = "60", value_parser = parse_secs, value_name = "SECS")]
    pub idle_timeout_secs: Duration,

    /// Seconds one write of an answer may make no progress (a client that does not read).
    #[arg(long, env = "CLIENTDATA_WRITE_TIMEOUT_SECS", default_value = "30", value_parser = parse_secs, value_name = "SECS")]
    pub write_timeout_secs: Duration,

    /// Seconds to let open requests finish after SIGTERM/SIGINT before exiting anyway.
    #[arg(long, env = "CLIENTDATA_SHUTDOWN_GRACE_SECS", default_value = "5", value_parser = parse_secs, value_name = "SECS")]
    pub shutdown_grace_secs: Duration,
}

/// Seconds as a positive decimal number (`0.5`, `10`).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 86_400.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

impl ConnectionOptions {
    /// The connection cap: `max_connections`, lowered below the file-descriptor limit.
    pub fn connection_cap(&self) -> usize {
        match fd_limit() {
            Some(limit) => {
                let reserve = (limit / 4).max(64);
                self.max_connections
                    .min(limit.saturating_sub(reserve))
                    .max(1)
            }
            None => self.max_connections.max(1),
        }
    }
}

/// The soft `RLIMIT_NOFILE`, or `None` when unlimited or unknown.
fn fd_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer and has no other effect.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains open connections for at
/// most the shutdown grace and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: &ConnectionOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let cap = options.connection_cap();
    let timeouts = Timeouts {
        header: options.header_timeout_secs,
        idle: options.idle_timeout_secs,
        write: options.write_timeout_secs,
    };
    tracing::info!(
        max_connections = cap,
        fd_limit = fd_limit(),
        "connection limits"
    );
    let registry = Arc::new(Registry::new());
    // One permit per open socket, held until the socket is dropped: the registry forgets an
    // evicted connection at once, but its descriptor is freed only when its task runs.
    let slots = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let Some(slot) = take_slot(&slots, &registry).await else {
                    refuse(stream, &refusals);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(conn::run(
                    stream,
                    registry.insert(),
                    app.clone(),
                    Arc::clone(&registry),
                    timeouts,
                    slot,
                ));
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept: free a
                // descriptor if one is idle, and do not spin.
                tracing::warn!(cause = %e, open = registry.len(), "accept failed");
                registry.evict_idle();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    drop(listener);
    let open = registry.len();
    tracing::info!(
        open,
        grace_secs = options.shutdown_grace_secs.as_secs_f64(),
        "draining connections"
    );
    registry.drain_all();
    if tokio::time::timeout(options.shutdown_grace_secs, registry.wait_empty())
        .await
        .is_err()
    {
        tracing::warn!(
            open = registry.len(),
            "shutdown grace over: closing the remaining connections"
        );
    }
    Ok(())
}

/// Refused connections whose 503 may linger for a moment; past this, a refusal is a plain close,
/// so a burst of newcomers cannot take the descriptors kept for the database.
const REFUSALS_IN_FLIGHT: usize = 32;

/// A place under the connection cap for a newcomer: a free one, or the one of the connection idle
/// the longest, closed for it. `None` when every connection is busy.
async fn take_slot(slots: &Arc<Semaphore>, registry: &Registry) -> Option<OwnedSemaphorePermit> {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return Some(slot);
    }
    if !registry.evict_idle() {
        return None;
    }
    // The evicted connection's task closes its socket as soon as it runs.
    tokio::time::timeout(EVICTION_WAIT, Arc::clone(slots).acquire_owned())
        .await
        .ok()?
        .ok()
}

/// How long a newcomer waits for an evicted connection to close before it is refused.
const EVICTION_WAIT: Duration = Duration::from_millis(200);

/// Every connection is busy: answer 503 `overloaded` and close.
fn refuse(mut stream: TcpStream, refusals: &Arc<Semaphore>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tracing::debug!("connection cap reached and every connection busy: 503");
    let answer = raw_error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many connections in flight; retry later",
    );
    // Non-blocking and best effort: a fresh socket's send buffer takes a few hundred bytes.
    if stream.try_write(&answer).is_err() {
        return;
    }
    // Closing with the request unread would reset the connection and could discard the answer:
    // half-close, and read what the client sent for a moment (bounded in time and in number).
    let Ok(lingering) = Arc::clone(refusals).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _lingering = lingering;
        let _ = stream.shutdown().await;
        let mut sink = [0; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_as_positive_decimals() {
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs("10"), Ok(Duration::from_secs(10)));
        for bad in ["0", "-1", "x", "NaN", "1e9", ""] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        let options = ConnectionOptions {
            max_connections: usize::MAX,
            header_timeout_secs: Duration::from_secs(1),
            idle_timeout_secs: Duration::from_secs(1),
            write_timeout_secs: Duration::from_secs(1),
            shutdown_grace_secs: Duration::from_secs(1),
        };
        if let Some(limit) = fd_limit() {
            let cap = options.connection_cap();
            assert!(cap < limit && cap + 64 <= limit.max(65), "{cap} of {limit}");
        }
    }
}
