//! Typed errors of the pure core. Every kind has a stable `code()` that crosses every boundary
//! unchanged: the JS `Error.code`, the server's JSON `{ code, message }`, docs/ERRORS.md.

use thiserror::Error;

/// What went wrong in the pure core (ids, clock, records, protocol, replica decisions).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A plugin id breaks the rules of [`crate::core::ids::PluginId`].
    #[error("invalid plugin id {id:?}: {reason}")]
    InvalidPluginId {
        /// The offending id (truncated to 80 chars).
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A key breaks the rules of [`crate::core::ids::Key`].
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The offending key (truncated to 80 chars).
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A node id is zero or not 16 lowercase hex digits.
    #[error("invalid node id {0:?}")]
    InvalidNodeId(String),
    /// An encoded HLC could not be parsed.
    #[error("invalid HLC {text:?}: {reason}")]
    InvalidHlc {
        /// The offending text (truncated to 80 chars).
        text: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A value is larger than allowed on this path.
    #[error("value of {size} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Encoded size of the value.
        size: usize,
        /// The limit that applies.
        max: usize,
    },
    /// A remote stamp is further ahead of local physical time than `maxDriftMs`.
    #[error("remote clock {remote_ms} ms is {ahead_ms} ms ahead of local time (max drift {max_drift_ms} ms)")]
    ClockDrift {
        /// Wall time of the remote stamp.
        remote_ms: u64,
        /// How far it is ahead of local physical time.
        ahead_ms: u64,
        /// The configured bound.
        max_drift_ms: u64,
    },
    /// The 16-bit logical counter would overflow (more than 65,535 events in one millisecond
    /// or a clock stuck far behind a remote one).
    #[error("HLC counter overflow at wall time {wall_ms}")]
    CounterOverflow {
        /// Wall time at which the counter ran out.
        wall_ms: u64,
    },
    /// The physical clock returned something that is not a usable millisecond reading.
    #[error("invalid clock reading {0} (must be 0 ..= 2^48-1 ms)")]
    InvalidClockReading(u64),
    /// The peer speaks a protocol version this build does not.
    #[error("unsupported protocol version {got} (this side speaks {supported})")]
    UnsupportedVersion {
        /// Version in the message.
        got: u32,
        /// Version this build speaks.
        supported: u32,
    },
    /// A request breaks a protocol limit or rule.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A reply breaks a protocol rule; nothing from it is applied.
    #[error("invalid reply: {0}")]
    InvalidReply(String),
    /// A message is larger than the protocol allows.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    BodyTooLarge {
        /// Size of the message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A reply carries a record stamped with the requesting node's own id.
    #[error("reply echoes a record of our own node {0}")]
    OwnNodeEchoed(String),
    /// The request's node id was claimed by another device of this user (its device secret
    /// differs, or the request carries none); nothing of the request is applied.
    #[error("node id {0} belongs to another device of this user")]
    NodeIdTaken(String),
    /// A push or a content upload would take its user past one of the server's per-user caps
    /// (plugins, nodes, records or content bytes); nothing of the request is applied.
    #[error("user quota exceeded: the push would hold more than {max} {cap} for this user")]
    UserQuotaExceeded {
        /// Which cap: `"plugins"`, `"nodes"`, `"records"` or `"content bytes"`.
        cap: &'static str,
        /// The cap.
        max: u64,
    },
    /// A reply's coverage is below what the reply itself or the request's push proves.
    #[error("watermark regression: {0}")]
    WatermarkRegression(String),
    /// A reply says `hasMore` but carries nothing that would move the next round forward.
    #[error("reply says hasMore but makes no progress")]
    NoProgress,
    /// A record's `json` value is not JSON text (RFC 8259); nothing of its message is applied.
    #[error("record {record}: value is not JSON: {reason}")]
    InvalidJson {
        /// The record: `plugin/key@hlc` (plugin and key truncated to 80 chars).
        record: String,
        /// What the grammar expected, and at which byte.
        reason: String,
    },
    /// Content fetched for a reference does not hash to its digest (or has another size);
    /// nothing of it is stored.
    #[error("content does not match its reference: expected sha256 {expected}, got {got}")]
    ContentHashMismatch {
        /// The reference's digest.
        expected: String,
        /// What the fetched content hashed to, and its size.
        got: String,
    },
    /// A pushed reference names content the server does not hold for this dataset (upload it
    /// first); nothing of the request is applied.
    #[error("content {0} was not uploaded before the record that references it")]
    ContentMissing(String),
}

impl Error {
    /// Stable machine-readable code, identical on client, server and in the docs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidPluginId { .. } => "invalid_plugin_id",
            Error::InvalidKey { .. } => "invalid_key",
            Error::InvalidNodeId(_) => "invalid_node_id",
            Error::InvalidHlc { .. } => "invalid_hlc",
            Error::ValueTooLarge { .. } => "value_too_large",
            Error::ClockDrift { .. } => "clock_drift",
            Error::CounterOverflow { .. } => "counter_overflow",
            Error::InvalidClockReading(_) => "invalid_clock_reading",
            Error::UnsupportedVersion { .. } => "unsupported_version",
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidReply(_) => "invalid_reply",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::OwnNodeEchoed(_) => "own_node_echoed",
            Error::NodeIdTaken(_) => "node_id_taken",
            Error::UserQuotaExceeded { .. } => "user_quota_exceeded",
            Error::WatermarkRegression(_) => "watermark_regression",
            Error::NoProgress => "no_progress",
            Error::InvalidJson { .. } => "invalid_json",
            Error::ContentHashMismatch { .. } => "content_hash_mismatch",
            Error::ContentMissing(_) => "content_missing",
        }
    }

    /// The JS error class name for this kind (`Error.name` at the boundary).
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidPluginId { .. } => "InvalidPluginIdError",
            Error::InvalidKey { .. } => "InvalidKeyError",
            Error::InvalidNodeId(_) => "InvalidNodeIdError",
            Error::InvalidHlc { .. } => "InvalidHlcError",
            Error::ValueTooLarge { .. } => "ValueTooLargeError",
            Error::ClockDrift { .. } => "ClockDriftError",
            Error::CounterOverflow { .. } => "CounterOverflowError",
            Error::InvalidClockReading(_) => "InvalidClockReadingError",
            Error::UnsupportedVersion { .. } => "UnsupportedVersionError",
            Error::InvalidRequest(_) => "InvalidRequestError",
            Error::InvalidReply(_) => "InvalidReplyError",
            Error::BodyTooLarge { .. } => "BodyTooLargeError",
            Error::OwnNodeEchoed(_) => "OwnNodeEchoedError",
            Error::NodeIdTaken(_) => "NodeIdTakenError",
            Error::UserQuotaExceeded { .. } => "UserQuotaExceededError",
            Error::WatermarkRegression(_) => "WatermarkRegressionError",
            Error::NoProgress => "NoProgressError",
            Error::InvalidJson { .. } => "InvalidJsonError",
            Error::ContentHashMismatch { .. } => "ContentHashMismatchError",
            Error::ContentMissing(_) => "ContentMissingError",
        }
    }
}

/// Why end-to-end encryption (`core::sealed`) refused a record or could not run. A round that
/// meets one changes nothing: no record applied, no watermark moved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// A record did not authenticate under the key its envelope names: the wrong key, or a
    /// server that changed, swapped or replayed a ciphertext under another key or stamp.
    #[error(
        "record {0} failed to decrypt: wrong key, or the server altered, swapped or replayed it"
    )]
    DecryptionFailed(String),
    /// A record was sealed with a key this device does not hold (rotated by another device).
    #[error("record {record} is sealed with key id {sealed_with}, which this device does not hold (its key id is {held}): another device rotated the key; open with the new key (and the old ones in previousKeys)")]
    KeyUnknown {
        /// The record, as it travels: `plugin/key@hlc`.
        record: String,
        /// Key id in its envelope.
        sealed_with: String,
        /// Key id this device seals with.
        held: String,
    },
    /// A record that should be sealed is not a well-formed envelope or plaintext.
    #[error("sealed record invalid: {0}")]
    Invalid(String),
    /// WebCrypto is missing or refused an operation (also: a malformed key).
    #[error("encryption unavailable: {0}")]
    Unavailable(String),
}

impl SealError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SealError::DecryptionFailed(_) => "decryption_failed",
            SealError::KeyUnknown { .. } => "encryption_key_unknown",
            SealError::Invalid(_) => "sealed_record_invalid",
            SealError::Unavailable(_) => "encryption_unavailable",
        }
    }

    /// The JS error's `name`.
    pub fn name(&self) -> &'static str {
        match self {
            SealError::DecryptionFailed(_) => "DecryptionFailedError",
            SealError::KeyUnknown { .. } => "EncryptionKeyUnknownError",
            SealError::Invalid(_) => "SealedRecordInvalidError",
            SealError::Unavailable(_) => "EncryptionUnavailableError",
        }
    }
}

/// Shortens user-supplied text before it goes into an error message.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A serde error that keeps the typed code: `[code] message`. [`crate::core::protocol::ErrorBody::from_parse_error`]
/// recovers the code on the receiving side.
pub(crate) fn de_error<E: serde::de::Error>(err: Error) -> E {
    E::custom(format_args!("[{}] {}", err.code(), err))
}

/// Result with the core's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_names_end_in_error() {
        let all = [
            Error::InvalidPluginId {
                id: String::new(),
                reason: "",
            },
            Error::InvalidKey {
                key: String::new(),
                reason: "",
            },
            Error::InvalidNodeId(String::new()),
            Error::InvalidHlc {
                text: String::new(),
                reason: "",
            },
            Error::ValueTooLarge { size: 0, max: 0 },
            Error::ClockDrift {
                remote_ms: 0,
                ahead_ms: 0,
                max_drift_ms: 0,
            },
            Error::CounterOverflow { wall_ms: 0 },
            Error::InvalidClockReading(0),
            Error::UnsupportedVersion {
                got: 0,
                supported: 1,
            },
            Error::InvalidRequest(String::new()),
            Error::InvalidReply(String::new()),
            Error::BodyTooLarge { size: 0, max: 0 },
            Error::OwnNodeEchoed(String::new()),
            Error::NodeIdTaken(String::new()),
            Error::UserQuotaExceeded {
                cap: "plugins",
                max: 0,
            },
            Error::WatermarkRegression(String::new()),
            Error::NoProgress,
            Error::InvalidJson {
                record: String::new(),
                reason: String::new(),
            },
            Error::ContentHashMismatch {
                expected: String::new(),
                got: String::new(),
            },
            Error::ContentMissing(String::new()),
        ];
        let mut codes: Vec<_> = all.iter().map(Error::code).collect();
        for code in &codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|e| e.name().ends_with("Error")));
    }

    #[test]
    fn seal_codes_are_distinct_from_each_other_and_from_the_core() {
        let all = [
            SealError::DecryptionFailed(String::new()),
            SealError::KeyUnknown {
                record: String::new(),
                sealed_with: String::new(),
                held: String::new(),
            },
            SealError::Invalid(String::new()),
            SealError::Unavailable(String::new()),
        ];
        let mut codes: Vec<_> = all.iter().map(SealError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|e| e.name().ends_with("Error")));
        assert!(!codes.contains(&Error::NoProgress.code()));
    }

    #[test]
    fn excerpt_cuts_long_text_on_a_char_boundary() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 81);
        assert!(cut.ends_with('…'));
    }
}
