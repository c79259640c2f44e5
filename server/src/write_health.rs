//! Whether writes succeed. A full disk leaves reads (and `/health`'s ping) working while every
//! push fails, so `/health` also reports the last write: unhealthy after a push whose
//! transaction failed, until a push succeeds again.

use std::sync::Mutex;

/// The outcome of the last push.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// Why the last push failed, or `None` when it succeeded (or none failed yet).
    failure: Mutex<Option<String>>,
}

impl WriteHealth {
    fn set(&self, value: Option<String>) {
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }

    /// A push was committed.
    pub fn succeeded(&self) {
        self.set(None);
    }

    /// A push failed in the database.
    pub fn failed(&self, cause: &dyn std::fmt::Display) {
        self.set(Some(cause.to_string()));
    }

    /// Why the last push failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_reported_until_one_succeeds() {
        let health = WriteHealth::default();
        assert_eq!(health.failure(), None);
        health.failed(&"database or disk is full");
        assert_eq!(
            health.failure().as_deref(),
            Some("database or disk is full")
        );
        health.succeeded();
        assert_eq!(health.failure(), None);
    }
}
