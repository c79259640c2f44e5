//! Tombstone collection with a horizon, and the full resync of a device that fell behind it
//! (issue 16): the decisions, pure, proved by `tests/core_convergence.rs`.
//!
//! Wired in protocol version 2: the reference server keeps readers and collects in its rounds
//! (`server/src/gc.rs`), the browser drops collected tombstones and runs the walk
//! (`src/sync/full_resync.rs`); see "The life of a record" in docs/ARCHITECTURE.md. The rules:
//! - The server drops a tombstone once it was stored longer than the horizon ago AND every
//!   reader (a node that ran rounds) active within the horizon has received it. A reader proves
//!   what it holds by its request's effective `seen`, so the server needs no acknowledgement.
//! - A reader whose last round is older than the horizon (or that the server never saw, yet
//!   claims to hold something) may have missed collected tombstones, so it runs a full resync:
//!   a walk of the server's rows in (plugin, key) order, page by page. Each page proves the key
//!   range it spans: a local record in that range whose key the page lacks, and that the server
//!   had (at or below its coverage of the record's node), was deleted by a collected tombstone
//!   and goes; a local write the server does not cover is kept and pushed afterwards. A cursor
//!   (the last key) makes the walk resumable.
//! - The server keeps, per plugin and writer, the highest stamp it collected, and reports it;
//!   clients drop their tombstones at or below it ([`drop_collected`]).
//! - Known trade-off, as with every horizon-based collection: a write made offline *before* a
//!   deletion that was collected while the write was unsynced comes back when it is pushed
//!   (the simulation counts these).

use super::ids::{Key, NodeId, PluginId};
use super::record::Record;
use super::sorted::sort_by;
use super::watermark::Watermarks;

/// The default horizon: 30 days.
pub const DEFAULT_HORIZON_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// What the server remembers of one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The reader's node id.
    pub node: NodeId,
    /// Server time of its last round.
    pub last_round_ms: u64,
    /// What it proved to hold, per plugin and writer: its requests' effective `seen`, merged.
    pub seen: Watermarks,
}

impl Reader {
    /// Records one round of this reader: the time and what the request proved it holds.
    pub fn observe(&mut self, now_ms: u64, effective_seen: &Watermarks) {
        self.last_round_ms = self.last_round_ms.max(now_ms);
        self.seen.merge(effective_seen);
    }
}

/// How long a tombstone outlives its storing, and who it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    /// Milliseconds.
    pub ms: u64,
}

impl Default for Horizon {
    fn default() -> Self {
        Horizon {
            ms: DEFAULT_HORIZON_MS,
        }
    }
}

impl Horizon {
    /// Whether `reader` ran a round within the horizon (collection waits for it).
    pub fn active(&self, reader: &Reader, now_ms: u64) -> bool {
        now_ms.saturating_sub(reader.last_round_ms) <= self.ms
    }

    /// Whether the server may drop `record`, stored at server time `stored_ms`: a tombstone,
    /// older than the horizon, received by every active reader (its writer holds it anyway).
    pub fn collectable(
        &self,
        record: &Record,
        stored_ms: u64,
        readers: &[Reader],
        now_ms: u64,
    ) -> bool {
        record.is_tombstone()
            && now_ms.saturating_sub(stored_ms) > self.ms
            && readers
                .iter()
                .filter(|r| self.active(r, now_ms))
                .all(|r| r.node == record.hlc.node || r.seen.covers(record))
    }

    /// Whether a request's sender must run a full resync before anything else: it claims to hold
    /// something (`seen` not empty) and is either unknown to the server or was last seen before
    /// the horizon. Decided before its round updates `reader`.
    pub fn needs_full_resync(
        &self,
        reader: Option<&Reader>,
        seen: &Watermarks,
        now_ms: u64,
    ) -> bool {
        let holds_something = seen.iter().any(|(_, v)| !v.is_empty());
        holds_something && reader.is_none_or(|r| !self.active(r, now_ms))
    }
}

/// Whether a client whose request proved `seen` (its effective `seen`) may hold records whose
/// deletion the server collected, so a partial round could leave them alive: for some plugin it
/// holds something of (its vector is not empty) the server collected a tombstone above what it
/// has seen of that writer. This is the server's full-resync test: exact where
/// [`Horizon::needs_full_resync`] is a proxy (a reader past the horizon that missed nothing, or
/// a second writer slot of a database whose rounds another slot ran, need no walk), and after a
/// walk `seen` is the walk's coverage, which is at or above every collected stamp (coverage
/// covers everything the server ever stored), so it does not ask again.
pub fn missed_collection(seen: &Watermarks, collected: &Watermarks) -> bool {
    collected.iter().any(|(plugin, floor)| {
        let held = seen.plugin(plugin);
        !held.is_empty()
            && floor
                .iter()
                .any(|(writer, h)| held.get(writer).is_none_or(|s| s < h))
    })
}

impl Reader {
    /// Whether a round of this reader must be written down: unknown, its last round stored more
    /// than an eighth of the horizon ago, or `seen` proves more than stored. Rounds that need
    /// none of it can be answered from a read-only snapshot; a reader written at most an eighth
    /// of a horizon late only lets collection stop waiting for it a little early, and whatever
    /// it then misses [`missed_collection`] sends it to a full resync.
    pub fn observation_due(
        stored: Option<&Reader>,
        seen: &Watermarks,
        now_ms: u64,
        horizon: Horizon,
    ) -> bool {
        let Some(stored) = stored else {
            return true;
        };
        now_ms.saturating_sub(stored.last_round_ms) > horizon.ms / 8
            || seen.iter().any(|(plugin, vector)| {
                let held = stored.seen.plugin(plugin);
                vector
                    .iter()
                    .any(|(node, h)| held.get(node).is_none_or(|s| s < h))
            })
    }
}

/// The local tombstones a client drops once the server reports what it collected: per plugin
/// and writer, the highest collected stamp (`collected`). A tombstone at or below it is either
/// gone from the server or still there and covered; dropping it is consistent either way, and
/// it must go before the reply's records are applied: a write older than a collected tombstone
/// that an offline device pushes later (the trade-off above) then lands on every replica alike
/// instead of losing to a tombstone that only some of them still hold.
pub fn drop_collected<'l>(
    collected: &Watermarks,
    local: impl IntoIterator<Item = &'l Record>,
) -> Vec<(PluginId, Key)> {
    local
        .into_iter()
        .filter(|r| r.is_tombstone() && collected.covers(r))
        .map(|r| (r.plugin.clone(), r.key.clone()))
        .collect()
}

/// One page of a full resync: the server's rows after `after`, ascending by (plugin, key).
#[derive(Debug, Clone, Copy)]
pub struct ResyncPage<'a> {
    /// The walk's cursor before this page (exclusive); `None` at the start.
    pub after: Option<&'a (PluginId, Key)>,
    /// The server's rows (tombstones not yet collected included), ascending by (plugin, key).
    pub rows: &'a [Record],
    /// The last page: the range it proves runs to the end.
    pub complete: bool,
    /// The server's coverage, read in the same transaction as `rows`.
    pub coverage: &'a Watermarks,
}

/// What one page changes locally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResyncStep {
    /// Rows that win LWW over the local copy (to apply like a reply's records).
    pub upserts: Vec<Record>,
    /// Local records the server had and no longer holds: deleted by a collected tombstone (or,
    /// for a local tombstone, collected itself). Removed without a trace.
    pub removals: Vec<(PluginId, Key)>,
    /// The cursor after this page (`None` once complete).
    pub cursor: Option<(PluginId, Key)>,
}

impl ResyncPage<'_> {
    /// Whether (plugin, key) lies in the range this page proves.
    fn spans(&self, id: &(PluginId, Key)) -> bool {
        let above = self.after.is_none_or(|after| id > after);
        let below = self.complete
            || self
                .rows
                .last()
                .is_some_and(|last| *id <= (last.plugin.clone(), last.key.clone()));
        above && below
    }

    /// The local changes for this page. `local` is every local record (only those in the page's
    /// range are looked at), in any order.
    pub fn step<'l>(&self, local: impl IntoIterator<Item = &'l Record>) -> ResyncStep {
        // Sorted by id, the later of two records with one id kept; a row's match is taken out
        // (set to `None`) once seen, and what is left afterwards the server no longer has.
        let mut mine: Vec<((PluginId, Key), Option<&Record>)> = local
            .into_iter()
            .map(|r| ((r.plugin.clone(), r.key.clone()), Some(r)))
            .filter(|(id, _)| self.spans(id))
            .collect();
        sort_by(&mut mine, |a, b| a.0.cmp(&b.0));
        mine.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        let mut upserts = Vec::new();
        for row in self.rows {
            let id = (row.plugin.clone(), row.key.clone());
            let at = mine.binary_search_by(|(other, _)| other.cmp(&id)).ok();
            let local = at.and_then(|i| mine[i].1.take());
            if row.wins_over(local.map(|r| &r.hlc)) {
                upserts.push(row.clone());
            }
        }
        let removals = mine
            .into_iter()
            .filter_map(|(id, r)| r.filter(|r| self.coverage.covers(r)).map(|_| id))
            .collect();
        let cursor = (!self.complete)
            .then(|| self.rows.last().map(|r| (r.plugin.clone(), r.key.clone())))
            .flatten();
        ResyncStep {
            upserts,
            removals,
            cursor: cursor.or_else(|| self.after.cloned().filter(|_| !self.complete)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hlc::Hlc;
    use crate::core::record::Value;

    const DAY: u64 = 24 * 60 * 60 * 1000;
    const NOW: u64 = 1_800_000_000_000;

    fn node(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }
    fn hlc(wall: u64, n: u64) -> Hlc {
        Hlc::new(wall, 0, node(n)).unwrap()
    }
    fn id(p: &str, k: &str) -> (PluginId, Key) {
        (PluginId::new(p).unwrap(), Key::new(k).unwrap())
    }
    fn put(p: &str, k: &str, wall: u64, n: u64) -> Record {
        let (p, k) = id(p, k);
        Record::put(p, k, Value::Json("1".into()), hlc(wall, n))
    }
    fn tomb(p: &str, k: &str, wall: u64, n: u64) -> Record {
        let (p, k) = id(p, k);
        Record::tombstone(p, k, hlc(wall, n))
    }
    fn reader(n: u64, last: u64, seen: &[&Record]) -> Reader {
        let mut w = Watermarks::new();
        for r in seen {
            w.advance(&r.plugin, r.hlc);
        }
        Reader {
            node: node(n),
            last_round_ms: last,
            seen: w,
        }
    }

    #[test]
    fn a_tombstone_waits_for_its_age_and_for_every_active_reader() {
        let h = Horizon::default();
        let t = tomb("p", "k", NOW - 40 * DAY, 1);
        let stored = NOW - 31 * DAY;
        let got_it = reader(2, NOW - DAY, &[&t]);
        let missed_it = reader(3, NOW - DAY, &[]);
        let gone_long = reader(4, NOW - 31 * DAY, &[]);
        let writer = reader(1, NOW, &[]);
        assert!(h.collectable(
            &t,
            stored,
            &[got_it.clone(), gone_long.clone(), writer],
            NOW
        ));
        assert!(!h.collectable(&t, stored, &[got_it.clone(), missed_it], NOW));
        assert!(
            !h.collectable(&t, NOW - 29 * DAY, std::slice::from_ref(&got_it), NOW),
            "too young"
        );
        let live = put("p", "k", NOW - 40 * DAY, 1);
        assert!(
            !h.collectable(&live, stored, &[got_it], NOW),
            "values are never collected"
        );
    }

    #[test]
    fn a_reader_past_the_horizon_or_unknown_resyncs_fully_a_new_one_does_not() {
        let h = Horizon { ms: DAY };
        let something = reader(9, 0, &[&put("p", "k", NOW - 5 * DAY, 1)]).seen;
        let nothing = Watermarks::new();
        let recent = reader(2, NOW - DAY + 1, &[]);
        let old = reader(2, NOW - DAY - 1, &[]);
        assert!(!h.needs_full_resync(Some(&recent), &something, NOW));
        assert!(h.needs_full_resync(Some(&old), &something, NOW));
        assert!(h.needs_full_resync(None, &something, NOW));
        assert!(!h.needs_full_resync(None, &nothing, NOW));
        assert!(!h.needs_full_resync(Some(&old), &nothing, NOW));
    }

    #[test]
    fn a_client_missed_a_collection_only_where_it_holds_something_and_saw_less() {
        let p = id("p", "x").0;
        let q = id("q", "x").0;
        let mut collected = Watermarks::new();
        collected.advance(&p, hlc(NOW - 10, 1));
        let seen_of = |entries: &[(&PluginId, Hlc)]| {
            let mut w = Watermarks::new();
            for (p, h) in entries {
                w.advance(p, *h);
            }
            w
        };
        assert!(
            !missed_collection(&Watermarks::new(), &collected),
            "holds nothing"
        );
        assert!(
            !missed_collection(&seen_of(&[(&q, hlc(1, 3))]), &collected),
            "other plugin"
        );
        assert!(
            missed_collection(&seen_of(&[(&p, hlc(NOW, 3))]), &collected),
            "writer unseen"
        );
        assert!(
            missed_collection(&seen_of(&[(&p, hlc(NOW - 11, 1))]), &collected),
            "below"
        );
        assert!(
            !missed_collection(&seen_of(&[(&p, hlc(NOW - 10, 1))]), &collected),
            "at"
        );
    }

    #[test]
    fn a_round_is_written_down_when_the_reader_is_new_stale_or_saw_more() {
        let h = Horizon { ms: 8 * DAY };
        let t = put("p", "k", NOW - 5 * DAY, 1);
        let r = reader(2, NOW - DAY, &[&t]);
        assert!(Reader::observation_due(None, &r.seen, NOW, h));
        assert!(!Reader::observation_due(Some(&r), &r.seen, NOW, h));
        assert!(!Reader::observation_due(
            Some(&r),
            &Watermarks::new(),
            NOW,
            h
        ));
        assert!(
            Reader::observation_due(Some(&r), &r.seen, NOW + 1, h),
            "a day and 1 ms"
        );
        let more = reader(2, NOW, &[&put("p", "k", NOW - DAY, 1)]).seen;
        assert!(Reader::observation_due(Some(&r), &more, NOW, h));
    }

    #[test]
    fn clients_drop_the_tombstones_at_or_below_what_the_server_collected() {
        let mut collected = Watermarks::new();
        collected.advance(&id("p", "x").0, hlc(NOW - 10, 1));
        let local = [
            tomb("p", "a", NOW - 20, 1),
            tomb("p", "b", NOW - 5, 1),
            tomb("p", "c", NOW - 20, 2),
            put("p", "d", NOW - 20, 1),
        ];
        assert_eq!(drop_collected(&collected, &local), vec![id("p", "a")]);
    }

    #[test]
    fn a_page_removes_what_the_server_had_and_lost_and_keeps_unsynced_writes() {
        let coverage = {
            let mut w = Watermarks::new();
            w.advance(&id("p", "a").0, hlc(NOW - 10, 1));
            w
        };
        let local = [
            put("p", "a", NOW - 100, 1), // server has a newer row: upsert
            put("p", "b", NOW - 100, 1), // covered, absent: collected deletion, removed
            put("p", "c", NOW - 1, 1),   // above coverage: unsynced, kept
            tomb("p", "d", NOW - 50, 1), // a collected tombstone: removed
            put("p", "z", NOW - 100, 1), // beyond this page's range: untouched
        ];
        let rows = [put("p", "a", NOW - 20, 2), put("p", "e", NOW - 20, 2)];
        let page = ResyncPage {
            after: None,
            rows: &rows,
            complete: false,
            coverage: &coverage,
        };
        let step = page.step(&local);
        assert_eq!(step.upserts, rows.to_vec());
        assert_eq!(step.removals, vec![id("p", "b"), id("p", "d")]);
        assert_eq!(step.cursor, Some(id("p", "e")));
        // The last page proves the rest of the key space.
        let cursor = id("p", "e");
        let last = ResyncPage {
            after: Some(&cursor),
            rows: &[],
            complete: true,
            coverage: &coverage,
        };
        let step = last.step(&local);
        assert_eq!(step.removals, vec![id("p", "z")]);
        assert_eq!(step.cursor, None);
        assert!(step.upserts.is_empty());
    }
}
