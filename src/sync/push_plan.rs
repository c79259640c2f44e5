//! What a round pushes beyond what the server is known to lack: keys `markDirty` named and a
//! page of a full walk (`markDirty()` with no key), merged into the core's planned push in HLC
//! order, one page at most. Pure, tested natively; `round.rs` calls [`plan`] on the index
//! before the request and [`Dirty::after_round`] after the commit.

use std::collections::BTreeSet;

use crate::core::sorted::{sort_by, SortedSet};
use crate::core::{Hlc, Key, PluginId, Record};
use crate::store::index::Index;

/// Which way a round moves records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Push and pull (an ordinary round).
    Both,
    /// Pull only: nothing is pushed this round.
    Pull,
    /// Pull only, and fetch no content: values synced by reference stay metadata even in
    /// plugins that hydrate eagerly (`pullChanged({ metadataOnly: true })`).
    PullMetadata,
}

/// A full walk's position: `Some(from)` re-pushes every record above `from` (`None`: from the
/// start), a page per round, until it reaches the end.
pub type Walk = Option<Option<Hlc>>;

/// Keys `markDirty` asked to re-push, and a full walk of the store in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    /// The walk in progress, if any.
    pub walk: Walk,
    /// Keys to push again whatever the server is known to cover.
    pub keys: BTreeSet<(PluginId, Key)>,
}

impl Dirty {
    /// Marks one key (or, with `None`, everything: a walk from the start, unless one runs).
    pub fn mark(&mut self, key: Option<(PluginId, Key)>) {
        match key {
            Some(k) => {
                self.keys.insert(k);
            }
            None => {
                if self.walk.is_none() {
                    self.walk = Some(None);
                }
            }
        }
    }

    /// Whether there is anything to push again.
    pub fn is_empty(&self) -> bool {
        self.walk.is_none() && self.keys.is_empty()
    }

    /// After a committed round planned from `before` (the walk as it was then): what was pushed
    /// is covered now, and the walk moves on, unless `markDirty` changed it meanwhile (a mark
    /// made during the round stays).
    pub fn after_round(&mut self, before: Walk, walk_next: Walk, pushed: &[Record]) {
        if before.is_some() && self.walk == before {
            self.walk = walk_next;
        }
        for r in pushed {
            self.keys.remove(&(r.plugin.clone(), r.key.clone()));
        }
    }
}

/// A round's push, final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPlan {
    /// Records to push, in HLC order, at most `limit`.
    pub push: Vec<Record>,
    /// More is left to push than fits this round.
    pub more_to_push: bool,
    /// Where the walk stands after this round (if it commits).
    pub walk_next: Walk,
}

/// Merges the dirty keys and a page of the walk (both in `scope`) into `push`, the core's
/// planned push (`more_to_push`: the core's own say), and cuts the result at `limit`. A
/// pull-only round pushes nothing and leaves the walk where it was.
pub fn plan(
    index: &Index,
    dirty: &Dirty,
    scope: Option<&[PluginId]>,
    limit: u32,
    direction: Direction,
    mut push: Vec<Record>,
    mut more_to_push: bool,
) -> PushPlan {
    let walk = dirty.walk;
    if direction != Direction::Both {
        return PushPlan {
            push: Vec::new(),
            more_to_push: false,
            walk_next: walk,
        };
    }
    let limit = limit as usize;
    let in_scope = |p: &PluginId| scope.is_none_or(|s| s.contains(p));
    let mut extra: Vec<Record> = dirty
        .keys
        .iter()
        .filter(|(p, _)| in_scope(p))
        .filter_map(|(p, k)| index.record(p, k))
        .collect();
    let mut walk_ends = true;
    if let Some(from) = walk {
        let mut page: Vec<Record> = index
            .records_in_hlc_order()
            .filter(|r| from.is_none_or(|f| r.hlc > f) && in_scope(&r.plugin))
            .take(limit + 1)
            .collect();
        walk_ends = page.len() <= limit;
        page.truncate(limit);
        extra.extend(page);
    }
    let extra_max = extra.iter().map(|r| r.hlc).max();
    if !extra.is_empty() {
        let mut seen: SortedSet<Hlc> = push.iter().map(|r| r.hlc).collect();
        push.extend(extra.into_iter().filter(|r| seen.insert(r.hlc)));
        sort_by(&mut push, |a, b| a.hlc.cmp(&b.hlc));
        if push.len() > limit {
            push.truncate(limit);
            more_to_push = true;
        }
    }
    // The walk ends once every record it still had to ship is in this push.
    let last = push.last().map(|r| r.hlc);
    walk_ends = walk_ends && extra_max.is_none_or(|m| last.is_some_and(|l| m <= l));
    if walk.is_some() && !walk_ends {
        more_to_push = true;
    }
    let walk_next = match (walk, walk_ends) {
        (None, _) | (_, true) => None,
        (Some(from), false) => Some(last.or(from)),
    };
    PushPlan {
        push,
        more_to_push,
        walk_next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{NodeId, Value};

    fn rec(plugin: &str, key: &str, wall_ms: u64) -> Record {
        Record {
            plugin: PluginId::new(plugin).unwrap(),
            key: Key::new(key).unwrap(),
            hlc: Hlc {
                wall_ms,
                counter: 0,
                node: NodeId::new(1).unwrap(),
            },
            value: Some(Value::Json("1".into())),
        }
    }

    fn index(records: &[Record]) -> Index {
        let mut ix = Index::new();
        for r in records {
            ix.apply(r.clone());
        }
        ix
    }

    fn keys(push: &[Record]) -> Vec<&str> {
        push.iter().map(|r| r.key.as_str()).collect()
    }

    #[test]
    fn a_dirty_key_is_pushed_again_once_in_hlc_order_and_then_forgotten() {
        let (a, b) = (rec("p", "a", 10), rec("p", "b", 20));
        let ix = index(&[a.clone(), b.clone()]);
        let mut dirty = Dirty::default();
        dirty.mark(Some((a.plugin.clone(), a.key.clone())));
        dirty.mark(Some((b.plugin.clone(), b.key.clone())));
        // The core already plans `b` (not covered): it is not pushed twice.
        let plan = plan(
            &ix,
            &dirty,
            None,
            10,
            Direction::Both,
            vec![b.clone()],
            false,
        );
        assert_eq!(keys(&plan.push), ["a", "b"]);
        assert!(!plan.more_to_push);
        dirty.after_round(None, plan.walk_next, &plan.push);
        assert!(dirty.is_empty());
    }

    #[test]
    fn a_full_walk_goes_a_page_per_round_and_ends_at_the_last_record() {
        let all: Vec<Record> = (1..=5)
            .map(|i| rec("p", &format!("k{i}"), i * 10))
            .collect();
        let ix = index(&all);
        let mut dirty = Dirty::default();
        dirty.mark(None);
        let mut pushed = Vec::new();
        for round in 0..3 {
            let before = dirty.walk;
            let p = plan(&ix, &dirty, None, 2, Direction::Both, Vec::new(), false);
            assert_eq!(p.more_to_push, round < 2, "round {round}");
            pushed.extend(keys(&p.push).into_iter().map(str::to_owned));
            dirty.after_round(before, p.walk_next, &p.push);
        }
        assert_eq!(pushed, ["k1", "k2", "k3", "k4", "k5"]);
        assert!(dirty.is_empty(), "the walk ended");
    }

    #[test]
    fn a_pull_pushes_nothing_and_leaves_the_walk_where_it_was() {
        let ix = index(&[rec("p", "a", 10)]);
        let mut dirty = Dirty::default();
        dirty.mark(None);
        dirty.mark(Some((PluginId::new("p").unwrap(), Key::new("a").unwrap())));
        let p = plan(
            &ix,
            &dirty,
            None,
            5,
            Direction::Pull,
            vec![rec("p", "a", 10)],
            true,
        );
        assert!(p.push.is_empty() && !p.more_to_push);
        assert_eq!(p.walk_next, Some(None));
    }

    #[test]
    fn scope_limits_dirty_keys_and_the_walk_and_a_full_page_says_more() {
        let ix = index(&[rec("p", "a", 10), rec("q", "b", 20), rec("p", "c", 30)]);
        let mut dirty = Dirty::default();
        dirty.mark(Some((PluginId::new("q").unwrap(), Key::new("b").unwrap())));
        dirty.mark(None);
        let scope = [PluginId::new("p").unwrap()];
        let p = plan(
            &ix,
            &dirty,
            Some(&scope),
            1,
            Direction::Both,
            Vec::new(),
            false,
        );
        assert_eq!(keys(&p.push), ["a"]);
        assert!(p.more_to_push);
        assert_eq!(p.walk_next, Some(Some(rec("p", "a", 10).hlc)));
    }

    #[test]
    fn a_mark_made_during_the_round_survives_it() {
        let ix = index(&[rec("p", "a", 10)]);
        let mut dirty = Dirty::default();
        dirty.mark(None);
        let before = dirty.walk;
        let p = plan(&ix, &dirty, None, 5, Direction::Both, Vec::new(), false);
        assert_eq!(p.walk_next, None);
        // A new walk was asked for while the round ran: it must not be lost.
        dirty.walk = Some(Some(rec("p", "a", 10).hlc));
        dirty.after_round(before, p.walk_next, &p.push);
        assert!(dirty.walk.is_some());
    }
}
