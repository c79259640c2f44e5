//! The localStorage journal's pure half: entry encoding, key naming and the byte budget.
//! The browser half (reading and writing `localStorage`) is `journal_storage.rs`.
//!
//! Every synchronous write is appended to localStorage under its own key
//! `clientdata:<db>:journal:<slot>:<seq>` before `set()` returns, and removed once IndexedDB has
//! committed it. Keys are per database and writer slot, so tabs never clobber each other; a tab
//! that opens replays the entries of every slot whose Web Lock nobody holds (LWW makes replay
//! idempotent).
//!
//! An entry is `<hlc>\x01<plugin>\x01<key>\x01<tag><payload>`; tag `j` = JSON text, `b` = base64
//! bytes, `d` = tombstone. Plugin ids and keys cannot contain control characters, so `\x01`
//! separates them unambiguously.

use crate::core::base64;
use crate::core::content::ContentRef;
use crate::core::{Hlc, Key, PluginId, Record, Value};

const SEP: char = '\u{1}';

/// Default journal budget per open instance, in bytes of localStorage (UTF-16: 2 bytes per code
/// unit, key and entry both count): 2 MiB, well under Chromium's ~10 MB (5 M characters) per
/// origin, leaving room for other tabs and the page's own use.
pub const DEFAULT_BUDGET_BYTES: usize = 2 << 20;

/// Largest value (encoded bytes: JSON text or raw bytes) the synchronous `set()` accepts: 64 KiB.
/// Larger values go through the async `setAsync`/`setMany`, which skip the journal (and stay
/// under the size where Chromium moves IndexedDB values into blobs).
pub const SYNC_MAX_VALUE_BYTES: usize = 64 << 10;

/// Encodes a record as one journal entry (also the localStorage engine's row format).
pub fn encode(record: &Record) -> String {
    let payload = match &record.value {
        None => std::borrow::Cow::Borrowed(""),
        Some(Value::Json(text)) => std::borrow::Cow::Borrowed(text.as_str()),
        Some(Value::Bytes(bytes)) => std::borrow::Cow::Owned(base64::encode(bytes)),
        // A value not hydrated yet (localStorage engine rows; never a local write).
        Some(Value::Ref(r)) => std::borrow::Cow::Owned(r.encode()),
    };
    let mut out = head(record, payload.len());
    out.push_str(&payload);
    out
}

/// The start of `record`'s entry, up to and including the value tag:
/// `<hlc>\x01<plugin>\x01<key>\x01<tag>`, with room for `payload_len` more bytes.
fn head(record: &Record, payload_len: usize) -> String {
    let tag = match &record.value {
        None => 'd',
        Some(Value::Json(_)) => 'j',
        Some(Value::Bytes(_)) => 'b',
        Some(Value::Ref(_)) => 'r',
    };
    let mut out = String::with_capacity(
        Hlc::ENCODED_LEN
            + record.plugin.as_str().len()
            + record.key.as_str().len()
            + payload_len
            + 4,
    );
    out.push_str(&record.hlc.encode());
    out.push(SEP);
    out.push_str(record.plugin.as_str());
    out.push(SEP);
    out.push_str(record.key.as_str());
    out.push(SEP);
    out.push(tag);
    out
}

/// The length of [`encode`]'s entry for a JSON value or a tombstone, without making it: the
/// browser half joins those entries in JS from the write's JS strings (`journal_storage.rs`).
pub fn joined_len(record: &Record) -> usize {
    let payload = match &record.value {
        Some(Value::Json(text)) => text.len(),
        _ => 0,
    };
    Hlc::ENCODED_LEN + record.plugin.as_str().len() + record.key.as_str().len() + 4 + payload
}

/// Decodes [`encode`]'s output, validating every part. Stored text is input (another build,
/// an extension, a user with devtools may have written it): anything malformed is a
/// [`Corrupt`] naming the part, never a panic and never a record to trust.
pub fn decode(entry: &str) -> Result<Record, Corrupt> {
    let mut parts = entry.splitn(4, SEP);
    let mut next = |what| parts.next().ok_or(Corrupt(what));
    let hlc = Hlc::parse(next("missing stamp")?).map_err(|_| Corrupt("invalid stamp"))?;
    let plugin =
        PluginId::new(next("missing plugin")?).map_err(|_| Corrupt("invalid plugin id"))?;
    let key = Key::new(next("missing key")?).map_err(|_| Corrupt("invalid key"))?;
    let rest = next("missing value")?;
    let mut chars = rest.chars();
    let tag = chars.next().ok_or(Corrupt("missing value tag"))?;
    // The rest after the tag, whatever its width (a multi-byte tag is corrupt, not a panic).
    let payload = chars.as_str();
    let value = match tag {
        'd' if payload.is_empty() => None,
        'd' => return Err(Corrupt("tombstone with a payload")),
        'j' if !payload.is_empty() => Some(Value::Json(payload.to_owned())),
        'j' => return Err(Corrupt("empty JSON text")),
        'b' => Some(Value::Bytes(
            base64::decode(payload).ok_or(Corrupt("invalid base64"))?,
        )),
        'r' => Some(Value::Ref(
            ContentRef::decode(payload).ok_or(Corrupt("invalid content reference"))?,
        )),
        _ => return Err(Corrupt("unknown value tag")),
    };
    Ok(Record {
        plugin,
        key,
        hlc,
        value,
    })
}

/// Why a stored entry or row does not decode (see `quarantine.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt(pub &'static str);

/// Stored text that is not valid UTF-16: a lone surrogate, which reads into Rust as U+FFFD (in a
/// key it would alias another key), found by the browser half, not by [`decode`].
pub const LOSSY: Corrupt = Corrupt("not valid UTF-16 (a lone surrogate)");

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The localStorage key prefix of `db`'s journal.
pub fn prefix(db: &str) -> String {
    format!("clientdata:{db}:journal:")
}

/// The localStorage key of entry `seq` of `slot`.
pub fn key(prefix: &str, slot: u32, seq: u64) -> String {
    format!("{prefix}{slot}:{seq}")
}

/// Parses the part of a localStorage key after [`prefix`]: exactly `<slot>:<seq>` in decimal.
/// Anything else (another database whose name extends this one's) is `None`.
pub fn parse_suffix(rest: &str) -> Option<(u32, u64)> {
    let (slot, seq) = rest.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(slot) || !digits(seq) {
        return None;
    }
    Some((slot.parse().ok()?, seq.parse().ok()?))
}

/// Byte accounting for the journal. Costs are an upper bound of what localStorage charges:
/// 2 bytes per UTF-16 code unit of key and entry (UTF-8 length bounds the code-unit count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    /// A budget of `limit` bytes, nothing used.
    pub fn new(limit: usize) -> Self {
        Budget { limit, used: 0 }
    }

    /// What an entry costs.
    pub fn cost(key: &str, entry: &str) -> usize {
        Self::cost_of(key.len(), entry.len())
    }

    /// What an entry costs, from the UTF-8 lengths of its key and text (an entry joined in JS,
    /// never in wasm).
    pub fn cost_of(key_len: usize, entry_len: usize) -> usize {
        2 * (key_len + entry_len)
    }

    /// Reserves `cost` if it fits; `false` (and nothing reserved) otherwise.
    pub fn try_reserve(&mut self, cost: usize) -> bool {
        match self.used.checked_add(cost) {
            Some(total) if total <= self.limit => {
                self.used = total;
                true
            }
            _ => false,
        }
    }

    /// Counts an entry found at open (replayed journals), even beyond the limit.
    pub fn force_reserve(&mut self, cost: usize) {
        self.used = self.used.saturating_add(cost);
    }

    /// Returns `cost` bytes once an entry is removed.
    pub fn release(&mut self, cost: usize) {
        self.used = self.used.saturating_sub(cost);
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// One appended entry: its localStorage key and what it costs the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The localStorage key.
    pub key: String,
    /// Bytes reserved in the budget.
    pub cost: usize,
}

/// An entry found at open.
#[derive(Debug, Clone)]
pub struct Found {
    /// The localStorage key.
    pub key: String,
    /// The slot that wrote it.
    pub slot: u32,
    /// Its sequence number within the slot.
    pub seq: u64,
    /// The record (malformed entries are not returned).
    pub record: Record,
    /// Budget cost.
    pub cost: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::NodeId;

    fn hlc() -> Hlc {
        Hlc::new(1_700_000_000_000, 3, NodeId::new(42).unwrap()).unwrap()
    }

    fn rec(key: &str, value: Option<Value>) -> Record {
        Record {
            plugin: PluginId::new("notes").unwrap(),
            key: Key::new(key).unwrap(),
            hlc: hlc(),
            value,
        }
    }

    #[test]
    fn entries_round_trip_every_kind() {
        for r in [
            rec("k", Some(Value::Json("{\"__proto__\":1}".into()))),
            rec("__proto__", Some(Value::Json("\"a\\u0001b\"".into()))),
            rec("🦀 /..", Some(Value::Bytes(vec![0, 1, 255]))),
            rec("empty", Some(Value::Bytes(vec![]))),
            rec(
                "large",
                Some(Value::Ref(crate::core::content::ContentRef {
                    kind: crate::core::content::ContentKind::Bytes,
                    size: 1 << 20,
                    sha256: crate::core::content::Digest([9; 32]),
                })),
            ),
            rec("gone", None),
        ] {
            assert_eq!(decode(&encode(&r)).as_ref(), Ok(&r), "{r:?}");
        }
    }

    #[test]
    fn joined_len_is_the_length_of_the_entry() {
        // The browser half budgets the entries it joins in JS by this length.
        for text in ["1", "\"é€🦀\"", "{\"a\":[null,true]}"] {
            let r = rec("k/🦀", Some(Value::Json(text.into())));
            assert_eq!(joined_len(&r), encode(&r).len(), "{r:?}");
        }
        let gone = rec("gone", None);
        assert_eq!(joined_len(&gone), encode(&gone).len());
        assert!(encode(&gone).ends_with("\u{1}d"));
    }

    #[test]
    fn malformed_entries_are_rejected_with_a_reason_never_a_panic() {
        let good = encode(&rec("k", Some(Value::Json("1".into()))));
        assert!(decode(&good).is_ok());
        let hlc = hlc().encode();
        let head = format!("{hlc}\u{1}notes\u{1}k\u{1}");
        for (bad, why) in [
            ("".to_owned(), "invalid stamp"),
            ("x".to_owned(), "invalid stamp"),
            (hlc.clone(), "missing plugin"),
            (format!("{hlc}\u{1}notes"), "missing key"),
            (format!("{hlc}\u{1}notes\u{1}k"), "missing value"),
            (head.clone(), "missing value tag"),
            (good.replacen("notes", "Notes", 1), "invalid plugin id"),
            (
                good.replacen("\u{1}k\u{1}", "\u{1}k\u{7}\u{1}", 1),
                "invalid key",
            ),
            (good[..good.len() - 2].to_owned(), "missing value tag"),
            (good.replacen('\u{1}', "\u{2}", 1), "invalid stamp"),
            (format!("{head}dx"), "tombstone with a payload"),
            (format!("{head}j"), "empty JSON text"),
            (format!("{head}b!"), "invalid base64"),
            (format!("{head}q1"), "unknown value tag"),
            // Multi-byte tags: slicing one byte past them used to panic (and abort the wasm).
            (format!("{head}é"), "unknown value tag"),
            (format!("{head}€1"), "unknown value tag"),
            (format!("{head}🦀{{}}"), "unknown value tag"),
            (format!("{head}\u{1}"), "unknown value tag"),
        ] {
            assert_eq!(decode(&bad), Err(Corrupt(why)), "{bad:?}");
        }
    }

    #[test]
    fn decode_never_panics_on_any_cut_or_splice_of_a_valid_entry() {
        let entries = [
            encode(&rec("🦀 /..", Some(Value::Bytes(vec![0, 1, 255])))),
            encode(&rec("k", Some(Value::Json("\"é€🦀\"".into())))),
            encode(&rec("gone", None)),
        ];
        let splices = ["", "é", "€", "🦀", "\u{1}", "\u{1}é", "\u{1}🦀\u{1}"];
        for e in &entries {
            let cuts: Vec<usize> = (0..=e.len()).filter(|&i| e.is_char_boundary(i)).collect();
            for &i in &cuts {
                let _ = decode(&e[..i]);
                let _ = decode(&e[i..]);
                for s in splices {
                    let _ = decode(&format!("{}{s}{}", &e[..i], &e[i..]));
                }
            }
        }
    }

    #[test]
    fn journal_keys_parse_only_for_this_database() {
        let p = prefix("db");
        let k = key(&p, 3, 17);
        assert_eq!(k, "clientdata:db:journal:3:17");
        assert_eq!(parse_suffix(&k[p.len()..]), Some((3, 17)));
        // Another database "db:journal:1" shares the prefix but not the suffix shape.
        let other = key(&prefix("db:journal:1"), 2, 5);
        assert!(other.starts_with(&p));
        assert_eq!(parse_suffix(&other[p.len()..]), None);
        for bad in ["", ":", "1:", ":1", "1:2:3", "a:1", "1:-2", "99999999999:1"] {
            assert_eq!(parse_suffix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn budget_reserves_up_to_the_limit_and_releases() {
        let mut b = Budget::new(100);
        assert_eq!(Budget::cost("ab", "cde"), 10);
        assert!(b.try_reserve(60));
        assert!(!b.try_reserve(41));
        assert_eq!(b.used(), 60);
        assert!(b.try_reserve(40));
        assert!(!b.try_reserve(1));
        b.release(50);
        assert!(b.try_reserve(1));
        assert!(!b.try_reserve(usize::MAX));
        b.force_reserve(1_000);
        assert_eq!(b.used(), 1_051);
        assert!(!b.try_reserve(0), "over the limit nothing more fits");
    }

    #[test]
    fn budget_cost_bounds_utf16_size() {
        for s in ["abc", "é", "€", "🦀", "a🦀é€"] {
            let utf16_bytes = 2 * s.encode_utf16().count();
            assert!(Budget::cost("", s) >= utf16_bytes, "{s}");
        }
    }
}
