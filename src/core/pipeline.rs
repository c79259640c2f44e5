//! Pipelined pulls: the next round's request, planned while this round's batch still commits.
//!
//! A sync of many pages waited on the network and on the IndexedDB commit in turn. A pure
//! pull (nothing pushed, nothing left to push) is idempotent on the server, so the next
//! request can go out while this round's batch commits; its `seen` and `coverageFrom` follow
//! from the batch (docs/PROTOCOL.md, invariant 4b and coverage paging). [`After`] is the store
//! as it will be once the batch has committed, so the ordinary [`Client::request_from`] plans
//! that request: there is one planner, not a second copy of its rules.
//!
//! The speculation is only ever a prefetch: once the batch has committed, the caller plans the
//! real request from the store and uses the prefetched reply only when the two requests are
//! equal (a local write or another tab in between makes them differ, and the reply is
//! dropped, exactly like a lost reply). A failed commit drops it too, so nothing moves past
//! what committed.

use super::sorted::SortedSet;

use super::hlc::Hlc;
use super::ids::{Key, PluginId};
use super::protocol::ExchangeRequest;
use super::record::Record;
use super::replica::{Batch, Client, Outgoing, Plan, ReplicaError, Store, VectorKind};
use super::watermark::Watermarks;

/// A read-only view of `base` with `batch` committed on top (nothing is written to `base`).
#[derive(Debug)]
pub struct After<'a, S> {
    base: &'a mut S,
    batch: &'a Batch,
}

/// [`After`] is read-only: planning never commits, so a commit through it is refused.
#[derive(Debug, thiserror::Error)]
pub enum AfterError<E: std::error::Error> {
    /// The base store failed.
    #[error("store: {0}")]
    Store(E),
    /// Something tried to commit through the read-only view.
    #[error("a planned view cannot commit")]
    ReadOnly,
}

impl<'a, S: Store> After<'a, S> {
    /// `base` as it will be once `batch` has committed.
    pub fn new(base: &'a mut S, batch: &'a Batch) -> Self {
        After { base, batch }
    }

    fn pending(&self, plugin: &PluginId, key: &Key) -> Option<&'a Record> {
        // Batches hold each (plugin, key) once (`replica::winners`); the last one wins anyway.
        self.batch
            .records
            .iter()
            .rev()
            .find(|r| &r.plugin == plugin && &r.key == key)
    }
}

impl<S: Store> Store for After<'_, S> {
    type Error = AfterError<S::Error>;

    fn version(&mut self, plugin: &PluginId, key: &Key) -> Result<Option<Hlc>, Self::Error> {
        match self.pending(plugin, key) {
            Some(r) => Ok(Some(r.hlc)),
            None => self.base.version(plugin, key).map_err(AfterError::Store),
        }
    }

    fn plugins(&mut self) -> Result<Vec<PluginId>, Self::Error> {
        let mut all = SortedSet::new();
        for p in self.base.plugins().map_err(AfterError::Store)? {
            all.insert(p);
        }
        for r in &self.batch.records {
            all.insert(r.plugin.clone());
        }
        for (_, watermarks) in &self.batch.vectors {
            for p in watermarks.plugins() {
                all.insert(p.clone());
            }
        }
        Ok(all.into_iter().collect())
    }

    fn vectors(
        &mut self,
        kind: VectorKind,
        plugins: &[PluginId],
    ) -> Result<Watermarks, Self::Error> {
        let mut out = self
            .base
            .vectors(kind, plugins)
            .map_err(AfterError::Store)?;
        // A batch replaces the vectors of exactly the plugins it carries (`Batch::vectors`).
        for (k, watermarks) in &self.batch.vectors {
            if *k != kind {
                continue;
            }
            for (plugin, vector) in watermarks.iter() {
                if plugins.contains(plugin) {
                    out.set(plugin.clone(), vector.clone());
                }
            }
        }
        Ok(out)
    }

    fn records_above(
        &mut self,
        plugins: &[PluginId],
        floor: &Watermarks,
        limit: usize,
    ) -> Result<Vec<Record>, Self::Error> {
        // The batch may replace up to all of its keys among the base's first records: ask for
        // that many more so the cut at `limit` stays exact.
        let extra = self.batch.records.len();
        let mut out: Vec<Record> = self
            .base
            .records_above(plugins, floor, limit.saturating_add(extra))
            .map_err(AfterError::Store)?
            .into_iter()
            .filter(|r| self.pending(&r.plugin, &r.key).is_none())
            .collect();
        // Each pending record in its place by HLC (typically none: the reply's coverage covers
        // what it sent), rather than a sort of the whole page.
        for r in &self.batch.records {
            if plugins.contains(&r.plugin) && !floor.covers(r) {
                let at = out.partition_point(|x| x.hlc < r.hlc);
                out.insert(at, r.clone());
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    fn commit(&mut self, _batch: Batch) -> Result<(), Self::Error> {
        Err(AfterError::ReadOnly)
    }
}

/// The request of the round after `request` whose reply planned `plan`, for a pure pull only:
/// `None` when `request` pushed something or more waits to be pushed (pushes are never sent
/// twice ahead of a commit), when the reply said nothing more waits, or when planning fails.
/// `plan.clock` is the clock adopted once the batch commits.
pub fn next_pull<S: Store>(
    client: &Client,
    store: &mut S,
    request: &ExchangeRequest,
    more_to_push: bool,
    plan: &Plan,
) -> Option<ExchangeRequest> {
    let more = plan.has_more || plan.coverage_next.is_some();
    if !request.push.is_empty() || more_to_push || !more {
        return None;
    }
    let mut after = After::new(store, &plan.batch);
    let outgoing: Result<Outgoing, ReplicaError<_>> = client.request_from(
        &mut after,
        &plan.clock,
        request.plugins.as_deref(),
        request.limit,
        plan.coverage_next.clone(),
    );
    let outgoing = outgoing.ok()?;
    // Something to push after all (it cannot be: the batch holds only remote records the
    // reply's coverage covers), so no speculation.
    (outgoing.request.push.is_empty() && !outgoing.more_to_push).then_some(outgoing.request)
}
