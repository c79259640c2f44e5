//! What a round keeps when content it fetched eagerly failed (pure, tested natively). Records
//! of a node are applied in stamp order and `seen` says "everything of this node up to here",
//! so a record that cannot be taken holds back its own node's watermark in its plugin: every
//! record of that node and plugin at or above it is dropped from the batch, and the node's
//! `Seen` stays below it (the next round asks for them again). Other nodes, and the same node
//! in other plugins, advance as usual.

use crate::core::replica::VectorKind;
use crate::core::{Batch, Hlc, NodeId, PluginId};

/// Drops what `failed` (plugin, stamp of a record whose content could not be had) holds back
/// and lowers the batch's `Seen` watermarks to match; `before` is the watermark a (plugin, node)
/// had before this round. Returns how many records were dropped.
pub fn hold_back(
    batch: &mut Batch,
    failed: &[(PluginId, Hlc)],
    before: impl Fn(&PluginId, NodeId) -> Option<Hlc>,
) -> usize {
    if failed.is_empty() {
        return 0;
    }
    // The lowest failed stamp per (plugin, node).
    let first_failed = |plugin: &PluginId, hlc: &Hlc| {
        failed
            .iter()
            .filter(|(p, h)| p == plugin && h.node == hlc.node)
            .map(|(_, h)| *h)
            .min()
    };
    let total = batch.records.len();
    batch
        .records
        .retain(|r| first_failed(&r.plugin, &r.hlc).is_none_or(|f| r.hlc < f));
    for (kind, watermarks) in &mut batch.vectors {
        if *kind != VectorKind::Seen {
            continue;
        }
        for (plugin, failed_at) in failed {
            let node = failed_at.node;
            // The node's highest record this round still takes, else where it stood.
            let kept = batch
                .records
                .iter()
                .filter(|r| r.plugin == *plugin && r.hlc.node == node)
                .map(|r| r.hlc)
                .max();
            let held = kept.max(before(plugin, node));
            let vector = watermarks.plugin_mut(plugin);
            if vector
                .get(node)
                .is_some_and(|h| held.is_none_or(|held| h > held))
            {
                vector.hold(node, held);
            }
        }
    }
    total - batch.records.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Key, Record, Value, VersionVector, Watermarks};

    fn node(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }
    fn hlc(wall: u64, n: u64) -> Hlc {
        Hlc::new(wall, 0, node(n)).unwrap()
    }
    fn p(name: &str) -> PluginId {
        PluginId::new(name).unwrap()
    }
    fn rec(plugin: &str, wall: u64, n: u64) -> Record {
        Record::put(
            p(plugin),
            Key::new(format!("k{wall}")).unwrap(),
            Value::Json("1".into()),
            hlc(wall, n),
        )
    }

    /// A page of nodes 1 and 2 in plugins a and b, with seen advanced to the page's end.
    fn page() -> Batch {
        let records = vec![
            rec("a", 10, 1),
            rec("a", 11, 2),
            rec("a", 12, 1),
            rec("b", 13, 1),
            rec("a", 14, 1),
            rec("a", 15, 2),
        ];
        let mut seen = Watermarks::new();
        for r in &records {
            seen.advance(&r.plugin, r.hlc);
        }
        Batch {
            records,
            vectors: vec![
                (VectorKind::Seen, seen),
                (VectorKind::PeerCoverage, Watermarks::new()),
            ],
        }
    }

    fn seen(batch: &Batch, plugin: &str) -> VersionVector {
        batch.vectors[0].1.plugin(&p(plugin))
    }

    #[test]
    fn a_failed_record_holds_back_only_its_node_in_its_plugin() {
        let mut batch = page();
        let dropped = hold_back(&mut batch, &[(p("a"), hlc(12, 1))], |_, _| None);
        assert_eq!(dropped, 2, "a@12 and a@14 of node 1");
        let kept: Vec<_> = batch.records.iter().map(|r| r.hlc.wall_ms).collect();
        assert_eq!(kept, [10, 11, 13, 15]);
        assert_eq!(
            seen(&batch, "a").get(node(1)),
            Some(hlc(10, 1)),
            "below the failure"
        );
        assert_eq!(
            seen(&batch, "a").get(node(2)),
            Some(hlc(15, 2)),
            "node 2 advances"
        );
        assert_eq!(
            seen(&batch, "b").get(node(1)),
            Some(hlc(13, 1)),
            "plugin b advances"
        );
        assert!(
            batch.vectors[1].1.plugin(&p("a")).is_empty(),
            "coverage untouched"
        );
    }

    #[test]
    fn a_failure_at_a_nodes_first_record_keeps_its_earlier_watermark_or_none() {
        let mut batch = page();
        hold_back(&mut batch, &[(p("a"), hlc(10, 1))], |_, n| {
            (n == node(1)).then(|| hlc(3, 1))
        });
        assert_eq!(seen(&batch, "a").get(node(1)), Some(hlc(3, 1)));
        let mut batch = page();
        hold_back(&mut batch, &[(p("a"), hlc(10, 1))], |_, _| None);
        assert_eq!(
            seen(&batch, "a").get(node(1)),
            None,
            "never seen: nothing claimed"
        );
        assert_eq!(batch.records.len(), 3);
    }

    #[test]
    fn no_failure_changes_nothing_and_several_take_the_lowest() {
        let mut batch = page();
        let before = batch.clone();
        assert_eq!(hold_back(&mut batch, &[], |_, _| None), 0);
        assert_eq!(batch, before);
        let mut batch = page();
        let failed = [
            (p("a"), hlc(14, 1)),
            (p("a"), hlc(12, 1)),
            (p("a"), hlc(15, 2)),
        ];
        assert_eq!(hold_back(&mut batch, &failed, |_, _| None), 3);
        assert_eq!(seen(&batch, "a").get(node(1)), Some(hlc(10, 1)));
        assert_eq!(seen(&batch, "a").get(node(2)), Some(hlc(11, 2)));
    }
}
