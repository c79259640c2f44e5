//! [`Store`] over one PostgreSQL transaction, scoped to one user: every statement binds
//! `user_id`. Each method is one statement (arrays in, rows out), so a round costs a handful of
//! network round trips whatever its size. (Over 300 lines because a third of it is that SQL,
//! kept beside the code that binds it.)

use std::collections::HashMap;
use std::time::Duration;

use clientdata::core::{
    Batch, DeviceEpoch, Hlc, Key, NodeId, PluginId, Record, Store, Value, VectorKind,
    VersionVector, Watermarks,
};
use postgres::{Row, Transaction};

use super::PgError;
use clientdata::core::content::{ContentRef, Digest};

use crate::auth::UserId;
use crate::devices::Remembered;
use crate::quota::Counted;
use crate::scope::Scope;

/// The value column's kinds (as in the SQLite schema).
pub(super) const TOMBSTONE: i16 = 0;
pub(super) const JSON: i16 = 1;
pub(super) const BYTES: i16 = 2;
/// A value by reference: `value` is `ContentRef::encode`'s text.
pub(super) const REF: i16 = 3;

/// One exchange round of one user. Dropped without
/// [`Transaction::commit_transaction`](crate::backend::Transaction::commit_transaction), it rolls
/// back.
pub struct PgTx<'c> {
    pub(super) tx: Transaction<'c>,
    pub(super) user: i64,
    /// The user the scope belongs to (its caps count over all its datasets).
    owner: UserId,
    apply_delay: Option<Duration>,
}

impl<'c> PgTx<'c> {
    pub(super) fn new(
        tx: Transaction<'c>,
        user: i64,
        owner: UserId,
        apply_delay: Option<Duration>,
    ) -> Self {
        PgTx {
            tx,
            user,
            owner,
            apply_delay,
        }
    }

    /// Conditional upserts: a row changes only when the incoming HLC is greater, so a write that
    /// lost LWW can never replace the winner, whoever commits last.
    fn write_records(&mut self, records: &[Record]) -> Result<(), PgError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut cols = Columns::default();
        for r in records {
            cols.push(r);
        }
        let values: Vec<Option<&[u8]>> = cols.values.iter().map(Option::as_deref).collect();
        self.tx.execute(
            UPSERT_RECORDS,
            &[
                &self.user,
                &cols.plugins,
                &cols.keys,
                &cols.nodes,
                &cols.hlcs,
                &cols.kinds,
                &values,
            ],
        )?;
        Ok(())
    }
}

/// A batch of records as one array per column.
#[derive(Default)]
struct Columns<'a> {
    plugins: Vec<&'a str>,
    keys: Vec<&'a str>,
    nodes: Vec<i64>,
    hlcs: Vec<String>,
    kinds: Vec<i16>,
    values: Vec<Option<std::borrow::Cow<'a, [u8]>>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, r: &'a Record) {
        let (kind, value) = match &r.value {
            None => (TOMBSTONE, None),
            Some(Value::Json(text)) => (JSON, Some(text.as_bytes().into())),
            Some(Value::Bytes(bytes)) => (BYTES, Some(bytes.as_slice().into())),
            Some(Value::Ref(c)) => (REF, Some(c.encode().into_bytes().into())),
        };
        self.plugins.push(r.plugin.as_str());
        self.keys.push(r.key.as_str());
        self.nodes.push(node_column(r.hlc.node));
        self.hlcs.push(r.hlc.encode());
        self.kinds.push(kind);
        self.values.push(value);
    }
}

const UPSERT_RECORDS: &str = "INSERT INTO records (user_id, plugin, key, node, hlc, kind, value)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::smallint[], $7::bytea[])
     ON CONFLICT (user_id, plugin, key) DO UPDATE
     SET node = excluded.node, hlc = excluded.hlc, kind = excluded.kind, value = excluded.value
     WHERE excluded.hlc > records.hlc";

/// Coverage only moves up: for every batch `serve` builds (stored coverage advanced by the push)
/// that is the same as replacing it, and two processes racing can never move it back.
const ADVANCE_COVERAGE: &str = "INSERT INTO coverage (user_id, plugin, node, hlc)
     SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[])
     ON CONFLICT (user_id, plugin, node) DO UPDATE SET hlc = excluded.hlc
     WHERE excluded.hlc > coverage.hlc";

const VERSIONS: &str = "SELECT k.i, r.hlc
     FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k (plugin, key, i)
     JOIN records r ON r.user_id = $1 AND r.plugin = k.plugin AND r.key = k.key";

/// Distinct plugins with records (a skip scan over the index, one seek per plugin) or coverage.
const PLUGINS: &str = "WITH RECURSIVE p (plugin) AS (
         (SELECT plugin FROM records WHERE user_id = $1 ORDER BY plugin LIMIT 1)
         UNION ALL
         SELECT (SELECT r.plugin FROM records r WHERE r.user_id = $1 AND r.plugin > p.plugin
                 ORDER BY r.plugin LIMIT 1)
         FROM p WHERE p.plugin IS NOT NULL
     )
     SELECT plugin FROM p WHERE plugin IS NOT NULL
     UNION SELECT plugin FROM coverage WHERE user_id = $1";

const COVERAGE: &str =
    "SELECT plugin, hlc FROM coverage WHERE user_id = $1 AND plugin = ANY($2::text[])";

/// The records above a floor, as SQLite does it: per (plugin, node) one index range above the
/// node's watermark (nodes found by a skip scan), at most `$6` from each, merged by HLC and cut
/// at `$6`; only then are the chosen rows' values read. (Equal stamps on two keys cannot happen:
/// every write is ticked; the key only makes the order total.)
const RECORDS_ABOVE: &str = "WITH RECURSIVE nodes (plugin, node) AS (
         SELECT p.plugin, (SELECT min(r.node) FROM records r
                           WHERE r.user_id = $1 AND r.plugin = p.plugin)
         FROM unnest($2::text[]) AS p (plugin)
         UNION ALL
         SELECT n.plugin, (SELECT min(r.node) FROM records r
                           WHERE r.user_id = $1 AND r.plugin = n.plugin AND r.node > n.node)
         FROM nodes n WHERE n.node IS NOT NULL
     ),
     floor (plugin, node, hlc) AS (
         SELECT * FROM unnest($3::text[], $4::bigint[], $5::text[])
     ),
     chosen AS (
         SELECT n.plugin, c.key, c.hlc FROM nodes n
         LEFT JOIN floor f ON f.plugin = n.plugin AND f.node = n.node
         CROSS JOIN LATERAL (
             SELECT r.key, r.hlc FROM records r
             WHERE r.user_id = $1 AND r.plugin = n.plugin AND r.node = n.node
               AND r.hlc > COALESCE(f.hlc, '')
             ORDER BY r.hlc LIMIT $6
         ) c
         WHERE n.node IS NOT NULL
         ORDER BY c.hlc, n.plugin, c.key LIMIT $6
     )
     SELECT r.plugin, r.key, r.hlc, r.kind, r.value
     FROM chosen c
     JOIN records r ON r.user_id = $1 AND r.plugin = c.plugin AND r.key = c.key
     ORDER BY c.hlc, c.plugin, c.key";

/// Bounded counts for the per-user caps (`LIMIT $2`: never more index entries than the cap),
/// over every dataset of the user (`$1` the user's row, `$3`..`$4` the range of its dataset rows
/// `user/...` in byte order, see `Scope`): caps are per user, so new datasets cannot multiply
/// them.
macro_rules! user_rows {
    () => {
        "SELECT id FROM users WHERE name = $1 OR (name COLLATE \"C\" >= $3 AND name COLLATE \"C\" < $4)"
    };
}
const COUNT_PLUGINS: &str = concat!(
    "SELECT count(*) FROM (SELECT DISTINCT user_id, plugin FROM coverage WHERE user_id IN (",
    user_rows!(),
    ") LIMIT $2) AS c"
);
const COUNT_NODES: &str = concat!(
    "SELECT count(*) FROM (SELECT user_id, node FROM coverage WHERE user_id IN (",
    user_rows!(),
    ") UNION SELECT user_id, node FROM nodes WHERE user_id IN (",
    user_rows!(),
    ") LIMIT $2) AS c"
);
const COUNT_RECORDS: &str = concat!(
    "SELECT count(*) FROM (SELECT 1 FROM records WHERE user_id IN (",
    user_rows!(),
    ") LIMIT $2) AS c"
);

/// The bytes of content a user holds over its datasets (octet_length reads a value's size
/// without detoasting it). Its own parameters: PostgreSQL cannot type an unused `$2`.
const CONTENT_BYTES: &str = "SELECT COALESCE(SUM(octet_length(data)), 0)::BIGINT FROM content \
     WHERE user_id IN (SELECT id FROM users WHERE name = $1 \
     OR (name COLLATE \"C\" >= $2 AND name COLLATE \"C\" < $3))";

impl crate::backend::Transaction for PgTx<'_> {
    fn count(&mut self, what: Counted, upto: u64) -> Result<u64, PgError> {
        let sql = match what {
            Counted::Plugins => COUNT_PLUGINS,
            Counted::Nodes => COUNT_NODES,
            Counted::Records => COUNT_RECORDS,
        };
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        let (lo, hi) = Scope::dataset_rows_range(&self.owner);
        let n: i64 = self
            .tx
            .query_one(sql, &[&self.owner.as_str(), &upto, &lo, &hi])?
            .try_get(0)?;
        Ok(n.unsigned_abs())
    }

    fn commit_transaction(self) -> Result<(), PgError> {
        Ok(self.tx.commit()?)
    }

    fn node_secret(&mut self, node: NodeId) -> Result<Option<[u8; 32]>, PgError> {
        let row = self.tx.query_opt(
            "SELECT secret FROM nodes WHERE user_id = $1 AND node = $2",
            &[&self.user, &node_column(node)],
        )?;
        // A stored digest of another length matches nothing offered (all zeros is no SHA-256).
        let digest = row.map(|r| r.try_get::<_, Vec<u8>>(0)).transpose()?;
        Ok(digest.map(|d| d.try_into().unwrap_or([0; 32])))
    }

    fn claim_node(&mut self, node: NodeId, digest: &[u8; 32]) -> Result<(), PgError> {
        self.tx.execute(
            "INSERT INTO nodes (user_id, node, secret) VALUES ($1, $2, $3)",
            &[&self.user, &node_column(node), &&digest[..]],
        )?;
        Ok(())
    }

    fn device(&mut self, id: &str) -> Result<Option<Remembered>, PgError> {
        let row = self.tx.query_opt(
            "SELECT epoch, seen_ms FROM devices WHERE user_id = $1 AND device = $2",
            &[&self.user, &id],
        )?;
        row.map(|row| {
            Ok(Remembered {
                epoch: row.try_get(0)?,
                seen_ms: row.try_get::<_, i64>(1)?.max(0).unsigned_abs(),
            })
        })
        .transpose()
    }

    fn remember_device(
        &mut self,
        device: &DeviceEpoch,
        now_ms: u64,
        evict_beyond: Option<u64>,
    ) -> Result<(), PgError> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        self.tx.execute(
            "INSERT INTO devices (user_id, device, epoch, seen_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, device) DO UPDATE SET epoch = excluded.epoch,
             seen_ms = excluded.seen_ms",
            &[&self.user, &device.id, &device.epoch, &now],
        )?;
        if let Some(cap) = evict_beyond {
            // Keep the newest `cap - 1` others beside this one (never this one: its stamp may
            // tie with others').
            let keep = i64::try_from(cap.saturating_sub(1)).unwrap_or(i64::MAX);
            self.tx.execute(
                "DELETE FROM devices WHERE user_id = $1 AND device IN (
                   SELECT device FROM devices WHERE user_id = $1 AND device <> $2
                   ORDER BY seen_ms DESC, device OFFSET $3)",
                &[&self.user, &device.id, &keep],
            )?;
        }
        Ok(())
    }

    fn salt(&mut self, fresh: &[u8; 32]) -> Result<[u8; 32], PgError> {
        self.tx.execute(
            "INSERT INTO salts (user_id, salt) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&self.user, &&fresh[..]],
        )?;
        let row = self
            .tx
            .query_one("SELECT salt FROM salts WHERE user_id = $1", &[&self.user])?;
        let salt: Vec<u8> = row.try_get(0)?;
        Ok(salt.try_into().unwrap_or(*fresh))
    }

    fn has_content(&mut self, sha256: &Digest) -> Result<bool, PgError> {
        Ok(self
            .tx
            .query_opt(
                "SELECT 1 FROM content WHERE user_id = $1 AND sha256 = $2",
                &[&self.user, &&sha256.0[..]],
            )?
            .is_some())
    }

    fn put_content(&mut self, sha256: &Digest, data: &[u8]) -> Result<(), PgError> {
        self.tx.execute(
            "INSERT INTO content (user_id, sha256, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&self.user, &&sha256.0[..], &data],
        )?;
        Ok(())
    }

    fn content_bytes(&mut self) -> Result<u64, PgError> {
        let (lo, hi) = Scope::dataset_rows_range(&self.owner);
        let n: i64 = self
            .tx
            .query_one(CONTENT_BYTES, &[&self.owner.as_str(), &lo, &hi])?
            .try_get(0)?;
        Ok(n.unsigned_abs())
    }

    fn content(&mut self, sha256: &Digest) -> Result<Option<Vec<u8>>, PgError> {
        let row = self.tx.query_opt(
            "SELECT data FROM content WHERE user_id = $1 AND sha256 = $2",
            &[&self.user, &&sha256.0[..]],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }
}

impl Store for PgTx<'_> {
    type Error = PgError;

    fn version(&mut self, plugin: &PluginId, key: &Key) -> Result<Option<Hlc>, PgError> {
        Ok(self.versions(&[(plugin, key)])?.pop().flatten())
    }

    fn versions(&mut self, keys: &[(&PluginId, &Key)]) -> Result<Vec<Option<Hlc>>, PgError> {
        let plugins: Vec<&str> = keys.iter().map(|(p, _)| p.as_str()).collect();
        let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
        let mut out = vec![None; keys.len()];
        for row in self.tx.query(VERSIONS, &[&self.user, &plugins, &names])? {
            let i: i64 = row.try_get(0)?;
            if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some(hlc_at(&row, 1)?);
            }
        }
        Ok(out)
    }

    fn plugins(&mut self) -> Result<Vec<PluginId>, PgError> {
        let mut all: Vec<PluginId> = self
            .tx
            .query(PLUGINS, &[&self.user])?
            .iter()
            .map(|row| plugin_at(row, 0))
            .collect::<Result<_, _>>()?;
        all.sort();
        Ok(all)
    }

    fn vectors(&mut self, kind: VectorKind, plugins: &[PluginId]) -> Result<Watermarks, PgError> {
        if kind != VectorKind::Coverage {
            return Err(PgError::UnsupportedVector(kind));
        }
        let names: Vec<&str> = plugins.iter().map(PluginId::as_str).collect();
        let mut vectors: HashMap<String, VersionVector> = HashMap::new();
        for row in self.tx.query(COVERAGE, &[&self.user, &names])? {
            let hlc = hlc_at(&row, 1)?;
            vectors
                .entry(row.try_get(0)?)
                .or_default()
                .advance(hlc.node, hlc);
        }
        let mut out = Watermarks::new();
        for plugin in plugins {
            out.set(
                plugin.clone(),
                vectors.remove(plugin.as_str()).unwrap_or_default(),
            );
        }
        Ok(out)
    }

    fn records_above(
        &mut self,
        plugins: &[PluginId],
        floor: &Watermarks,
        limit: usize,
    ) -> Result<Vec<Record>, PgError> {
        if limit == 0 || plugins.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = plugins.iter().map(PluginId::as_str).collect();
        let (mut floor_plugins, mut floor_nodes, mut floor_hlcs) =
            (Vec::new(), Vec::new(), Vec::new());
        for plugin in plugins {
            for (node, hlc) in floor.plugin(plugin).iter() {
                floor_plugins.push(plugin.as_str());
                floor_nodes.push(node_column(node));
                floor_hlcs.push(hlc.encode());
            }
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.tx
            .query(
                RECORDS_ABOVE,
                &[
                    &self.user,
                    &names,
                    &floor_plugins,
                    &floor_nodes,
                    &floor_hlcs,
                    &limit,
                ],
            )?
            .iter()
            .map(record_at)
            .collect()
    }

    fn commit(&mut self, batch: Batch) -> Result<(), PgError> {
        match self.apply_delay {
            Some(delay) if !batch.records.is_empty() => {
                let half = batch.records.len().div_ceil(2);
                self.write_records(&batch.records[..half])?;
                tracing::warn!(
                    written = half,
                    of = batch.records.len(),
                    ms = delay.as_millis() as u64,
                    "test apply delay: sleeping inside the transaction"
                );
                std::thread::sleep(delay);
                self.write_records(&batch.records[half..])?;
            }
            _ => self.write_records(&batch.records)?,
        }
        for (kind, watermarks) in &batch.vectors {
            if *kind != VectorKind::Coverage {
                return Err(PgError::UnsupportedVector(*kind));
            }
            let (mut plugins, mut nodes, mut hlcs) = (Vec::new(), Vec::new(), Vec::new());
            for (plugin, vector) in watermarks.iter() {
                for (node, hlc) in vector.iter() {
                    plugins.push(plugin.as_str());
                    nodes.push(node_column(node));
                    hlcs.push(hlc.encode());
                }
            }
            if !plugins.is_empty() {
                self.tx
                    .execute(ADVANCE_COVERAGE, &[&self.user, &plugins, &nodes, &hlcs])?;
            }
        }
        Ok(())
    }
}

/// Node ids are u64; PostgreSQL's bigint is i64. The bits are kept, so equality still holds.
pub(super) fn node_column(node: NodeId) -> i64 {
    node.get() as i64
}

pub(super) fn hlc_at(row: &Row, column: usize) -> Result<Hlc, PgError> {
    Ok(Hlc::parse(row.try_get::<_, &str>(column)?)?)
}

pub(super) fn plugin_at(row: &Row, column: usize) -> Result<PluginId, PgError> {
    Ok(PluginId::new(row.try_get::<_, String>(column)?)?)
}

/// A record from `plugin, key, hlc, kind, value`.
pub(super) fn record_at(row: &Row) -> Result<Record, PgError> {
    let plugin = plugin_at(row, 0)?;
    let key = Key::new(row.try_get::<_, String>(1)?)?;
    let hlc = hlc_at(row, 2)?;
    let bytes = || -> Result<Vec<u8>, PgError> {
        Ok(row.try_get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default())
    };
    let value = match row.try_get::<_, i16>(3)? {
        TOMBSTONE => None,
        JSON => Some(Value::Json(String::from_utf8(bytes()?).map_err(|e| {
            PgError::Corrupt(format!("JSON value is not UTF-8: {e}"))
        })?)),
        BYTES => Some(Value::Bytes(bytes()?)),
        REF => Some(Value::Ref(
            String::from_utf8(bytes()?)
                .ok()
                .and_then(|text| ContentRef::decode(&text))
                .ok_or_else(|| PgError::Corrupt("invalid content reference".into()))?,
        )),
        other => return Err(PgError::Corrupt(format!("unknown value kind {other}"))),
    };
    Ok(Record {
        plugin,
        key,
        hlc,
        value,
    })
}
