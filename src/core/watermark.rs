//! Version vectors ("watermarks"): per node, the highest HLC up to which a replica holds the
//! effect of every record that node wrote. Kept per plugin (see [`Watermarks`]) so scoped sync
//! and adding a plugin later are exact.

use serde::{Deserialize, Serialize};

use super::hlc::Hlc;
use super::ids::{NodeId, PluginId};
use super::record::Record;
use super::sorted::SortedMap;

/// Per node, the highest HLC covered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(SortedMap<NodeId, Hlc>);

impl VersionVector {
    /// An empty vector (covers nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// The watermark of `node`, if any.
    pub fn get(&self, node: NodeId) -> Option<Hlc> {
        self.0.get(&node).copied()
    }

    /// Moves `node`'s watermark to `hlc` if that is higher; never moves it down.
    /// The watermark is kept per `node` even if `hlc` carries another node (a page cut).
    pub fn advance(&mut self, node: NodeId, hlc: Hlc) {
        let entry = self.0.get_or_insert_with(node, || hlc);
        if hlc > *entry {
            *entry = hlc;
        }
    }

    /// Sets `node`'s watermark to `at`, or removes it for `None`, even downwards: only for a
    /// client holding back a watermark it has not committed yet (a record it could not take
    /// this round, `sync::hydrate_plan`).
    pub fn hold(&mut self, node: NodeId, at: Option<Hlc>) {
        match at {
            Some(hlc) => self.0.insert(node, hlc),
            None => self.0.remove(&node),
        };
    }

    /// A vector of `(node, watermark)` pairs read from a peer, in any order (the later of a
    /// repeated node wins), sorted once: see [`SortedMap::from_unsorted`].
    pub fn from_unsorted(pairs: Vec<(NodeId, Hlc)>) -> Self {
        VersionVector(SortedMap::from_unsorted(pairs))
    }

    /// Moves a record's own node watermark up to the record.
    pub fn advance_to(&mut self, hlc: Hlc) {
        self.advance(hlc.node, hlc)
    }

    /// Per-node maximum with `other`.
    pub fn merge(&mut self, other: &VersionVector) {
        for (&node, &hlc) in other.0.iter() {
            self.advance(node, hlc);
        }
    }

    /// Whether the record stamped `hlc` is at or below its node's watermark.
    pub fn covers(&self, hlc: &Hlc) -> bool {
        self.0.get(&hlc.node).is_some_and(|w| hlc <= w)
    }

    /// The records not covered, in the order given.
    pub fn select_unseen<'a>(
        &'a self,
        records: impl IntoIterator<Item = &'a Record> + 'a,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        records.into_iter().filter(move |r| !self.covers(&r.hlc))
    }

    /// (node, watermark) pairs in node order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, Hlc)> + '_ {
        self.0.iter().map(|(&n, &h)| (n, h))
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no node is covered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lowest watermark over all nodes; a scan for uncovered records may start above it
    /// only when every node is present (an absent node is covered nowhere).
    pub fn min(&self) -> Option<Hlc> {
        self.0.values().min().copied()
    }
}

impl FromIterator<(NodeId, Hlc)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (NodeId, Hlc)>>(iter: I) -> Self {
        let mut v = VersionVector::new();
        for (n, h) in iter {
            v.advance(n, h);
        }
        v
    }
}

/// Version vectors per plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Watermarks(SortedMap<PluginId, VersionVector>);

impl Watermarks {
    /// No plugin covered.
    pub fn new() -> Self {
        Self::default()
    }

    /// The vector of `plugin` (empty if unknown).
    pub fn plugin(&self, plugin: &PluginId) -> VersionVector {
        self.0.get(plugin).cloned().unwrap_or_default()
    }

    /// The vector of `plugin` for in-place changes.
    pub fn plugin_mut(&mut self, plugin: &PluginId) -> &mut VersionVector {
        self.0
            .get_or_insert_with(plugin.clone(), VersionVector::new)
    }

    /// Replaces one plugin's vector.
    pub fn set(&mut self, plugin: PluginId, vector: VersionVector) {
        self.0.insert(plugin, vector);
    }

    /// Watermarks of `(plugin, vector)` pairs read from a peer, in any order (the later of a
    /// repeated plugin wins), sorted once: see [`SortedMap::from_unsorted`].
    pub fn from_unsorted(pairs: Vec<(PluginId, VersionVector)>) -> Self {
        Watermarks(SortedMap::from_unsorted(pairs))
    }

    /// Advances `plugin`'s vector to a record's stamp.
    pub fn advance(&mut self, plugin: &PluginId, hlc: Hlc) {
        self.plugin_mut(plugin).advance_to(hlc)
    }

    /// Per-plugin, per-node maximum.
    pub fn merge(&mut self, other: &Watermarks) {
        for (plugin, vector) in other.0.iter() {
            self.plugin_mut(plugin).merge(vector);
        }
    }

    /// Whether a record is covered by its plugin's vector.
    pub fn covers(&self, record: &Record) -> bool {
        self.0
            .get(&record.plugin)
            .is_some_and(|v| v.covers(&record.hlc))
    }

    /// The records not covered, in the order given.
    pub fn select_unseen<'a>(
        &'a self,
        records: impl IntoIterator<Item = &'a Record> + 'a,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        records.into_iter().filter(move |r| !self.covers(r))
    }

    /// (plugin, vector) pairs in plugin order.
    pub fn iter(&self) -> impl Iterator<Item = (&PluginId, &VersionVector)> {
        self.0.iter()
    }

    /// Plugins present.
    pub fn plugins(&self) -> impl Iterator<Item = &PluginId> {
        self.0.keys()
    }

    /// Total number of (plugin, node) entries: what a no-change round's size grows with.
    pub fn entries(&self) -> usize {
        self.0.values().map(VersionVector::len).sum()
    }

    /// Whether no plugin has a vector (absent and empty read the same).
    pub fn is_empty(&self) -> bool {
        self.0.values().all(VersionVector::is_empty)
    }

    /// Keeps only the plugins `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&PluginId) -> bool) {
        self.0.retain(|p, _| keep(p))
    }
}

impl FromIterator<(PluginId, VersionVector)> for Watermarks {
    fn from_iter<I: IntoIterator<Item = (PluginId, VersionVector)>>(iter: I) -> Self {
        Watermarks(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::Key;
    use crate::core::record::Value;

    fn node(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }
    fn hlc(wall: u64, n: u64) -> Hlc {
        Hlc::new(wall, 0, node(n)).unwrap()
    }
    fn rec(plugin: &str, wall: u64, n: u64) -> Record {
        Record::put(
            PluginId::new(plugin).unwrap(),
            Key::new("k").unwrap(),
            Value::Json("1".into()),
            hlc(wall, n),
        )
    }

    #[test]
    fn advance_never_moves_down() {
        let mut v = VersionVector::new();
        v.advance_to(hlc(5, 1));
        v.advance_to(hlc(3, 1));
        assert_eq!(v.get(node(1)), Some(hlc(5, 1)));
        v.advance(node(1), hlc(9, 2));
        assert_eq!(
            v.get(node(1)),
            Some(hlc(9, 2)),
            "a cut stamp of another node still moves the watermark"
        );
    }

    #[test]
    fn covers_is_per_node_and_inclusive() {
        let v: VersionVector = [(node(1), hlc(5, 1))].into_iter().collect();
        assert!(v.covers(&hlc(5, 1)));
        assert!(v.covers(&hlc(4, 1)));
        assert!(!v.covers(&hlc(6, 1)));
        assert!(
            !v.covers(&hlc(1, 2)),
            "a node absent from the vector is covered nowhere"
        );
    }

    #[test]
    fn merge_is_per_node_max_and_commutative() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2_000 {
            let mut pick = || -> VersionVector {
                (0..rng.usize(0..4))
                    .map(|_| {
                        let n = rng.u64(1..4);
                        (node(n), hlc(rng.u64(0..10), n))
                    })
                    .collect()
            };
            let (a, b, c) = (pick(), pick(), pick());
            let mut ab = a.clone();
            ab.merge(&b);
            let mut ba = b.clone();
            ba.merge(&a);
            assert_eq!(ab, ba);
            let mut ab_c = ab.clone();
            ab_c.merge(&c);
            let mut bc = b.clone();
            bc.merge(&c);
            let mut a_bc = a.clone();
            a_bc.merge(&bc);
            assert_eq!(ab_c, a_bc);
            for (n, h) in ab.iter() {
                assert_eq!(Some(h), [a.get(n), b.get(n)].into_iter().flatten().max());
            }
        }
    }

    #[test]
    fn select_unseen_is_per_plugin() {
        let mut w = Watermarks::new();
        w.advance(&PluginId::new("a").unwrap(), hlc(5, 1));
        let records = [
            rec("a", 4, 1),
            rec("a", 6, 1),
            rec("b", 1, 1),
            rec("a", 1, 2),
        ];
        let unseen: Vec<_> = w
            .select_unseen(&records)
            .map(|r| (r.plugin.to_string(), r.hlc.wall_ms))
            .collect();
        assert_eq!(unseen, [("a".into(), 6), ("b".into(), 1), ("a".into(), 1)]);
        assert_eq!(w.entries(), 1);
    }

    #[test]
    fn serialises_as_nested_maps_of_encoded_stamps() {
        let mut w = Watermarks::new();
        w.advance(&PluginId::new("a").unwrap(), hlc(1, 2));
        let text = serde_json::to_string(&w).unwrap();
        assert_eq!(
            text,
            r#"{"a":{"0000000000000002":"000000000001-0000-0000000000000002"}}"#
        );
        assert_eq!(serde_json::from_str::<Watermarks>(&text).unwrap(), w);
    }
}
