//! Wiped-store detection on the server (docs/PROTOCOL.md, `device` and `replacedStoreEpoch`). A
//! browser that drops both IndexedDB and localStorage (Safari's seven-day rule, "clear site
//! data") leaves nothing on the device that remembers its store, so only the server can notice:
//! per dataset and app-named device it keeps the store epoch it last saw, and a round from the
//! same device with another epoch comes from a store that replaced that one.
//!
//! Bounded: ids and epochs have capped lengths (`DeviceEpoch::check`), and a dataset remembers
//! at most `--max-devices-per-dataset` devices; a new one beyond it forgets the least recently
//! seen. `seen_ms` only orders that, so it is refreshed at most every [`REFRESH_MS`], and a
//! round whose device needs no write can be answered by a read-only connection.

use clientdata::core::{DeviceEpoch, ExchangeRequest};

use crate::backend::Transaction;

/// How stale a remembered device's `seen_ms` may get before a round refreshes it.
pub const REFRESH_MS: u64 = 60 * 60 * 1000;

/// What a dataset remembers of one device: its last store epoch and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// The store epoch of the device's last round.
    pub epoch: String,
    /// When that round ran (ms since the Unix epoch), refreshed every [`REFRESH_MS`].
    pub seen_ms: u64,
}

/// Whether a round of `device` must write: a device not remembered, another epoch, or a
/// `seen_ms` older than [`REFRESH_MS`].
pub fn write_due(remembered: Option<&Remembered>, device: &DeviceEpoch, now_ms: u64) -> bool {
    remembered
        .is_none_or(|r| r.epoch != device.epoch || now_ms.saturating_sub(r.seen_ms) >= REFRESH_MS)
}

/// The reply's `replacedStoreEpoch`: the remembered epoch, when it is another one.
pub fn replaced(remembered: Option<&Remembered>, device: &DeviceEpoch) -> Option<String> {
    remembered
        .filter(|r| r.epoch != device.epoch)
        .map(|r| r.epoch.clone())
}

/// The writer's part of a round: remembers the request's device (if any) with its epoch and
/// returns the reply's `replacedStoreEpoch`.
pub fn record<T: Transaction>(
    tx: &mut T,
    request: &ExchangeRequest,
    now_ms: u64,
    cap: u64,
) -> Result<Option<String>, T::Error> {
    let Some(device) = &request.device else {
        return Ok(None);
    };
    let remembered = tx.device(&device.id)?;
    if write_due(remembered.as_ref(), device, now_ms) {
        tx.remember_device(device, now_ms, remembered.is_none().then_some(cap))?;
    }
    Ok(replaced(remembered.as_ref(), device))
}

/// Whether a read-only round may answer `request`: it names no device, or its device needs
/// no write ([`write_due`]), and then nothing was replaced either.
pub fn read_only<T: Transaction>(
    tx: &mut T,
    request: &ExchangeRequest,
    now_ms: u64,
) -> Result<bool, T::Error> {
    let Some(device) = &request.device else {
        return Ok(true);
    };
    let remembered = tx.device(&device.id)?;
    Ok(!write_due(remembered.as_ref(), device, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(epoch: &str) -> DeviceEpoch {
        DeviceEpoch {
            id: "laptop".into(),
            epoch: epoch.into(),
        }
    }

    #[test]
    fn another_epoch_is_replaced_and_the_same_one_is_written_only_when_stale() {
        let seen = Remembered {
            epoch: "aa".into(),
            seen_ms: 1_000,
        };
        assert!(write_due(None, &device("aa"), 1_000));
        assert_eq!(replaced(None, &device("aa")), None);
        assert!(!write_due(
            Some(&seen),
            &device("aa"),
            1_000 + REFRESH_MS - 1
        ));
        assert!(write_due(Some(&seen), &device("aa"), 1_000 + REFRESH_MS));
        assert_eq!(replaced(Some(&seen), &device("aa")), None);
        assert!(write_due(Some(&seen), &device("bb"), 1_001));
        assert_eq!(replaced(Some(&seen), &device("bb")), Some("aa".into()));
        // A clock that went back never makes a remembered device due by itself.
        assert!(!write_due(Some(&seen), &device("aa"), 0));
    }
}
