//! `Syncer`: exchange rounds for one open store. A round, in order (docs/DESIGN.md STYLE 10:
//! lock -> fetch -> transaction): take the Web Lock `clientdata:<db>:round` (one round at a
//! time across tabs), reload the watermarks other tabs' rounds stored, plan the request
//! against the index (`push_plan` adds dirty keys and the full walk), POST it, check the reply
//! (`core::replica::Client::plan`), commit records and watermarks in ONE transaction, and only
//! then adopt the clock that observed the reply. Any failure before the commit leaves
//! everything as it was. Events go out through `summary`. Tombstone collection (protocol v2):
//! a reply's `collected` stamps drop local tombstones before its records land, and a reply that
//! says `fullResync` runs the walk in `full_resync` instead.
//!
//! Pipelined pulls (`core::pipeline`): within one `sync`, while a pure pull's batch commits,
//! the next round's request is already on the wire. It is a prefetch only: the next round plans
//! its request from the store as always and takes the prefetched reply only if the two are
//! equal; a failed commit returns before the reply is looked at, so nothing moves past what
//! committed. Sealed stores and rounds that push never run ahead.

use std::cell::RefCell;
use std::convert::Infallible;

use wasm_bindgen::JsValue;
use web_sys::AbortSignal;

use super::config::Eager;
use super::error::SyncError;
use super::full_resync;
use super::hydrate::Content;
pub use super::push_plan::Direction;
use super::push_plan::{self, Dirty};
use super::sealed::Sealer;
use super::summary;
use super::transport::Answer;
use super::transport::Transport;
use crate::browser::clock::JsClock;
use crate::browser::lock_manager::{self, lock_manager, HeldLock, RequestOptions, Wake};
use crate::core::pipeline;
use crate::core::replica::{Client, ReplicaError};
use crate::core::{ExchangeRequest, ExchangeResponse, Key, NodeId, PluginId};
use crate::store::db::Db;

/// What a round moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Remote records that won LWW here.
    pub applied: usize,
    /// Local records shipped to the server.
    pub shipped: usize,
    /// Another round would move more (the server has more, or we have more to push).
    pub has_more: bool,
    /// The (plugin, key)s the applied records changed.
    pub changed: Vec<(PluginId, Key)>,
    /// Of `applied`, the tombstones (deletions from other devices).
    pub deletions: usize,
    /// Local records removed without a trace: by a full resync (deleted by a collected
    /// tombstone) or tombstones the server reported collected.
    pub removed: usize,
    /// This round was a full resync (the server said `fullResync`).
    pub full: bool,
    /// Eager content fetches that failed (their nodes were held back, `sync::hydrate`).
    pub content_failures: usize,
}

/// A request sent ahead of its round while the previous batch committed, and how it went.
#[derive(Debug)]
pub struct Ahead {
    /// The request's JSON text: compared whole with the next round's.
    body: String,
    answer: Result<Answer, SyncError>,
}

/// Runs rounds for one store.
#[derive(Debug)]
pub struct Syncer {
    db: Db,
    transport: Transport,
    client: Client,
    dirty: RefCell<Dirty>,
    /// The store was found wiped (at open, or by a reply's `replacedStoreEpoch`) and no sync has
    /// completed since (`store::epoch`).
    wipe_unreported: std::cell::Cell<bool>,
    /// Where the server's coverage continues (the last reply's `coverageNext`), for the scope
    /// that reply answered; used only by a round of the same scope.
    coverage_from: RefCell<Option<(Option<Vec<PluginId>>, PluginId)>>,
    /// End-to-end encryption, when opened with `encryption` (`sync::sealed`).
    sealer: Option<Sealer>,
    /// A full-resync walk a failed page interrupted: the next walk of the same scope continues it.
    walk: RefCell<Option<full_resync::Walk>>,
}

/// The index cannot fail as a store, so a replica error on it is always a protocol error.
fn protocol_only(e: ReplicaError<Infallible>) -> crate::core::Error {
    match e {
        ReplicaError::Protocol(e) => e,
        ReplicaError::Store(never) => match never {},
    }
}

/// The server's 403 `node_id_taken` as its own typed error (`NodeIdTakenError`): our node id
/// belongs to another device, which no retry and no token fixes.
pub(super) fn node_taken(e: SyncError, node: NodeId) -> SyncError {
    match e {
        SyncError::Http {
            status: 403, code, ..
        } if code == "node_id_taken" => crate::core::Error::NodeIdTaken(node.to_string()).into(),
        other => other,
    }
}

/// The body of a reply (UTF-8 bytes, as fetched) copied into wasm in one piece, for the hand
/// reader (`core::wire`); `what` names the reply in the `InvalidReply` of one that is not
/// UTF-8 text.
pub(super) fn body_text(answer: &Answer, what: &str) -> Result<String, SyncError> {
    use wasm_bindgen::JsCast;
    let invalid = |why: &str| crate::core::Error::InvalidReply(format!("{what} {why}"));
    let bytes = answer
        .bytes
        .dyn_ref::<js_sys::Uint8Array>()
        .ok_or_else(|| invalid("without a body"))?;
    Ok(String::from_utf8(bytes.to_vec()).map_err(|_| invalid("that is not UTF-8 text"))?)
}

/// Reads a reply body (`core::wire`); any failure is `InvalidReply`, its message naming the
/// member and the byte (and the typed code of a field rule, e.g. `[invalid_hlc]`).
fn parse_reply(answer: &Answer) -> Result<ExchangeResponse, SyncError> {
    ExchangeResponse::from_json(&body_text(answer, "a reply")?).map_err(|e| {
        crate::core::Error::InvalidReply(format!("not a protocol v2 reply: {e}")).into()
    })
}

impl Syncer {
    /// A syncer for `db` over `transport`.
    pub fn new(db: Db, transport: Transport) -> Self {
        let clock = db.clock();
        let mut client = Client::new(clock.node());
        client.secret = Some(db.info().secret.to_hex());
        client.limits = transport.config().limits;
        client.limits.max_drift_ms = clock.max_drift_ms();
        // Each database is its own dataset on the server unless the app names one, so two
        // databases of one user never pull each other's records (docs/PROTOCOL.md, `dataset`).
        client.dataset = Some(
            transport
                .config()
                .dataset
                .clone()
                .unwrap_or_else(|| db.info().name.clone()),
        );
        // With an app-named device, rounds carry the store epoch: the server says when it saw
        // the device with another one (`replacedStoreEpoch`), a wipe nothing local remembers.
        client.device = transport
            .config()
            .device
            .clone()
            .map(|id| crate::core::DeviceEpoch {
                id,
                epoch: db.info().epoch.clone(),
            });
        let wipe_unreported = std::cell::Cell::new(db.wiped().is_some());
        Syncer {
            wipe_unreported,
            db,
            transport,
            client,
            dirty: RefCell::default(),
            coverage_from: RefCell::default(),
            sealer: None,
            walk: RefCell::default(),
        }
    }

    /// The same syncer, sealing every round with `sealer` (end-to-end encryption).
    pub fn sealed(self, sealer: Sealer) -> Self {
        Syncer {
            sealer: Some(sealer),
            ..self
        }
    }

    /// The store.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The content endpoint of this store's dataset (`sync::hydrate`).
    pub fn content(&self) -> Content<'_> {
        Content {
            transport: &self.transport,
            dataset: self.client.dataset.as_deref().unwrap_or_default(),
        }
    }

    /// The transport (for the verifier's health probe).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Marks one key (or, with `None`, everything) to be pushed again by the next round,
    /// whatever the server is known to cover. Cheap and idempotent.
    pub fn mark_dirty(&self, key: Option<(PluginId, Key)>) {
        self.dirty.borrow_mut().mark(key);
    }

    /// Whether `markDirty` left work for the next round.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.borrow().is_empty()
    }

    async fn round_lock(&self, signal: Option<&AbortSignal>) -> Result<HeldLock, SyncError> {
        let Some(manager) = lock_manager() else {
            // No Web Locks: rounds of this instance are still serialised by the caller's await;
            // other tabs may overlap, which costs repeated records, never correctness.
            return Ok(HeldLock::none());
        };
        let name = format!("clientdata:{}:round", self.db.info().name);
        let mut request = lock_manager::request(
            &manager,
            &name,
            RequestOptions {
                signal,
                ..RequestOptions::default()
            },
        );
        match request.wait(None).await {
            Wake::Granted(release) => Ok(HeldLock::new(release)),
            _ if signal.is_some_and(AbortSignal::aborted) => Err(SyncError::Aborted),
            _ => Err(SyncError::Network {
                url: name,
                message: "the round lock could not be taken".into(),
            }),
        }
    }

    /// One exchange round over `scope` (`None`: every plugin).
    pub async fn round(
        &self,
        scope: Option<&[PluginId]>,
        limit: u32,
        direction: Direction,
        signal: Option<&AbortSignal>,
    ) -> Result<Outcome, SyncError> {
        let _held = self.begin(signal).await?;
        self.round_held(scope, limit, direction, signal, None).await
    }

    /// Takes the round lock and re-reads the stored watermarks: another tab's round may have
    /// moved them, and while the lock is held no other round can.
    async fn begin(&self, signal: Option<&AbortSignal>) -> Result<HeldLock, SyncError> {
        self.db.check_open()?;
        if signal.is_some_and(AbortSignal::aborted) {
            return Err(SyncError::Aborted);
        }
        let held = self.round_lock(signal).await?;
        self.db.reload_vectors().await?;
        Ok(held)
    }

    /// One round, with the round lock held by the caller. With `pipe`, the round takes the
    /// reply sent ahead for it when it asks exactly that, and leaves there the next round's
    /// (see the module docs).
    async fn round_held(
        &self,
        scope: Option<&[PluginId]>,
        limit: u32,
        direction: Direction,
        signal: Option<&AbortSignal>,
        mut pipe: Option<&mut Option<Ahead>>,
    ) -> Result<Outcome, SyncError> {
        let ahead = pipe.as_mut().and_then(|slot| slot.take());
        self.db.check_open()?;
        if signal.is_some_and(AbortSignal::aborted) {
            return Err(SyncError::Aborted);
        }
        let clock = self.db.clock();
        let walk = self.dirty.borrow().walk;
        let coverage_from = self
            .coverage_from
            .borrow()
            .as_ref()
            .filter(|(asked, _)| asked.as_deref() == scope)
            .map(|(_, from)| from.clone());
        let (request, more_to_push, walk_next) = self.db.with_index(|index| {
            let mut outgoing = self
                .client
                .request_from(index, &clock, scope, limit, coverage_from)
                .map_err(protocol_only)?;
            let planned = push_plan::plan(
                index,
                &self.dirty.borrow(),
                scope,
                limit,
                direction,
                std::mem::take(&mut outgoing.request.push),
                outgoing.more_to_push,
            );
            outgoing.request.push = planned.push;
            Ok::<_, crate::core::Error>((outgoing.request, planned.more_to_push, planned.walk_next))
        })?;
        let mut request = request;
        // A reply sent ahead answers this round only if it asked exactly this request.
        // Pure pulls only, so there is nothing to seal or offload: the JSON text says it all.
        let ahead = match ahead {
            Some(a) if self.sealer.is_none() && request.push.is_empty() => {
                Some(a).filter(|a| request.to_json() == a.body)
            }
            _ => None,
        };
        let (wire, answer) = match ahead {
            Some(ahead) => (
                None,
                ahead.answer.map_err(|e| node_taken(e, self.client.node))?,
            ),
            None => self.send(&mut request, scope, signal).await?,
        };
        let mut reply = parse_reply(&answer)?;
        // Before anything else of the reply can fail: the server told it once, and remembers
        // the new epoch whatever happens to this round here.
        self.note_replaced(&request, &reply)?;
        // A sealed dataset is never told to resync: its deletes are sealed like writes, so the
        // server holds no tombstone of it to collect.
        if reply.full_resync {
            return self.full_resync(scope, limit, signal).await;
        }
        let mut sealed_more = false;
        if let (Some(sealer), Some(wire)) = (&self.sealer, &wire) {
            (reply, sealed_more) = sealer.open(&self.db, &request, wire, &reply, scope).await?;
        }
        let now = JsClock.try_now_ms()?;
        let removed = self.drop_collected(&request, &reply, now).await?;
        let mut plan = self.db.with_index(|index| {
            self.client
                .plan(index, &request, &reply, &clock, now)
                .map_err(protocol_only)
        })?;
        if signal.is_some_and(AbortSignal::aborted) {
            return Err(SyncError::Aborted);
        }
        let eager = &self.transport.config().eager;
        let content_failures = if direction == Direction::PullMetadata || *eager == Eager::None {
            0
        } else {
            self.content()
                .eager(&mut plan.batch, eager, &self.db, signal)
                .await?
        };
        // A held-back node would fail the same way at once: the next sync retries it.
        let held_back = content_failures > 0;
        let applied = plan.applied.min(plan.batch.records.len());
        let deletions = plan
            .batch
            .records
            .iter()
            .filter(|r| r.is_tombstone())
            .count();
        let coverage_next = plan.coverage_next.clone();
        let has_more = !held_back && (plan.has_more || coverage_next.is_some() || sealed_more);
        let new_clock = plan.clock.clone();
        // A round that moved nothing (the common idle round) has nothing to commit.
        let idle = plan.batch.records.is_empty()
            && self
                .db
                .with_index(|index| index.holds_vectors(&plan.batch.vectors));
        // A pure pull with more to come sends the next request while this batch commits.
        let next = match &pipe {
            Some(_) if self.sealer.is_none() && !held_back && !self.has_dirty() => {
                self.db.with_index(|index| {
                    pipeline::next_pull(&self.client, index, &request, more_to_push, &plan)
                })
            }
            _ => None,
        };
        let commit = async {
            if idle {
                Ok(Vec::new())
            } else {
                self.db.apply_remote(plan.batch).await
            }
        };
        let body = next.map(|next| next.to_json());
        let ahead = async {
            match body {
                Some(body) => Some(Ahead {
                    answer: self
                        .transport
                        .exchange(&JsValue::from_str(&body), signal)
                        .await,
                    body,
                }),
                None => None,
            }
        };
        // One join whether or not a request goes ahead: one copy of the commit's state machine.
        let (changed, sent_ahead) = futures::future::join(commit, ahead).await;
        // A failed commit returns here: the reply sent ahead is dropped unread.
        let changed = changed?;
        if let (Some(slot), Some(ahead)) = (pipe, sent_ahead) {
            *slot = Some(ahead);
        }
        self.db.adopt_clock(new_clock);
        if let Some(sealer) = &self.sealer {
            sealer.committed();
        }
        // Only after the commit: a failed round asks for the same coverage again.
        *self.coverage_from.borrow_mut() =
            coverage_next.map(|next| (scope.map(<[PluginId]>::to_vec), next));
        self.dirty
            .borrow_mut()
            .after_round(walk, walk_next, &request.push);
        let outcome = Outcome {
            applied,
            shipped: request.push.len(),
            has_more: has_more || (more_to_push && !held_back),
            changed,
            deletions,
            removed,
            full: false,
            content_failures,
        };
        summary::announce(&self.db, &outcome);
        Ok(outcome)
    }

    /// Seals `request` (or offloads its large values to content), then POSTs it. Returns the
    /// sealed request that went on the wire, if sealed, and the answer.
    async fn send(
        &self,
        request: &mut ExchangeRequest,
        scope: Option<&[PluginId]>,
        signal: Option<&AbortSignal>,
    ) -> Result<(Option<ExchangeRequest>, Answer), SyncError> {
        let wire = match &self.sealer {
            Some(sealer) => Some(sealer.seal(request, scope).await?),
            None => {
                // Lazy hydration moves content by its plaintext hash, so not with encryption:
                // sealed values travel inline (up to the exchange's value limit).
                let threshold = self.transport.config().lazy_threshold;
                self.content()
                    .offload(&mut request.push, threshold, signal)
                    .await?;
                None
            }
        };
        let body = JsValue::from_str(&wire.as_ref().unwrap_or(request).to_json());
        let answer = self
            .transport
            .exchange(&body, signal)
            .await
            .map_err(|e| node_taken(e, self.client.node))?;
        Ok((wire, answer))
    }

    /// The local tombstones at or below the reply's `collected` stamps go, before the reply's
    /// records are applied (`core::gc::drop_collected` says why), once the reply passed its
    /// checks. Returns how many went.
    async fn drop_collected(
        &self,
        request: &crate::core::ExchangeRequest,
        reply: &ExchangeResponse,
        now: u64,
    ) -> Result<usize, SyncError> {
        if reply.collected.is_empty() {
            return Ok(0);
        }
        self.client.check_reply(request, reply, now)?;
        let doomed: Vec<crate::core::Record> = self.db.with_index(|index| {
            let local: Vec<crate::core::Record> = index
                .records_in_hlc_order()
                .filter(|r| r.is_tombstone())
                .collect();
            crate::core::gc::drop_collected(&reply.collected, &local)
                .iter()
                .filter_map(|(p, k)| index.record(p, k))
                .collect()
        });
        Ok(self.db.remove_synced(&doomed).await?.len())
    }

    /// The walk the server asked for (`full_resync`), as one round: nothing of this round's
    /// request was applied, so the next round (partial) pushes and pulls as usual.
    async fn full_resync(
        &self,
        scope: Option<&[PluginId]>,
        limit: u32,
        signal: Option<&AbortSignal>,
    ) -> Result<Outcome, SyncError> {
        let scope_vec = scope.map(<[PluginId]>::to_vec);
        let mut walk = self
            .walk
            .borrow_mut()
            .take()
            .filter(|w| w.scope == scope_vec)
            .unwrap_or(full_resync::Walk {
                scope: scope_vec,
                ..full_resync::Walk::default()
            });
        let result = full_resync::run(
            &self.db,
            &self.transport,
            &self.client,
            &mut walk,
            limit,
            signal,
        )
        .await;
        let walked = match result {
            Ok(walked) => walked,
            Err(e) => {
                // Pages applied so far stay applied: the next walk continues after them.
                *self.walk.borrow_mut() = Some(walk);
                return Err(e);
            }
        };
        *self.coverage_from.borrow_mut() = None;
        let outcome = Outcome {
            applied: walked.upserts + walked.deleted,
            shipped: 0,
            has_more: true,
            changed: walked.changed,
            deletions: walked.deleted,
            removed: walked.removed,
            full: true,
            content_failures: 0,
        };
        summary::announce(&self.db, &outcome);
        Ok(outcome)
    }

    /// Rounds while there is more to move; `progress` hears after each round.
    pub async fn sync(
        &self,
        scope: Option<&[PluginId]>,
        limit: u32,
        direction: Direction,
        signal: Option<&AbortSignal>,
        mut progress: impl FnMut(&Totals),
    ) -> Result<Totals, SyncError> {
        let mut totals = Totals::default();
        // One lock for the whole loop: its rounds follow each other without a gap.
        let _held = self.begin(signal).await?;
        // The request sent ahead of the next round, if any (module docs).
        let mut ahead = None;
        loop {
            let outcome = self
                .round_held(scope, limit, direction, signal, Some(&mut ahead))
                .await?;
            totals.rounds += 1;
            totals.applied += outcome.applied;
            totals.shipped += outcome.shipped;
            totals.upserts += outcome.applied - outcome.deletions;
            totals.deletions += outcome.deletions + outcome.removed;
            totals.full |= outcome.full;
            totals.has_more = outcome.has_more;
            totals.content_failures += outcome.content_failures;
            progress(&totals);
            // Each round either moves records or ends: a server that claims more without
            // sending any is refused by the core (`NoProgress`), and pushes shrink the backlog.
            if !outcome.has_more {
                // A new encryption key: everything is re-stamped and goes out again under it.
                if let Some(sealer) = &self.sealer {
                    if sealer.after_complete_sync(&self.db).await? {
                        continue;
                    }
                }
                // The first complete sync after a wipe pulled everything again: say so once.
                if self.wipe_unreported.replace(false) {
                    totals.wiped = true;
                    self.announce_wipe(&totals);
                }
                return Ok(totals);
            }
        }
    }
}

impl Syncer {
    /// A reply's `replacedStoreEpoch`: this store replaced the one the server last saw for our
    /// device, so it is reported like a wipe found at open, by the first complete sync (the
    /// store pulls everything anyway: its watermarks went with the wipe).
    fn note_replaced(
        &self,
        request: &crate::core::ExchangeRequest,
        reply: &ExchangeResponse,
    ) -> Result<(), SyncError> {
        let Some(replaced) = &reply.replaced_store_epoch else {
            return Ok(());
        };
        if request.device.is_none() || !crate::core::protocol::is_epoch(replaced) {
            return Err(crate::core::Error::InvalidReply(
                "replacedStoreEpoch without a device, or not a store epoch".into(),
            )
            .into());
        }
        self.db.replaced_by_server(replaced.clone());
        self.wipe_unreported.set(true);
        Ok(())
    }

    /// `store-wiped` with `{ epoch, previousEpoch, applied }` to this instance's listeners.
    fn announce_wipe(&self, totals: &Totals) {
        let info = self.db.info();
        let payload = crate::browser::interop::Obj::new()
            .with("epoch", info.epoch.as_str())
            .with("previousEpoch", self.db.wiped().unwrap_or_default())
            .with("applied", crate::browser::interop::number(totals.applied))
            .into();
        self.db.emit("store-wiped", &payload);
    }
}

/// What a `sync` moved so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Rounds run.
    pub rounds: usize,
    /// Remote records applied.
    pub applied: usize,
    /// Local records shipped.
    pub shipped: usize,
    /// Of `applied`, the records with a value (new or changed values here).
    pub upserts: usize,
    /// Deletions taken in: applied tombstones, and local records removed because the server
    /// collected their deletion (a full resync) or collected a tombstone held here.
    pub deletions: usize,
    /// A round of this sync was a full resync (`kind: "full"`).
    pub full: bool,
    /// The last round said there is more.
    pub has_more: bool,
    /// This sync was the first complete one after the store was found wiped at open: it pulled
    /// everything the server holds again.
    pub wiped: bool,
    /// Eager content fetches that failed (see [`Outcome::content_failures`]).
    pub content_failures: usize,
}
