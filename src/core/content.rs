//! Large values by reference (protocol v2, docs/PROTOCOL.md "Content"): a value above the lazy
//! threshold syncs as a [`ContentRef`] (kind, size, SHA-256) and its bytes move through the
//! content endpoint, fetched when the app asks for them. The core never hashes (the browser has
//! WebCrypto, the server `sha2`); it carries digests, checks their shape, and turns fetched
//! bytes back into a [`Value`] once the caller has checked them against the digest.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{de_error, Error, Result};
use super::record::Value;

/// Largest value one record may hold by reference: 8 MiB (the content endpoint's limit, and
/// the limit of the browser's async setters).
pub const MAX_CONTENT_BYTES: usize = 8 << 20;

/// Values larger than this (encoded bytes) sync by reference unless configured otherwise:
/// 32 KiB, below Chromium's 64 KiB IndexedDB blob cliff.
pub const DEFAULT_LAZY_THRESHOLD: usize = 32 << 10;

/// A SHA-256 digest; 64 lowercase hex digits as text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Parses 64 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || {
            Error::InvalidRequest(format!(
                "sha256 {text:.80?}: must be 64 lowercase hex digits"
            ))
        };
        super::hex::decode(text).map(Digest).ok_or_else(invalid)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        super::hex::encode(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Digest::parse(&text).map_err(de_error)
    }
}

/// What a referenced value is once fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// UTF-8 JSON text.
    Json,
    /// Raw bytes.
    Bytes,
}

/// A value by reference: what it is, how big, and the SHA-256 of its bytes (the JSON text's
/// UTF-8, or the raw bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentRef {
    /// Kind of the value.
    pub kind: ContentKind,
    /// Size of the content in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: Digest,
}

impl ContentRef {
    /// The reference to `value`'s content, given its digest; `None` for a reference itself.
    pub fn of(value: &Value, sha256: Digest) -> Option<Self> {
        let kind = match value {
            Value::Json(_) => ContentKind::Json,
            Value::Bytes(_) => ContentKind::Bytes,
            Value::Ref(_) => return None,
        };
        Some(ContentRef {
            kind,
            size: value.size() as u64,
            sha256,
        })
    }

    /// The value whose content is `bytes`, which the caller has hashed to `digest`: refused with
    /// `content_hash_mismatch` if the digest or the size differs, `invalid_json` if JSON content
    /// is not JSON text. Nothing that fails here may be stored.
    pub fn value_from(&self, bytes: Vec<u8>, digest: &Digest) -> Result<Value> {
        if *digest != self.sha256 || bytes.len() as u64 != self.size {
            return Err(Error::ContentHashMismatch {
                expected: self.sha256.to_hex(),
                got: format!("{} ({} bytes)", digest.to_hex(), bytes.len()),
            });
        }
        let value = match self.kind {
            ContentKind::Bytes => Value::Bytes(bytes),
            ContentKind::Json => {
                Value::Json(String::from_utf8(bytes).map_err(|_| Error::InvalidJson {
                    record: self.sha256.to_hex(),
                    reason: "content is not UTF-8".into(),
                })?)
            }
        };
        value.check_json().map_err(|e| Error::InvalidJson {
            record: self.sha256.to_hex(),
            reason: e.to_string(),
        })?;
        Ok(value)
    }
}

impl ContentRef {
    /// Compact text for storage rows (journal, localStorage, IndexedDB, the server's tables):
    /// `j:<size>:<sha256>` or `b:<size>:<sha256>`.
    pub fn encode(&self) -> String {
        let kind = match self.kind {
            ContentKind::Json => 'j',
            ContentKind::Bytes => 'b',
        };
        format!("{kind}:{}:{}", self.size, self.sha256.to_hex())
    }

    /// Parses [`ContentRef::encode`]'s output; `None` for anything else (stored text is input).
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ':');
        let kind = match parts.next()? {
            "j" => ContentKind::Json,
            "b" => ContentKind::Bytes,
            _ => return None,
        };
        let size: u64 = parts.next()?.parse().ok()?;
        let sha256 = Digest::parse(parts.next()?).ok()?;
        (size <= MAX_CONTENT_BYTES as u64).then_some(ContentRef { kind, size, sha256 })
    }
}

/// The content of an inline value (what is uploaded and hashed); `None` for a reference.
pub fn content_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Json(text) => Some(text.as_bytes()),
        Value::Bytes(bytes) => Some(bytes),
        Value::Ref(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digests_are_64_lowercase_hex_both_ways() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_hex(), EMPTY);
        for bad in [
            "",
            &EMPTY[1..],
            &EMPTY.to_uppercase(),
            &format!("{}g", &EMPTY[1..]),
        ] {
            assert_eq!(
                Digest::parse(bad).unwrap_err().code(),
                "invalid_request",
                "{bad}"
            );
        }
    }

    #[test]
    fn refs_round_trip_on_the_wire_and_refuse_unknown_fields() {
        let r = ContentRef {
            kind: ContentKind::Json,
            size: 40_000,
            sha256: Digest::parse(EMPTY).unwrap(),
        };
        let text = serde_json::to_string(&Value::Ref(r.clone())).unwrap();
        assert_eq!(
            text,
            format!(r#"{{"ref":{{"kind":"json","size":40000,"sha256":"{EMPTY}"}}}}"#)
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), Value::Ref(r));
        let extra = text.replace("\"size\"", "\"x\":1,\"size\"");
        assert!(serde_json::from_str::<Value>(&extra).is_err());
        let short = text.replace(EMPTY, "abc");
        assert!(serde_json::from_str::<Value>(&short)
            .unwrap_err()
            .to_string()
            .starts_with("[invalid_request]"));
    }

    #[test]
    fn fetched_content_must_match_its_digest_size_and_kind() {
        let digest = Digest([7; 32]);
        let r = ContentRef::of(&Value::Json("[1,2]".into()), digest).unwrap();
        assert_eq!(r.size, 5);
        assert_eq!(
            r.value_from(b"[1,2]".to_vec(), &digest).unwrap(),
            Value::Json("[1,2]".into())
        );
        let other = Digest([8; 32]);
        assert_eq!(
            r.value_from(b"[1,2]".to_vec(), &other).unwrap_err().code(),
            "content_hash_mismatch"
        );
        assert_eq!(
            r.value_from(b"[1,2,3]".to_vec(), &digest)
                .unwrap_err()
                .code(),
            "content_hash_mismatch"
        );
        assert_eq!(
            r.value_from(b"[1,2".to_vec(), &digest)
                .map(|_| ())
                .unwrap_err()
                .code(),
            "content_hash_mismatch"
        );
        let bad_json = ContentRef {
            size: 5,
            ..r.clone()
        };
        assert_eq!(
            bad_json
                .value_from(b"[1,2}".to_vec(), &digest)
                .unwrap_err()
                .code(),
            "invalid_json"
        );
        assert_eq!(ContentRef::decode(&r.encode()), Some(r.clone()));
        for bad in [
            "",
            "x:5:00",
            "j:5",
            "j:-1:00",
            &format!("j:{}:{EMPTY}", MAX_CONTENT_BYTES + 1),
        ] {
            assert_eq!(ContentRef::decode(bad), None, "{bad}");
        }
        assert!(ContentRef::of(&Value::Ref(r), digest).is_none());
    }
}
