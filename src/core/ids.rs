//! Identifiers and their rules. A record's identity is the tuple (PluginId, Key), never a
//! concatenated string, so no choice of key can reach into another plugin's namespace.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{de_error, excerpt, Error, Result};

/// The writer identity inside an HLC: 64 random bits, never zero, unique per writer slot.
///
/// Encoded as 16 lowercase hex digits (u64 does not fit a JS number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u64);

impl NodeId {
    /// Wraps a known value; zero is reserved and rejected.
    pub fn new(value: u64) -> Result<Self> {
        if value == 0 {
            return Err(Error::InvalidNodeId("0000000000000000".into()));
        }
        Ok(NodeId(value))
    }

    /// A fresh random id from the platform's CSPRNG (`crypto.getRandomValues` in the browser).
    pub fn random() -> Result<Self, getrandom::Error> {
        loop {
            let value = getrandom::u64()?;
            if value != 0 {
                return Ok(NodeId(value));
            }
        }
    }

    /// The raw 64-bit value.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Parses exactly 16 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::InvalidNodeId(excerpt(text));
        if text.len() != 16 || !text.bytes().all(is_lower_hex) {
            return Err(bad());
        }
        let value = u64::from_str_radix(text, 16).map_err(|_| bad())?;
        NodeId::new(value).map_err(|_| bad())
    }
}

pub(crate) fn is_lower_hex(b: u8) -> bool {
    super::hex::digit(b).is_some()
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(16);
        super::hex::push_u64(&mut text, self.0, 16);
        f.write_str(&text)
    }
}

/// A device's secret: 32 random bytes generated once per writer slot and kept beside its node
/// id, sent as the request's `secret` so the server can tell the device that first used a node
/// id from one that copied it (PROTOCOL.md). Text form: 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceSecret([u8; 32]);

impl DeviceSecret {
    /// Length of the text form.
    pub const TEXT_LEN: usize = 64;

    /// A fresh secret from the platform's CSPRNG.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(DeviceSecret(bytes))
    }

    /// Parses exactly 64 lowercase hex digits; `None` otherwise (a stored secret that does not
    /// parse is replaced, never sent).
    pub fn parse(text: &str) -> Option<Self> {
        super::hex::decode(text).map(DeviceSecret)
    }

    /// The text form (what is stored and sent).
    pub fn to_hex(self) -> String {
        super::hex::encode(&self.0)
    }
}

impl fmt::Debug for DeviceSecret {
    // Never printed: debug output ends up in logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceSecret(..)")
    }
}

/// A plugin's namespace name.
///
/// Rules: 1 to [`PluginId::MAX_LEN`] bytes of `a-z`, `0-9`, `-`, `_`, `.`; starts with a letter
/// or digit; no `..`. No `/`, so "plugin/key" paths split unambiguously at the first `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginId(String);

impl PluginId {
    /// Longest plugin id in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates and wraps a plugin id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("must not be empty")
        } else if id.len() > Self::MAX_LEN {
            Some("longer than 64 bytes")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        {
            Some("only a-z, 0-9, '-', '_' and '.' are allowed")
        } else if !id.as_bytes()[0].is_ascii_alphanumeric() {
            Some("must start with a letter or digit")
        } else if id.contains("..") {
            Some("must not contain '..'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidPluginId {
                id: excerpt(&id),
                reason,
            }),
            None => Ok(PluginId(id)),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key inside one plugin's namespace.
///
/// Rules: 1 to [`Key::MAX_LEN`] bytes of UTF-8; no control characters (U+0000–U+001F, U+007F),
/// so NUL can never truncate a key in C-string or SQL storage. Everything else is an ordinary
/// key: `__proto__`, `constructor`, `..`, `/`, emoji. Keys are never used as object properties or
/// file paths, so none of those can escape or pollute anything.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// Longest key in UTF-8 bytes.
    pub const MAX_LEN: usize = 1024;

    /// Validates and wraps a key.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let reason = if key.is_empty() {
            Some("must not be empty")
        } else if key.len() > Self::MAX_LEN {
            Some("longer than 1024 bytes")
        } else if key.chars().any(|c| c.is_ascii_control()) {
            Some("control characters (including NUL) are not allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidKey {
                key: excerpt(&key),
                reason,
            }),
            None => Ok(Key(key)),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! serde_via_str {
    ($ty:ty, $to:expr, $from:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(&$to(self))
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(d)?;
                $from(text.into_owned()).map_err(de_error)
            }
        }
    };
}
serde_via_str!(NodeId, |n: &NodeId| *n, |t: String| NodeId::parse(&t));
serde_via_str!(PluginId, |p: &PluginId| p.0.clone(), PluginId::new);
serde_via_str!(Key, |k: &Key| k.0.clone(), Key::new);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_secrets_round_trip_as_hex_and_reject_anything_else() {
        let s = DeviceSecret::random().unwrap();
        let text = s.to_hex();
        assert_eq!(text.len(), DeviceSecret::TEXT_LEN);
        assert!(
            (super::super::protocol::MIN_SECRET_LEN..=super::super::protocol::MAX_SECRET_LEN)
                .contains(&text.len())
        );
        assert_eq!(DeviceSecret::parse(&text), Some(s));
        assert_ne!(DeviceSecret::random().unwrap(), s, "two draws differ");
        assert!(
            !format!("{s:?}").contains(&text[..8]),
            "debug output hides it"
        );
        for bad in [
            String::new(),
            text[..63].to_owned(),
            format!("{text}0"),
            text.to_uppercase(),
            format!("g{}", &text[1..]),
            format!("é{}", &text[2..]),
        ] {
            assert_eq!(DeviceSecret::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn node_ids_are_never_zero_and_round_trip() {
        assert_eq!(NodeId::new(0).unwrap_err().code(), "invalid_node_id");
        let n = NodeId::random().unwrap();
        assert_ne!(n.get(), 0);
        assert_eq!(NodeId::parse(&n.to_string()).unwrap(), n);
        assert_ne!(NodeId::random().unwrap(), n, "two random ids collided");
    }

    #[test]
    fn node_id_parse_rejects_malformed_text() {
        for bad in [
            "",
            "0",
            "0000000000000000",
            "00000000000000001",
            "ABCDEF0123456789",
            "g000000000000001",
            " 000000000000001",
            "-000000000000001",
            "+000000000000001",
        ] {
            assert_eq!(
                NodeId::parse(bad).unwrap_err().code(),
                "invalid_node_id",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn plugin_id_rules() {
        for good in [
            "a",
            "notes-app",
            "com.example.notes",
            "x_1",
            "9lives",
            &"a".repeat(64),
        ] {
            assert!(PluginId::new(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "Notes",
            "a/b",
            "a b",
            "-a",
            ".a",
            "_a",
            "a..b",
            "ä",
            "a\0",
            &"a".repeat(65),
        ] {
            assert_eq!(
                PluginId::new(bad).unwrap_err().code(),
                "invalid_plugin_id",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_rules() {
        for good in [
            "k",
            "__proto__",
            "constructor",
            "..",
            ".",
            "a/b/../c",
            "🦀 émoji",
            " ",
            &"é".repeat(512),
        ] {
            assert!(Key::new(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "a\0b",
            "tab\there",
            "nl\n",
            "\u{7f}",
            &"a".repeat(1025),
            &"é".repeat(513),
        ] {
            assert_eq!(Key::new(bad).unwrap_err().code(), "invalid_key", "{bad:?}");
        }
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let ok: PluginId = serde_json::from_str("\"notes\"").unwrap();
        assert_eq!(ok.as_str(), "notes");
        assert!(serde_json::from_str::<PluginId>("\"No\"").is_err());
        assert!(serde_json::from_str::<Key>("\"\"").is_err());
        assert!(serde_json::from_str::<NodeId>("\"0000000000000000\"").is_err());
        assert_eq!(
            serde_json::to_string(&NodeId::new(255).unwrap()).unwrap(),
            "\"00000000000000ff\""
        );
    }
}
