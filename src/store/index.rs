//! The in-memory index every read is served from synchronously. Pure, tested natively.
//!
//! Holds every record, tombstones included (they carry the HLCs sync needs), keyed by plugin
//! and then by key in a Rust map: a key like `__proto__` is just a string here. Also orders all
//! records by HLC, and holds the sync vectors, so it implements [`Store`] for the replica state
//! machine: plan a round against the index, write the [`Batch`] to IndexedDB in one
//! transaction, then [`Store::commit`] it here.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::quota::record_cost;
use crate::core::replica::{Batch, Store, VectorKind};
use crate::core::sorted::{SortedMap, SortedSet};
use crate::core::{Hlc, Key, PluginId, Record, Value, VersionVector, Watermarks};

/// One (plugin, key)'s current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The version's stamp.
    pub hlc: Hlc,
    /// The value, `None` for a tombstone.
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct Namespace {
    entries: BTreeMap<String, Entry>,
    used: usize,
}

/// All records of one database, LWW-resolved.
#[derive(Debug, Clone, Default)]
pub struct Index {
    plugins: SortedMap<PluginId, Namespace>,
    by_hlc: BTreeSet<(Hlc, PluginId, Key)>,
    vectors: SortedMap<(VectorKind, PluginId), VersionVector>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `record` under last-write-wins: it replaces the current version only if its HLC
    /// is greater. Returns whether it did (replaying a record is a no-op returning `false`).
    pub fn apply(&mut self, record: Record) -> bool {
        let ns = self
            .plugins
            .get_or_insert_with(record.plugin.clone(), Namespace::default);
        let current = ns.entries.get(record.key.as_str());
        if !record.replaces(current.map(|e| (&e.hlc, e.value.as_ref()))) {
            return false;
        }
        let old_cost = current.map_or(0, |e| record_cost(&record.key, e.value.as_ref()));
        if let Some(old) = current {
            self.by_hlc
                .remove(&(old.hlc, record.plugin.clone(), record.key.clone()));
        }
        ns.used = ns.used - old_cost + record_cost(&record.key, record.value.as_ref());
        self.by_hlc
            .insert((record.hlc, record.plugin.clone(), record.key.clone()));
        ns.entries.insert(
            record.key.as_str().to_owned(),
            Entry {
                hlc: record.hlc,
                value: record.value,
            },
        );
        true
    }

    /// The current version of (plugin, key), tombstones included.
    pub fn entry(&self, plugin: &PluginId, key: &str) -> Option<&Entry> {
        self.plugins.get(plugin)?.entries.get(key)
    }

    /// The live (non-tombstone) version of (plugin, key).
    pub fn live(&self, plugin: &PluginId, key: &str) -> Option<&Entry> {
        self.entry(plugin, key).filter(|e| e.value.is_some())
    }

    /// Removes (plugin, key) without a trace if its current version is stamped `hlc` (a newer
    /// version stays). Returns whether it did.
    pub fn remove(&mut self, plugin: &PluginId, key: &Key, hlc: Hlc) -> bool {
        let Some(ns) = self.plugins.get_mut(plugin) else {
            return false;
        };
        if ns.entries.get(key.as_str()).is_none_or(|e| e.hlc != hlc) {
            return false;
        }
        if let Some(old) = ns.entries.remove(key.as_str()) {
            ns.used -= record_cost(key, old.value.as_ref());
        }
        self.by_hlc.remove(&(hlc, plugin.clone(), key.clone()));
        true
    }

    /// The current record of (plugin, key), tombstones included.
    pub fn record(&self, plugin: &PluginId, key: &Key) -> Option<Record> {
        self.entry(plugin, key.as_str()).map(|e| Record {
            plugin: plugin.clone(),
            key: key.clone(),
            hlc: e.hlc,
            value: e.value.clone(),
        })
    }

    /// Bytes `plugin`'s live records count against its quota.
    pub fn usage(&self, plugin: &PluginId) -> usize {
        self.plugins.get(plugin).map_or(0, |ns| ns.used)
    }

    /// What the current version of (plugin, key) counts against the quota.
    pub fn cost(&self, plugin: &PluginId, key: &Key) -> usize {
        self.entry(plugin, key.as_str())
            .map_or(0, |e| record_cost(key, e.value.as_ref()))
    }

    /// Up to `limit` live keys of `plugin` starting with `prefix`, in code-point order.
    pub fn keys(&self, plugin: &PluginId, prefix: &str, limit: usize) -> Vec<String> {
        self.live_from(plugin, prefix, None)
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Up to `limit` live (key, value) pairs of `plugin` with `prefix`, strictly after `after`.
    pub fn page(
        &self,
        plugin: &PluginId,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<(String, Value)> {
        self.live_from(plugin, prefix, after)
            .take(limit)
            .filter_map(|(k, e)| Some((k.clone(), e.value.clone()?)))
            .collect()
    }

    fn live_from<'a>(
        &'a self,
        plugin: &PluginId,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        self.plugins
            .get(plugin)
            .into_iter()
            .flat_map(move |ns| ns.entries.range::<str, _>((lower, Bound::Unbounded)))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.value.is_some())
    }

    /// Every record (tombstones included) in ascending HLC order.
    pub fn records_in_hlc_order(&self) -> impl Iterator<Item = Record> + '_ {
        self.by_hlc
            .iter()
            .filter_map(|(_, plugin, key)| self.record(plugin, key))
    }

    /// Number of records, tombstones included.
    pub fn len(&self) -> usize {
        self.by_hlc.len()
    }

    /// Whether the index holds no record.
    pub fn is_empty(&self) -> bool {
        self.by_hlc.is_empty()
    }

    /// Replaces the `kind` vector of `plugin`.
    pub fn set_vector(&mut self, kind: VectorKind, plugin: PluginId, vector: VersionVector) {
        self.vectors.insert((kind, plugin), vector);
    }

    /// Whether every vector of `vectors` is already held as it is (absent counts as empty), so
    /// committing them would change nothing.
    pub fn holds_vectors(&self, vectors: &[(VectorKind, Watermarks)]) -> bool {
        vectors.iter().all(|(kind, watermarks)| {
            watermarks.iter().all(|(plugin, vector)| {
                match self.vectors.get(&(*kind, plugin.clone())) {
                    Some(held) => held == vector,
                    None => vector.is_empty(),
                }
            })
        })
    }

    /// The stored vector of `kind` for `plugin` (empty if none).
    pub fn vector(&self, kind: VectorKind, plugin: &PluginId) -> VersionVector {
        self.vectors
            .get(&(kind, plugin.clone()))
            .cloned()
            .unwrap_or_default()
    }

    /// Applies a batch of records and vectors (the in-memory half of a sync commit; the caller
    /// has already written it to storage in one transaction). Returns the records that won.
    pub fn apply_batch(&mut self, batch: Batch) -> Vec<(PluginId, Key)> {
        let mut won = Vec::new();
        for r in batch.records {
            let id = (r.plugin.clone(), r.key.clone());
            if self.apply(r) {
                won.push(id);
            }
        }
        for (kind, watermarks) in batch.vectors {
            for (plugin, vector) in watermarks.iter() {
                self.set_vector(kind, plugin.clone(), vector.clone());
            }
        }
        won
    }
}

impl Store for Index {
    type Error = std::convert::Infallible;

    fn version(&mut self, plugin: &PluginId, key: &Key) -> Result<Option<Hlc>, Self::Error> {
        Ok(self.entry(plugin, key.as_str()).map(|e| e.hlc))
    }

    fn plugins(&mut self) -> Result<Vec<PluginId>, Self::Error> {
        let mut all: SortedSet<PluginId> = self.plugins.keys().cloned().collect();
        all.extend(self.vectors.keys().map(|(_, p)| p.clone()));
        Ok(all.into_iter().collect())
    }

    fn vectors(
        &mut self,
        kind: VectorKind,
        plugins: &[PluginId],
    ) -> Result<Watermarks, Self::Error> {
        Ok(plugins
            .iter()
            .map(|p| {
                let v = self.vectors.get(&(kind, p.clone())).cloned();
                (p.clone(), v.unwrap_or_default())
            })
            .collect())
    }

    fn records_above(
        &mut self,
        plugins: &[PluginId],
        floor: &Watermarks,
        limit: usize,
    ) -> Result<Vec<Record>, Self::Error> {
        let scope: SortedSet<&PluginId> = plugins.iter().collect();
        Ok(self
            .by_hlc
            .iter()
            .filter(|(_, p, _)| scope.contains(p))
            .filter_map(|(_, p, k)| self.record(p, k))
            .filter(|r| !floor.covers(r))
            .take(limit)
            .collect())
    }

    fn commit(&mut self, batch: Batch) -> Result<(), Self::Error> {
        self.apply_batch(batch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::replica::MemoryStore;
    use crate::core::NodeId;

    fn hlc(wall: u64, node: u64) -> Hlc {
        Hlc::new(wall, 0, NodeId::new(node).unwrap()).unwrap()
    }
    fn pid(p: &str) -> PluginId {
        PluginId::new(p).unwrap()
    }
    fn put(p: &str, k: &str, v: &str, wall: u64) -> Record {
        Record::put(
            pid(p),
            Key::new(k).unwrap(),
            Value::Json(v.into()),
            hlc(wall, 1),
        )
    }
    fn del(p: &str, k: &str, wall: u64) -> Record {
        Record::tombstone(pid(p), Key::new(k).unwrap(), hlc(wall, 1))
    }

    #[test]
    fn remove_takes_only_the_version_it_names_and_leaves_no_trace() {
        let mut ix = Index::new();
        let old = put("p", "k", "12", 5);
        ix.apply(old.clone());
        ix.apply(del("p", "gone", 6));
        assert!(
            !ix.remove(&pid("p"), &old.key, hlc(4, 1)),
            "another version"
        );
        assert!(ix.remove(&pid("p"), &old.key, old.hlc));
        assert!(!ix.remove(&pid("p"), &old.key, old.hlc), "already gone");
        assert!(ix.remove(&pid("p"), &Key::new("gone").unwrap(), hlc(6, 1)));
        assert!(ix.is_empty() && ix.records_in_hlc_order().next().is_none());
        assert_eq!(ix.usage(&pid("p")), 0);
        // A removed key takes any write again, even an older one (nothing is left to beat it).
        assert!(ix.apply(put("p", "k", "1", 1)));
    }

    #[test]
    fn lww_keeps_the_greater_hlc_in_any_order_and_replay_is_a_no_op() {
        let a = put("p", "k", "1", 5);
        let b = put("p", "k", "2", 7);
        for order in [[&a, &b], [&b, &a]] {
            let mut ix = Index::new();
            for r in order {
                ix.apply(r.clone());
            }
            assert_eq!(ix.entry(&pid("p"), "k").unwrap().hlc, b.hlc);
            assert!(!ix.apply(b.clone()), "replay must not win");
            assert_eq!(ix.len(), 1);
            assert_eq!(ix.usage(&pid("p")), 2);
        }
    }

    #[test]
    fn held_vectors_are_recognised_so_a_no_change_round_commits_nothing() {
        let mut ix = Index::new();
        let mut w = Watermarks::new();
        w.advance(&pid("p"), hlc(5, 1));
        let empty: Watermarks = [(pid("q"), VersionVector::new())].into_iter().collect();
        assert!(!ix.holds_vectors(&[(VectorKind::Seen, w.clone())]));
        assert!(
            ix.holds_vectors(&[(VectorKind::Seen, empty.clone())]),
            "absent = empty"
        );
        ix.set_vector(VectorKind::Seen, pid("p"), w.plugin(&pid("p")));
        assert!(ix.holds_vectors(&[
            (VectorKind::Seen, w.clone()),
            (VectorKind::PeerCoverage, empty)
        ]));
        assert!(
            !ix.holds_vectors(&[(VectorKind::PeerCoverage, w.clone())]),
            "per kind"
        );
        let mut later = w.clone();
        later.advance(&pid("p"), hlc(6, 1));
        assert!(!ix.holds_vectors(&[(VectorKind::Seen, later)]));
    }

    #[test]
    fn tombstones_hide_values_but_keep_their_hlc_and_free_quota() {
        let mut ix = Index::new();
        ix.apply(put("p", "k", "123", 1));
        assert_eq!(ix.usage(&pid("p")), 4);
        assert!(ix.apply(del("p", "k", 2)));
        assert!(ix.live(&pid("p"), "k").is_none());
        assert_eq!(ix.entry(&pid("p"), "k").unwrap().hlc, hlc(2, 1));
        assert_eq!(ix.usage(&pid("p")), 0);
        assert!(ix.keys(&pid("p"), "", 10).is_empty());
        assert_eq!(ix.records_in_hlc_order().count(), 1);
        assert!(!ix.apply(put("p", "k", "old", 1)));
    }

    #[test]
    fn keys_are_prefix_filtered_sorted_bounded_and_namespaced() {
        let mut ix = Index::new();
        for (i, k) in ["b2", "a", "b1", "__proto__", "b", "c", "ba"]
            .iter()
            .enumerate()
        {
            ix.apply(put("p", k, "1", i as u64 + 1));
        }
        ix.apply(put("q", "b0", "1", 50));
        ix.apply(del("p", "b1", 60));
        assert_eq!(ix.keys(&pid("p"), "b", 10), ["b", "b2", "ba"]);
        assert_eq!(ix.keys(&pid("p"), "b", 2), ["b", "b2"]);
        assert_eq!(ix.keys(&pid("p"), "", 3), ["__proto__", "a", "b"]);
        assert!(ix.keys(&pid("p"), "z", 10).is_empty());
        assert!(ix.keys(&pid("r"), "", 10).is_empty());
        let page: Vec<String> = ix
            .page(&pid("p"), "b", Some("b2"), 10)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(page, ["ba"]);
        // `after` below the prefix starts at the prefix.
        assert_eq!(ix.page(&pid("p"), "b", Some("a"), 1)[0].0, "b");
    }

    #[test]
    fn records_above_and_commit_agree_with_the_core_memory_store() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut ix = Index::new();
        let mut model = MemoryStore::new();
        let plugins = [pid("a"), pid("b"), pid("c")];
        for round in 0..200u64 {
            let mut batch = Batch::default();
            let mut used = BTreeSet::new();
            for _ in 0..rng.usize(1..5) {
                let p = plugins[rng.usize(0..3)].as_str().to_owned();
                let k = format!("k{}", rng.u8(0..8));
                let wall = rng.u64(1..1_000);
                let node = rng.u64(1..4);
                let mut r = if rng.bool() {
                    put(&p, &k, "1", wall)
                } else {
                    del(&p, &k, wall)
                };
                r.hlc = Hlc::new(wall, round as u16, NodeId::new(node).unwrap()).unwrap();
                let fresh = used.insert((r.plugin.clone(), r.key.clone()));
                if fresh && r.wins_over(model.version(&r.plugin, &r.key).unwrap().as_ref()) {
                    batch.records.push(r);
                }
            }
            let mut marks = Watermarks::new();
            marks.advance(&plugins[0], hlc(round * 3, 2));
            batch.vectors.push((VectorKind::Seen, marks));
            model.commit(batch.clone()).unwrap();
            ix.commit(batch).unwrap();
        }
        let mut floor = Watermarks::new();
        floor.advance(&plugins[1], hlc(500, 1));
        floor.advance(&plugins[0], hlc(300, 3));
        for scope in [&plugins[..], &plugins[..1], &plugins[1..]] {
            for limit in [0, 1, 7, 10_000] {
                let want = model.records_above(scope, &floor, limit).unwrap();
                let got = ix.records_above(scope, &floor, limit).unwrap();
                assert_eq!(got, want, "scope {scope:?} limit {limit}");
            }
        }
        assert_eq!(
            ix.vectors(VectorKind::Seen, &plugins).unwrap(),
            model.vectors(VectorKind::Seen, &plugins).unwrap()
        );
        assert_eq!(ix.plugins().unwrap(), model.plugins().unwrap());
        let all: Vec<Record> = ix.records_in_hlc_order().collect();
        assert!(all.windows(2).all(|w| w[0].hlc < w[1].hlc));
        assert_eq!(all.len(), model.records().count());
    }
}
