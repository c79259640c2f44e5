//! One connection: hyper's HTTP/1.1 over a [`GuardedIo`], the router as its service, and the
//! accept loop's commands (close when evicted, drain at shutdown).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tower::ServiceExt;

use super::io::{GuardedIo, Timeouts};
use super::registry::{Command, ConnState, Registry};

/// Largest request head (request line and headers); larger is 431 `headers_too_large`.
const MAX_HEAD_BYTES: usize = 32 << 10;
/// Most headers in a request; more is 431 too.
const MAX_HEADERS: usize = 64;
/// Hyper's read buffer per connection, which bounds its memory per idle connection.
const MAX_BUF_BYTES: usize = 64 << 10;

/// Serves one connection until it closes, is evicted, or the drain at shutdown ends it. The
/// connection is already registered as `id`; `_slot` is its share of the connection cap, given back
/// when the socket is dropped here (not when the registry forgets it).
pub(crate) async fn run(
    stream: TcpStream,
    (id, state): (u64, Arc<ConnState>),
    app: Router,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    _slot: OwnedSemaphorePermit,
) {
    let io = GuardedIo::new(stream, Arc::clone(&state), Arc::clone(&registry), timeouts);
    let service_state = Arc::clone(&state);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        service_state.begin_request();
        let done = BodyDone(Arc::clone(&service_state));
        let answer = app.clone().oneshot(request);
        async move {
            let response = answer.await.unwrap_or_else(|never| match never {});
            Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, _done: done })))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.max_buf_size(MAX_BUF_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        // One flat buffer per write: the I/O wrapper sees hyper's own answers whole.
        .writev(false);
    let connection = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(cause = %e, "connection ended with an error");
                }
                break;
            }
            () = state.wake.notified() => match state.command() {
                Command::Close => break,
                Command::Drain => connection.as_mut().graceful_shutdown(),
                Command::None => {}
            },
        }
    }
    registry.remove(id);
    // The connection (and its socket), a local, drops here before the `_slot` parameter does.
}

/// Marks the answer's body done when hyper drops it.
struct BodyDone(Arc<ConnState>);

impl Drop for BodyDone {
    fn drop(&mut self) {
        self.0.body_done();
    }
}

/// An answer body that reports when hyper is done with it.
struct Tracked {
    body: Body,
    _done: BodyDone,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.body)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.body)
    }
}
