//! Physical time from `Date.now()`, which exists in windows and workers alike.

use crate::core::hlc::{reading_from_f64, Clock};

/// The browser's wall clock. An unusable reading (NaN, negative, beyond 2^48 ms) is reported
/// as 0 by [`Clock::now_ms`]; use [`JsClock::try_now_ms`] to get the typed error instead.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsClock;

impl JsClock {
    /// The current time, or `InvalidClockReading`.
    pub fn try_now_ms(&self) -> crate::core::error::Result<u64> {
        reading_from_f64(js_sys::Date::now())
    }
}

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        self.try_now_ms().unwrap_or(0)
    }
}
