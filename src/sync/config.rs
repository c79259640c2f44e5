//! Sync options as `ClientData.open` takes them, checked once; endpoint URLs; retry backoff.
//! Pure, tested natively.

use crate::core::content::{Digest, DEFAULT_LAZY_THRESHOLD};
use crate::core::protocol::Limits;
use crate::core::PluginId;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default number of retries after a transient failure (so at most 3 attempts).
pub const DEFAULT_RETRIES: u32 = 2;
/// Default records per page (both directions).
pub const DEFAULT_PAGE_LIMIT: u32 = 1000;
/// Largest `retries`.
pub const MAX_RETRIES: u32 = 10;
/// First retry delay; doubles per attempt up to [`MAX_BACKOFF_MS`].
pub const BASE_BACKOFF_MS: u64 = 250;
/// Longest retry delay.
pub const MAX_BACKOFF_MS: u64 = 8_000;
/// Smallest `sync.maxReplyBytes`.
pub const MIN_REPLY_BYTES: usize = 1 << 10;
/// Largest `sync.maxReplyBytes`: 64 MiB (the reply is held in memory, twice while parsed).
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// Automatic sync in the leader tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoSync {
    /// Time between rounds when nothing else triggers one.
    pub interval_ms: u64,
    /// Delay after a local write before the round that ships it (writes in between join it).
    pub debounce_ms: u64,
}

impl Default for AutoSync {
    fn default() -> Self {
        AutoSync {
            interval_ms: 30_000,
            debounce_ms: 500,
        }
    }
}

/// Everything a `Syncer` needs besides the store and the token provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Base URL of the server, without a trailing `/`.
    pub server: String,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Retries after network errors and 5xx.
    pub retries: u32,
    /// Records per page.
    pub page_limit: u32,
    /// Automatic sync, if enabled.
    pub auto: Option<AutoSync>,
    /// Limits enforced on replies.
    pub limits: Limits,
    /// The server-side dataset rounds read and write; `None`: the database's name.
    pub dataset: Option<String>,
    /// The app's id for this device (`sync.device`): rounds carry it with the store epoch, so
    /// the server can tell a store wiped with everything local (`store::epoch`).
    pub device: Option<String>,
    /// Largest reply body read; a longer one is abandoned (`BodyTooLargeError`).
    pub max_reply_bytes: usize,
    /// Values larger than this (encoded bytes) are pushed by reference, their content through
    /// the content endpoint (`sync.lazyThreshold`).
    pub lazy_threshold: usize,
    /// Plugins whose referenced values a pull fetches in the same round (`sync.eagerHydration`).
    pub eager: Eager,
}

/// Which plugins hydrate eagerly: their pulled references are fetched within the round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Eager {
    /// None: every large value stays metadata until asked for (the default).
    #[default]
    None,
    /// Every plugin.
    All,
    /// These plugins.
    Plugins(Vec<PluginId>),
}

impl Eager {
    /// Whether `plugin` hydrates eagerly.
    pub fn includes(&self, plugin: &PluginId) -> bool {
        match self {
            Eager::None => false,
            Eager::All => true,
            Eager::Plugins(list) => list.contains(plugin),
        }
    }
}

impl SyncConfig {
    /// Defaults for `server`, which must be an absolute `http:` or `https:` URL.
    pub fn new(server: &str) -> Result<Self, String> {
        Ok(SyncConfig {
            server: check_server(server)?,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retries: DEFAULT_RETRIES,
            page_limit: DEFAULT_PAGE_LIMIT,
            auto: None,
            limits: Limits::default(),
            dataset: None,
            device: None,
            max_reply_bytes: Limits::default().max_body_bytes,
            lazy_threshold: DEFAULT_LAZY_THRESHOLD,
            eager: Eager::None,
        })
    }

    /// `PUT`/`GET` endpoint of one content of `dataset`.
    pub fn content_url(&self, sha256: &Digest, dataset: &str) -> String {
        format!(
            "{}/sync/content/{}?dataset={}",
            self.server,
            sha256.to_hex(),
            percent_encode(dataset)
        )
    }

    /// `POST` endpoint of exchange rounds.
    pub fn exchange_url(&self) -> String {
        format!("{}/sync/exchange", self.server)
    }

    /// `POST` endpoint of the user's salt for passphrase keys.
    pub fn salt_url(&self) -> String {
        format!("{}/sync/salt", self.server)
    }

    /// `POST` endpoint of the full-resync walk (tombstone collection, protocol v2).
    pub fn resync_url(&self) -> String {
        format!("{}/sync/resync", self.server)
    }

    /// `GET` endpoint of the server's health.
    pub fn health_url(&self) -> String {
        format!("{}/health", self.server)
    }

    /// Checks a page limit option (1 ..= the protocol's largest page).
    pub fn check_page_limit(&self, limit: u32) -> Result<u32, String> {
        if limit == 0 || limit > self.limits.max_page {
            return Err(format!(
                "limit must be from 1 to {}, not {limit}",
                self.limits.max_page
            ));
        }
        Ok(limit)
    }
}

fn check_server(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("server must be an http:// or https:// URL, not {url:?}"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("server {url:?} has no host or contains whitespace"));
    }
    if url.contains(['?', '#']) {
        return Err(format!("server {url:?} must not have a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a query value).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Delay before retry `attempt` (0-based): exponential, capped, with "equal jitter" from
/// `random` so many clients recovering together do not retry in lockstep.
pub fn backoff_ms(attempt: u32, random: u32) -> u64 {
    let full = BASE_BACKOFF_MS
        .saturating_mul(1u64 << attempt.min(16))
        .min(MAX_BACKOFF_MS);
    let half = full / 2;
    half + u64::from(random) % (half + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        let c = SyncConfig::new("http://127.0.0.1:8787/").unwrap();
        assert_eq!(c.exchange_url(), "http://127.0.0.1:8787/sync/exchange");
        assert_eq!(c.health_url(), "http://127.0.0.1:8787/health");
        assert_eq!(c.resync_url(), "http://127.0.0.1:8787/sync/resync");
        let c = SyncConfig::new("https://sync.example/api").unwrap();
        assert_eq!(c.exchange_url(), "https://sync.example/api/sync/exchange");
        for bad in [
            "",
            "sync.example",
            "ftp://x",
            "http://",
            "http:///x",
            "http://a b",
            "http://x?y=1",
            "http://x#f",
            "javascript:alert(1)",
        ] {
            assert!(SyncConfig::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn content_urls_name_the_digest_and_the_percent_encoded_dataset() {
        let c = SyncConfig::new("http://127.0.0.1:8787/").unwrap();
        let d = Digest([0xab; 32]);
        assert_eq!(
            c.content_url(&d, "notes/b é?&"),
            format!(
                "http://127.0.0.1:8787/sync/content/{}?dataset=notes%2Fb%20%C3%A9%3F%26",
                "ab".repeat(32)
            )
        );
        let p = PluginId::new("a").unwrap();
        assert!(!Eager::None.includes(&p) && Eager::All.includes(&p));
        assert!(Eager::Plugins(vec![p.clone()]).includes(&p));
        assert!(!Eager::Plugins(vec![PluginId::new("b").unwrap()]).includes(&p));
    }

    #[test]
    fn page_limits_outside_the_protocol_range_are_refused() {
        let c = SyncConfig::new("http://x").unwrap();
        assert_eq!(c.check_page_limit(1), Ok(1));
        assert_eq!(c.check_page_limit(1000), Ok(1000));
        assert!(c.check_page_limit(0).is_err() && c.check_page_limit(1001).is_err());
    }

    #[test]
    fn backoff_grows_is_capped_and_jitters_within_its_band() {
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..40 {
            let full = (BASE_BACKOFF_MS << attempt.min(16)).min(MAX_BACKOFF_MS);
            for _ in 0..200 {
                let d = backoff_ms(attempt, rng.u32(..));
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d}");
            }
        }
        assert_eq!(backoff_ms(0, 0), 125);
        assert!(backoff_ms(30, u32::MAX) <= MAX_BACKOFF_MS);
    }
}
