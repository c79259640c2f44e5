//! Whether writes succeed. A full disk leaves reads (and `/health`'s ping) working while every
//! push fails, so `/health` also reports the last write: unhealthy after a push whose
//! transaction failed in the database, until a push succeeds again. (The cause goes to the log
//! with the 500 `internal` answer, not to `/health`, which anyone may call.)

use std::sync::atomic::{AtomicBool, Ordering};

/// The outcome of the last push.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failed: AtomicBool,
}

impl WriteHealth {
    /// A push was committed.
    pub fn succeeded(&self) {
        self.failed.store(false, Ordering::SeqCst);
    }

    /// A push failed in the database.
    pub fn failed(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Whether the last push failed.
    pub fn last_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_reported_until_one_succeeds() {
        let health = WriteHealth::default();
        assert!(!health.last_failed());
        health.failed();
        assert!(health.last_failed());
        health.succeeded();
        assert!(!health.last_failed());
    }
}
