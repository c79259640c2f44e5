//! Tombstone collection (protocol v2, issue 16), wired around the core's decisions
//! (`clientdata::core::gc`): the server remembers its readers, collects tombstones older than the
//! horizon that every active reader has covered, reports what it collected, tells a client that
//! may have missed a collected deletion to run a full resync, and answers that walk.
//!
//! When collection runs: inside rounds on the writer (SQLite's one connection, any PostgreSQL
//! round), after the round's own work and in its transaction, at most [`COLLECT_BATCH`]
//! candidates a round. Those are the rounds that push and the rounds whose reader must be
//! written down (new, seen more, or last written an eighth of a horizon ago), so a dataset in
//! use is swept often while an idle one costs nothing; no background task has to walk every
//! user's datasets, and a round's latency grows by one bounded index range.
//!
//! Age: a tombstone's age is its stamp's wall time (stamps are at most `maxDriftMs` ahead of the
//! server's clock), so no column is added to the records table. Correctness does not rest on
//! the age: a client whose `seen` does not cover a collected stamp is sent to a full resync
//! whenever that happened ([`missed_collection`]); the horizon only decides how long collection
//! waits for readers that stopped syncing.

use clientdata::core::gc::{missed_collection, Horizon, Reader};
use clientdata::core::replica::{effective_seen, ReplicaError};
use clientdata::core::resync::{Cursor, ResyncRequest, ResyncResponse};
use clientdata::core::{
    ExchangeRequest, ExchangeResponse, Key, Limits, NodeId, PluginId, Record, Store, VectorKind,
    Watermarks, PROTOCOL_VERSION,
};

/// Tombstones examined for collection per round, at most (the oldest first).
pub const COLLECT_BATCH: usize = 500;

/// What collection needs from a backend's transaction, beside the core's [`Store`]. Every
/// method reads or writes only the transaction's dataset.
pub trait GcStore: Store {
    /// The reader `node`: its last round and the `seen` it proved, merged.
    fn reader(&mut self, node: NodeId) -> Result<Option<Reader>, Self::Error>;
    /// Records a round of `node` at `now_ms` that proved `seen` (stored stamps only move up).
    fn observe_reader(
        &mut self,
        node: NodeId,
        now_ms: u64,
        seen: &Watermarks,
    ) -> Result<(), Self::Error>;
    /// Every reader whose last round is at or after `since_ms`.
    fn active_readers(&mut self, since_ms: u64) -> Result<Vec<Reader>, Self::Error>;
    /// Per plugin and writer, the highest collected stamp (all plugins of the dataset).
    fn collected(&mut self) -> Result<Watermarks, Self::Error>;
    /// Up to `limit` tombstones stamped before wall time `before_ms`, oldest first.
    fn old_tombstones(&mut self, before_ms: u64, limit: usize) -> Result<Vec<Record>, Self::Error>;
    /// Deletes these tombstones (each only if still stored with its stamp) and raises the
    /// collected stamps to them.
    fn drop_tombstones(&mut self, tombstones: &[Record]) -> Result<(), Self::Error>;
    /// Up to `limit` rows of `plugin` with a key after `after` (all with `None`), by key.
    fn rows_after(
        &mut self,
        plugin: &PluginId,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<Vec<Record>, Self::Error>;
}

/// The horizon, from the server's configuration (`--tombstone-horizon-secs`).
pub fn horizon(secs: u64) -> Horizon {
    Horizon {
        ms: secs.saturating_mul(1000),
    }
}

/// The reply that sends a client to the full resync: nothing of its request was applied.
pub fn full_resync_reply() -> ExchangeResponse {
    ExchangeResponse {
        version: PROTOCOL_VERSION,
        records: Vec::new(),
        coverage: Watermarks::new(),
        has_more: false,
        coverage_next: None,
        collected: Watermarks::new(),
        full_resync: true,
        replaced_store_epoch: None,
    }
}

/// Whether `request`'s sender may hold deletions the server collected (see the module docs).
pub fn needs_full_resync<S: GcStore>(
    tx: &mut S,
    request: &ExchangeRequest,
) -> Result<bool, S::Error> {
    let seen = effective_seen(request);
    if seen.is_empty() {
        return Ok(false);
    }
    Ok(missed_collection(&seen, &tx.collected()?))
}

/// Whether a read-only answer to `request` would leave its reader unrecorded (so the round must
/// run on the writer after all).
pub fn observation_due<S: GcStore>(
    tx: &mut S,
    request: &ExchangeRequest,
    now_ms: u64,
    horizon: Horizon,
) -> Result<bool, S::Error> {
    let stored = tx.reader(request.node)?;
    Ok(Reader::observation_due(
        stored.as_ref(),
        &effective_seen(request),
        now_ms,
        horizon,
    ))
}

/// The writer's part of a round: records its reader, collects up to [`COLLECT_BATCH`]
/// tombstones, and fills the reply's `collected` for the plugins its coverage speaks for.
/// Returns how many tombstones it collected.
pub fn after_round<S: GcStore>(
    tx: &mut S,
    request: &ExchangeRequest,
    reply: &mut ExchangeResponse,
    now_ms: u64,
    horizon: Horizon,
) -> Result<usize, S::Error> {
    tx.observe_reader(request.node, now_ms, &effective_seen(request))?;
    let collected = collect(tx, now_ms, horizon)?;
    reply.collected = reported(tx, reply)?;
    Ok(collected)
}

/// The collected stamps of the plugins a reply speaks for (its coverage and records).
pub fn reported<S: GcStore>(tx: &mut S, reply: &ExchangeResponse) -> Result<Watermarks, S::Error> {
    let mut all = tx.collected()?;
    all.retain(|p| {
        !reply.coverage.plugin(p).is_empty() || reply.records.iter().any(|r| &r.plugin == p)
    });
    Ok(all)
}

/// One collection pass: the oldest tombstones past the horizon that every active reader holds.
pub fn collect<S: GcStore>(tx: &mut S, now_ms: u64, horizon: Horizon) -> Result<usize, S::Error> {
    let candidates = tx.old_tombstones(now_ms.saturating_sub(horizon.ms), COLLECT_BATCH)?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let readers = tx.active_readers(now_ms.saturating_sub(horizon.ms))?;
    let doomed: Vec<Record> = candidates
        .into_iter()
        .filter(|t| horizon.collectable(t, t.hlc.wall_ms, &readers, now_ms))
        .collect();
    tx.drop_tombstones(&doomed)?;
    if !doomed.is_empty() {
        tracing::debug!(collected = doomed.len(), "tombstones collected");
    }
    Ok(doomed.len())
}

/// One page of the full-resync walk, read in one transaction: the rows after the cursor in
/// (plugin, key) order within the scope, cut at `limit` and the page byte budget, with the
/// coverage of every plugin the page spans. Marks the walker a reader as of now (so collection
/// waits for it from here on; its `seen` is written by its next round).
pub fn resync_page<S: GcStore>(
    tx: &mut S,
    request: &ResyncRequest,
    limits: &Limits,
    now_ms: u64,
) -> Result<ResyncResponse, ReplicaError<S::Error>> {
    let store = ReplicaError::Store;
    let mut plugins: Vec<PluginId> = match &request.plugins {
        Some(scope) => scope.clone(),
        None => tx.plugins().map_err(store)?,
    };
    plugins.sort();
    plugins.dedup();
    if let Some(after) = &request.after {
        plugins.retain(|p| *p >= after.plugin);
    }
    let limit = request.limit as usize;
    let mut rows: Vec<Record> = Vec::new();
    let mut spanned = Vec::new();
    let mut more = false;
    for plugin in &plugins {
        spanned.push(plugin.clone());
        let after = request
            .after
            .as_ref()
            .filter(|a| a.plugin == *plugin)
            .map(|a| &a.key);
        let want = limit + 1 - rows.len();
        rows.extend(tx.rows_after(plugin, after, want).map_err(store)?);
        if rows.len() > limit {
            more = true;
            break;
        }
    }
    rows.truncate(limit);
    let mut used = 0;
    if let Some(cut) = rows.iter().position(|r| {
        used += r.wire_size();
        used > limits.page_bytes
    }) {
        rows.truncate(cut.max(1));
        more = true;
    }
    if more {
        // The page spans up to its last row's plugin.
        let last = rows.last().map(|r| r.plugin.clone());
        spanned.retain(|p| Some(p) <= last.as_ref());
    }
    let coverage: Watermarks = tx
        .vectors(VectorKind::Coverage, &spanned)
        .map_err(store)?
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    tx.observe_reader(request.node, now_ms, &Watermarks::new())
        .map_err(store)?;
    let next = more.then(|| rows.last()).flatten().map(|r| Cursor {
        plugin: r.plugin.clone(),
        key: r.key.clone(),
    });
    Ok(ResyncResponse {
        version: PROTOCOL_VERSION,
        rows,
        coverage,
        next,
    })
}
