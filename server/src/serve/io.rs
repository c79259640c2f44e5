//! The socket as hyper sees it: read and write deadlines, and a JSON body for hyper's own answers.
//!
//! - While no request is in flight, the next request head must arrive in time: a connection that
//!   sends nothing is closed after the header timeout (new) or the idle timeout (keep-alive); one
//!   that started a head and stalls gets a 408 `request_timeout` and is closed. Bodies are the
//!   handler's business (its own deadline), so reads during a request pass through.
//! - A write that makes no progress for the write timeout fails, so a client that never reads
//!   cannot pin an answer (and its memory) forever.
//! - Hyper answers a head it cannot parse (400, 414, 431) itself, with an empty body and no hook.
//!   It does so only when no answer of the router is pending (its writer is idle), so anything
//!   written while no request is in flight is such an answer: it is replaced by the same status
//!   with a `{ code, message }` body.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::registry::{ConnState, Registry};
use crate::error::raw_error_response;

/// The deadlines of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// A request head, from its first byte (or from the connection's start) to its end.
    pub header: Duration,
    /// A keep-alive connection waiting for its next request.
    pub idle: Duration,
    /// One write that makes no progress.
    pub write: Duration,
}

/// A replacement answer being written in place of hyper's own.
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
}

/// A TCP stream with the deadlines above.
pub(crate) struct GuardedIo {
    inner: TcpStream,
    conn: Arc<ConnState>,
    registry: Arc<Registry>,
    timeouts: Timeouts,
    /// No request has completed on this connection yet.
    fresh: bool,
    /// When the connection last became idle.
    idle_start: Instant,
    /// When the first byte of the next head arrived.
    head_start: Option<Instant>,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    replacement: Option<Replacement>,
    /// The head deadline passed: the read side is at its end.
    timed_out: bool,
}

impl GuardedIo {
    pub(crate) fn new(
        inner: TcpStream,
        conn: Arc<ConnState>,
        registry: Arc<Registry>,
        timeouts: Timeouts,
    ) -> Self {
        let now = Instant::now();
        GuardedIo {
            inner,
            conn,
            registry,
            timeouts,
            fresh: true,
            idle_start: now,
            head_start: None,
            read_timer: Box::pin(tokio::time::sleep_until(now + timeouts.header)),
            write_timer: None,
            replacement: None,
            timed_out: false,
        }
    }

    fn head_deadline(&self) -> Instant {
        match self.head_start {
            Some(start) => start + self.timeouts.header,
            None if self.fresh => self.idle_start + self.timeouts.header,
            None => self.idle_start + self.timeouts.idle,
        }
    }

    /// Turns a pending write into a timeout once it has been pending for the write timeout.
    fn write_deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.write_timer = None;
            return poll;
        }
        let timeout = self.timeouts.write;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes what is left of a replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(r) = &mut self.replacement {
            if r.written == r.bytes.len() {
                break;
            }
            let poll = Pin::new(&mut self.inner).poll_write(cx, &r.bytes[r.written..]);
            let n = ready!(self.write_deadline(cx, poll))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if let Some(r) = &mut self.replacement {
                r.written += n;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The status of an answer hyper wrote itself (`HTTP/1.1 431 ...`), if it is one.
fn own_answer_status(buf: &[u8]) -> Option<StatusCode> {
    let rest = buf.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    StatusCode::from_bytes(code).ok()
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(Ok(()));
        }
        if this.conn.is_busy() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut this.inner).poll_read(cx, buf) {
            if buf.filled().len() > before && this.head_start.is_none() {
                this.head_start = Some(Instant::now());
            }
            return Poll::Ready(result);
        }
        let deadline = this.head_deadline();
        if this.read_timer.deadline() != deadline {
            this.read_timer.as_mut().reset(deadline);
        }
        ready!(this.read_timer.as_mut().poll(cx));
        this.timed_out = true;
        if this.head_start.is_some() {
            // Best effort: the client is not reading much anyway, and the answer is small.
            let answer = raw_error_response(
                StatusCode::REQUEST_TIMEOUT,
                "the request head did not arrive within the header timeout",
            );
            let _ = this.inner.try_write(&answer);
        }
        tracing::debug!(
            partial = this.head_start.is_some(),
            "closing a connection that sent no request in time"
        );
        // End of stream: hyper closes the connection.
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_some() {
            // Hyper's own answer, already replaced: swallow the rest of it.
            return Poll::Ready(Ok(buf.len()));
        }
        if !this.conn.is_busy() {
            if let Some(status) = own_answer_status(buf) {
                tracing::debug!(%status, "request hyper could not parse");
                let message = match status {
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                        "the request head is too large or has too many headers"
                    }
                    StatusCode::URI_TOO_LONG => "the request target is too long",
                    _ => "malformed HTTP request (request line, header or Content-Length)",
                };
                this.replacement = Some(Replacement {
                    bytes: raw_error_response(status, message),
                    written: 0,
                });
                return Poll::Ready(Ok(buf.len()));
            }
        }
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.write_deadline(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        ready!(this.write_deadline(cx, poll))?;
        if this.conn.flushed(this.registry.now_ms()) {
            this.fresh = false;
            this.idle_start = Instant::now();
            this.head_start = None;
            // Hyper may have polled the read side while the request was busy (no deadline then)
            // and wait on it now: poll again, so the idle deadline gets armed.
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_replacement(cx))?;
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.write_deadline(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_answers_are_recognised_by_their_status_line() {
        assert_eq!(
            own_answer_status(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            own_answer_status(b"HTTP/1.0 400 Bad Request\r\n"),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(own_answer_status(b"{\"code\":1}"), None);
        assert_eq!(own_answer_status(b"HTTP/1.1 4"), None);
    }
}
