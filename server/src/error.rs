//! Every non-2xx answer is JSON `{ code, message }` ([`ErrorBody`]), including the ones axum and
//! tower-http produce on their own (404, 405, ...). Bad input is always a 4xx; a 5xx means the
//! server failed, and its cause goes to the log, not to the client.

use std::fmt;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clientdata::core::protocol::ErrorBody;
use clientdata::core::replica::ReplicaError;
use clientdata::core::Error as CoreError;

use crate::auth::AuthError;

/// An HTTP error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for a `Retry-After` header (503 `overloaded`).
    retry_after: Option<u32>,
}

impl ApiError {
    /// An answer with an explicit status and code.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
            },
            retry_after: None,
        }
    }

    /// 503 `overloaded` with `Retry-After`: the server is at a capacity limit; nothing was done.
    pub fn overloaded(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(RETRY_AFTER_SECS),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
        }
    }

    /// 408 `request_timeout`: the request did not arrive in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message)
    }

    /// A core error: 413 for an oversized body or a push past a user's cap, 403 for a node id
    /// taken, 400 for everything else the client sent wrong.
    pub fn core(err: &CoreError) -> Self {
        let status = match err {
            CoreError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            CoreError::NodeIdTaken(_) => StatusCode::FORBIDDEN,
            CoreError::UserQuotaExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            CoreError::ContentMissing(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            body: ErrorBody::from(err),
            retry_after: None,
        }
    }

    /// A body that does not parse: 400, keeping the typed code of a broken field rule.
    pub fn parse(err: &serde_json::Error) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody::from_parse_error(&err.to_string()),
            retry_after: None,
        }
    }

    /// A server-side failure: logged in full, answered as a bare 500 `internal`.
    pub fn internal(what: &str, cause: &dyn fmt::Display) -> Self {
        tracing::error!(%cause, "{what}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.body.code
    }
}

impl<E: std::error::Error> From<ReplicaError<E>> for ApiError {
    fn from(err: ReplicaError<E>) -> Self {
        match err {
            ReplicaError::Protocol(e) => ApiError::core(&e),
            ReplicaError::Store(e) => ApiError::internal("store failed", &e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Middleware: gives a `{ code, message }` JSON body to any error answer that has none (axum's
/// 404 and 405, tower-http's file service errors), keeping status and other headers.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = status_code(status);
    let message = status.canonical_reason().unwrap_or("error").to_owned();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&ErrorBody {
        code: code.into(),
        message,
    })
    .unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

/// Every (status, code) an answer of this server can carry. docs/openapi.json lists the same
/// (per path, and `x-answers-outside-paths`) and docs/ERRORS.md explains each; tests check both.
pub const ANSWERS: &[(u16, &str)] = &[
    (400, "bad_request"),
    (400, "body_read_failed"),
    (400, "malformed_request"),
    (400, "invalid_plugin_id"),
    (400, "invalid_key"),
    (400, "invalid_node_id"),
    (400, "invalid_hlc"),
    (400, "value_too_large"),
    (400, "clock_drift"),
    (400, "unsupported_version"),
    (400, "invalid_request"),
    (400, "invalid_json"),
    (400, "content_hash_mismatch"),
    (404, "content_not_found"),
    (409, "content_missing"),
    (401, "unauthorized"),
    (403, "forbidden"),
    (403, "node_id_taken"),
    (404, "not_found"),
    (405, "method_not_allowed"),
    (408, "request_timeout"),
    (413, "body_too_large"),
    (413, "user_quota_exceeded"),
    (414, "uri_too_long"),
    (415, "unsupported_media_type"),
    (416, "range_not_satisfiable"),
    (431, "headers_too_large"),
    (500, "internal"),
    (503, "overloaded"),
    (503, "unavailable"),
    (503, "write_failed"),
];

/// Core codes only a client raises (about a server's reply or its own clock): the server never
/// answers them.
pub const CLIENT_ONLY_CORE_CODES: &[&str] = &[
    "invalid_reply",
    "own_node_echoed",
    "watermark_regression",
    "no_progress",
    "counter_overflow",
    "invalid_clock_reading",
];

/// Seconds a client is asked to wait after a 503 `overloaded`.
pub const RETRY_AFTER_SECS: u32 = 1;

/// The code of an error status answered without a code of its own (axum's 404 and 405, the file
/// service's errors, hyper's answers to requests it cannot parse). docs/ERRORS.md lists each.
pub fn status_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "overloaded",
        s if s.is_server_error() => "internal",
        _ => "http_error",
    }
}

/// A whole HTTP/1.1 error answer as bytes, `{ code, message }` body and `connection: close`, for
/// the connection layer where no router runs (a head hyper could not parse, a head that timed
/// out, a connection refused at the cap).
pub fn raw_error_response(status: StatusCode, message: &str) -> Vec<u8> {
    let body = serde_json::to_vec(&ErrorBody {
        code: status_code(status).into(),
        message: message.into(),
    })
    .unwrap_or_default();
    let retry = if status == StatusCode::SERVICE_UNAVAILABLE {
        format!("retry-after: {RETRY_AFTER_SECS}\r\n")
    } else {
        String::new()
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry}connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each core error; the match without a wildcard fails to compile when a kind is added.
    fn every_core_error() -> Vec<CoreError> {
        let all = vec![
            CoreError::InvalidPluginId {
                id: String::new(),
                reason: "",
            },
            CoreError::InvalidKey {
                key: String::new(),
                reason: "",
            },
            CoreError::InvalidNodeId(String::new()),
            CoreError::InvalidHlc {
                text: String::new(),
                reason: "",
            },
            CoreError::ValueTooLarge { size: 0, max: 0 },
            CoreError::ClockDrift {
                remote_ms: 0,
                ahead_ms: 0,
                max_drift_ms: 0,
            },
            CoreError::CounterOverflow { wall_ms: 0 },
            CoreError::InvalidClockReading(0),
            CoreError::UnsupportedVersion {
                got: 0,
                supported: 1,
            },
            CoreError::InvalidRequest(String::new()),
            CoreError::InvalidReply(String::new()),
            CoreError::BodyTooLarge { size: 0, max: 0 },
            CoreError::OwnNodeEchoed(String::new()),
            CoreError::NodeIdTaken(String::new()),
            CoreError::WatermarkRegression(String::new()),
            CoreError::NoProgress,
            CoreError::InvalidJson {
                record: String::new(),
                reason: String::new(),
            },
            CoreError::UserQuotaExceeded {
                cap: "plugins",
                max: 0,
            },
            CoreError::ContentHashMismatch {
                expected: String::new(),
                got: String::new(),
            },
            CoreError::ContentMissing(String::new()),
        ];
        for e in &all {
            match e {
                CoreError::InvalidPluginId { .. }
                | CoreError::InvalidKey { .. }
                | CoreError::InvalidNodeId(_)
                | CoreError::InvalidHlc { .. }
                | CoreError::ValueTooLarge { .. }
                | CoreError::ClockDrift { .. }
                | CoreError::CounterOverflow { .. }
                | CoreError::InvalidClockReading(_)
                | CoreError::UnsupportedVersion { .. }
                | CoreError::InvalidRequest(_)
                | CoreError::InvalidReply(_)
                | CoreError::BodyTooLarge { .. }
                | CoreError::OwnNodeEchoed(_)
                | CoreError::NodeIdTaken(_)
                | CoreError::WatermarkRegression(_)
                | CoreError::NoProgress
                | CoreError::InvalidJson { .. }
                | CoreError::UserQuotaExceeded { .. }
                | CoreError::ContentHashMismatch { .. }
                | CoreError::ContentMissing(_) => {}
            }
        }
        all
    }

    #[test]
    fn answers_lists_every_status_code_and_every_core_code_the_server_answers() {
        for status in 400..=599u16 {
            let status = StatusCode::from_u16(status).unwrap();
            let code = status_code(status);
            if code == "http_error" || code == "internal" {
                continue; // statuses the server never produces itself
            }
            assert!(
                ANSWERS.contains(&(status.as_u16(), code)),
                "{status} {code} missing from ANSWERS"
            );
        }
        for e in every_core_error() {
            let answer = ApiError::core(&e);
            let pair = (answer.status().as_u16(), answer.code());
            assert_eq!(
                ANSWERS.contains(&pair),
                !CLIENT_ONLY_CORE_CODES.contains(&pair.1),
                "{pair:?}"
            );
        }
        let mut codes: Vec<&str> = ANSWERS.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ANSWERS.len(), "a code answers one status only");
    }
}
