//! The localStorage journal's browser half: append an entry synchronously, remove it once
//! committed, and find the entries dead tabs left behind. Encoding and budget: `journal.rs`.

use js_sys::JsString;
use web_sys::Storage;

use super::codec::{joined_value, js_failure, JsIds};
use super::error::StoreResult;
use super::journal::{self, Budget};
pub use super::journal::{Appended, Found};
use crate::browser::web_storage::{
    get_item_text, item_is_exact, journal_entry, journal_key, keys_with_prefix, remove_item_text,
    set_item_text,
};
use crate::core::sorted::sort_by;
use crate::core::Record;

/// A journal entry that does not decode.
#[derive(Debug, Clone)]
pub struct CorruptEntry {
    /// Its localStorage key.
    pub key: String,
    /// The slot its key names.
    pub slot: u32,
    /// Its sequence number.
    pub seq: u64,
    /// The stored text.
    pub entry: String,
    /// What does not decode.
    pub why: journal::Corrupt,
}

/// An entry this instance holds: its localStorage key as a JS string (a write's key is joined
/// in JS, so it is never copied out of wasm) and what it costs the budget.
#[derive(Debug, Clone)]
pub struct Held {
    /// The localStorage key.
    pub key: JsString,
    /// Bytes reserved in the budget.
    pub cost: usize,
}

impl From<&Appended> for Held {
    fn from(entry: &Appended) -> Self {
        Held {
            key: entry.key.as_str().into(),
            cost: entry.cost,
        }
    }
}

/// This instance's journal.
#[derive(Debug)]
pub struct Journal {
    storage: Storage,
    prefix: String,
    /// `prefix` and `<slot>:` as a JS string: a write's key is this and its sequence number.
    slot_prefix: JsString,
    slot: u32,
    next_seq: u64,
    budget: Budget,
}

impl Journal {
    /// The journal of `slot` in database `db`, appending from `next_seq`.
    pub fn new(storage: Storage, db: &str, slot: u32, next_seq: u64, budget: usize) -> Self {
        let prefix = journal::prefix(db);
        Journal {
            storage,
            slot_prefix: format!("{prefix}{slot}:").as_str().into(),
            prefix,
            slot,
            next_seq,
            budget: Budget::new(budget),
        }
    }

    /// Every entry of database `db`, from any slot: the well-formed ones, and those that do
    /// not decode (for quarantine) as `(key, slot, seq, entry, why)`.
    pub fn scan(storage: &Storage, db: &str) -> (Vec<Found>, Vec<CorruptEntry>) {
        let prefix = journal::prefix(db);
        let mut found = Vec::new();
        let mut corrupt = Vec::new();
        for key in keys_with_prefix(storage, &prefix) {
            let Some((slot, seq)) = journal::parse_suffix(&key[prefix.len()..]) else {
                continue;
            };
            let Ok(Some(entry)) = storage.get_item(&key) else {
                continue;
            };
            // A lone surrogate (only by writing storage directly) reads as U+FFFD, so a key
            // holding one would alias another key: such an entry is corrupt.
            let decoded = match journal::decode(&entry) {
                Ok(_) if !item_is_exact(storage, &key, &entry) => Err(journal::LOSSY),
                other => other,
            };
            match decoded {
                Ok(record) => {
                    let cost = Budget::cost(&key, &entry);
                    found.push(Found {
                        key,
                        slot,
                        seq,
                        record,
                        cost,
                    });
                }
                Err(why) => corrupt.push(CorruptEntry {
                    key,
                    slot,
                    seq,
                    entry,
                    why,
                }),
            }
        }
        sort_by(&mut found, |a, b| (a.slot, a.seq).cmp(&(b.slot, b.seq)));
        (found, corrupt)
    }

    /// Moves a corrupt entry aside to `aside` (kept, never replayed); `false` if the browser
    /// refused (it then stays where it is, and is found again at the next open).
    pub fn move_aside(storage: &Storage, entry: &CorruptEntry, aside: &str) -> bool {
        // The stored JS string itself, so a lone surrogate is kept as it was.
        let Some(text) = get_item_text(storage, &entry.key) else {
            return false;
        };
        if set_item_text(storage, &aside.into(), &text).is_err() {
            return false;
        }
        storage.remove_item(&entry.key).is_ok()
    }

    /// Appends `record` synchronously. `Ok(None)` if it does not fit the budget (the caller
    /// reports it as pending); a browser refusal (`QuotaExceededError`) is an error and nothing
    /// is written. The key is joined in JS from `ids`, and so is the entry of a JSON value (its
    /// text as the JS string `text`, see [`Encoded::text`]) or a tombstone, byte for byte
    /// [`journal::encode`]'s; other values are encoded here.
    ///
    /// [`Encoded::text`]: super::codec::Encoded::text
    pub fn append(
        &mut self,
        record: &Record,
        text: Option<&JsString>,
        ids: &JsIds,
    ) -> StoreResult<Option<Held>> {
        let seq = self.next_seq;
        let key_len = journal::key(&self.prefix, self.slot, seq).len();
        // Joined in JS (`Ok`: the text, if any), or encoded here (`Err`).
        let entry = joined_value(record, text).ok_or_else(|| journal::encode(record));
        let len = entry
            .as_ref()
            .map_or_else(String::len, |_| journal::joined_len(record));
        let cost = Budget::cost_of(key_len, len);
        // Over the budget nothing crosses to JS (a bulk loop of set()s gets here thousands of
        // times).
        if !self.budget.try_reserve(cost) {
            return Ok(None);
        }
        let key = journal_key(&self.slot_prefix, seq as f64);
        let entry = match entry {
            Ok(text) => journal_entry(&ids.stamp, &ids.plugin, &ids.key, text),
            Err(encoded) => encoded.as_str().into(),
        };
        if let Err(e) = set_item_text(&self.storage, &key, &entry) {
            self.budget.release(cost);
            return Err(js_failure(&e));
        }
        self.next_seq += 1;
        Ok(Some(Held { key, cost }))
    }

    /// Counts an entry taken over from a dead tab, so the budget reflects what is stored.
    pub fn adopt(&mut self, cost: usize) {
        self.budget.force_reserve(cost);
    }

    /// Removes a committed entry.
    pub fn remove(&mut self, entry: &Held) {
        let _ = remove_item_text(&self.storage, &entry.key);
        self.budget.release(entry.cost);
    }

    /// Bytes the journal holds.
    pub fn used(&self) -> usize {
        self.budget.used()
    }
}
