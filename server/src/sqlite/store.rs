//! [`Store`] over one SQLite transaction, scoped to one user: every statement binds `user_id`.

use std::collections::BTreeSet;
use std::time::Duration;

use clientdata::core::content::{ContentRef, Digest};
use clientdata::core::{
    Batch, DeviceEpoch, Hlc, Key, NodeId, PluginId, Record, Store, Value, VectorKind,
    VersionVector, Watermarks,
};
use rusqlite::types::{Null, Type};
use rusqlite::{params, OptionalExtension, Row, ToSql, Transaction};

use super::SqliteError;
use crate::auth::UserId;
use crate::devices::Remembered;
use crate::quota::Counted;
use crate::scope::Scope;

/// Sorts above every encoded HLC (they are lowercase hex and `-`): "no upper bound".
const NO_BOUND: &str = "~";

/// The value column's kinds.
const TOMBSTONE: i64 = 0;
const JSON: i64 = 1;
const BYTES: i64 = 2;
/// A value by reference: `value` is `ContentRef::encode`'s text.
const REF: i64 = 3;

/// One exchange round of one user. Dropped without
/// [`Transaction::commit_transaction`](crate::backend::Transaction::commit_transaction), it rolls
/// back.
#[derive(Debug)]
pub struct SqliteTx<'c> {
    pub(super) tx: Transaction<'c>,
    pub(super) user: i64,
    /// The user the scope belongs to (its caps count over all its datasets).
    owner: UserId,
    apply_delay: Option<Duration>,
}

impl<'c> SqliteTx<'c> {
    pub(super) fn new(
        tx: Transaction<'c>,
        user: i64,
        owner: UserId,
        apply_delay: Option<Duration>,
    ) -> Self {
        SqliteTx {
            tx,
            user,
            owner,
            apply_delay,
        }
    }

    /// The first node at or above `from` with a record in `plugin` (a hand-made skip scan:
    /// one index seek per distinct node instead of a walk over every row).
    fn next_node(&self, plugin: &PluginId, from: i64) -> rusqlite::Result<Option<i64>> {
        self.tx
            .prepare_cached(NEXT_NODE)?
            .query_row(params![self.user, plugin.as_str(), from], |row| row.get(0))
            .optional()
    }

    fn write_record(&self, r: &Record) -> rusqlite::Result<()> {
        let (kind, value): (i64, &dyn ToSql) = match &r.value {
            None => (TOMBSTONE, &Null),
            Some(Value::Json(text)) => (JSON, text),
            Some(Value::Bytes(bytes)) => (BYTES, bytes),
            Some(Value::Ref(c)) => {
                return self.upsert(r, REF, &c.encode());
            }
        };
        self.upsert(r, kind, value)
    }

    fn upsert(&self, r: &Record, kind: i64, value: &dyn ToSql) -> rusqlite::Result<()> {
        self.tx.prepare_cached(UPSERT_RECORD)?.execute(params![
            self.user,
            r.plugin.as_str(),
            r.key.as_str(),
            node_column(r.hlc.node),
            r.hlc.encode(),
            kind,
            value
        ])?;
        Ok(())
    }
}

/// Next distinct node of a plugin. Plan: `SEARCH records USING COVERING INDEX records_by_node
/// (user_id=? AND plugin=? AND node>?)`, first row only.
pub(super) const NEXT_NODE: &str = "SELECT node FROM records WHERE user_id = ?1 AND plugin = ?2 AND node >= ?3 ORDER BY node LIMIT 1";

/// One node's records above its watermark (and at most `hi`), in HLC order. Plan: `SEARCH
/// records USING COVERING INDEX records_by_node (user_id=? AND plugin=? AND node=? AND hlc>? AND
/// hlc<?)`: a range scan that reads only the rows it returns, no sort, no table access.
pub(super) const NODE_RANGE: &str =
    "SELECT hlc, rowid FROM records WHERE user_id = ?1 AND plugin = ?2 AND node = ?3 AND hlc > ?4 AND hlc <= ?5 ORDER BY hlc LIMIT ?6";

/// A chosen record by rowid (`SEARCH records USING INTEGER PRIMARY KEY`).
pub(super) const RECORD_BY_ROWID: &str =
    "SELECT plugin, key, hlc, kind, value FROM records WHERE rowid = ?1 AND user_id = ?2";

/// Next distinct plugin with records (`SEARCH records USING COVERING INDEX ...(user_id=? AND plugin>?)`).
pub(super) const NEXT_PLUGIN: &str =
    "SELECT plugin FROM records WHERE user_id = ?1 AND plugin > ?2 ORDER BY plugin LIMIT 1";

/// Point lookup on the primary key.
pub(super) const VERSION: &str =
    "SELECT hlc FROM records WHERE user_id = ?1 AND plugin = ?2 AND key = ?3";

const UPSERT_RECORD: &str = "INSERT INTO records (user_id, plugin, key, node, hlc, kind, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (user_id, plugin, key) DO UPDATE SET node = excluded.node, hlc = excluded.hlc, kind = excluded.kind, value = excluded.value";

/// Bounded counts for the per-user caps (`LIMIT ?2`: never more index entries than the cap),
/// over every dataset of the user (`?1` the user's row, `?3`..`?4` the range of its dataset
/// rows `user/...`, see `Scope`): caps are per user, so new datasets cannot multiply them.
macro_rules! user_rows {
    () => {
        "SELECT id FROM users WHERE name = ?1 OR (name >= ?3 AND name < ?4)"
    };
}
pub(super) const COUNT_PLUGINS: &str = concat!(
    "SELECT count(*) FROM (SELECT DISTINCT user_id, plugin FROM coverage WHERE user_id IN (",
    user_rows!(),
    ") LIMIT ?2)"
);
pub(super) const COUNT_NODES: &str = concat!(
    "SELECT count(*) FROM (SELECT user_id, node FROM coverage WHERE user_id IN (",
    user_rows!(),
    ") UNION SELECT user_id, node FROM nodes WHERE user_id IN (",
    user_rows!(),
    ") LIMIT ?2)"
);
pub(super) const COUNT_RECORDS: &str = concat!(
    "SELECT count(*) FROM (SELECT 1 FROM records WHERE user_id IN (",
    user_rows!(),
    ") LIMIT ?2)"
);

/// The bytes of content a user holds over its datasets (length() reads a blob's size from its
/// row header, not the blob).
const CONTENT_BYTES: &str = concat!(
    "SELECT COALESCE(SUM(length(data)), 0) FROM content WHERE user_id IN (",
    user_rows!(),
    ")"
);

impl crate::backend::Transaction for SqliteTx<'_> {
    fn count(&mut self, what: Counted, upto: u64) -> Result<u64, SqliteError> {
        let sql = match what {
            Counted::Plugins => COUNT_PLUGINS,
            Counted::Nodes => COUNT_NODES,
            Counted::Records => COUNT_RECORDS,
        };
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        let (lo, hi) = Scope::dataset_rows_range(&self.owner);
        let n: i64 = self.tx.prepare_cached(sql)?.query_row(
            params![self.owner.as_str(), upto, lo.as_str(), hi.as_str()],
            |row| row.get(0),
        )?;
        Ok(n.unsigned_abs())
    }

    fn commit_transaction(self) -> Result<(), SqliteError> {
        Ok(self.tx.commit()?)
    }

    fn node_secret(&mut self, node: NodeId) -> Result<Option<[u8; 32]>, SqliteError> {
        let digest: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT secret FROM nodes WHERE user_id = ?1 AND node = ?2")?
            .query_row(params![self.user, node_column(node)], |row| row.get(0))
            .optional()?;
        // A stored digest of another length matches nothing offered (all zeros is no SHA-256).
        Ok(digest.map(|d| d.try_into().unwrap_or([0; 32])))
    }

    fn claim_node(&mut self, node: NodeId, digest: &[u8; 32]) -> Result<(), SqliteError> {
        self.tx
            .prepare_cached("INSERT INTO nodes (user_id, node, secret) VALUES (?1, ?2, ?3)")?
            .execute(params![self.user, node_column(node), &digest[..]])?;
        Ok(())
    }

    fn device(&mut self, id: &str) -> Result<Option<Remembered>, SqliteError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT epoch, seen_ms FROM devices WHERE user_id = ?1 AND device = ?2",
            )?
            .query_row(params![self.user, id], |row| {
                Ok(Remembered {
                    epoch: row.get(0)?,
                    seen_ms: row.get::<_, i64>(1)?.max(0).unsigned_abs(),
                })
            })
            .optional()?)
    }

    fn remember_device(
        &mut self,
        device: &DeviceEpoch,
        now_ms: u64,
        evict_beyond: Option<u64>,
    ) -> Result<(), SqliteError> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        self.tx
            .prepare_cached(
                "INSERT INTO devices (user_id, device, epoch, seen_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, device) DO UPDATE SET epoch = excluded.epoch,
                 seen_ms = excluded.seen_ms",
            )?
            .execute(params![self.user, device.id, device.epoch, now])?;
        if let Some(cap) = evict_beyond {
            // Keep the newest `cap - 1` others beside this one (never this one: its stamp may
            // tie with others').
            let keep = i64::try_from(cap.saturating_sub(1)).unwrap_or(i64::MAX);
            self.tx
                .prepare_cached(
                    "DELETE FROM devices WHERE user_id = ?1 AND device IN (
                       SELECT device FROM devices WHERE user_id = ?1 AND device <> ?2
                       ORDER BY seen_ms DESC, device LIMIT -1 OFFSET ?3)",
                )?
                .execute(params![self.user, device.id, keep])?;
        }
        Ok(())
    }

    fn salt(&mut self, fresh: &[u8; 32]) -> Result<[u8; 32], SqliteError> {
        self.tx
            .prepare_cached(
                "INSERT INTO salts (user_id, salt) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![self.user, &fresh[..]])?;
        let salt: Vec<u8> = self
            .tx
            .prepare_cached("SELECT salt FROM salts WHERE user_id = ?1")?
            .query_row(params![self.user], |row| row.get(0))?;
        Ok(salt.try_into().unwrap_or(*fresh))
    }

    fn has_content(&mut self, sha256: &Digest) -> Result<bool, SqliteError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM content WHERE user_id = ?1 AND sha256 = ?2")?
            .query_row(params![self.user, &sha256.0[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn put_content(&mut self, sha256: &Digest, data: &[u8]) -> Result<(), SqliteError> {
        self.tx
            .prepare_cached(
                "INSERT INTO content (user_id, sha256, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![self.user, &sha256.0[..], data])?;
        Ok(())
    }

    fn content_bytes(&mut self) -> Result<u64, SqliteError> {
        let (lo, hi) = Scope::dataset_rows_range(&self.owner);
        // ?2 is unused here (user_rows! numbers its parameters 1, 3 and 4).
        let n: i64 = self.tx.prepare_cached(CONTENT_BYTES)?.query_row(
            params![self.owner.as_str(), 0, lo.as_str(), hi.as_str()],
            |row| row.get(0),
        )?;
        Ok(n.unsigned_abs())
    }

    fn content(&mut self, sha256: &Digest) -> Result<Option<Vec<u8>>, SqliteError> {
        Ok(self
            .tx
            .prepare_cached("SELECT data FROM content WHERE user_id = ?1 AND sha256 = ?2")?
            .query_row(params![self.user, &sha256.0[..]], |row| row.get(0))
            .optional()?)
    }
}

impl Store for SqliteTx<'_> {
    type Error = SqliteError;

    fn version(&mut self, plugin: &PluginId, key: &Key) -> Result<Option<Hlc>, SqliteError> {
        let mut stmt = self.tx.prepare_cached(VERSION)?;
        Ok(stmt
            .query_row(params![self.user, plugin.as_str(), key.as_str()], |row| {
                hlc_at(row, 0)
            })
            .optional()?)
    }

    fn plugins(&mut self) -> Result<Vec<PluginId>, SqliteError> {
        let mut all = BTreeSet::new();
        let mut next = self.tx.prepare_cached(NEXT_PLUGIN)?;
        let mut after = String::new();
        while let Some(plugin) = next
            .query_row(params![self.user, after], |row| plugin_at(row, 0))
            .optional()?
        {
            after = plugin.as_str().to_owned();
            all.insert(plugin);
        }
        let mut covered = self
            .tx
            .prepare_cached("SELECT DISTINCT plugin FROM coverage WHERE user_id = ?1")?;
        for plugin in covered.query_map([self.user], |row| plugin_at(row, 0))? {
            all.insert(plugin?);
        }
        Ok(all.into_iter().collect())
    }

    fn vectors(
        &mut self,
        kind: VectorKind,
        plugins: &[PluginId],
    ) -> Result<Watermarks, SqliteError> {
        if kind != VectorKind::Coverage {
            return Err(SqliteError::UnsupportedVector(kind));
        }
        let mut stmt = self
            .tx
            .prepare_cached("SELECT hlc FROM coverage WHERE user_id = ?1 AND plugin = ?2")?;
        let mut out = Watermarks::new();
        for plugin in plugins {
            let vector = stmt
                .query_map(params![self.user, plugin.as_str()], |row| hlc_at(row, 0))?
                .map(|h| h.map(|h| (h.node, h)));
            out.set(
                plugin.clone(),
                vector.collect::<rusqlite::Result<VersionVector>>()?,
            );
        }
        Ok(out)
    }

    /// Per (plugin, node) one index range above the node's watermark, merged by HLC keeping the
    /// `limit` lowest (hlc, rowid); once `limit` are held, later ranges stop at the highest kept.
    /// Only then are the chosen rows read, so values beyond the page are never loaded.
    fn records_above(
        &mut self,
        plugins: &[PluginId],
        floor: &Watermarks,
        limit: usize,
    ) -> Result<Vec<Record>, SqliteError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut best: BTreeSet<(String, i64)> = BTreeSet::new();
        let mut range = self.tx.prepare_cached(NODE_RANGE)?;
        for plugin in plugins {
            let watermarks = floor.plugin(plugin);
            let mut from = i64::MIN;
            while let Some(node) = self.next_node(plugin, from)? {
                let above = node_id(node)
                    .and_then(|n| watermarks.get(n))
                    .map(|h| h.encode())
                    .unwrap_or_default();
                let hi = match best.last() {
                    Some((hlc, _)) if best.len() == limit => hlc.clone(),
                    _ => NO_BOUND.to_owned(),
                };
                let rows = range.query_map(
                    params![self.user, plugin.as_str(), node, above, hi, limit as i64],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                for row in rows {
                    best.insert(row?);
                    if best.len() > limit {
                        best.pop_last();
                    }
                }
                match node.checked_add(1) {
                    Some(next) => from = next,
                    None => break,
                }
            }
        }
        let mut fetch = self.tx.prepare_cached(RECORD_BY_ROWID)?;
        let mut out = Vec::with_capacity(best.len());
        for (_, rowid) in best {
            out.push(fetch.query_row(params![rowid, self.user], record_at)?);
        }
        Ok(out)
    }

    fn commit(&mut self, batch: Batch) -> Result<(), SqliteError> {
        let pause_after = self
            .apply_delay
            .map(|delay| (batch.records.len().div_ceil(2), delay));
        for (i, record) in batch.records.iter().enumerate() {
            self.write_record(record)?;
            if let Some((at, delay)) = pause_after.filter(|(at, _)| i + 1 == *at) {
                tracing::warn!(
                    written = at,
                    of = batch.records.len(),
                    ms = delay.as_millis() as u64,
                    "test apply delay: sleeping inside the transaction"
                );
                std::thread::sleep(delay);
            }
        }
        for (kind, watermarks) in &batch.vectors {
            if *kind != VectorKind::Coverage {
                return Err(SqliteError::UnsupportedVector(*kind));
            }
            // A batch *replaces* each plugin's vector, as MemoryStore does.
            let mut clear = self
                .tx
                .prepare_cached("DELETE FROM coverage WHERE user_id = ?1 AND plugin = ?2")?;
            let mut insert = self.tx.prepare_cached(
                "INSERT INTO coverage (user_id, plugin, node, hlc) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (plugin, vector) in watermarks.iter() {
                clear.execute(params![self.user, plugin.as_str()])?;
                for (node, hlc) in vector.iter() {
                    insert.execute(params![
                        self.user,
                        plugin.as_str(),
                        node_column(node),
                        hlc.encode()
                    ])?;
                }
            }
        }
        Ok(())
    }
}

/// Node ids are u64; SQLite integers are i64. The bits are kept, so equality still holds.
pub(super) fn node_column(node: NodeId) -> i64 {
    node.get() as i64
}

pub(super) fn node_id(column: i64) -> Option<NodeId> {
    NodeId::new(column as u64).ok()
}

fn decode_error(column: usize, e: clientdata::core::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(e))
}

pub(super) fn hlc_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Hlc> {
    Hlc::parse(row.get_ref(column)?.as_str()?).map_err(|e| decode_error(column, e))
}

pub(super) fn plugin_at(row: &Row<'_>, column: usize) -> rusqlite::Result<PluginId> {
    PluginId::new(row.get::<_, String>(column)?).map_err(|e| decode_error(column, e))
}

pub(super) fn record_at(row: &Row<'_>) -> rusqlite::Result<Record> {
    let plugin = plugin_at(row, 0)?;
    let key = Key::new(row.get::<_, String>(1)?).map_err(|e| decode_error(1, e))?;
    let hlc = hlc_at(row, 2)?;
    let value = match row.get::<_, i64>(3)? {
        TOMBSTONE => None,
        JSON => Some(Value::Json(row.get(4)?)),
        BYTES => Some(Value::Bytes(row.get(4)?)),
        REF => Some(Value::Ref(
            ContentRef::decode(row.get_ref(4)?.as_str()?).ok_or_else(|| {
                decode_error(
                    4,
                    clientdata::core::Error::InvalidRequest("content reference".into()),
                )
            })?,
        )),
        other => return Err(rusqlite::Error::IntegralValueOutOfRange(3, other)),
    };
    Ok(Record {
        plugin,
        key,
        hlc,
        value,
    })
}
