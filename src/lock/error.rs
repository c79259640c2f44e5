//! Typed errors of the lock area. Each kind has a JS class name and a stable `code`
//! ([`crate::error::Coded`]); the JS boundary adds the extra fields (`holder`, `path`, `epoch`).

use thiserror::Error;

use crate::error::Field;

/// What went wrong while acquiring, holding, releasing or fencing a lock.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LockError {
    /// `maxWaitMs` passed while another holder kept the lock (and renewed its lease).
    #[error("timed out after {waited_ms} ms waiting for lock {path:?} held by {holder}")]
    Timeout {
        /// The lock's path.
        path: String,
        /// The holder named by the lease, or `"unknown"` when no lease describes it.
        holder: String,
        /// How long the caller waited.
        waited_ms: u64,
    },
    /// The lock was taken from this holder (stale lease stolen, `forceRelease`), or a write
    /// made under `epoch` found a newer epoch in the database.
    #[error("lock {lock:?} was lost: epoch {epoch} is no longer current{}", newer_text(*.newer))]
    Lost {
        /// The Web Lock name.
        lock: String,
        /// The epoch of the grant that was lost.
        epoch: u64,
        /// The newer epoch found in the database, when the loss was found by fencing.
        newer: Option<u64>,
    },
    /// No `navigator.locks` in this context (insecure origin, old browser, no navigator).
    #[error("the Web Locks API (navigator.locks) is not available here: {0}")]
    Unavailable(String),
    /// The caller's `AbortSignal` fired while waiting; no lock is held.
    #[error("waiting for lock {path:?} was aborted")]
    Aborted {
        /// The lock's path.
        path: String,
    },
    /// The lease (localStorage) or epoch (IndexedDB) storage failed.
    #[error("lock storage failed: {0}")]
    Storage(String),
    /// `createLock` options out of range.
    #[error("invalid lock options: {0}")]
    InvalidOptions(String),
    /// `navigator.locks` rejected a request for a reason other than the ones above.
    #[error("navigator.locks failed: {0}")]
    Failed(String),
}

fn newer_text(newer: Option<u64>) -> String {
    match newer {
        Some(n) => format!(" (epoch {n} exists)"),
        None => String::new(),
    }
}

impl LockError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LockError::Timeout { .. } => "lock_timeout",
            LockError::Lost { .. } => "lock_lost",
            LockError::Unavailable(_) => "locks_unavailable",
            LockError::Aborted { .. } => "aborted",
            LockError::Storage(_) => "lock_storage",
            LockError::InvalidOptions(_) => "invalid_lock_options",
            LockError::Failed(_) => "lock_failed",
        }
    }

    /// The JS error class name. An abort is an `AbortError`, as `fetch` and `navigator.locks`
    /// name theirs, so `e.name === "AbortError"` checks keep working.
    pub fn name(&self) -> &'static str {
        match self {
            LockError::Timeout { .. } => "LockTimeoutError",
            LockError::Lost { .. } => "LockLostError",
            LockError::Unavailable(_) => "LocksUnavailableError",
            LockError::Aborted { .. } => "AbortError",
            LockError::Storage(_) => "LockStorageError",
            LockError::InvalidOptions(_) => "InvalidLockOptionsError",
            LockError::Failed(_) => "LockFailedError",
        }
    }
}

impl crate::error::Coded for LockError {
    fn name(&self) -> &'static str {
        LockError::name(self)
    }
    fn code(&self) -> &'static str {
        LockError::code(self)
    }
    /// `holder`, `path`, `waitedMs` of a timeout; `lock`, `epoch` of a loss; `path` of an abort.
    fn fields(&self, put: &mut dyn FnMut(&'static str, Field<'_>)) {
        match self {
            LockError::Timeout {
                path,
                holder,
                waited_ms,
            } => {
                put("holder", Field::Text(holder));
                put("path", Field::Text(path));
                put("waitedMs", Field::Number(*waited_ms as f64));
            }
            LockError::Lost { lock, epoch, .. } => {
                put("lock", Field::Text(lock));
                put("epoch", Field::Number(*epoch as f64));
            }
            LockError::Aborted { path } => put("path", Field::Text(path)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_names_are_error_classes() {
        let all = [
            LockError::Timeout {
                path: "p".into(),
                holder: "h".into(),
                waited_ms: 1,
            },
            LockError::Lost {
                lock: "l".into(),
                epoch: 1,
                newer: Some(2),
            },
            LockError::Unavailable(String::new()),
            LockError::Aborted { path: "p".into() },
            LockError::Storage(String::new()),
            LockError::InvalidOptions(String::new()),
            LockError::Failed(String::new()),
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(LockError::code).collect();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            assert!(e.name().ends_with("Error"), "{}", e.name());
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn messages_name_the_holder_and_the_newer_epoch() {
        let timeout = LockError::Timeout {
            path: "notes/export".into(),
            holder: "tab-7".into(),
            waited_ms: 250,
        };
        assert!(timeout.to_string().contains("tab-7"));
        assert!(timeout.to_string().contains("notes/export"));
        let lost = LockError::Lost {
            lock: "x".into(),
            epoch: 3,
            newer: Some(4),
        };
        assert!(lost.to_string().contains("epoch 4 exists"), "{lost}");
    }
}
