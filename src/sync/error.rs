//! Why a sync round failed. Whatever the kind, the round changed nothing: no record applied, no
//! watermark advanced, the clock where it was; the next round retries.

use crate::core;
use crate::error::{Coded, Field};
use crate::store::error::StoreError;

/// A failed round (or sync-service call).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    /// The store was opened without a `server`.
    #[error("sync is not configured: open the store with a `server` option")]
    NotConfigured,
    /// The server answered with a non-2xx status.
    #[error("server answered HTTP {status} ({code}): {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The server's `{ code }` (`"http_error"` if the body had none).
        code: String,
        /// The server's `{ message }`, or the status text.
        message: String,
        /// The answer's `Retry-After`, in milliseconds (seconds or an HTTP date), if any.
        retry_after_ms: Option<u64>,
    },
    /// No HTTP answer at all (connection refused, DNS, CORS, offline).
    #[error("network error talking to {url}: {message}")]
    Network {
        /// The endpoint.
        url: String,
        /// What the browser said.
        message: String,
    },
    /// No answer within `timeoutMs`.
    #[error("no answer from {url} within {ms} ms")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The timeout that ran out.
        ms: u64,
    },
    /// The caller's `AbortSignal` fired.
    #[error("the sync round was aborted")]
    Aborted,
    /// The `token` provider threw, rejected or returned something that is not a string.
    #[error("the token provider failed: {0}")]
    Token(String),
    /// The reply (or our own request) broke a protocol rule; nothing was applied.
    #[error(transparent)]
    Protocol(#[from] core::Error),
    /// The store failed to read or commit.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// End-to-end encryption refused a record of the reply or could not seal the request;
    /// nothing was applied.
    #[error(transparent)]
    Sealed(#[from] core::SealError),
}

impl SyncError {
    /// The server's `Retry-After`, if the failure carried one.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            SyncError::Http { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }

    /// Whether a new attempt of the same request may succeed (network trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Network { .. } | SyncError::Timeout { .. } => true,
            SyncError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

impl Coded for SyncError {
    fn name(&self) -> &'static str {
        match self {
            SyncError::NotConfigured => "SyncNotConfiguredError",
            SyncError::Http { .. } => "SyncHttpError",
            SyncError::Network { .. } => "SyncNetworkError",
            SyncError::Timeout { .. } => "SyncTimeoutError",
            SyncError::Aborted => "AbortError",
            SyncError::Token(_) => "SyncTokenError",
            SyncError::Protocol(e) => e.name(),
            SyncError::Store(e) => e.name(),
            SyncError::Sealed(e) => e.name(),
        }
    }

    /// For `Http` the JS error's `code` is the server's code; this is the fallback.
    fn code(&self) -> &'static str {
        match self {
            SyncError::NotConfigured => "sync_not_configured",
            SyncError::Http { .. } => "http_error",
            SyncError::Network { .. } => "network",
            SyncError::Timeout { .. } => "timeout",
            SyncError::Aborted => "aborted",
            SyncError::Token(_) => "token_failed",
            SyncError::Protocol(e) => e.code(),
            SyncError::Store(e) => e.code(),
            SyncError::Sealed(e) => e.code(),
        }
    }

    /// `SyncHttpError` carries the server's `code`, the HTTP `status` and, when the answer had
    /// one, `retryAfterMs`.
    fn fields(&self, put: &mut dyn FnMut(&'static str, Field<'_>)) {
        if let SyncError::Http {
            status,
            code,
            retry_after_ms,
            ..
        } = self
        {
            put("code", Field::Text(code));
            put("status", Field::Number(f64::from(*status)));
            if let Some(ms) = retry_after_ms {
                put("retryAfterMs", Field::Number(*ms as f64));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_network_trouble_and_server_failures_are_retried() {
        let http = |status| SyncError::Http {
            status,
            code: "x".into(),
            message: String::new(),
            retry_after_ms: None,
        };
        assert!(http(500).is_transient() && http(503).is_transient() && http(429).is_transient());
        assert!(
            !http(400).is_transient() && !http(401).is_transient() && !http(413).is_transient()
        );
        let net = SyncError::Network {
            url: "u".into(),
            message: "refused".into(),
        };
        assert!(net.is_transient());
        assert!(SyncError::Timeout {
            url: "u".into(),
            ms: 1
        }
        .is_transient());
        assert!(!SyncError::Aborted.is_transient());
        assert!(!SyncError::Protocol(core::Error::NoProgress).is_transient());
    }

    #[test]
    fn every_kind_has_a_name_and_code_and_wrapped_errors_keep_theirs() {
        let drift = core::Error::ClockDrift {
            remote_ms: 2,
            ahead_ms: 1,
            max_drift_ms: 0,
        };
        let e = SyncError::from(drift);
        assert_eq!((e.name(), e.code()), ("ClockDriftError", "clock_drift"));
        assert_eq!(SyncError::Aborted.name(), "AbortError");
        assert_eq!(SyncError::NotConfigured.code(), "sync_not_configured");
        let store = SyncError::from(StoreError::StoreClosed);
        assert_eq!(store.code(), "store_closed");
    }
}
