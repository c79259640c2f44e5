//! Stored data that does not decode, kept aside and reported instead of trusted or fatal.
//! localStorage and IndexedDB contents are input: another build, an extension or a user with
//! devtools may have written them. Pure, tested natively.
//!
//! - A journal entry that does not decode, of a slot no live instance holds, is moved aside to
//!   `clientdata:<db>:quarantine:<slot>:<seq>` (kept, never replayed, never reused as a
//!   sequence number); one of a live slot is that instance's business and left alone.
//! - A record row that does not decode stays where it is (its place is the stored key) and is
//!   left out of the index: the rest of the database opens.
//! - A stored JSON value that does not parse is found when read (checking every value at open
//!   would cost each open a parse of the whole database): `get` of that key throws
//!   `CorruptValueError`, `keys` and `scan` skip it from then on, until a write replaces it.
//!
//! Each one is counted and listed (the first [`MAX_LISTED`]) in `metadata().quarantined`, the
//! verifier's details, and a `data-quarantined` event when found after open.

use std::collections::BTreeSet;

use crate::core::{Key, PluginId};

/// How many quarantined items are listed (all are counted).
pub const MAX_LISTED: usize = 100;

/// Where a quarantined item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A journal entry, now under this localStorage key.
    Journal(String),
    /// A record row: the IndexedDB key (`plugin/key` as far as readable) or localStorage item.
    Row(String),
    /// The stored value of a readable record.
    Value(PluginId, Key),
}

impl Place {
    /// `"journal"`, `"row"` or `"value"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Place::Journal(_) => "journal",
            Place::Row(_) => "row",
            Place::Value(..) => "value",
        }
    }

    /// The place as text.
    pub fn text(&self) -> String {
        match self {
            Place::Journal(key) | Place::Row(key) => key.clone(),
            Place::Value(plugin, key) => format!("{plugin}/{key}"),
        }
    }
}

/// One quarantined item and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where it is.
    pub place: Place,
    /// What did not decode.
    pub reason: String,
}

/// What has been quarantined since open.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Quarantine {
    listed: Vec<Quarantined>,
    count: usize,
    /// Keys whose stored value is corrupt and not yet replaced.
    values: BTreeSet<(PluginId, Key)>,
}

impl Quarantine {
    /// Records an item; `false` if it was known already (a corrupt value read twice).
    pub fn add(&mut self, item: Quarantined) -> bool {
        if let Place::Value(plugin, key) = &item.place {
            if !self.values.insert((plugin.clone(), key.clone())) {
                return false;
            }
        }
        self.count += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(item);
        }
        true
    }

    /// How many items were quarantined.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The first [`MAX_LISTED`] of them.
    pub fn listed(&self) -> &[Quarantined] {
        &self.listed
    }

    /// Whether (plugin, key)'s stored value is known corrupt (and not replaced since).
    pub fn is_corrupt_value(&self, plugin: &PluginId, key: &Key) -> bool {
        !self.values.is_empty() && self.values.contains(&(plugin.clone(), key.clone()))
    }

    /// A write replaced (plugin, key)'s value: it is readable again. It stays counted.
    pub fn replaced(&mut self, plugin: &PluginId, key: &Key) {
        if !self.values.is_empty() {
            self.values.remove(&(plugin.clone(), key.clone()));
        }
    }

    /// `keys` without the ones whose value is known corrupt.
    pub fn filter_keys(&self, plugin: &PluginId, mut keys: Vec<String>) -> Vec<String> {
        if self.values.iter().any(|(p, _)| p == plugin) {
            keys.retain(|k| {
                Key::new(k.as_str()).map_or(true, |k| !self.is_corrupt_value(plugin, &k))
            });
        }
        keys
    }
}

/// Whether a corrupt journal entry of `slot` is moved aside: only when no live instance holds
/// the slot (a live one may be rewriting it; its own open deals with it).
pub fn move_journal_entry(slot_held_by_other: bool) -> bool {
    !slot_held_by_other
}

/// Where a corrupt journal entry of database `db` is kept: the same slot and sequence numbers
/// under `quarantine:` (outside the journal's prefix, so never replayed again).
pub fn aside_key(db: &str, slot: u32, seq: u64) -> String {
    format!("clientdata:{db}:quarantine:{slot}:{seq}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal;

    fn value(plugin: &str, key: &str) -> Quarantined {
        Quarantined {
            place: Place::Value(PluginId::new(plugin).unwrap(), Key::new(key).unwrap()),
            reason: "not JSON".into(),
        }
    }

    #[test]
    fn values_are_counted_once_until_replaced_and_keys_skip_them() {
        let mut q = Quarantine::default();
        let (p, k) = (PluginId::new("notes").unwrap(), Key::new("bad").unwrap());
        assert!(!q.is_corrupt_value(&p, &k));
        assert!(q.add(value("notes", "bad")));
        assert!(
            !q.add(value("notes", "bad")),
            "a second read is not a second item"
        );
        assert_eq!(q.count(), 1);
        assert!(q.is_corrupt_value(&p, &k));
        let keys = vec!["a".to_owned(), "bad".to_owned(), "z".to_owned()];
        assert_eq!(q.filter_keys(&p, keys.clone()), ["a", "z"]);
        let other = PluginId::new("todo").unwrap();
        assert_eq!(
            q.filter_keys(&other, keys.clone()),
            keys,
            "other plugins untouched"
        );
        q.replaced(&p, &k);
        assert!(!q.is_corrupt_value(&p, &k));
        assert_eq!(q.filter_keys(&p, keys.clone()), keys);
        assert_eq!(q.count(), 1, "still counted");
        assert!(
            q.add(value("notes", "bad")),
            "corrupt again later: a new item"
        );
    }

    #[test]
    fn rows_and_entries_are_all_counted_and_the_first_ones_listed() {
        let mut q = Quarantine::default();
        for i in 0..MAX_LISTED + 5 {
            assert!(q.add(Quarantined {
                place: Place::Row(format!("r{i}")),
                reason: "invalid key".into(),
            }));
        }
        assert_eq!(q.count(), MAX_LISTED + 5);
        assert_eq!(q.listed().len(), MAX_LISTED);
        assert_eq!(q.listed()[0].place.text(), "r0");
        assert_eq!(q.listed()[0].place.kind(), "row");
    }

    #[test]
    fn corrupt_journal_entries_move_aside_only_from_slots_nobody_holds() {
        assert!(move_journal_entry(false));
        assert!(!move_journal_entry(true));
        let aside = aside_key("db", 3, 17);
        assert_eq!(aside, "clientdata:db:quarantine:3:17");
        assert!(
            !aside.starts_with(&journal::prefix("db")),
            "never replayed again"
        );
    }
}
