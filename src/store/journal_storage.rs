//! The localStorage journal's browser half: append an entry synchronously, remove it once
//! committed, and find the entries dead tabs left behind. Encoding and budget: `journal.rs`.

use web_sys::Storage;

use super::codec::js_failure;
use super::error::StoreResult;
use super::journal::{self, Budget};
pub use super::journal::{Appended, Found};
use crate::browser::web_storage::keys_with_prefix;
use crate::core::Record;

/// This instance's journal.
#[derive(Debug)]
pub struct Journal {
    storage: Storage,
    prefix: String,
    slot: u32,
    next_seq: u64,
    budget: Budget,
}

impl Journal {
    /// The journal of `slot` in database `db`, appending from `next_seq`.
    pub fn new(storage: Storage, db: &str, slot: u32, next_seq: u64, budget: usize) -> Self {
        Journal {
            storage,
            prefix: journal::prefix(db),
            slot,
            next_seq,
            budget: Budget::new(budget),
        }
    }

    /// Every well-formed entry of database `db`, from any slot.
    pub fn scan(storage: &Storage, db: &str) -> Vec<Found> {
        let prefix = journal::prefix(db);
        let mut found: Vec<Found> = keys_with_prefix(storage, &prefix)
            .into_iter()
            .filter_map(|key| {
                let (slot, seq) = journal::parse_suffix(&key[prefix.len()..])?;
                let entry = storage.get_item(&key).ok()??;
                let record = journal::decode(&entry).ok()?;
                let cost = Budget::cost(&key, &entry);
                Some(Found {
                    key,
                    slot,
                    seq,
                    record,
                    cost,
                })
            })
            .collect();
        found.sort_by_key(|f| (f.slot, f.seq));
        found
    }

    /// Appends `record` synchronously. `Ok(None)` if it does not fit the budget (the caller
    /// reports it as pending); a browser refusal (`QuotaExceededError`) is an error and nothing
    /// is written.
    pub fn append(&mut self, record: &Record) -> StoreResult<Option<Appended>> {
        let key = journal::key(&self.prefix, self.slot, self.next_seq);
        let entry = journal::encode(record);
        let cost = Budget::cost(&key, &entry);
        if !self.budget.try_reserve(cost) {
            return Ok(None);
        }
        if let Err(e) = self.storage.set_item(&key, &entry) {
            self.budget.release(cost);
            return Err(js_failure(&e));
        }
        self.next_seq += 1;
        Ok(Some(Appended { key, cost }))
    }

    /// Counts an entry taken over from a dead tab, so the budget reflects what is stored.
    pub fn adopt(&mut self, cost: usize) {
        self.budget.force_reserve(cost);
    }

    /// Removes a committed entry.
    pub fn remove(&mut self, entry: &Appended) {
        let _ = self.storage.remove_item(&entry.key);
        self.budget.release(entry.cost);
    }

    /// Bytes the journal holds.
    pub fn used(&self) -> usize {
        self.budget.used()
    }
}
