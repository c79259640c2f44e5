//! Typed errors of the storage area: what `set`, `get`, `open`, `flush` and friends reject with.
//! Each kind has a JS class name and a stable snake_case code (see [`crate::error::Coded`]).

use crate::error::Coded;

/// Why a storage operation failed. A failed write changes nothing: index, journal and database
/// are left as they were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A core rule was broken: invalid plugin id, invalid key, value too large, clock trouble.
    #[error(transparent)]
    Core(#[from] crate::core::Error),
    /// The value cannot be stored: it is not JSON-representable (undefined, a function, NaN,
    /// Infinity, a BigInt, a cycle, ...) and not a `Uint8Array`.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// The plugin's configured byte quota would be exceeded.
    #[error("plugin {plugin} would use {requested} bytes, over its quota of {quota} bytes")]
    QuotaExceeded {
        /// The plugin whose quota applies.
        plugin: String,
        /// Bytes the plugin would use after the write.
        requested: usize,
        /// The configured quota.
        quota: usize,
    },
    /// The browser refused the write for lack of space (`QuotaExceededError` from localStorage
    /// or IndexedDB).
    #[error("the browser's storage quota is exhausted: {0}")]
    BrowserQuota(String),
    /// No usable storage (IndexedDB and localStorage missing or refused, or an engine forced by
    /// an option is not available).
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// The store was closed; open a new instance.
    #[error("the store is closed")]
    StoreClosed,
    /// The storage engine failed for a reason other than space.
    #[error("storage failed: {0}")]
    Storage(String),
    /// The stored value of (plugin, key) does not decode (storage edited or damaged outside
    /// this library); it is quarantined, `keys` and `scan` skip it until a write replaces it.
    #[error("the stored value of {plugin}/{key} is corrupt ({reason}); write it again")]
    CorruptValue {
        /// The plugin.
        plugin: String,
        /// The key.
        key: String,
        /// What did not decode.
        reason: String,
    },
    /// `get` of a value synced by reference whose content is not local yet (protocol v2, lazy
    /// hydration): `await getAsync(key)` or `hydrateFile("plugin/key")` fetches it.
    #[error("the value of {plugin}/{key} is not hydrated yet; use getAsync or hydrateFile")]
    NotHydrated {
        /// The plugin.
        plugin: String,
        /// The key.
        key: String,
    },
    /// An option passed to `open`, `keys`, `scan` or `plugin` is malformed.
    #[error("invalid option: {0}")]
    InvalidOptions(String),
    /// A fenced write's lock epoch is no longer the newest: another holder was granted the
    /// lock since. Nothing was written.
    #[error("lock {lock} was lost: epoch {epoch} is older than {newer}")]
    LockLost {
        /// The Web Lock name (`DistributedLock.name`).
        lock: String,
        /// The epoch the write was made under.
        epoch: u64,
        /// The newer epoch found in the database.
        newer: u64,
    },
}

impl Coded for StoreError {
    fn name(&self) -> &'static str {
        match self {
            StoreError::Core(e) => e.name(),
            StoreError::InvalidValue(_) => "InvalidValueError",
            StoreError::QuotaExceeded { .. } | StoreError::BrowserQuota(_) => "QuotaExceededError",
            StoreError::StorageUnavailable(_) => "StorageUnavailableError",
            StoreError::StoreClosed => "StoreClosedError",
            StoreError::Storage(_) => "StorageError",
            StoreError::CorruptValue { .. } => "CorruptValueError",
            StoreError::NotHydrated { .. } => "NotHydratedError",
            StoreError::InvalidOptions(_) => "InvalidOptionsError",
            StoreError::LockLost { .. } => "LockLostError",
        }
    }

    fn code(&self) -> &'static str {
        match self {
            StoreError::Core(e) => e.code(),
            StoreError::InvalidValue(_) => "invalid_value",
            StoreError::QuotaExceeded { .. } | StoreError::BrowserQuota(_) => "quota_exceeded",
            StoreError::StorageUnavailable(_) => "storage_unavailable",
            StoreError::StoreClosed => "store_closed",
            StoreError::Storage(_) => "storage_failed",
            StoreError::CorruptValue { .. } => "corrupt_value",
            StoreError::NotHydrated { .. } => "not_hydrated",
            StoreError::InvalidOptions(_) => "invalid_options",
            StoreError::LockLost { .. } => "lock_lost",
        }
    }

    /// `CorruptValueError` and `NotHydratedError` name their `plugin` and `key`.
    fn fields(&self, put: &mut dyn FnMut(&'static str, crate::error::Field<'_>)) {
        if let StoreError::CorruptValue { plugin, key, .. }
        | StoreError::NotHydrated { plugin, key } = self
        {
            put("plugin", crate::error::Field::Text(plugin));
            put("key", crate::error::Field::Text(key));
        }
    }
}

/// Result with [`StoreError`].
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_names_end_in_error_and_core_codes_pass_through() {
        let all = [
            StoreError::Core(crate::core::Error::InvalidKey {
                key: String::new(),
                reason: "",
            }),
            StoreError::InvalidValue(String::new()),
            StoreError::QuotaExceeded {
                plugin: String::new(),
                requested: 0,
                quota: 0,
            },
            StoreError::BrowserQuota(String::new()),
            StoreError::StorageUnavailable(String::new()),
            StoreError::StoreClosed,
            StoreError::Storage(String::new()),
            StoreError::InvalidOptions(String::new()),
            StoreError::CorruptValue {
                plugin: String::new(),
                key: String::new(),
                reason: String::new(),
            },
            StoreError::NotHydrated {
                plugin: String::new(),
                key: String::new(),
            },
        ];
        for e in &all {
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(e.name().ends_with("Error"));
        }
        assert_eq!(all[0].code(), "invalid_key");
        assert_eq!(all[0].name(), "InvalidKeyError");
        assert_eq!(all[2].code(), all[3].code());
        assert_eq!(all[2].name(), "QuotaExceededError");
    }
}
