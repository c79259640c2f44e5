//! One exchange request (`browser::fetch`): JSON body, bearer token, timeout, the caller's
//! `AbortSignal`, a reply read as a stream and abandoned past `sync.maxReplyBytes`, retries with
//! jittered backoff on network errors and 5xx (never sooner than `Retry-After`), and on 401 one
//! more attempt with a freshly asked token.

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use super::config::{backoff_ms, SyncConfig, MAX_BACKOFF_MS};
use super::error::SyncError;
use crate::browser::fetch::{call_token_provider, fetch_bytes, fetch_reply, fetch_text};
use crate::browser::interop::{get as field, parse_json};
use crate::browser::timer::sleep;

/// A successful (2xx) answer's body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body text (a JS string) of a text request, or of any non-2xx answer (read by
    /// `JSON.parse`); undefined for a 2xx sync reply, which comes as `bytes`.
    pub text: JsValue,
    /// The answer's `Retry-After` in milliseconds, if any.
    pub retry_after_ms: Option<u64>,
    /// A 2xx content answer's or sync reply's body (`Uint8Array`: a reply's UTF-8, which
    /// `core::wire` reads after one copy into wasm); undefined for text requests.
    pub bytes: JsValue,
}

/// `browser::fetch`'s text or bytes request (same arguments, same answer shapes).
type Fetcher =
    fn(&str, &str, &JsValue, Option<String>, f64, f64, Option<AbortSignal>) -> js_sys::Promise;

/// The server end of a store: URL, token provider, timeout and retry policy.
#[derive(Debug, Clone)]
pub struct Transport {
    config: SyncConfig,
    token: Option<Function>,
}

impl Transport {
    /// A transport for `config`; `token` is the `() => string | Promise<string>` provider.
    pub fn new(config: SyncConfig, token: Option<Function>) -> Self {
        Transport { config, token }
    }

    /// The configuration.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    async fn token(&self) -> Result<Option<String>, SyncError> {
        let Some(provider) = &self.token else {
            return Ok(None);
        };
        let got = JsFuture::from(call_token_provider(provider))
            .await
            .map_err(|e| SyncError::Token(format!("{e:?}")))?;
        match field(&got, "token").as_string() {
            Some(t) => Ok(Some(t)),
            None => Err(SyncError::Token(
                field(&got, "failed").as_string().unwrap_or_default(),
            )),
        }
    }

    /// One attempt: the raw answer, 2xx or not.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        fetcher: Fetcher,
        limit: usize,
        method: &str,
        url: &str,
        body: &JsValue,
        token: Option<String>,
        signal: Option<&AbortSignal>,
    ) -> Result<Answer, SyncError> {
        let got = JsFuture::from(fetcher(
            method,
            url,
            body,
            token,
            self.config.timeout_ms as f64,
            limit as f64,
            signal.cloned(),
        ))
        .await
        .map_err(|e| SyncError::Network {
            url: url.into(),
            message: format!("{e:?}"),
        })?;
        if let Some(kind) = field(&got, "failed").as_string() {
            let message = field(&got, "message").as_string().unwrap_or_default();
            return Err(match kind.as_str() {
                "aborted" => SyncError::Aborted,
                "timeout" => SyncError::Timeout {
                    url: url.into(),
                    ms: self.config.timeout_ms,
                },
                _ => SyncError::Network {
                    url: url.into(),
                    message,
                },
            });
        }
        let status = field(&got, "status").as_f64().unwrap_or(0.0) as u16;
        if let Some(size) = field(&got, "tooLarge").as_f64() {
            return Err(crate::core::Error::BodyTooLarge {
                size: size as usize,
                max: limit,
            }
            .into());
        }
        Ok(Answer {
            status,
            text: field(&got, "text"),
            bytes: field(&got, "bytes"),
            retry_after_ms: field(&got, "retryAfterMs")
                .as_f64()
                .filter(|ms| ms.is_finite() && *ms >= 0.0)
                .map(|ms| ms as u64),
        })
    }

    /// POSTs `body` to the exchange endpoint: retries transient failures with backoff, asks
    /// the token provider once more after a 401, and turns any other non-2xx into `Http`.
    pub async fn exchange(
        &self,
        body: &JsValue,
        signal: Option<&AbortSignal>,
    ) -> Result<Answer, SyncError> {
        let limit = self.config.max_reply_bytes;
        let url = self.config.exchange_url();
        self.send(fetch_reply, limit, "POST", &url, body, signal)
            .await
    }

    /// POSTs `body` to the full-resync endpoint, as [`Transport::exchange`] does.
    pub async fn resync(
        &self,
        body: &JsValue,
        signal: Option<&AbortSignal>,
    ) -> Result<Answer, SyncError> {
        let limit = self.config.max_reply_bytes;
        let url = self.config.resync_url();
        self.send(fetch_reply, limit, "POST", &url, body, signal)
            .await
    }

    /// A JSON POST to one of the server's endpoints whose answer stays a JS string (the salt),
    /// capped at `sync.maxReplyBytes`.
    async fn post_json(
        &self,
        url: &str,
        body: &JsValue,
        signal: Option<&AbortSignal>,
    ) -> Result<Answer, SyncError> {
        let limit = self.config.max_reply_bytes;
        self.send(fetch_text, limit, "POST", url, body, signal)
            .await
    }

    /// PUTs `bytes` to a content URL (`SyncConfig::content_url`), with the same retries.
    pub async fn put_content(
        &self,
        url: &str,
        bytes: &js_sys::Uint8Array,
        signal: Option<&AbortSignal>,
    ) -> Result<(), SyncError> {
        let limit = self.config.max_reply_bytes;
        self.send(fetch_bytes, limit, "PUT", url, bytes, signal)
            .await
            .map(|_| ())
    }

    /// GETs a content URL's bytes (at most `limits.max_content_bytes`), with the same retries.
    pub async fn get_content(
        &self,
        url: &str,
        signal: Option<&AbortSignal>,
    ) -> Result<js_sys::Uint8Array, SyncError> {
        let limit = self.config.limits.max_content_bytes;
        let answer = self
            .send(fetch_bytes, limit, "GET", url, &JsValue::UNDEFINED, signal)
            .await?;
        answer.bytes.dyn_into::<js_sys::Uint8Array>().map_err(|_| {
            crate::core::Error::InvalidReply("content answer without a body".into()).into()
        })
    }

    /// One request with retries of transient failures (backoff, never sooner than
    /// `Retry-After`) and one fresh token after a 401; any other non-2xx is `Http`.
    async fn send(
        &self,
        fetcher: Fetcher,
        limit: usize,
        method: &str,
        url: &str,
        body: &JsValue,
        signal: Option<&AbortSignal>,
    ) -> Result<Answer, SyncError> {
        let mut token = self.token().await?;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            if signal.is_some_and(AbortSignal::aborted) {
                return Err(SyncError::Aborted);
            }
            let result = self
                .attempt(fetcher, limit, method, url, body, token.clone(), signal)
                .await
                .and_then(http_error);
            match result {
                Err(SyncError::Http { status: 401, .. }) if !refreshed && self.token.is_some() => {
                    refreshed = true;
                    token = self.token().await?;
                }
                Err(e) if e.is_transient() && attempt < self.config.retries => {
                    // A server that asks for more than the longest in-round pause is left
                    // alone: the round fails with its retryAfterMs (automatic sync waits).
                    let floor = e.retry_after_ms().unwrap_or(0);
                    if floor > MAX_BACKOFF_MS {
                        return Err(e);
                    }
                    let jitter = getrandom::u32().unwrap_or(0);
                    sleep(backoff_ms(attempt, jitter).max(floor)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// POSTs to `/sync/salt` (with the token, retried like an exchange): the user's salt for
    /// passphrase keys, created by the server on first use, as bytes.
    pub async fn salt(&self) -> Result<Vec<u8>, SyncError> {
        let url = self.config.salt_url();
        let answer = self.post_json(&url, &JsValue::from_str("{}"), None).await?;
        let hex = parse_json(&answer.text)
            .ok()
            .and_then(|body| field(&body, "salt").as_string())
            .unwrap_or_default();
        crate::core::sealed::parse_salt(&hex).ok_or_else(|| {
            crate::core::Error::InvalidReply(format!("{url}: no salt of 32 hex-encoded bytes"))
                .into()
        })
    }

    /// GET `/health` once (no retries): the answer and its latency are the verifier's.
    pub async fn health(&self) -> Result<Answer, SyncError> {
        self.attempt(
            fetch_text,
            self.config.max_reply_bytes,
            "GET",
            &self.config.health_url(),
            &JsValue::UNDEFINED,
            None,
            None,
        )
        .await
        .and_then(http_error)
    }
}

/// A non-2xx answer as `SyncError::Http` with the server's `{ code, message }`.
fn http_error(answer: Answer) -> Result<Answer, SyncError> {
    if (200..300).contains(&answer.status) {
        return Ok(answer);
    }
    let body = parse_json(&answer.text).ok();
    let text = |name: &str| body.as_ref().and_then(|b| field(b, name).as_string());
    Err(SyncError::Http {
        status: answer.status,
        code: text("code").unwrap_or_else(|| "http_error".into()),
        message: text("message").unwrap_or_else(|| format!("HTTP {}", answer.status)),
        retry_after_ms: answer.retry_after_ms,
    })
}
