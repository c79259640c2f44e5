//! Removing records without a trace (tombstone collection, issue 16): tombstones the server
//! reports collected and records a full resync found deleted. Unlike a delete, nothing is
//! written in their place, so nothing is journaled, pushed or posted to other tabs; each
//! removal takes only the version it names, so a newer write of the key (from this tab or
//! another) stays.

use super::db::Db;
use super::error::StoreResult;
use crate::core::{Key, PluginId, Record};

impl Db {
    /// Removes `records` (each only while still stored with its stamp) in one transaction, then
    /// from the index and the read cache. Returns the (plugin, key) pairs removed here.
    pub async fn remove_synced(&self, records: &[Record]) -> StoreResult<Vec<(PluginId, Key)>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.state.borrow().check_open()?;
        self.inner.engine.remove(records)?.done().await?;
        let mut st = self.inner.state.borrow_mut();
        Ok(records
            .iter()
            .filter_map(|r| st.records.remove(r))
            .collect())
    }
}
