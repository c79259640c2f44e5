//! Per-plugin byte quotas, decided before the browser's own. Pure.
//!
//! A plugin's usage is the sum over its live records of key bytes plus value bytes (UTF-8 key,
//! JSON text or raw bytes). Tombstones cost nothing, so deleting frees quota.

use super::error::{StoreError, StoreResult};
use crate::core::{Key, PluginId, Value};

/// Bytes one live record counts against its plugin's quota.
pub fn record_cost(key: &Key, value: Option<&Value>) -> usize {
    value.map_or(0, |v| key.as_str().len() + v.size())
}

/// Checks that replacing a record costing `old` bytes with one costing `new` keeps `plugin`
/// within `quota`, given its current usage `used` (which includes `old`).
pub fn check(
    plugin: &PluginId,
    quota: Option<usize>,
    used: usize,
    old: usize,
    new: usize,
) -> StoreResult<()> {
    let Some(quota) = quota else { return Ok(()) };
    let requested = used.saturating_sub(old).saturating_add(new);
    // Shrinking or keeping a record is always allowed, even over quota (e.g. a lowered quota).
    if new > old && requested > quota {
        return Err(StoreError::QuotaExceeded {
            plugin: plugin.to_string(),
            requested,
            quota,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PluginId {
        PluginId::new("p").unwrap()
    }

    #[test]
    fn cost_counts_key_and_value_and_tombstones_are_free() {
        let k = Key::new("abc").unwrap();
        assert_eq!(record_cost(&k, Some(&Value::Json("12".into()))), 5);
        assert_eq!(record_cost(&k, Some(&Value::Bytes(vec![0; 10]))), 13);
        assert_eq!(record_cost(&k, None), 0);
    }

    #[test]
    fn check_allows_up_to_the_quota_and_not_one_byte_more() {
        assert!(check(&p(), None, usize::MAX, 0, usize::MAX).is_ok());
        assert!(check(&p(), Some(100), 90, 0, 10).is_ok());
        let err = check(&p(), Some(100), 90, 0, 11).unwrap_err();
        assert_eq!(
            err,
            StoreError::QuotaExceeded {
                plugin: "p".into(),
                requested: 101,
                quota: 100
            }
        );
        // Replacing a record counts only the difference.
        assert!(check(&p(), Some(100), 100, 50, 50).is_ok());
        assert!(check(&p(), Some(100), 100, 50, 51).is_err());
    }

    #[test]
    fn shrinking_is_allowed_over_quota() {
        assert!(check(&p(), Some(10), 50, 40, 20).is_ok());
        assert!(check(&p(), Some(10), 50, 40, 0).is_ok());
    }
}
