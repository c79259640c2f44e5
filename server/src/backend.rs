//! The storage seam: a [`Backend`] opens one transaction per round, scoped to one user's dataset
//! ([`Scope`]), which the
//! shared core drives through its [`Store`] trait. SQLite (`crate::sqlite`) and PostgreSQL
//! (`crate::postgres`, one pooled connection per round) implement it; the HTTP layer holds a
//! [`Database`], which runs rounds from many threads: SQLite's one connection behind a mutex
//! ([`Serialized`]), PostgreSQL's pool without one.

use clientdata::core::content::Digest as ContentDigest;
use clientdata::core::replica::{serve, ReplicaError, ServeStats};
use clientdata::core::resync::{ResyncRequest, ResyncResponse};
use clientdata::core::{DeviceEpoch, Error, ExchangeRequest, ExchangeResponse, Limits, NodeId};
use sha2::Digest;

use crate::auth::UserId;
use crate::devices::{self, Remembered};
use crate::gc::{self, GcStore};
use crate::quota::{self, Counted, UserCaps};
use crate::scope::Scope;

/// A store's transaction: everything written through it lands together or not at all. It keeps
/// the core's records and coverage ([`clientdata::core::Store`]) and the readers and collected
/// stamps of tombstone collection ([`GcStore`]).
pub trait Transaction: GcStore {
    /// Makes every write of this transaction durable (as the backend defines it) and visible.
    /// Dropping the transaction instead rolls everything back.
    fn commit_transaction(self) -> Result<(), Self::Error>;

    /// The SHA-256 of the device secret that claimed `node` for this transaction's user, if any.
    fn node_secret(&mut self, node: NodeId) -> Result<Option<[u8; 32]>, Self::Error>;

    /// Claims `node` for this transaction's user with the SHA-256 of its device secret.
    fn claim_node(&mut self, node: NodeId, digest: &[u8; 32]) -> Result<(), Self::Error>;

    /// The scope's salt for passphrase keys (PROTOCOL.md, `POST /sync/salt`): the stored one,
    /// or `fresh`, stored now, if there is none.
    fn salt(&mut self, fresh: &[u8; 32]) -> Result<[u8; 32], Self::Error>;

    /// Whether this transaction's dataset holds the content `sha256`.
    fn has_content(&mut self, sha256: &ContentDigest) -> Result<bool, Self::Error>;

    /// Stores `data` as the content `sha256` (the caller checked the digest); idempotent.
    fn put_content(&mut self, sha256: &ContentDigest, data: &[u8]) -> Result<(), Self::Error>;

    /// The content `sha256` of this transaction's dataset, if held.
    fn content(&mut self, sha256: &ContentDigest) -> Result<Option<Vec<u8>>, Self::Error>;

    /// The bytes of content this transaction's user holds, over all its datasets.
    fn content_bytes(&mut self) -> Result<u64, Self::Error>;

    /// What this dataset remembers of the device `id` (`crate::devices`).
    fn device(&mut self, id: &str) -> Result<Option<Remembered>, Self::Error>;

    /// Remembers `device.epoch` as the store epoch of `device.id`, seen at `now_ms`. With
    /// `evict_beyond` (a device not remembered before), the least recently seen other devices
    /// beyond that many, this one included, are forgotten.
    fn remember_device(
        &mut self,
        device: &DeviceEpoch,
        now_ms: u64,
        evict_beyond: Option<u64>,
    ) -> Result<(), Self::Error>;

    /// How many of `what` this transaction's user holds (its own writes included), counting no
    /// further than `upto`.
    fn count(&mut self, what: Counted, upto: u64) -> Result<u64, Self::Error>;
}

/// A database that can run exchange rounds.
pub trait Backend: Send + 'static {
    /// The backend's failure type.
    type Error: std::error::Error + Send + Sync + 'static;
    /// One user's transaction.
    type Tx<'a>: Transaction<Error = Self::Error>
    where
        Self: 'a;

    /// Short name reported by `/health` (e.g. `"sqlite"`).
    const NAME: &'static str;

    /// Opens a transaction that reads and writes only `scope`'s rows.
    fn begin(&mut self, scope: &Scope) -> Result<Self::Tx<'_>, Self::Error>;

    /// A trivial query, to prove the database answers.
    fn ping(&mut self) -> Result<(), Self::Error>;
}

/// One round for `user` in the request's dataset: the core's [`serve`] inside ONE transaction, so the push is applied whole
/// or not at all, and the answer is read from the same snapshot the push was written to.
pub fn exchange<B: Backend>(
    backend: &mut B,
    user: &UserId,
    request: &ExchangeRequest,
    limits: &Limits,
    caps: &UserCaps,
    now_ms: u64,
) -> Result<(ExchangeResponse, ServeStats), ReplicaError<B::Error>> {
    // The dataset is checked before it names a row: `serve` validates the rest after `begin`.
    if let Some(dataset) = &request.dataset {
        clientdata::core::protocol::check_dataset(dataset)?;
    }
    let scope = Scope::dataset(user.clone(), request.dataset.as_deref());
    let mut tx = backend.begin(&scope).map_err(ReplicaError::Store)?;
    let mut answer = serve(&mut tx, request, limits, now_ms)?;
    check_refs(&mut tx, request)?;
    // After `serve` validated the request (once); a refusal drops the transaction, push and all.
    let claimed = check_node(&mut tx, request)?;
    quota::check(&mut tx, &answer.1, claimed, caps)?;
    let replaced =
        devices::record(&mut tx, request, now_ms, caps.devices).map_err(ReplicaError::Store)?;
    // A client that may have missed collected deletions gets nothing of this round: the
    // transaction is dropped (its push too, sent again after the walk) and it walks first.
    // The epoch it carried is not kept either, so the round after the walk says it again.
    if gc::needs_full_resync(&mut tx, request).map_err(ReplicaError::Store)? {
        let mut reply = gc::full_resync_reply();
        reply.replaced_store_epoch = replaced;
        return Ok((reply, ServeStats::default()));
    }
    answer.0.replaced_store_epoch = replaced;
    let horizon = gc::horizon(caps.tombstone_horizon_secs);
    gc::after_round(&mut tx, request, &mut answer.0, now_ms, horizon)
        .map_err(ReplicaError::Store)?;
    tx.commit_transaction().map_err(ReplicaError::Store)?;
    Ok(answer)
}

/// One page of `user`'s full-resync walk (`POST /sync/resync`) in one transaction, after the
/// same dataset and node-claim checks as an exchange.
pub fn resync<B: Backend>(
    backend: &mut B,
    user: &UserId,
    request: &ResyncRequest,
    limits: &Limits,
    now_ms: u64,
) -> Result<ResyncResponse, ReplicaError<B::Error>> {
    request.validate(limits)?;
    let scope = Scope::dataset(user.clone(), request.dataset.as_deref());
    let mut tx = backend.begin(&scope).map_err(ReplicaError::Store)?;
    let claim = node_claim(&mut tx, request.node, request.secret.as_deref())?;
    if let NodeVerdict::Claim(digest) = claim {
        tx.claim_node(request.node, &digest)
            .map_err(ReplicaError::Store)?;
    }
    let page = gc::resync_page(&mut tx, request, limits, now_ms)?;
    tx.commit_transaction().map_err(ReplicaError::Store)?;
    Ok(page)
}

/// Every pushed reference must name content already uploaded to this dataset (protocol v2,
/// `PUT /sync/content/{sha256}`), so no reader is ever handed a reference nobody can resolve.
fn check_refs<T: Transaction>(
    tx: &mut T,
    request: &ExchangeRequest,
) -> Result<(), ReplicaError<T::Error>> {
    for r in request
        .push
        .iter()
        .filter_map(|r| r.value.as_ref()?.as_ref_content())
    {
        if !tx.has_content(&r.sha256).map_err(ReplicaError::Store)? {
            return Err(Error::ContentMissing(r.sha256.to_hex()).into());
        }
    }
    Ok(())
}

/// Stores content for `scope` after checking it hashes to `sha256` (`content_hash_mismatch`)
/// and that new content keeps the user within `max_bytes` of content (413
/// `user_quota_exceeded`; content already held is accepted again at the cap).
pub fn put_content<B: Backend>(
    backend: &mut B,
    scope: &Scope,
    sha256: &ContentDigest,
    data: &[u8],
    max_bytes: u64,
) -> Result<(), ReplicaError<B::Error>> {
    let got = ContentDigest(sha2::Sha256::digest(data).into());
    if got != *sha256 {
        return Err(Error::ContentHashMismatch {
            expected: sha256.to_hex(),
            got: format!("{} ({} bytes)", got.to_hex(), data.len()),
        }
        .into());
    }
    let mut tx = backend.begin(scope).map_err(ReplicaError::Store)?;
    if !tx.has_content(sha256).map_err(ReplicaError::Store)? {
        let held = tx.content_bytes().map_err(ReplicaError::Store)?;
        if held.saturating_add(data.len() as u64) > max_bytes {
            return Err(Error::UserQuotaExceeded {
                cap: "content bytes",
                max: max_bytes,
            }
            .into());
        }
    }
    tx.put_content(sha256, data).map_err(ReplicaError::Store)?;
    tx.commit_transaction().map_err(ReplicaError::Store)
}

/// The content `sha256` of `scope`, if held.
pub fn get_content<B: Backend>(
    backend: &mut B,
    scope: &Scope,
    sha256: &ContentDigest,
) -> Result<Option<Vec<u8>>, B::Error> {
    let mut tx = backend.begin(scope)?;
    let data = tx.content(sha256)?;
    tx.commit_transaction()?;
    Ok(data)
}

/// A node id belongs to the device that first sent it with a secret: later requests for that node
/// must carry the same secret (compared as SHA-256 digests, so in constant time over the secret).
/// A request without a secret (clients before it) may use a node nobody has claimed, and claims
/// nothing. Claims are written in the round's transaction, so a refused round claims nothing.
/// Answers whether the round wrote a claim.
/// The user's salt for passphrase keys, made from `fresh` on first use; one transaction on the
/// user's default dataset (a salt is per user, whichever dataset the keys then seal).
pub fn salt<B: Backend>(
    backend: &mut B,
    user: &UserId,
    fresh: &[u8; 32],
) -> Result<[u8; 32], B::Error> {
    let mut tx = backend.begin(&Scope::dataset(user.clone(), None))?;
    let salt = tx.salt(fresh)?;
    tx.commit_transaction()?;
    Ok(salt)
}

fn check_node<T: Transaction>(
    tx: &mut T,
    request: &ExchangeRequest,
) -> Result<bool, ReplicaError<T::Error>> {
    match node_verdict(tx, request)? {
        NodeVerdict::Owned => Ok(false),
        NodeVerdict::Claim(digest) => tx
            .claim_node(request.node, &digest)
            .map(|()| true)
            .map_err(ReplicaError::Store),
    }
}

/// What a round may do with its node id, once it is not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeVerdict {
    /// The request's secret matches the claim, or neither exists: nothing to write.
    Owned,
    /// Nobody claimed the node and the request offers a secret: the round must write the claim.
    Claim([u8; 32]),
}

/// Reads `request.node`'s claim and decides; another secret (or none) for a claimed node is
/// `node_id_taken`.
pub fn node_verdict<T: Transaction>(
    tx: &mut T,
    request: &ExchangeRequest,
) -> Result<NodeVerdict, ReplicaError<T::Error>> {
    node_claim(tx, request.node, request.secret.as_deref())
}

/// [`node_verdict`] for any request that names a node and may carry its secret.
fn node_claim<T: Transaction>(
    tx: &mut T,
    node: NodeId,
    secret: Option<&str>,
) -> Result<NodeVerdict, ReplicaError<T::Error>> {
    let stored = tx.node_secret(node).map_err(ReplicaError::Store)?;
    let offered: Option<[u8; 32]> = secret.map(|s| sha2::Sha256::digest(s.as_bytes()).into());
    match (stored, offered) {
        (None, None) => Ok(NodeVerdict::Owned),
        (None, Some(digest)) => Ok(NodeVerdict::Claim(digest)),
        (Some(stored), Some(offered)) if digests_equal(&stored, &offered) => Ok(NodeVerdict::Owned),
        (Some(_), _) => Err(Error::NodeIdTaken(node.to_string()).into()),
    }
}

/// Equality of two digests without an early exit.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the HTTP layer holds: something that runs rounds from many request threads at once. A
/// pooled database (PostgreSQL) runs rounds of different users concurrently; a single SQLite
/// connection is a [`Serialized`] backend that runs them one at a time.
pub trait Database: Send + Sync + 'static {
    /// The backend's failure type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Short name reported by `/health` (e.g. `"sqlite"`).
    const NAME: &'static str;

    /// One round for `user` (see [`exchange`]); blocking, so called off the async workers.
    fn exchange(
        &self,
        user: &UserId,
        request: &ExchangeRequest,
        limits: &Limits,
        caps: &UserCaps,
        now_ms: u64,
    ) -> Result<(ExchangeResponse, ServeStats), ReplicaError<Self::Error>>;

    /// One page of `user`'s full-resync walk (see [`resync`]); blocking.
    fn resync(
        &self,
        user: &UserId,
        request: &ResyncRequest,
        limits: &Limits,
        now_ms: u64,
    ) -> Result<ResyncResponse, ReplicaError<Self::Error>>;

    /// A trivial query, to prove the database answers; blocking.
    fn ping(&self) -> Result<(), Self::Error>;

    /// The user's salt for passphrase keys ([`salt`]).
    fn salt(&self, user: &UserId, fresh: &[u8; 32]) -> Result<[u8; 32], Self::Error>;

    /// Stores content for `scope` (see [`put_content`]); blocking.
    fn put_content(
        &self,
        scope: &Scope,
        sha256: &ContentDigest,
        data: &[u8],
        max_bytes: u64,
    ) -> Result<(), ReplicaError<Self::Error>>;

    /// The content `sha256` of `scope`, if held; blocking.
    fn get_content(
        &self,
        scope: &Scope,
        sha256: &ContentDigest,
    ) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// A single-connection [`Backend`] behind a mutex: every round waits for the one before. Right
/// for SQLite, which has a single writer anyway.
#[derive(Debug)]
pub struct Serialized<B>(std::sync::Mutex<B>);

impl<B> Serialized<B> {
    /// Wraps `backend`.
    pub fn new(backend: B) -> Self {
        Serialized(std::sync::Mutex::new(backend))
    }

    /// The backend, for the duration of `f` (operations commands, tests).
    pub fn with<T>(&self, f: impl FnOnce(&mut B) -> T) -> T {
        // A panic while holding the lock left no open transaction behind (dropping one rolls it
        // back during unwinding), so a poisoned lock is safe to take over.
        let mut backend = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut backend)
    }
}

impl<B: Backend> Database for Serialized<B> {
    type Error = B::Error;
    const NAME: &'static str = B::NAME;

    fn exchange(
        &self,
        user: &UserId,
        request: &ExchangeRequest,
        limits: &Limits,
        caps: &UserCaps,
        now_ms: u64,
    ) -> Result<(ExchangeResponse, ServeStats), ReplicaError<B::Error>> {
        self.with(|backend| exchange(backend, user, request, limits, caps, now_ms))
    }

    fn resync(
        &self,
        user: &UserId,
        request: &ResyncRequest,
        limits: &Limits,
        now_ms: u64,
    ) -> Result<ResyncResponse, ReplicaError<B::Error>> {
        self.with(|backend| resync(backend, user, request, limits, now_ms))
    }

    fn ping(&self) -> Result<(), B::Error> {
        self.with(|backend| backend.ping())
    }

    fn salt(&self, user: &UserId, fresh: &[u8; 32]) -> Result<[u8; 32], B::Error> {
        self.with(|backend| salt(backend, user, fresh))
    }

    fn put_content(
        &self,
        scope: &Scope,
        sha256: &ContentDigest,
        data: &[u8],
        max_bytes: u64,
    ) -> Result<(), ReplicaError<B::Error>> {
        self.with(|backend| put_content(backend, scope, sha256, data, max_bytes))
    }

    fn get_content(
        &self,
        scope: &Scope,
        sha256: &ContentDigest,
    ) -> Result<Option<Vec<u8>>, B::Error> {
        self.with(|backend| get_content(backend, scope, sha256))
    }
}
