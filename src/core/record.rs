//! Records, values, tombstones and last-write-wins.

use serde::{Deserialize, Serialize};

use super::content::ContentRef;
use super::error::{excerpt, Error, Result};
use super::hlc::Hlc;
use super::ids::{Key, PluginId};
use super::json::{check_json, JsonSyntaxError};

/// Largest value a record may carry, in encoded bytes (JSON text or raw bytes): 1 MiB.
/// The browser's synchronous `set()` path has a smaller limit of its own.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// A stored value: JSON text (as `JSON.stringify` wrote it) or raw bytes (`Uint8Array`).
/// The core never interprets JSON; it carries and measures it, and checks its syntax where it
/// crosses the wire ([`Value::check_json`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Value {
    /// JSON text.
    Json(String),
    /// Bytes; base64 (standard alphabet, padded) on the wire.
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
    /// A large value by reference (protocol v2): its content moves through the content
    /// endpoint (`core::content`); a store holding only this has not hydrated the value.
    Ref(ContentRef),
}

impl Value {
    /// Encoded size in bytes, the unit every limit and quota counts in.
    pub fn size(&self) -> usize {
        match self {
            Value::Json(text) => text.len(),
            Value::Bytes(bytes) => bytes.len(),
            // Quotas count what the value will take once hydrated.
            Value::Ref(r) => usize::try_from(r.size).unwrap_or(usize::MAX),
        }
    }

    /// Checks the size against `max`.
    pub fn check_size(&self, max: usize) -> Result<()> {
        let size = self.size();
        if size > max {
            return Err(Error::ValueTooLarge { size, max });
        }
        Ok(())
    }

    /// Checks that a `json` value is JSON text (bytes always pass).
    pub fn check_json(&self) -> std::result::Result<(), JsonSyntaxError> {
        match self {
            Value::Json(text) => check_json(text),
            Value::Bytes(_) | Value::Ref(_) => Ok(()),
        }
    }

    /// The reference, if this value is one (not hydrated).
    pub fn as_ref_content(&self) -> Option<&ContentRef> {
        match self {
            Value::Ref(r) => Some(r),
            _ => None,
        }
    }
}

mod base64_bytes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&crate::core::base64::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        crate::core::base64::decode(&text)
            .ok_or_else(|| serde::de::Error::custom("invalid base64 (standard alphabet, padded)"))
    }
}

/// One versioned write to (plugin, key). `value: None` is a tombstone (a delete), which wins or
/// loses by HLC like any write. Unknown fields are refused: a peer that sends one speaks
/// something else, and silently dropping it would store less than was meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Namespace.
    pub plugin: PluginId,
    /// Key within the namespace.
    pub key: Key,
    /// Version; unique per write, totally ordered.
    pub hlc: Hlc,
    /// The value, or `None` for a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Record {
    /// A write.
    pub fn put(plugin: PluginId, key: Key, value: Value, hlc: Hlc) -> Self {
        Record {
            plugin,
            key,
            hlc,
            value: Some(value),
        }
    }

    /// A delete.
    pub fn tombstone(plugin: PluginId, key: Key, hlc: Hlc) -> Self {
        Record {
            plugin,
            key,
            hlc,
            value: None,
        }
    }

    /// Whether this record is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Checks the value size against `max` (tombstones always pass).
    pub fn check_size(&self, max: usize) -> Result<()> {
        self.value.as_ref().map_or(Ok(()), |v| v.check_size(max))
    }

    /// Checks that a `json` value is JSON text; the error names the record.
    pub fn check_json(&self) -> Result<()> {
        let Some(value) = &self.value else {
            return Ok(());
        };
        value.check_json().map_err(|e| Error::InvalidJson {
            record: format!(
                "{}/{}@{}",
                excerpt(self.plugin.as_str()),
                excerpt(self.key.as_str()),
                self.hlc
            ),
            reason: e.to_string(),
        })
    }

    /// A close upper bound of this record's size as JSON on the wire, for byte budgets.
    pub fn wire_size(&self) -> usize {
        const OVERHEAD: usize = 64; // field names, quotes, braces
        let value = match &self.value {
            None => 0,
            // JSON text inside a JSON string: quotes and backslashes get escaped.
            Some(Value::Json(text)) => {
                text.len() + text.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
            }
            Some(Value::Bytes(bytes)) => bytes.len().div_ceil(3) * 4,
            Some(Value::Ref(_)) => 120, // kind, size, 64 hex digits and field names
        };
        OVERHEAD
            + self.plugin.as_str().len()
            + 2 * self.key.as_str().len()
            + Hlc::ENCODED_LEN
            + value
    }

    /// Whether this record should replace `current` under last-write-wins.
    pub fn wins_over(&self, current: Option<&Hlc>) -> bool {
        current.is_none_or(|c| self.hlc > *c)
    }

    /// Whether this record should replace a stored `(hlc, value)`: it wins LWW, or it is the
    /// same write (equal stamp) with the content of a value stored only by reference
    /// (hydration). Content never goes back to a reference at the same stamp.
    pub fn replaces(&self, current: Option<(&Hlc, Option<&Value>)>) -> bool {
        match current {
            None => true,
            Some((hlc, value)) => {
                self.hlc > *hlc
                    || (self.hlc == *hlc
                        && matches!(value, Some(Value::Ref(_)))
                        && matches!(self.value, Some(Value::Json(_) | Value::Bytes(_))))
            }
        }
    }
}

/// Last-write-wins merge of two versions of the same (plugin, key): the greater HLC.
/// Commutative, associative and idempotent because HLCs are totally ordered.
pub fn lww<'a>(a: &'a Record, b: &'a Record) -> &'a Record {
    if b.hlc > a.hlc {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::NodeId;

    fn hlc(wall: u64, counter: u16, node: u64) -> Hlc {
        Hlc::new(wall, counter, NodeId::new(node).unwrap()).unwrap()
    }

    fn rec(wall: u64, node: u64, value: Option<&str>) -> Record {
        let (p, k) = (PluginId::new("p").unwrap(), Key::new("k").unwrap());
        match value {
            Some(v) => Record::put(p, k, Value::Json(v.into()), hlc(wall, 0, node)),
            None => Record::tombstone(p, k, hlc(wall, 0, node)),
        }
    }

    #[test]
    fn lww_is_commutative_associative_idempotent_over_seeded_triples() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..10_000 {
            // An HLC names one write, so equal stamps must carry equal contents.
            let mut pick = || {
                let (wall, node) = (rng.u64(0..5), rng.u64(1..4));
                rec(wall, node, ((wall + node) % 3 != 0).then_some("1"))
            };
            let (a, b, c) = (pick(), pick(), pick());
            assert_eq!(lww(&a, &b), lww(&b, &a));
            assert_eq!(lww(lww(&a, &b), &c), lww(&a, lww(&b, &c)));
            assert_eq!(lww(&a, &a), &a);
        }
    }

    #[test]
    fn tombstones_win_and_lose_by_hlc_like_writes() {
        let write = rec(5, 1, Some("\"v\""));
        let later_delete = rec(6, 1, None);
        let earlier_delete = rec(4, 2, None);
        assert!(lww(&write, &later_delete).is_tombstone());
        assert!(!lww(&write, &earlier_delete).is_tombstone());
        assert!(later_delete.wins_over(Some(&write.hlc)));
        assert!(!earlier_delete.wins_over(Some(&write.hlc)));
        assert!(write.wins_over(None));
        assert!(
            !write.wins_over(Some(&write.hlc)),
            "replaying the same record must not win"
        );
    }

    #[test]
    fn content_replaces_its_reference_at_the_same_stamp_and_never_the_reverse() {
        let reference = Value::Ref(crate::core::content::ContentRef {
            kind: crate::core::content::ContentKind::Json,
            size: 1,
            sha256: crate::core::content::Digest([1; 32]),
        });
        let hydrated = rec(5, 1, Some("1"));
        let stamp = hydrated.hlc;
        assert!(hydrated.replaces(Some((&stamp, Some(&reference)))));
        assert!(!hydrated.replaces(Some((&stamp, hydrated.value.as_ref()))));
        let as_ref = Record {
            value: Some(reference.clone()),
            ..hydrated.clone()
        };
        assert!(!as_ref.replaces(Some((&stamp, hydrated.value.as_ref()))));
        assert!(!as_ref.replaces(Some((&stamp, Some(&reference)))));
        // A tombstone at the same stamp is another write's claim: never by this rule.
        let tomb = rec(5, 1, None);
        assert!(!tomb.replaces(Some((&stamp, Some(&reference)))));
        assert!(rec(6, 1, None).replaces(Some((&stamp, hydrated.value.as_ref()))));
        assert!(!rec(4, 1, Some("2")).replaces(Some((&stamp, Some(&reference)))));
        assert!(hydrated.replaces(None));
    }

    #[test]
    fn value_size_limit_is_typed() {
        let big = Value::Bytes(vec![0; MAX_VALUE_BYTES + 1]);
        let err = big.check_size(MAX_VALUE_BYTES).unwrap_err();
        assert_eq!(err.code(), "value_too_large");
        assert!(Value::Bytes(vec![0; MAX_VALUE_BYTES])
            .check_size(MAX_VALUE_BYTES)
            .is_ok());
        assert!(rec(1, 1, None).check_size(0).is_ok());
    }

    #[test]
    fn values_round_trip_on_the_wire_with_their_kind() {
        for value in [
            Value::Json("{\"__proto__\":1}".into()),
            Value::Bytes(vec![0, 255, 7]),
            Value::Bytes(vec![]),
        ] {
            let r = Record::put(
                PluginId::new("p").unwrap(),
                Key::new("__proto__").unwrap(),
                value,
                hlc(1, 2, 3),
            );
            let text = serde_json::to_string(&r).unwrap();
            assert!(
                r.wire_size() >= text.len(),
                "estimate {} < actual {}",
                r.wire_size(),
                text.len()
            );
            assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        }
        let t = rec(1, 1, None);
        let text = serde_json::to_string(&t).unwrap();
        assert!(!text.contains("value"));
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), t);
        assert!(serde_json::from_str::<Record>(
            r#"{"plugin":"p","key":"k","hlc":"x","value":null}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Record>(r#"{"plugin":"p","key":"k","hlc":"000000000001-0000-0000000000000001","value":{"bytes":"!!"}}"#).is_err());
    }
}
