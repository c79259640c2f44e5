//! The lease record every tab can read about a lock's holder (localStorage JSON, swamp's
//! `LockInfo` shape), with its own JSON writer, reader (`core::json_reader`) and field scanner
//! (no serde in the wasm build, and this runs at every publication). Pure, tested natively with
//! injected time. The rules that use it are in `rules`. (Over 300 lines only with its tests,
//! which are most of the second half: hostile strings, ISO-8601 against JS, renewal cadence.)

use serde::{Deserialize, Serialize};

use crate::core::json::push_str as push_json_str;
use crate::core::json_reader::{Fields, Reader};

/// What every tab can read about the current holder (localStorage JSON). Its JS shape is
/// swamp's `LockInfo` plus `path`, `epoch`, `grantedAt` and `acquiredAtMs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// Who holds it (`tab-<pid>`).
    pub holder: String,
    /// The page's origin.
    pub hostname: String,
    /// A per-tab number.
    pub pid: u32,
    /// ISO-8601 start of the current lease term: the grant, then each renewal (as swamp's
    /// heartbeat does, so `acquiredAt + ttlMs` is the expiry any reader computes).
    pub acquired_at: String,
    /// `acquiredAt` in ms since the epoch (what staleness is computed from).
    pub acquired_at_ms: u64,
    /// ISO-8601 time of the grant itself.
    pub granted_at: String,
    /// Time to live of each lease term.
    pub ttl_ms: u64,
    /// Random per grant; `forceRelease` and `release` check it.
    pub nonce: String,
    /// The path the lock was created for.
    pub path: String,
    /// The grant's fencing epoch.
    pub epoch: u64,
    /// Set by `forceRelease`: the lock was freed, `epoch` is the next grant's hint. Readers
    /// treat a released lease as no lease. (A normal release writes nothing: see
    /// `DistributedLock::release`.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

impl Lease {
    /// A fresh lease granted at `now_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn granted(
        holder: String,
        hostname: String,
        pid: u32,
        now_ms: u64,
        ttl_ms: u64,
        nonce: String,
        path: String,
        epoch: u64,
    ) -> Lease {
        let at = iso8601(now_ms);
        Lease {
            holder,
            hostname,
            pid,
            acquired_at: at.clone(),
            acquired_at_ms: now_ms,
            granted_at: at,
            ttl_ms,
            nonce,
            path,
            epoch,
            released: false,
        }
    }

    /// Starts a new lease term at `now_ms` (a renewal). Time never moves the term backwards.
    pub fn renew(&mut self, now_ms: u64) {
        if now_ms > self.acquired_at_ms {
            self.acquired_at_ms = now_ms;
            self.acquired_at = iso8601(now_ms);
        }
    }

    /// When the current term ends.
    pub fn expires_at_ms(&self) -> u64 {
        self.acquired_at_ms.saturating_add(self.ttl_ms)
    }

    /// Stale: the last renewal is older than the ttl (`now > acquiredAt + ttlMs`).
    pub fn is_stale(&self, now_ms: u64) -> bool {
        now_ms > self.expires_at_ms()
    }

    /// The JSON stored in localStorage (written by hand: no serde_json in the wasm build, and
    /// this runs at every publication).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"holder\":");
        push_json_str(&mut out, &self.holder);
        out.push_str(",\"hostname\":");
        push_json_str(&mut out, &self.hostname);
        out.push_str(&format!(",\"pid\":{},\"acquiredAt\":", self.pid));
        push_json_str(&mut out, &self.acquired_at);
        out.push_str(&format!(
            ",\"acquiredAtMs\":{},\"grantedAt\":",
            self.acquired_at_ms
        ));
        push_json_str(&mut out, &self.granted_at);
        out.push_str(&format!(",\"ttlMs\":{},\"nonce\":", self.ttl_ms));
        push_json_str(&mut out, &self.nonce);
        out.push_str(",\"path\":");
        push_json_str(&mut out, &self.path);
        out.push_str(&format!(",\"epoch\":{}", self.epoch));
        if self.released {
            out.push_str(",\"released\":true");
        }
        out.push('}');
        out
    }
}

impl Lease {
    /// Reads lease JSON from storage as the serde derive would (unknown members skipped, a
    /// repeated or missing one refused, integers exact); `None` for anything else: another
    /// tab's or a stranger's text is input, and a lease that does not read is no lease.
    pub fn from_json(text: &str) -> Option<Lease> {
        const FIELDS: Fields = Fields {
            names: &[
                "holder",
                "hostname",
                "pid",
                "acquiredAt",
                "acquiredAtMs",
                "grantedAt",
                "ttlMs",
                "nonce",
                "path",
                "epoch",
                "released",
            ],
            required: 0b011_1111_1111,
            deny_unknown: false,
        };
        let mut lease = Lease {
            holder: String::new(),
            hostname: String::new(),
            pid: 0,
            acquired_at: String::new(),
            acquired_at_ms: 0,
            granted_at: String::new(),
            ttl_ms: 0,
            nonce: String::new(),
            path: String::new(),
            epoch: 0,
            released: false,
        };
        let mut r = Reader::new(text);
        r.fields(FIELDS, &mut |r, i| {
            let l = &mut lease;
            match i {
                0 => l.holder = r.string()?.into_owned(),
                1 => l.hostname = r.string()?.into_owned(),
                2 => l.pid = r.u32()?,
                3 => l.acquired_at = r.string()?.into_owned(),
                4 => l.acquired_at_ms = r.u64()?,
                5 => l.granted_at = r.string()?.into_owned(),
                6 => l.ttl_ms = r.u64()?,
                7 => l.nonce = r.string()?.into_owned(),
                8 => l.path = r.string()?.into_owned(),
                9 => l.epoch = r.u64()?,
                _ => l.released = r.bool()?,
            }
            Ok(())
        })
        .ok()?;
        r.end().ok()?;
        Some(lease)
    }
}

/// The number field `field` of lease JSON written by [`Lease::to_json`], read without a JSON
/// parser (this runs at every publication). In that JSON an unescaped `"` only delimits strings, so
/// `"field":` can only match a key.
pub fn scan_u64(json: &str, field: &str) -> Option<u64> {
    let rest = after_key(json, field)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The string field `field` of lease JSON written by [`Lease::to_json`], when it has no escapes
/// (nonces are hex); `None` otherwise.
pub fn scan_str<'a>(json: &'a str, field: &str) -> Option<&'a str> {
    let rest = after_key(json, field)?.strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

/// Whether lease JSON written by [`Lease::to_json`] carries the `released` flag (set by
/// `forceRelease`).
pub fn scan_released(json: &str) -> bool {
    after_key(json, "released").is_some_and(|rest| rest.starts_with("true"))
}

fn after_key<'a>(json: &'a str, field: &str) -> Option<&'a str> {
    let mut search = json;
    loop {
        let at = search.find('"')?;
        let tail = &search[at + 1..];
        if let Some(rest) = tail.strip_prefix(field).and_then(|r| r.strip_prefix("\":")) {
            return Some(rest);
        }
        search = tail;
    }
}

/// ISO-8601 UTC with milliseconds, as JS `Date.prototype.toISOString` prints it for years
/// 0..=9999 (`2024-02-29T23:59:59.999Z`).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::rules::LockOptions;

    fn lease_at(ms: u64, ttl: u64) -> Lease {
        Lease::granted(
            "tab-1".into(),
            "https://a.example".into(),
            1,
            ms,
            ttl,
            "n".into(),
            "p".into(),
            1,
        )
    }

    #[test]
    fn lease_is_stale_only_after_ttl_without_renewal() {
        let mut l = lease_at(1_000, 300);
        assert!(!l.is_stale(1_000));
        assert!(!l.is_stale(1_300), "exactly at expiry is not yet stale");
        assert!(l.is_stale(1_301));
        l.renew(1_200);
        assert!(!l.is_stale(1_301));
        assert!(l.is_stale(1_501));
        assert_eq!(l.granted_at, iso8601(1_000), "renewal keeps the grant time");
        assert_eq!(
            l.acquired_at,
            iso8601(1_200),
            "acquiredAt is the term start"
        );
        l.renew(900);
        assert_eq!(
            l.acquired_at_ms, 1_200,
            "a clock set back never shortens the term"
        );
    }

    #[test]
    fn a_holder_renewing_every_third_of_ttl_is_never_stale() {
        let opts = LockOptions {
            ttl_ms: 300,
            ..Default::default()
        };
        let mut l = lease_at(0, opts.ttl_ms);
        let step = opts.renew_interval_ms();
        for t in (0..10_000).step_by(step as usize) {
            assert!(!l.is_stale(t + step), "stale at {}", t + step);
            l.renew(t + step);
        }
    }

    #[test]
    fn iso8601_matches_js_to_iso_string() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(iso8601(1_735_689_600_001), "2025-01-01T00:00:00.001Z");
        assert_eq!(iso8601(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
        assert_eq!(iso8601(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn lease_json_round_trips_with_hostile_strings() {
        let mut l = lease_at(1_709_251_199_999, 30_000);
        l.path = "a\"b\\c\nd\u{1}e\u{2028}é/__proto__".into();
        l.holder = "tab \"x\"".into();
        let json = l.to_json();
        let back: Lease = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in [
            "holder",
            "hostname",
            "acquiredAt",
            "nonce",
            "path",
            "grantedAt",
        ] {
            assert!(v[field].is_string(), "{field}");
        }
        for field in ["pid", "ttlMs", "epoch", "acquiredAtMs"] {
            assert!(v[field].is_u64(), "{field}");
        }
        assert!(
            v.get("released").is_none(),
            "a held lease has no released flag"
        );
        assert!(!scan_released(&l.to_json()));
        l.path = "\"released\":true".into();
        assert!(!scan_released(&l.to_json()), "never from inside a string");
        l.released = true;
        let back: Lease = serde_json::from_str(&l.to_json()).unwrap();
        assert!(back.released);
        assert!(scan_released(&l.to_json()));
    }

    #[test]
    fn lease_json_is_read_back_by_hand_as_serde_reads_it() {
        let mut l = lease_at(1_709_251_199_999, 30_000);
        l.path = "a\"b\\c\nd\u{1}e\u{2028}é😀/__proto__".into();
        l.holder = "tab \"x\"".into();
        assert_eq!(Lease::from_json(&l.to_json()), Some(l.clone()));
        l.released = true;
        assert_eq!(Lease::from_json(&l.to_json()), Some(l.clone()));
        let json = l.to_json();
        let agree = |text: &str| {
            let serde = serde_json::from_str::<Lease>(text).ok();
            assert_eq!(Lease::from_json(text), serde, "{text}");
            serde.is_some()
        };
        assert!(agree(&json));
        // Unknown members are skipped (another version's lease), whatever they hold.
        assert!(agree(&json.replacen('{', r#"{"x":{"y":[1,"}",null]},"#, 1)));
        assert!(agree(
            &json.replace("\"released\":true", "\"released\":false")
        ));
        assert!(agree(&json.replace(",\"released\":true", "")));
        let hostile = [
            String::new(),
            "null".into(),
            "not json".into(),
            "[]".into(),
            "{}".into(),
            json[..json.len() - 1].to_owned(),
            format!("{json}x"),
            json.replace(",\"nonce\":\"n\"", ""),
            json.replace("\"nonce\":\"n\"", "\"nonce\":\"n\",\"nonce\":\"m\""),
            json.replace("\"nonce\":\"n\"", "\"nonce\":null"),
            json.replace("\"nonce\":\"n\"", "\"nonce\":\"\\ud800\""),
            json.replace("\"pid\":1", "\"pid\":-1"),
            json.replace("\"pid\":1", "\"pid\":1.0"),
            json.replace("\"pid\":1", "\"pid\":4294967296"),
            json.replace("\"epoch\":1", "\"epoch\":18446744073709551616"),
            json.replace("\"epoch\":1", "\"epoch\":\"1\""),
            json.replace("\"released\":true", "\"released\":1"),
        ];
        for text in &hostile {
            assert!(!agree(text), "accepted: {text}");
        }
        let mut rng = fastrand::Rng::with_seed(31);
        let tokens = [
            "{", "}", "\"", ",", ":", "\\", "null", "1", "-1", "\\u0041", "\"x\":1,",
        ];
        for _ in 0..5_000 {
            let mut text = json.clone();
            let at = rng.usize(..=text.len());
            if text.is_char_boundary(at) {
                match rng.u8(..3) {
                    0 => text.truncate(at),
                    _ => text.insert_str(at, tokens[rng.usize(..tokens.len())]),
                }
            }
            agree(&text);
        }
    }

    #[test]
    fn fields_are_scanned_without_a_parser_and_never_from_inside_strings() {
        let mut l = lease_at(5, 300);
        l.epoch = 42;
        l.nonce = "abc123".into();
        l.path = "\"epoch\":7,\"nonce\":\"evil\"".into();
        l.holder = "x\\".into();
        let json = l.to_json();
        assert_eq!(scan_u64(&json, "epoch"), Some(42));
        assert_eq!(scan_str(&json, "nonce"), Some("abc123"));
        assert_eq!(scan_u64(&json, "ttlMs"), Some(300));
        assert_eq!(
            scan_str(&json, "holder"),
            None,
            "escaped strings are not scanned"
        );
        assert_eq!(scan_u64(&json, "missing"), None);
        assert_eq!(scan_u64("not json", "epoch"), None);
    }
}
