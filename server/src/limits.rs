//! What one request may take: its body within a deadline, and its share of a byte budget that all
//! requests in flight share, so that many large bodies at once cannot exhaust memory. Over the
//! budget a request is refused at once with 503 `overloaded` and `Retry-After`, before its body
//! is read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_LENGTH, EXPECT};
use axum::http::{HeaderMap, StatusCode};
use clientdata::core::Limits;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};

use crate::error::ApiError;

/// Request options (command line and environment).
#[derive(Debug, Clone, clap::Args)]
pub struct RequestOptions {
    /// Seconds a request body may take to arrive, in total; later is 408 `request_timeout`.
    #[arg(long, env = "CLIENTDATA_BODY_TIMEOUT_SECS", default_value = "30", value_parser = crate::serve::parse_secs, value_name = "SECS")]
    pub body_timeout_secs: Duration,

    /// Bytes of request bodies all requests in flight may hold together; a request that would
    /// exceed it is refused with 503 `overloaded` and `Retry-After`. Peak memory under load stays
    /// within about 4 times this (bodies parsed) plus the connections' buffers.
    #[arg(long, env = "CLIENTDATA_MAX_INFLIGHT_BYTES", default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_inflight_bytes: usize,
}

/// Reads request bodies within the deadline and the shared budget.
#[derive(Debug, Clone)]
pub struct Intake {
    budget: Arc<Budget>,
    body_timeout: Duration,
}

#[derive(Debug)]
struct Budget {
    total: usize,
    used: AtomicUsize,
}

/// Bytes held from the budget; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Reservation {
    /// Grows the reservation to `bytes`; false (and unchanged) if the budget has no room.
    fn grow_to(&mut self, bytes: usize) -> bool {
        let more = bytes.saturating_sub(self.bytes);
        if more == 0 {
            return true;
        }
        let reserved = self
            .budget
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(more).filter(|&u| u <= self.budget.total)
            })
            .is_ok();
        if reserved {
            self.bytes = bytes;
        }
        reserved
    }
}

impl Reservation {
    /// A body of `bytes` that keeps this reservation until hyper drops it (sent, or abandoned
    /// at the write timeout), so an answer waiting for a slow reader stays within the budget.
    pub fn hold_until_sent(self, bytes: Vec<u8>) -> Body {
        Body::new(Held {
            bytes: Some(Bytes::from(bytes)),
            _reservation: self,
        })
    }
}

/// A one-chunk body holding a reservation.
struct Held {
    bytes: Option<Bytes>,
    _reservation: Reservation,
}

impl hyper::body::Body for Held {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.get_mut().bytes.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl Intake {
    /// An intake with these options.
    pub fn new(options: &RequestOptions) -> Self {
        Intake {
            budget: Arc::new(Budget {
                total: options.max_inflight_bytes,
                used: AtomicUsize::new(0),
            }),
            body_timeout: options.body_timeout_secs,
        }
    }

    /// Bytes of the budget in use now.
    pub fn in_flight(&self) -> usize {
        self.budget.used.load(Ordering::SeqCst)
    }

    fn reserve(&self, bytes: usize) -> Result<Reservation, ApiError> {
        let mut reservation = Reservation {
            budget: Arc::clone(&self.budget),
            bytes: 0,
        };
        if reservation.grow_to(bytes) {
            Ok(reservation)
        } else {
            Err(self.overloaded())
        }
    }

    fn overloaded(&self) -> ApiError {
        ApiError::overloaded(format!(
            "request bodies in flight would exceed the server's budget of {} bytes; retry later",
            self.budget.total
        ))
    }

    /// The budget is full: reads and discards the rest of the body (within the deadline, holding
    /// no more than one chunk), so the client reads a 503 rather than a reset connection, then
    /// answers `overloaded`. A client that waits for `100 Continue` is answered at once instead:
    /// reading would invite the body it has not sent.
    async fn refuse(
        &self,
        headers: &HeaderMap,
        mut body: Body,
        deadline: tokio::time::Instant,
    ) -> ApiError {
        let waits_for_continue = headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !waits_for_continue {
            let _ = tokio::time::timeout_at(deadline, async {
                while let Some(Ok(_)) = body.frame().await {}
            })
            .await;
        }
        self.overloaded()
    }

    /// Reads a body of at most `limits.max_body_bytes` within the body timeout, holding its bytes
    /// from the budget: the whole declared `Content-Length` before reading, or chunk by chunk.
    /// Keep the reservation until the request's memory is released.
    pub async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
        limits: &Limits,
    ) -> Result<(Bytes, Reservation), ApiError> {
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(size) = declared {
            limits.check_body(size).map_err(|e| ApiError::core(&e))?;
        }
        let deadline = tokio::time::Instant::now() + self.body_timeout;
        let mut body = body;
        let Ok(mut reservation) = self.reserve(declared.unwrap_or(0)) else {
            return Err(self.refuse(headers, body, deadline).await);
        };
        let mut data = Vec::with_capacity(declared.unwrap_or(0));
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => {
                    return Err(ApiError::timeout(format!(
                        "the request body did not arrive within {} s ({} bytes received)",
                        self.body_timeout.as_secs_f64(),
                        data.len()
                    )))
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "body_read_failed",
                        format!("could not read the request body: {e}"),
                    ))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            if data.len() + chunk.len() > limits.max_body_bytes {
                // The size is unknown (the rest was never read), so no core error that states it.
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("body exceeds the limit of {} bytes", limits.max_body_bytes),
                ));
            }
            data.reserve(chunk.len());
            if !reservation.grow_to(data.capacity()) {
                drop((data, reservation));
                return Err(self.refuse(headers, body, deadline).await);
            }
            data.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(data), reservation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intake(total: usize) -> Intake {
        Intake::new(&RequestOptions {
            body_timeout_secs: Duration::from_secs(1),
            max_inflight_bytes: total,
        })
    }

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let intake = intake(100);
        let a = intake.reserve(60).unwrap();
        let err = intake.reserve(50).unwrap_err();
        assert_eq!((err.status().as_u16(), err.code()), (503, "overloaded"));
        let mut b = intake.reserve(40).unwrap();
        assert!(!b.grow_to(41), "full");
        assert_eq!(intake.in_flight(), 100);
        drop(a);
        assert!(b.grow_to(90));
        drop(b);
        assert_eq!(intake.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_body_is_read_within_its_limits() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let intake = intake(64);
        let mut headers = HeaderMap::new();
        let (bytes, held) = intake
            .read_body(&headers, Body::from("12345"), &limits)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"12345");
        assert!(intake.in_flight() >= 5);
        drop(held);
        let err = intake
            .read_body(&headers, Body::from("x".repeat(11)), &limits)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "body_too_large");
        headers.insert(CONTENT_LENGTH, 11.into());
        let err = intake
            .read_body(&headers, Body::empty(), &limits)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "body_too_large");
        headers.insert(CONTENT_LENGTH, 10.into());
        let _hold = intake.reserve(60).unwrap();
        let err = intake
            .read_body(&headers, Body::empty(), &limits)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "overloaded");
    }
}
