//! An open store's lifecycle as one state instead of flags: `Open` (serves calls), `Closing`
//! (`close()` was called: calls are refused while the last writes commit), `Closed` (slot
//! released, channel left, engine disconnected: queued batches stop without touching storage).
//! Pure, tested natively.

/// Where an open store is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lifecycle {
    /// Serving calls.
    #[default]
    Open,
    /// `close()` is flushing: calls fail with `StoreClosed`, batches still commit.
    Closing,
    /// Shut down: nothing touches storage any more.
    Closed,
}

impl Lifecycle {
    /// Whether the API serves calls.
    pub fn is_open(self) -> bool {
        self == Lifecycle::Open
    }

    /// Whether batches must stop (the engine is gone).
    pub fn is_shut_down(self) -> bool {
        self == Lifecycle::Closed
    }

    /// `Open` → `Closing`; returns whether this call started closing (a second `close()`, or
    /// one after a shutdown, has nothing to do).
    pub fn begin_close(&mut self) -> bool {
        let open = self.is_open();
        if open {
            *self = Lifecycle::Closing;
        }
        open
    }

    /// Any state → `Closed` (the end of `close()`, or a simulated crash).
    pub fn shut_down(&mut self) {
        *self = Lifecycle::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_refuses_calls_but_keeps_committing_until_shut_down() {
        let mut life = Lifecycle::default();
        assert!(life.is_open() && !life.is_shut_down());
        assert!(life.begin_close());
        assert!(!life.is_open() && !life.is_shut_down());
        assert!(!life.begin_close(), "a second close has nothing to do");
        life.shut_down();
        assert!(!life.is_open() && life.is_shut_down());
        assert!(!life.begin_close());
    }

    #[test]
    fn a_crash_shuts_down_an_open_store_directly() {
        let mut life = Lifecycle::Open;
        life.shut_down();
        assert_eq!(life, Lifecycle::Closed);
    }
}
