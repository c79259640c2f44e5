//! Per-plugin byte quotas, decided before the browser's own. Pure.
//!
//! A plugin's usage is the sum over its live records of key bytes plus value bytes (UTF-8 key,
//! JSON text or raw bytes). Tombstones cost nothing, so deleting frees quota.
//!
//! Records a sync round applies are other devices' writes: refusing them would leave this
//! device diverged forever, so they are applied even beyond the quota and the plugin is then
//! reported over quota ([`over_quota`]: `metadata().overQuota`, an `over-quota` event). Local
//! growth stays refused ([`check`]) until deletes bring it back under.

use super::error::{StoreError, StoreResult};
use crate::core::sorted::SortedMap;
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

/// A plugin whose usage is beyond its quota (only sync can put it there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverQuota {
    /// The plugin.
    pub plugin: PluginId,
    /// Bytes it uses.
    pub used: usize,
    /// Its quota.
    pub quota: usize,
}

/// Which of `plugins` are over their quota in `quotas`, given their usage.
pub fn over_quota<'a>(
    quotas: &SortedMap<PluginId, usize>,
    usage: impl Fn(&PluginId) -> usize,
    plugins: impl IntoIterator<Item = &'a PluginId>,
) -> Vec<OverQuota> {
    let mut out: Vec<OverQuota> = Vec::new();
    for plugin in plugins {
        let Some(&quota) = quotas.get(plugin) else {
            continue;
        };
        let used = usage(plugin);
        if used > quota && out.iter().all(|o| &o.plugin != plugin) {
            out.push(OverQuota {
                plugin: plugin.clone(),
                used,
                quota,
            });
        }
    }
    out
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
    fn plugins_past_their_quota_are_reported_once_others_not() {
        let (a, b, c) = (
            p(),
            PluginId::new("b").unwrap(),
            PluginId::new("c").unwrap(),
        );
        let quotas = SortedMap::from_iter([(a.clone(), 100), (b.clone(), 100)]);
        let usage = |id: &PluginId| match id.as_str() {
            "p" => 101,
            "b" => 100,
            _ => 1_000_000,
        };
        let over = over_quota(&quotas, usage, [&a, &b, &c, &a]);
        assert_eq!(
            over,
            [OverQuota {
                plugin: a.clone(),
                used: 101,
                quota: 100
            }],
            "b is at (not over) its quota, c has none, a is listed once"
        );
        assert!(over_quota(&quotas, |_| 0, quotas.keys()).is_empty());
    }

    #[test]
    fn shrinking_is_allowed_over_quota() {
        assert!(check(&p(), Some(10), 50, 40, 20).is_ok());
        assert!(check(&p(), Some(10), 50, 40, 0).is_ok());
    }
}
