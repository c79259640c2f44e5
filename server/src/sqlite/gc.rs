//! [`GcStore`] over one SQLite transaction: readers, collected stamps, old tombstones and the
//! walk's rows by key (schema migration 3).

use std::collections::BTreeMap;

use clientdata::core::gc::Reader;
use clientdata::core::{Hlc, Key, NodeId, PluginId, Record, Watermarks};
use rusqlite::{params, OptionalExtension};

use super::store::{hlc_at, node_column, node_id, plugin_at, record_at};
use super::{SqliteError, SqliteTx};
use crate::gc::GcStore;

/// The smallest encoded stamp of wall time `ms` (counter 0, node 0 sorts below every node).
pub(crate) fn wall_floor(ms: u64) -> String {
    format!("{:012x}-0000-0000000000000000", ms.min(0xffff_ffff_ffff))
}

impl SqliteTx<'_> {
    fn seen_of(&self, node: i64) -> rusqlite::Result<Watermarks> {
        let mut seen = Watermarks::new();
        let mut stmt = self.tx.prepare_cached(
            "SELECT plugin, hlc FROM reader_seen WHERE user_id = ?1 AND node = ?2",
        )?;
        for row in stmt.query_map(params![self.user, node], |row| {
            Ok((plugin_at(row, 0)?, hlc_at(row, 1)?))
        })? {
            let (plugin, hlc) = row?;
            seen.advance(&plugin, hlc);
        }
        Ok(seen)
    }
}

fn reader_from(node: i64, last_round_ms: i64, seen: Watermarks) -> Option<Reader> {
    Some(Reader {
        node: node_id(node)?,
        last_round_ms: last_round_ms.max(0) as u64,
        seen,
    })
}

impl GcStore for SqliteTx<'_> {
    fn reader(&mut self, node: NodeId) -> Result<Option<Reader>, SqliteError> {
        let column = node_column(node);
        let last: Option<i64> = self
            .tx
            .prepare_cached("SELECT last_round_ms FROM readers WHERE user_id = ?1 AND node = ?2")?
            .query_row(params![self.user, column], |row| row.get(0))
            .optional()?;
        let Some(last) = last else { return Ok(None) };
        Ok(reader_from(column, last, self.seen_of(column)?))
    }

    fn observe_reader(
        &mut self,
        node: NodeId,
        now_ms: u64,
        seen: &Watermarks,
    ) -> Result<(), SqliteError> {
        let column = node_column(node);
        self.tx
            .prepare_cached(
                "INSERT INTO readers (user_id, node, last_round_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, node) DO UPDATE SET last_round_ms = max(last_round_ms, excluded.last_round_ms)",
            )?
            .execute(params![self.user, column, now_ms as i64])?;
        let mut upsert = self.tx.prepare_cached(
            "INSERT INTO reader_seen (user_id, node, plugin, writer, hlc) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, node, plugin, writer) DO UPDATE SET hlc = excluded.hlc WHERE excluded.hlc > hlc",
        )?;
        for (plugin, vector) in seen.iter() {
            for (writer, hlc) in vector.iter() {
                upsert.execute(params![
                    self.user,
                    column,
                    plugin.as_str(),
                    node_column(writer),
                    hlc.encode()
                ])?;
            }
        }
        Ok(())
    }

    fn active_readers(&mut self, since_ms: u64) -> Result<Vec<Reader>, SqliteError> {
        let active: Vec<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT node, last_round_ms FROM readers WHERE user_id = ?1 AND last_round_ms >= ?2",
            )?
            .query_map(params![self.user, since_ms as i64], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(active.len());
        for (node, last) in active {
            out.extend(reader_from(node, last, self.seen_of(node)?));
        }
        Ok(out)
    }

    fn collected(&mut self) -> Result<Watermarks, SqliteError> {
        let mut out = Watermarks::new();
        let mut stmt = self
            .tx
            .prepare_cached("SELECT plugin, hlc FROM collected WHERE user_id = ?1")?;
        for row in stmt.query_map([self.user], |row| Ok((plugin_at(row, 0)?, hlc_at(row, 1)?)))? {
            let (plugin, hlc) = row?;
            out.advance(&plugin, hlc);
        }
        Ok(out)
    }

    fn old_tombstones(&mut self, before_ms: u64, limit: usize) -> Result<Vec<Record>, SqliteError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT plugin, key, hlc, kind, value FROM records
             WHERE user_id = ?1 AND kind = 0 AND hlc < ?2 ORDER BY hlc LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![self.user, wall_floor(before_ms), limit as i64],
            record_at,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn drop_tombstones(&mut self, tombstones: &[Record]) -> Result<(), SqliteError> {
        let mut delete = self.tx.prepare_cached(
            "DELETE FROM records WHERE user_id = ?1 AND plugin = ?2 AND key = ?3 AND hlc = ?4 AND kind = 0",
        )?;
        let mut floor: BTreeMap<(&PluginId, NodeId), Hlc> = BTreeMap::new();
        for t in tombstones {
            let hlc = t.hlc.encode();
            if delete.execute(params![self.user, t.plugin.as_str(), t.key.as_str(), hlc])? > 0 {
                let top = floor.entry((&t.plugin, t.hlc.node)).or_insert(t.hlc);
                *top = (*top).max(t.hlc);
            }
        }
        let mut raise = self.tx.prepare_cached(
            "INSERT INTO collected (user_id, plugin, writer, hlc) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, plugin, writer) DO UPDATE SET hlc = excluded.hlc WHERE excluded.hlc > hlc",
        )?;
        for ((plugin, writer), hlc) in floor {
            raise.execute(params![
                self.user,
                plugin.as_str(),
                node_column(writer),
                hlc.encode()
            ])?;
        }
        Ok(())
    }

    fn rows_after(
        &mut self,
        plugin: &PluginId,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<Vec<Record>, SqliteError> {
        // Keys are never empty, so '' is below every key.
        let after = after.map_or("", Key::as_str);
        let mut stmt = self.tx.prepare_cached(
            "SELECT plugin, key, hlc, kind, value FROM records
             WHERE user_id = ?1 AND plugin = ?2 AND key > ?3 ORDER BY key LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![self.user, plugin.as_str(), after, limit as i64],
            record_at,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
