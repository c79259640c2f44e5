//! Removing records without a trace (tombstone collection, issue 16): tombstones the server
//! reports collected and records a full resync found deleted. Unlike a delete, nothing is
//! written in their place, so nothing is journaled or pushed; each removal takes only the
//! version it names (and, in IndexedDB, older versions a pack or a row may still hold, which
//! would otherwise come back at the next open), so a newer write of the key (from this tab or
//! another) stays. Other tabs
//! of the database hear of it over the bus (`{ removed: rows }`, in posting order) and remove
//! the same versions from their indexes.

use super::db::Db;
use super::error::StoreResult;
use crate::browser::interop::Obj;
use crate::core::{Key, PluginId, Record};

impl Db {
    /// Removes `records` (each only while still stored with its stamp) in one transaction, then
    /// from the index and the read cache, and tells the other tabs. Returns the (plugin, key)
    /// pairs removed here.
    pub async fn remove_synced(&self, records: &[Record]) -> StoreResult<Vec<(PluginId, Key)>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.inner.state.borrow().check_open()?;
        let ticket = self.inner.bus.reserve();
        let result = match self.inner.engine.remove(records) {
            Ok(started) => started.done().await,
            Err(e) => Err(e),
        };
        let message = Obj::new().with("removed", Db::rows(records)).into();
        self.fill_post(ticket, result.is_ok().then_some(message));
        result?;
        Ok(self.remove_from_index(records))
    }

    /// The in-memory half of a removal (here, or posted by another tab).
    pub(crate) fn remove_from_index(&self, records: &[Record]) -> Vec<(PluginId, Key)> {
        let mut st = self.inner.state.borrow_mut();
        records
            .iter()
            .filter_map(|r| st.records.remove(r))
            .collect()
    }
}
