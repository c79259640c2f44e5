//! The exchange round, decided here once for client and server (docs/DESIGN.md invariant 4).
//!
//! Sans-IO: the state machine reads through the [`Store`] trait and hands every change back as
//! one [`Batch`], which the store commits atomically (one IndexedDB transaction in the browser,
//! one SQL transaction on the server, a plain swap in [`MemoryStore`]). Nothing is written until
//! every check has passed, so a failed round changes nothing.
//!
//! Vectors kept per plugin:
//! - client `Seen`: what it has received (the request's `seen`);
//! - client `PeerCoverage`: its copy of the server's coverage (decides what to push; replaced by
//!   each reply's so a server restored from backup can move it down);
//! - server `Coverage`: per node, how far the server holds that node's records. Tracked on its
//!   own, not derived from stored rows, so a pushed record that loses LWW still counts as covered.

use std::collections::{BTreeMap, BTreeSet};

use super::error::Error;
use super::hlc::{Hlc, HlcClock};
use super::ids::{Key, NodeId, PluginId};
use super::protocol::{
    check_page, DeviceEpoch, ExchangeRequest, ExchangeResponse, Limits, PROTOCOL_VERSION,
};
use super::record::{lww, Record};
use super::sorted::{sort_by, SortedSet};
use super::watermark::{VersionVector, Watermarks};

/// Which vector a store keeps (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VectorKind {
    /// Client: what it has received from the server.
    Seen,
    /// Client: its copy of the server's coverage.
    PeerCoverage,
    /// Server: what it holds per node.
    Coverage,
}

/// Everything one round writes, committed atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Records that won LWW and replace the stored version of their (plugin, key).
    pub records: Vec<Record>,
    /// Vectors to replace, per plugin present in each `Watermarks`.
    pub vectors: Vec<(VectorKind, Watermarks)>,
}

/// Storage the replica needs. Reads see everything committed before; `commit` is atomic.
pub trait Store {
    /// The store's own failure type.
    type Error: std::error::Error;

    /// The stored version of (plugin, key), tombstones included.
    fn version(&mut self, plugin: &PluginId, key: &Key) -> Result<Option<Hlc>, Self::Error>;
    /// The stored versions of several (plugin, key) pairs, in order. By default one
    /// [`Store::version`] each; a store that pays a network round trip per query (the server's
    /// PostgreSQL backend) answers them in one.
    fn versions(&mut self, keys: &[(&PluginId, &Key)]) -> Result<Vec<Option<Hlc>>, Self::Error> {
        keys.iter().map(|(p, k)| self.version(p, k)).collect()
    }
    /// Every plugin with a record or a vector.
    fn plugins(&mut self) -> Result<Vec<PluginId>, Self::Error>;
    /// The `kind` vectors of `plugins` (absent ones empty).
    fn vectors(
        &mut self,
        kind: VectorKind,
        plugins: &[PluginId],
    ) -> Result<Watermarks, Self::Error>;
    /// Up to `limit` records of `plugins` not covered by `floor`, in ascending HLC order.
    fn records_above(
        &mut self,
        plugins: &[PluginId],
        floor: &Watermarks,
        limit: usize,
    ) -> Result<Vec<Record>, Self::Error>;
    /// Applies a batch atomically.
    fn commit(&mut self, batch: Batch) -> Result<(), Self::Error>;
}

/// A round failed: the protocol said no, or the store did. Either way nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError<E: std::error::Error> {
    /// A protocol or validation error (has a stable code).
    #[error(transparent)]
    Protocol(#[from] Error),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[source] E),
}

type Res<T, S> = Result<T, ReplicaError<<S as Store>::Error>>;

fn from_store<T, E: std::error::Error>(r: Result<T, E>) -> Result<T, ReplicaError<E>> {
    r.map_err(ReplicaError::Store)
}

/// `seen` plus, per node, the highest record pushed: a client holds every record of a node up
/// to anything it pushes of that node, so neither side needs those records echoed back.
pub fn effective_seen(request: &ExchangeRequest) -> Watermarks {
    let mut seen = request.seen.clone();
    for record in &request.push {
        seen.advance(&record.plugin, record.hlc);
    }
    seen
}

/// Keeps records while their wire size fits `budget`; always keeps the first.
fn cut_to_budget(records: &mut Vec<Record>, budget: usize) {
    let mut used = 0;
    let keep = records
        .iter()
        .position(|r| {
            used += r.wire_size();
            used > budget
        })
        .unwrap_or(records.len())
        .max(1)
        .min(records.len());
    records.truncate(keep);
}

/// The plugins a request addresses: its scope, or everything the store knows plus the pushed.
fn scope_plugins<S: Store>(store: &mut S, request: &ExchangeRequest) -> Res<Vec<PluginId>, S> {
    let mut plugins: SortedSet<PluginId> = match &request.plugins {
        Some(p) => p.iter().cloned().collect(),
        None => from_store(store.plugins())?.into_iter().collect(),
    };
    plugins.extend(request.seen.plugins().cloned());
    plugins.extend(request.push.iter().map(|r| r.plugin.clone()));
    Ok(plugins.into_iter().collect())
}

/// The LWW winners of `records` against the store (and each other), and how many of them are of
/// a (plugin, key) the store does not hold yet.
fn winners<S: Store>(store: &mut S, records: &[Record]) -> Res<(Vec<Record>, usize), S> {
    // In (plugin, key) order, one record per key: sorted stably, then each run of one key
    // folded in arrival order.
    let mut order: Vec<&Record> = records.iter().collect();
    sort_by(&mut order, |a, b| {
        (&a.plugin, &a.key).cmp(&(&b.plugin, &b.key))
    });
    let mut best: Vec<&Record> = Vec::with_capacity(order.len());
    for r in order {
        match best.last_mut() {
            Some(b) if b.plugin == r.plugin && b.key == r.key => *b = lww(b, r),
            _ => best.push(r),
        }
    }
    let keys: Vec<(&PluginId, &Key)> = best.iter().map(|r| (&r.plugin, &r.key)).collect();
    let stored = from_store(store.versions(&keys))?;
    let mut new_keys = 0;
    let winning = best
        .into_iter()
        .zip(stored)
        .filter(|(r, stored)| r.wins_over(stored.as_ref()))
        .map(|(r, stored)| {
            new_keys += usize::from(stored.is_none());
            r.clone()
        })
        .collect();
    Ok((winning, new_keys))
}

/// What the server did in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServeStats {
    /// Pushed records that won LWW and were stored.
    pub stored: usize,
    /// Pushed records received.
    pub received: usize,
    /// Records answered.
    pub answered: usize,
    /// Stored records of a (plugin, key) the store did not hold before.
    pub new_keys: usize,
    /// Pushed plugins the store had no coverage of before.
    pub new_plugins: usize,
    /// (plugin, node) pairs of the push the store had no coverage of before.
    pub new_writers: usize,
}

/// The server side of a round. Run it inside one transaction of the store: it commits the push
/// (LWW winners and coverage) and then reads the answer.
pub fn serve<S: Store>(
    store: &mut S,
    request: &ExchangeRequest,
    limits: &Limits,
    now_ms: u64,
) -> Res<(ExchangeResponse, ServeStats), S> {
    request.validate(limits, now_ms)?;
    let mut stats = ServeStats {
        received: request.push.len(),
        ..ServeStats::default()
    };

    if !request.push.is_empty() {
        let (stored, new_keys) = winners(store, &request.push)?;
        stats.stored = stored.len();
        stats.new_keys = new_keys;
        let pushed: Vec<PluginId> = request
            .push
            .iter()
            .map(|r| r.plugin.clone())
            .collect::<SortedSet<_>>()
            .into_iter()
            .collect();
        let mut coverage = from_store(store.vectors(VectorKind::Coverage, &pushed))?;
        // What the push adds (the server's per-user caps are checked only when something grew).
        stats.new_plugins = pushed
            .iter()
            .filter(|p| coverage.plugin(p).is_empty())
            .count();
        let writers: SortedSet<(&PluginId, NodeId)> = request
            .push
            .iter()
            .map(|r| (&r.plugin, r.hlc.node))
            .collect();
        stats.new_writers = writers
            .into_iter()
            .filter(|(p, n)| coverage.plugin(p).get(*n).is_none())
            .count();
        for r in &request.push {
            coverage.advance(&r.plugin, r.hlc);
        }
        from_store(store.commit(Batch {
            records: stored,
            vectors: vec![(VectorKind::Coverage, coverage)],
        }))?;
    }

    let plugins = scope_plugins(store, request)?;
    let mut floor = effective_seen(request);
    // Never answer the requester its own node's records, whatever its `seen` claims: a record
    // stamped with its node by someone else (a forged push, a cloned store) would otherwise be
    // refused by it as `own_node_echoed` on every round. The floor at the top hides them in
    // every store without a store-specific filter.
    let top = Hlc::top(request.node);
    for plugin in &plugins {
        floor.plugin_mut(plugin).advance(request.node, top);
    }
    let limit = request.limit as usize;
    let mut records = from_store(store.records_above(&plugins, &floor, limit + 1))?;
    let available = records.len();
    records.truncate(limit);
    cut_to_budget(&mut records, limits.page_bytes);
    let has_more = records.len() < available;
    // The server never answers the requester's own records: they are in `floor` now.
    debug_assert!(records.iter().all(|r| !floor.covers(r)));
    let (coverage, coverage_next) =
        coverage_page(store, &plugins, request, &records, limits.page_bytes)?;
    stats.answered = records.len();
    Ok((
        ExchangeResponse {
            version: PROTOCOL_VERSION,
            records,
            coverage,
            has_more,
            coverage_next,
            collected: Watermarks::new(),
            full_resync: false,
            replaced_store_epoch: None,
        },
        stats,
    ))
}

/// Plugins whose coverage is read from the store at a time while a reply's coverage is filled.
const COVERAGE_CHUNK: usize = 1000;

/// A plugin's coverage as the reply's JSON spells it, at most: `"plugin":{` + `},`, and per node
/// `"<16 hex>":"<34-char HLC>",`.
fn coverage_size(plugin: &PluginId, vector: &VersionVector) -> usize {
    plugin.as_str().len() + 6 + vector.len() * 56
}

/// A reply's coverage within `budget` bytes: always the plugins of the answered and pushed
/// records (the client checks their coverage), then the plugins in scope from the request's
/// `coverage_from` on, in order, until the next would not fit; that one is the reply's
/// `coverage_next`. At least one such plugin goes in whatever its size, so every reply moves
/// the cursor. Plugins without coverage are left out (absent means empty).
fn coverage_page<S: Store>(
    store: &mut S,
    plugins: &[PluginId],
    request: &ExchangeRequest,
    records: &[Record],
    budget: usize,
) -> Res<(Watermarks, Option<PluginId>), S> {
    let proven: Vec<PluginId> = records
        .iter()
        .chain(&request.push)
        .map(|r| r.plugin.clone())
        .collect::<SortedSet<_>>()
        .into_iter()
        .collect();
    let mut coverage = from_store(store.vectors(VectorKind::Coverage, &proven))?;
    let mut used: usize = coverage.iter().map(|(p, v)| coverage_size(p, v)).sum();
    let from = request.coverage_from.as_ref();
    let window: Vec<PluginId> = plugins
        .iter()
        .filter(|p| from.is_none_or(|from| *p >= from) && proven.binary_search(p).is_err())
        .cloned()
        .collect();
    let mut taken = 0;
    for chunk in window.chunks(COVERAGE_CHUNK) {
        let vectors = from_store(store.vectors(VectorKind::Coverage, chunk))?;
        for plugin in chunk {
            let vector = vectors.plugin(plugin);
            let size = coverage_size(plugin, &vector);
            if taken > 0 && used + size > budget {
                return Ok((coverage, Some(plugin.clone())));
            }
            used += size;
            taken += 1;
            if !vector.is_empty() {
                coverage.set(plugin.clone(), vector);
            }
        }
    }
    Ok((coverage, None))
}

/// One writer's view of rounds: builds requests, checks replies, plans what to commit.
#[derive(Debug, Clone)]
pub struct Client {
    /// The node id requests carry (the syncing writer's).
    pub node: NodeId,
    /// Limits enforced on replies and used for requests.
    pub limits: Limits,
    /// The device secret requests carry (see [`ExchangeRequest::secret`]).
    pub secret: Option<String>,
    /// The dataset requests name (see [`ExchangeRequest::dataset`]).
    pub dataset: Option<String>,
    /// The app's device id and the store epoch requests carry (see [`ExchangeRequest::device`]).
    pub device: Option<DeviceEpoch>,
}

/// A request and whether more local records wait to be pushed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The request to send.
    pub request: ExchangeRequest,
    /// Local records beyond this request's push remain uncovered by the server.
    pub more_to_push: bool,
}

/// What to commit for a checked reply, and the clock to adopt once it is committed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Records and vectors to commit in one transaction.
    pub batch: Batch,
    /// The clock after observing the reply's stamps; adopt it only after the commit succeeded.
    pub clock: HlcClock,
    /// Records in the reply that won LWW locally.
    pub applied: usize,
    /// The server has more records above this page.
    pub has_more: bool,
    /// The reply's coverage stopped before this plugin: the next request continues from it
    /// (its `coverage_from`).
    pub coverage_next: Option<PluginId>,
}

impl Client {
    /// A client for `node` with default limits.
    pub fn new(node: NodeId) -> Self {
        Client {
            node,
            limits: Limits::default(),
            secret: None,
            dataset: None,
            device: None,
        }
    }

    /// Builds the next request: the watermarks of the plugins in scope, and the local records the
    /// server is not known to cover, in HLC order, up to `limit` and the page byte budget.
    ///
    /// `clock` is this writer's clock: every record of our own node is at or below its last
    /// stamp, so `seen` claims that much for our node. Without it, a lost reply would leave our
    /// own records above `seen` and the server would echo them back.
    pub fn request<S: Store>(
        &self,
        store: &mut S,
        clock: &HlcClock,
        plugins: Option<&[PluginId]>,
        limit: u32,
    ) -> Res<Outgoing, S> {
        self.request_from(store, clock, plugins, limit, None)
    }

    /// [`Client::request`] continuing a reply's coverage from `coverage_from` (the previous
    /// [`Plan::coverage_next`]).
    pub fn request_from<S: Store>(
        &self,
        store: &mut S,
        clock: &HlcClock,
        plugins: Option<&[PluginId]>,
        limit: u32,
        coverage_from: Option<PluginId>,
    ) -> Res<Outgoing, S> {
        let limit = limit.clamp(1, self.limits.max_page);
        let scope: Vec<PluginId> = match plugins {
            Some(p) => p
                .iter()
                .cloned()
                .collect::<SortedSet<_>>()
                .into_iter()
                .collect(),
            None => from_store(store.plugins())?,
        };
        let seen = from_store(store.vectors(VectorKind::Seen, &scope))?;
        let peer = from_store(store.vectors(VectorKind::PeerCoverage, &scope))?;
        let mut push = from_store(store.records_above(&scope, &peer, limit as usize + 1))?;
        let available = push.len();
        push.truncate(limit as usize);
        cut_to_budget(&mut push, self.limits.page_bytes);
        let mut seen: Watermarks = seen
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect();
        let own = clock.last();
        if own.wall_ms > 0 {
            for plugin in &scope {
                seen.plugin_mut(plugin).advance(self.node, own);
            }
        }
        let request = ExchangeRequest {
            version: PROTOCOL_VERSION,
            node: self.node,
            plugins: plugins.map(|_| scope.clone()),
            seen,
            push,
            limit,
            secret: self.secret.clone(),
            dataset: self.dataset.clone(),
            coverage_from,
            device: self.device.clone(),
        };
        Ok(Outgoing {
            more_to_push: request.push.len() < available,
            request,
        })
    }

    /// Checks a reply against its request and plans the commit. Errors leave everything as it
    /// was: the store is only read, and the returned clock is a copy.
    pub fn plan<S: Store>(
        &self,
        store: &mut S,
        request: &ExchangeRequest,
        reply: &ExchangeResponse,
        clock: &HlcClock,
        now_ms: u64,
    ) -> Res<Plan, S> {
        self.check_reply(request, reply, now_ms)?;
        let mut clock = clock.clone();
        if let Some(max) = reply.max_hlc() {
            clock.observe(max, now_ms)?;
        }

        let floor = effective_seen(request);
        let cut = reply
            .has_more
            .then(|| reply.records.last().map(|r| r.hlc))
            .flatten();
        let mut plugins: SortedSet<PluginId> = reply.coverage.plugins().cloned().collect();
        plugins.extend(floor.plugins().cloned());
        plugins.extend(reply.records.iter().map(|r| r.plugin.clone()));
        if let Some(scope) = &request.plugins {
            plugins.extend(scope.iter().cloned());
        }
        let plugins: Vec<PluginId> = plugins.into_iter().collect();

        // New seen per plugin: what we had, what we pushed, and what this page provably covers:
        // the server's coverage, capped at the cut when the page was cut (invariant 4b).
        let mut seen = from_store(store.vectors(VectorKind::Seen, &plugins))?;
        seen.merge(&floor);
        for (plugin, coverage) in reply.coverage.iter() {
            let vector = seen.plugin_mut(plugin);
            for (node, hlc) in coverage.iter() {
                vector.advance(node, cut.map_or(hlc, |c| hlc.min(c)));
            }
        }
        // The server's coverage replaces our copy, for exactly the plugins the reply speaks for:
        // those it carries, and those of its window (`coverage_from` up to `coverage_next`),
        // where an absent plugin has none. Others keep our copy until their page comes.
        let from = request.coverage_from.as_ref();
        let next = reply.coverage_next.as_ref();
        let in_window = |p: &PluginId| from.is_none_or(|f| p >= f) && next.is_none_or(|n| p < n);
        let peer: Watermarks = plugins
            .iter()
            .map(|p| (p, reply.coverage.plugin(p)))
            .filter(|(p, carried)| in_window(p) || !carried.is_empty())
            .map(|(p, carried)| (p.clone(), carried))
            .collect();

        let (records, _) = winners(store, &reply.records)?;
        let applied = records.len();
        let batch = Batch {
            records,
            vectors: vec![(VectorKind::Seen, seen), (VectorKind::PeerCoverage, peer)],
        };
        Ok(Plan {
            batch,
            clock,
            applied,
            has_more: reply.has_more,
            coverage_next: reply.coverage_next.clone(),
        })
    }

    /// Everything a reply must satisfy before any of it is believed.
    pub fn check_reply(
        &self,
        request: &ExchangeRequest,
        reply: &ExchangeResponse,
        now_ms: u64,
    ) -> Result<(), Error> {
        reply.validate(&self.limits, now_ms)?;
        check_page(
            (reply.version, request.version),
            (reply.records.len(), request.limit),
            "records",
        )?;
        if reply.has_more && reply.records.is_empty() {
            return Err(Error::NoProgress);
        }
        if reply.replaced_store_epoch.is_some() && request.device.is_none() {
            return Err(Error::InvalidReply(
                "replacedStoreEpoch answers a request without device".into(),
            ));
        }
        if let Some(next) = &reply.coverage_next {
            // The cursor must move, or the client would ask for the same coverage forever.
            if request
                .coverage_from
                .as_ref()
                .is_some_and(|from| next <= from)
            {
                return Err(Error::NoProgress);
            }
            if !request.in_scope(next) {
                return Err(Error::InvalidReply(format!(
                    "coverageNext {next} outside the scope"
                )));
            }
        }
        let floor = effective_seen(request);
        for r in &reply.records {
            if r.hlc.node == self.node {
                return Err(Error::OwnNodeEchoed(r.hlc.to_string()));
            }
            if !request.in_scope(&r.plugin) {
                return Err(Error::InvalidReply(format!(
                    "record of plugin {} outside the scope",
                    r.plugin
                )));
            }
            if floor.covers(r) {
                return Err(Error::InvalidReply(format!(
                    "record {} of {} is at or below our watermark",
                    r.hlc, r.plugin
                )));
            }
        }
        if let Some(p) = reply.coverage.plugins().find(|p| !request.in_scope(p)) {
            return Err(Error::InvalidReply(format!(
                "coverage for plugin {p} outside the scope"
            )));
        }
        // Coverage must include what the reply sends and what the request pushed; otherwise the
        // same records would be pushed again forever.
        let mut proven = Watermarks::new();
        for r in reply.records.iter().chain(&request.push) {
            proven.advance(&r.plugin, r.hlc);
        }
        for (plugin, vector) in proven.iter() {
            let coverage = reply.coverage.plugin(plugin);
            for (node, hlc) in vector.iter() {
                if coverage.get(node).is_none_or(|c| c < hlc) {
                    return Err(Error::WatermarkRegression(format!(
                        "coverage of node {node} in {plugin} is below {hlc}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// An in-memory [`Store`]: the model the tests check every other store against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    records: BTreeMap<(PluginId, Key), Record>,
    vectors: BTreeMap<(VectorKind, PluginId), VersionVector>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every stored record (tombstones included) in (plugin, key) order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// The stored record of (plugin, key).
    pub fn get(&self, plugin: &PluginId, key: &Key) -> Option<&Record> {
        self.records.get(&(plugin.clone(), key.clone()))
    }

    /// Drops the record of (plugin, key) without a trace (a collected tombstone, or a record a
    /// full resync found deleted; see `core::gc`).
    pub fn remove(&mut self, plugin: &PluginId, key: &Key) -> Option<Record> {
        self.records.remove(&(plugin.clone(), key.clone()))
    }
}

impl Store for MemoryStore {
    type Error = std::convert::Infallible;

    fn version(&mut self, plugin: &PluginId, key: &Key) -> Result<Option<Hlc>, Self::Error> {
        Ok(self.get(plugin, key).map(|r| r.hlc))
    }

    fn plugins(&mut self) -> Result<Vec<PluginId>, Self::Error> {
        let mut all: BTreeSet<PluginId> = self.records.keys().map(|(p, _)| p.clone()).collect();
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
                (
                    p.clone(),
                    self.vectors
                        .get(&(kind, p.clone()))
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect())
    }

    fn records_above(
        &mut self,
        plugins: &[PluginId],
        floor: &Watermarks,
        limit: usize,
    ) -> Result<Vec<Record>, Self::Error> {
        let wanted: BTreeSet<&PluginId> = plugins.iter().collect();
        let mut out: Vec<Record> = self
            .records
            .values()
            .filter(|r| wanted.contains(&r.plugin) && !floor.covers(r))
            .cloned()
            .collect();
        out.sort_by_key(|r| r.hlc);
        out.truncate(limit);
        Ok(out)
    }

    fn commit(&mut self, batch: Batch) -> Result<(), Self::Error> {
        for r in batch.records {
            self.records.insert((r.plugin.clone(), r.key.clone()), r);
        }
        for (kind, watermarks) in batch.vectors {
            for (plugin, vector) in watermarks.iter() {
                self.vectors.insert((kind, plugin.clone()), vector.clone());
            }
        }
        Ok(())
    }
}
