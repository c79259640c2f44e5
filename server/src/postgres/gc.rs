//! [`GcStore`] over one PostgreSQL transaction: readers, collected stamps, old tombstones and the
//! walk's rows by key (schema migration 3). Array parameters keep each method one statement.

use std::collections::BTreeMap;

use clientdata::core::gc::Reader;
use clientdata::core::{Hlc, Key, NodeId, PluginId, Record, Watermarks};

use super::store::{hlc_at, node_column, plugin_at, record_at};
use super::{PgError, PgTx};
use crate::gc::GcStore;
use crate::sqlite::wall_floor;

const UPSERT_READER: &str = "INSERT INTO readers (user_id, node, last_round_ms) VALUES ($1, $2, $3)
     ON CONFLICT (user_id, node) DO UPDATE
     SET last_round_ms = greatest(readers.last_round_ms, excluded.last_round_ms)";

const UPSERT_SEEN: &str = "INSERT INTO reader_seen (user_id, node, plugin, writer, hlc)
     SELECT $1, $2, * FROM unnest($3::text[], $4::bigint[], $5::text[])
     ON CONFLICT (user_id, node, plugin, writer) DO UPDATE SET hlc = excluded.hlc
     WHERE excluded.hlc > reader_seen.hlc";

const RAISE_COLLECTED: &str = "INSERT INTO collected (user_id, plugin, writer, hlc)
     SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[])
     ON CONFLICT (user_id, plugin, writer) DO UPDATE SET hlc = excluded.hlc
     WHERE excluded.hlc > collected.hlc";

const DROP_TOMBSTONES: &str = "DELETE FROM records r
     USING unnest($2::text[], $3::text[], $4::text[]) AS t (plugin, key, hlc)
     WHERE r.user_id = $1 AND r.plugin = t.plugin AND r.key = t.key AND r.hlc = t.hlc AND r.kind = 0
     RETURNING r.plugin, r.hlc";

/// Readers with their `seen`, one row per (reader, plugin, writer) or one with NULLs for a reader
/// that proved nothing yet.
const READERS: &str = "SELECT r.node, r.last_round_ms, s.plugin, s.hlc FROM readers r
     LEFT JOIN reader_seen s ON s.user_id = r.user_id AND s.node = r.node
     WHERE r.user_id = $1 AND r.last_round_ms >= $2 AND ($3::bigint IS NULL OR r.node = $3)";

impl PgTx<'_> {
    fn readers(&mut self, since_ms: i64, only: Option<i64>) -> Result<Vec<Reader>, PgError> {
        let mut by_node: BTreeMap<i64, (i64, Watermarks)> = BTreeMap::new();
        for row in self.tx.query(READERS, &[&self.user, &since_ms, &only])? {
            let node: i64 = row.try_get(0)?;
            let entry = by_node
                .entry(node)
                .or_insert_with(|| (row.try_get(1).unwrap_or(0), Watermarks::new()));
            if row.try_get::<_, Option<&str>>(2)?.is_some() {
                entry.1.advance(&plugin_at(&row, 2)?, hlc_at(&row, 3)?);
            }
        }
        Ok(by_node
            .into_iter()
            .filter_map(|(node, (last, seen))| {
                Some(Reader {
                    node: NodeId::new(node as u64).ok()?,
                    last_round_ms: last.max(0) as u64,
                    seen,
                })
            })
            .collect())
    }
}

impl GcStore for PgTx<'_> {
    fn reader(&mut self, node: NodeId) -> Result<Option<Reader>, PgError> {
        Ok(self
            .readers(i64::MIN, Some(node_column(node)))?
            .into_iter()
            .next())
    }

    fn observe_reader(
        &mut self,
        node: NodeId,
        now_ms: u64,
        seen: &Watermarks,
    ) -> Result<(), PgError> {
        let column = node_column(node);
        self.tx
            .execute(UPSERT_READER, &[&self.user, &column, &(now_ms as i64)])?;
        let (mut plugins, mut writers, mut hlcs) = (Vec::new(), Vec::new(), Vec::new());
        for (plugin, vector) in seen.iter() {
            for (writer, hlc) in vector.iter() {
                plugins.push(plugin.as_str());
                writers.push(node_column(writer));
                hlcs.push(hlc.encode());
            }
        }
        if !plugins.is_empty() {
            self.tx.execute(
                UPSERT_SEEN,
                &[&self.user, &column, &plugins, &writers, &hlcs],
            )?;
        }
        Ok(())
    }

    fn active_readers(&mut self, since_ms: u64) -> Result<Vec<Reader>, PgError> {
        self.readers(since_ms as i64, None)
    }

    fn collected(&mut self) -> Result<Watermarks, PgError> {
        let mut out = Watermarks::new();
        for row in self.tx.query(
            "SELECT plugin, hlc FROM collected WHERE user_id = $1",
            &[&self.user],
        )? {
            out.advance(&plugin_at(&row, 0)?, hlc_at(&row, 1)?);
        }
        Ok(out)
    }

    fn old_tombstones(&mut self, before_ms: u64, limit: usize) -> Result<Vec<Record>, PgError> {
        self.tx
            .query(
                "SELECT plugin, key, hlc, kind, value FROM records
                 WHERE user_id = $1 AND kind = 0 AND hlc < $2 ORDER BY hlc LIMIT $3",
                &[&self.user, &wall_floor(before_ms), &(limit as i64)],
            )?
            .iter()
            .map(record_at)
            .collect()
    }

    fn drop_tombstones(&mut self, tombstones: &[Record]) -> Result<(), PgError> {
        if tombstones.is_empty() {
            return Ok(());
        }
        let plugins: Vec<&str> = tombstones.iter().map(|t| t.plugin.as_str()).collect();
        let keys: Vec<&str> = tombstones.iter().map(|t| t.key.as_str()).collect();
        let hlcs: Vec<String> = tombstones.iter().map(|t| t.hlc.encode()).collect();
        let mut floor: BTreeMap<(PluginId, NodeId), Hlc> = BTreeMap::new();
        for row in self
            .tx
            .query(DROP_TOMBSTONES, &[&self.user, &plugins, &keys, &hlcs])?
        {
            let hlc = hlc_at(&row, 1)?;
            let top = floor.entry((plugin_at(&row, 0)?, hlc.node)).or_insert(hlc);
            *top = (*top).max(hlc);
        }
        let (mut plugins, mut writers, mut hlcs) = (Vec::new(), Vec::new(), Vec::new());
        for ((plugin, writer), hlc) in &floor {
            plugins.push(plugin.as_str());
            writers.push(node_column(*writer));
            hlcs.push(hlc.encode());
        }
        if !plugins.is_empty() {
            self.tx
                .execute(RAISE_COLLECTED, &[&self.user, &plugins, &writers, &hlcs])?;
        }
        Ok(())
    }

    fn rows_after(
        &mut self,
        plugin: &PluginId,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<Vec<Record>, PgError> {
        // Keys are never empty, so '' is below every key.
        let after = after.map_or("", Key::as_str);
        self.tx
            .query(
                "SELECT plugin, key, hlc, kind, value FROM records
                 WHERE user_id = $1 AND plugin = $2 AND key > $3 ORDER BY key LIMIT $4",
                &[&self.user, &plugin.as_str(), &after, &(limit as i64)],
            )?
            .iter()
            .map(record_at)
            .collect()
    }
}
