//! The crash-recovery decision made at open, pure so it is tested natively: which journal
//! entries this instance takes over (its own slot's, from a previous life, and those of slots
//! no live instance holds), which of them still win in the index and must be committed, which
//! are redundant, where this instance's journal continues, and how far its clock must move so
//! nothing it stamps next sorts before what a previous life of its slot already stamped.
//! `open.rs` reads the journal and the held locks, calls [`plan`], then carries it out.

use super::index::Index;
use super::journal::{Appended, Found};
use crate::core::{ClockState, Hlc, Key, NodeId, PluginId};

/// A journal entry to commit again: its record won in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The record's plugin.
    pub plugin: PluginId,
    /// The record's key.
    pub key: Key,
    /// The record's stamp.
    pub hlc: Hlc,
    /// The entry, removed from the journal once committed.
    pub entry: Appended,
}

/// What opening does with the journals it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The journal slot this instance appends to.
    pub journal_slot: u32,
    /// Its next sequence number (after every entry already there).
    pub next_seq: u64,
    /// The writer's clock state, moved past its own node's journaled stamps.
    pub clock: ClockState,
    /// Entries taken over, in journal order: each counts against this instance's budget.
    pub adopted: Vec<Appended>,
    /// Taken-over entries whose record won in the index: queued for the first commit.
    pub replayed: Vec<Replayed>,
    /// Taken-over entries already stored (or superseded): removed at once.
    pub redundant: Vec<Appended>,
}

/// What [`plan`] needs to know about this instance.
#[derive(Debug, Clone, Copy)]
pub struct Instance {
    /// The writer slot it holds (`None`: no Web Locks, or every slot taken).
    pub slot: Option<u32>,
    /// The journal slot to use without a writer slot (a random one no lock guards).
    pub lockless_slot: u32,
    /// Its node id.
    pub node: NodeId,
    /// Its clock state as stored with its slot.
    pub clock: ClockState,
}

/// Decides the replay. `found`: every journal entry of the database in (slot, seq) order;
/// `held_by_other(n)`: whether slot `n`'s lock is held (by someone else, when `n` is not ours).
/// Entries taken over are applied to `index` by LWW.
pub fn plan(
    found: Vec<Found>,
    me: Instance,
    held_by_other: impl Fn(u32) -> bool,
    index: &mut Index,
) -> Replay {
    let found: Vec<Found> = found
        .into_iter()
        .filter(|f| Some(f.slot) == me.slot || !held_by_other(f.slot))
        .collect();
    let journal_slot = me.slot.unwrap_or(me.lockless_slot);
    let next_seq = found
        .iter()
        .filter(|f| f.slot == journal_slot)
        .map(|f| f.seq + 1)
        .max()
        .unwrap_or(0);
    let mut clock = me.clock;
    for f in &found {
        // A previous life of this slot may have stamped beyond the persisted clock state.
        let h = f.record.hlc;
        if h.node == me.node && (h.wall_ms, h.counter) > (clock.wall_ms, clock.counter) {
            clock = ClockState {
                wall_ms: h.wall_ms,
                counter: h.counter,
            };
        }
    }
    let mut replay = Replay {
        journal_slot,
        next_seq,
        clock,
        adopted: Vec::with_capacity(found.len()),
        replayed: Vec::new(),
        redundant: Vec::new(),
    };
    for f in found {
        let entry = Appended {
            key: f.key,
            cost: f.cost,
        };
        replay.adopted.push(entry.clone());
        let (plugin, key, hlc) = (f.record.plugin.clone(), f.record.key.clone(), f.record.hlc);
        if index.apply(f.record) {
            replay.replayed.push(Replayed {
                plugin,
                key,
                hlc,
                entry,
            });
        } else {
            replay.redundant.push(entry);
        }
    }
    replay
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Record, Value};

    fn node(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }

    fn found(slot: u32, seq: u64, writer: u64, wall_ms: u64, key: &str) -> Found {
        Found {
            key: format!("clientdata:db:journal:{slot}:{seq}"),
            slot,
            seq,
            record: Record {
                plugin: PluginId::new("p").unwrap(),
                key: Key::new(key).unwrap(),
                hlc: Hlc {
                    wall_ms,
                    counter: 0,
                    node: node(writer),
                },
                value: Some(Value::Json("1".into())),
            },
            cost: 10,
        }
    }

    fn me(slot: Option<u32>) -> Instance {
        Instance {
            slot,
            lockless_slot: 1 << 20,
            node: node(7),
            clock: ClockState {
                wall_ms: 100,
                counter: 0,
            },
        }
    }

    #[test]
    fn a_live_tabs_journal_is_left_alone_and_ours_and_dead_ones_are_replayed() {
        let mut index = Index::new();
        let all = vec![
            found(0, 0, 7, 50, "mine"),
            found(1, 0, 8, 60, "live"),
            found(2, 0, 9, 70, "dead"),
        ];
        // Slot 0 is ours (its lock is held, by us); slot 1 is held by a live tab.
        let r = plan(all, me(Some(0)), |n| n <= 1, &mut index);
        let keys: Vec<&str> = r.replayed.iter().map(|q| q.key.as_str()).collect();
        assert_eq!(keys, ["mine", "dead"]);
        assert_eq!(r.adopted.len(), 2);
        assert!(r.redundant.is_empty());
        assert!(index.live(&PluginId::new("p").unwrap(), "live").is_none());
        assert_eq!((r.journal_slot, r.next_seq), (0, 1));
    }

    #[test]
    fn entries_already_stored_are_redundant_and_still_counted_until_removed() {
        let mut index = Index::new();
        let newer = found(3, 0, 9, 500, "k");
        assert!(index.apply(newer.record.clone()));
        let r = plan(
            vec![found(2, 4, 9, 70, "k")],
            me(Some(0)),
            |_| false,
            &mut index,
        );
        assert!(r.replayed.is_empty());
        assert_eq!(r.redundant, r.adopted);
        assert_eq!(r.redundant[0].key, "clientdata:db:journal:2:4");
        // Nothing of slot 0 was there: its journal starts at 0.
        assert_eq!(r.next_seq, 0);
    }

    #[test]
    fn the_clock_moves_past_stamps_a_previous_life_of_the_slot_journaled() {
        let mut index = Index::new();
        let all = vec![
            found(0, 0, 7, 900, "a"),
            found(0, 5, 7, 400, "b"),
            found(2, 0, 9, 5_000, "other node"),
        ];
        let r = plan(all, me(Some(0)), |n| n == 0, &mut index);
        assert_eq!(
            r.clock.wall_ms, 900,
            "only our node's stamps move our clock"
        );
        assert_eq!(r.next_seq, 6);
    }

    #[test]
    fn without_a_slot_the_lockless_journal_is_used_and_every_unheld_one_replayed() {
        let mut index = Index::new();
        let r = plan(
            vec![found(1 << 20, 2, 9, 70, "a"), found(4, 0, 9, 71, "b")],
            me(None),
            |n| n == 4,
            &mut index,
        );
        assert_eq!((r.journal_slot, r.next_seq), (1 << 20, 3));
        assert_eq!(r.replayed.len(), 1);
        assert_eq!(r.clock, me(None).clock);
    }
}
