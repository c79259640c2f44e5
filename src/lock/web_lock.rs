//! The lock over `navigator.locks` (mutual exclusion, queueing, stealing, tab death) and
//! localStorage (the lease every tab can read synchronously). The rules it follows are in
//! [`super::lease`]; epochs are stored by [`super::fencing`].

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::{Rc, Weak};

use js_sys::Function;
use wasm_bindgen::JsValue;
use web_sys::{AbortSignal, IdbDatabase};

pub use super::env::LockEnv;
use super::env::{describe, now_ms, DATABASES, HELD_HERE, PID, TAB_EPOCHS};
use super::lease::{self, Bump, Lease, LockOptions, Names, WaitStep};
use super::{fencing, LockError};
use crate::browser::lock_manager::{self, LockManager, LockRequest, RequestOptions, Wake};
use crate::browser::timer::Deadline;

/// What code running under the lock gets: the fencing epoch to pass to store writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The Web Lock name (the key of the epoch in `epochs`).
    pub lock_name: String,
    /// Strictly greater than the epoch of every earlier grant of this lock.
    pub epoch: u64,
    /// This grant's nonce (the lease's).
    pub nonce: String,
}

/// What [`DistributedLock::release`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Nothing was held (a second release).
    NotHeld,
    /// The lock was held and is now released.
    Released,
    /// The lock had been taken away (stolen or force-released) before this release.
    WasLost,
}

/// A lease lock (`cd.createLock(path, options)`); cheap to clone, clones share the grant.
#[derive(Clone)]
pub struct DistributedLock {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for DistributedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedLock")
            .field("name", &self.inner.names.lock)
            .field("held", &self.is_held())
            .finish()
    }
}

struct Inner {
    db_name: String,
    path: String,
    names: Names,
    opts: LockOptions,
    signal: Option<AbortSignal>,
    env: LockEnv,
    held: RefCell<Option<Held>>,
    grants: Cell<u64>,
    renewal_paused: Cell<bool>,
}

/// One grant, while held. Dropping it releases the Web Lock and stops renewing.
struct Held {
    id: u64,
    grant: Grant,
    lease: Lease,
    release: Function,
    lost: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD_HERE.with(|h| {
            let mut h = h.borrow_mut();
            if h.get(&self.grant.lock_name) == Some(&self.grant.nonce) {
                h.remove(&self.grant.lock_name);
            }
        });
        // Resolving the held promise releases the Web Lock (a no-op once stolen).
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

impl DistributedLock {
    /// A lock on `path` of database `db_name`. Nothing is requested until [`Self::acquire`].
    pub fn new(
        db_name: &str,
        path: &str,
        opts: LockOptions,
        signal: Option<AbortSignal>,
        env: LockEnv,
    ) -> Result<DistributedLock, LockError> {
        opts.validate()?;
        let names = Names::new(db_name, opts.key(path));
        Ok(DistributedLock {
            inner: Rc::new(Inner {
                db_name: db_name.to_owned(),
                path: path.to_owned(),
                names,
                opts,
                signal,
                env,
                held: RefCell::new(None),
                grants: Cell::new(0),
                renewal_paused: Cell::new(false),
            }),
        })
    }

    /// Uses an already opened connection for epochs (the `ClientData` one) instead of opening
    /// `db_name` on first acquire.
    pub fn use_database(db_name: &str, db: IdbDatabase) {
        DATABASES.with(|d| d.borrow_mut().insert(db_name.to_owned(), db));
    }

    /// The Web Lock name, `clientdata:<db>:lock:<key>`.
    pub fn name(&self) -> &str {
        &self.inner.names.lock
    }

    /// The path given to `createLock`.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The validated options.
    pub fn options(&self) -> &LockOptions {
        &self.inner.opts
    }

    /// Whether this object holds a grant that has not been taken away.
    pub fn is_held(&self) -> bool {
        self.inner.held.borrow().as_ref().is_some_and(|h| !h.lost)
    }

    /// Whether this object's grant was taken away (stolen, force-released) and not yet
    /// released by it.
    pub fn is_lost(&self) -> bool {
        self.inner.held.borrow().as_ref().is_some_and(|h| h.lost)
    }

    /// Test hook: a paused holder stops renewing its lease (as a hung tab would), so waiters
    /// find it stale after its ttl.
    #[doc(hidden)]
    pub fn set_renewal_paused(&self, paused: bool) {
        self.inner.renewal_paused.set(paused);
    }

    /// The connection used for epochs: the shared one of this tab, opened on first use.
    pub async fn database(&self) -> Result<idb::Database, LockError> {
        let db_name = &self.inner.db_name;
        if let Some(db) = DATABASES.with(|d| d.borrow().get(db_name).cloned()) {
            return Ok(idb::Database::from(db));
        }
        let db = crate::store::schema::open(db_name)
            .await
            .map_err(|e| LockError::Storage(e.to_string()))?;
        let raw: IdbDatabase = db.into();
        DATABASES.with(|d| d.borrow_mut().insert(db_name.clone(), raw.clone()));
        Ok(idb::Database::from(raw))
    }

    fn manager(&self) -> Result<LockManager, LockError> {
        self.inner.env.manager.clone().ok_or_else(|| {
            LockError::Unavailable(
                "navigator.locks is missing (insecure context, old browser or no navigator)".into(),
            )
        })
    }

    fn user_aborted(&self) -> bool {
        self.inner.signal.as_ref().is_some_and(|s| s.aborted())
    }

    /// The lease of the current holder as far as this tab knows: the stored lease, unless it is
    /// marked released, or it is one of this tab's and no lock here holds its nonce any more.
    pub fn read_lease(&self) -> Option<Lease> {
        let json = self.inner.env.get(&self.inner.names.lease)?;
        let value = js_sys::JSON::parse(&json).ok()?;
        let lease = serde_wasm_bindgen::from_value::<Lease>(value).ok()?;
        if lease.released {
            return None;
        }
        if lease.pid == PID.with(|p| *p) {
            let live =
                HELD_HERE.with(|h| h.borrow().get(&self.inner.names.lock) == Some(&lease.nonce));
            if !live {
                return None;
            }
        }
        Some(lease)
    }

    /// Waits for the lock in the Web Locks queue, checking every
    /// `retryIntervalMs` whether the holder's lease went stale (then stealing it), until
    /// `maxWaitMs` (`LockTimeoutError` naming the holder) or the signal aborts (`AbortError`,
    /// no lock held). Already holding: returns the current grant.
    pub async fn acquire(&self) -> Result<Grant, LockError> {
        if let Some(h) = self.inner.held.borrow().as_ref().filter(|h| !h.lost) {
            return Ok(h.grant.clone());
        }
        self.release();
        let manager = self.manager()?;
        let path = || self.inner.path.clone();
        if self.user_aborted() {
            return Err(LockError::Aborted { path: path() });
        }
        // Fencing is best-effort when IndexedDB cannot be opened: epochs are then only
        // proposed, and fenced writes (which need the database) fail on their own.
        let _ = self.database().await;
        let name = &self.inner.names.lock;

        if self.inner.opts.max_wait_ms == 0 {
            // Only if free right now, as the browser sees it: a release made a moment ago may
            // not have reached it yet. (Not used as a fast path before queueing for that
            // reason: in a loop it would mostly cost a second request.)
            let mut now_or_never = lock_manager::request(
                &manager,
                name,
                RequestOptions {
                    if_available: true,
                    ..Default::default()
                },
            );
            return match now_or_never.wait(None).await {
                Wake::Granted(release) => Ok(self.on_grant(now_or_never, release, false)),
                Wake::NotAvailable | Wake::Timer => Err(LockError::Timeout {
                    path: path(),
                    holder: self
                        .read_lease()
                        .map(|l| l.holder)
                        .unwrap_or_else(|| "unknown".into()),
                    waited_ms: 0,
                }),
                Wake::Rejected(e) => Err(LockError::Failed(describe(&e))),
            };
        }

        let started = now_ms();
        // The caller's signal is passed straight through; timing out and stealing abandon the
        // queued request instead of aborting it (no AbortController on the common path).
        let mut queued = lock_manager::request(
            &manager,
            name,
            RequestOptions {
                signal: self.inner.signal.as_ref(),
                ..Default::default()
            },
        );
        // The first look at the lease waits for the first tick: the uncontended path parses
        // nothing.
        let mut lease: Option<Lease> = None;
        loop {
            match lease::wait_step(now_ms(), started, &self.inner.opts, lease.as_ref()) {
                WaitStep::Sleep(ms) => {
                    let mut tick = Deadline::after(ms);
                    match queued.wait(Some(&mut tick)).await {
                        Wake::Granted(release) => return Ok(self.on_grant(queued, release, false)),
                        Wake::Timer => lease = self.read_lease(),
                        Wake::Rejected(_) if self.user_aborted() => {
                            return Err(LockError::Aborted { path: path() })
                        }
                        Wake::Rejected(e) => return Err(LockError::Failed(describe(&e))),
                        Wake::NotAvailable => {
                            return Err(LockError::Failed("queued request not granted".into()))
                        }
                    }
                }
                WaitStep::Steal => {
                    // The grant may have raced the decision: then it is ours without stealing.
                    if let Some((queued, release)) = queued.abandon() {
                        return Ok(self.on_grant(queued, release, false));
                    }
                    let mut thief = lock_manager::request(
                        &manager,
                        name,
                        RequestOptions {
                            steal: true,
                            ..Default::default()
                        },
                    );
                    return match thief.wait(None).await {
                        Wake::Granted(release) => Ok(self.on_grant(thief, release, true)),
                        Wake::Rejected(e) => Err(LockError::Failed(describe(&e))),
                        Wake::NotAvailable | Wake::Timer => {
                            Err(LockError::Failed("steal not granted".into()))
                        }
                    };
                }
                WaitStep::GiveUp => {
                    if let Some((queued, release)) = queued.abandon() {
                        return Ok(self.on_grant(queued, release, false));
                    }
                    return Err(LockError::Timeout {
                        path: path(),
                        holder: self
                            .read_lease()
                            .or(lease)
                            .map(|l| l.holder)
                            .unwrap_or_else(|| "unknown".into()),
                        waited_ms: now_ms().saturating_sub(started),
                    });
                }
            }
        }
    }

    /// The next epoch of this lock, proposed from the newest this tab knows (its own last
    /// grant, the lease's epoch, the hint key). A steal (`store`) also stores it in IndexedDB,
    /// in a transaction created right now; an ordinary grant leaves IndexedDB alone (the first
    /// fenced write under it raises the stored epoch) — see the module docs of `fencing`.
    fn allocate_epoch(&self, store: bool) -> u64 {
        let names = &self.inner.names;
        let env = &self.inner.env;
        let hint = env.get(&names.epoch).and_then(|s| s.parse::<u64>().ok());
        let lease_epoch = env
            .get(&names.lease)
            .and_then(|json| lease::scan_u64(&json, "epoch"));
        let tab_last = TAB_EPOCHS.with(|t| t.borrow().get(&names.lock).copied().unwrap_or(0));
        let epoch = lease::propose_epoch(hint.max(lease_epoch), tab_last);
        note_epoch(env, names, epoch, store);
        if !store {
            return epoch;
        }
        if let Some(db) = DATABASES.with(|d| d.borrow().get(&self.inner.db_name).cloned()) {
            match fencing::start_bump(&idb::Database::from(db), &names.lock, epoch) {
                Ok(bump) => {
                    let (env, names) = (env.clone(), names.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        if let Ok(Bump::Supersede(stored)) = bump.await {
                            note_epoch(&env, &names, stored, true);
                        }
                    });
                }
                // A closed connection (another tab upgraded the schema): reopen next time.
                Err(_) => DATABASES.with(|d| {
                    d.borrow_mut().remove(&self.inner.db_name);
                }),
            }
        }
        epoch
    }

    fn on_grant(&self, request: LockRequest, release: Function, stolen: bool) -> Grant {
        let (grant, id) = self.record_grant(release, stolen);
        let weak = Rc::downgrade(&self.inner);
        let every = self.inner.opts.renew_interval_ms();
        wasm_bindgen_futures::spawn_local(async move {
            // Renews every ttl/3 until the request is over: it resolves on a normal release
            // and rejects (AbortError) when the lock is stolen.
            let mut finished = std::pin::pin!(request.finished());
            loop {
                let tick = Deadline::after(every);
                match futures::future::select(finished.as_mut(), tick).await {
                    futures::future::Either::Left((result, _)) => {
                        if result.is_err() {
                            mark_lost(&weak, id);
                        }
                        return;
                    }
                    futures::future::Either::Right(((), _)) => renew(&weak, id),
                }
            }
        });
        grant
    }

    fn record_grant(&self, release: Function, stolen: bool) -> (Grant, u64) {
        let inner = &self.inner;
        let epoch = self.allocate_epoch(stolen);
        let nonce = lease::new_nonce().unwrap_or_else(|_| {
            format!("{:016x}", (js_sys::Math::random() * 2f64.powi(53)) as u64)
        });
        let pid = PID.with(|p| *p);
        let lease = Lease::granted(
            format!("tab-{pid}"),
            inner.env.hostname.clone(),
            pid,
            now_ms(),
            inner.opts.ttl_ms,
            nonce.clone(),
            inner.path.clone(),
            epoch,
        );
        inner.env.set(&inner.names.lease, &lease.to_json());
        HELD_HERE.with(|h| {
            h.borrow_mut()
                .insert(inner.names.lock.clone(), nonce.clone())
        });
        let id = inner.grants.get() + 1;
        inner.grants.set(id);
        let grant = Grant {
            lock_name: inner.names.lock.clone(),
            epoch,
            nonce,
        };
        *inner.held.borrow_mut() = Some(Held {
            id,
            grant: grant.clone(),
            lease,
            release,
            lost: false,
        });
        (grant, id)
    }

    /// Releases this object's grant. Idempotent. Writes nothing: the lease stays as the next
    /// grant's epoch hint, and readers tell it is over from `navigator.locks.query()` (other
    /// tabs) or from this tab's registry of live grants (this tab, where the browser may still
    /// report the Web Lock held for a moment after the release).
    pub fn release(&self) -> Release {
        let held = self.inner.held.borrow_mut().take();
        let Some(held) = held else {
            return Release::NotHeld;
        };
        let stored = self.inner.env.get(&self.inner.names.lease);
        let ours = stored
            .as_deref()
            .and_then(|json| lease::scan_str(json, "nonce"))
            .is_some_and(|n| n == held.grant.nonce);
        // Another nonce in the lease while we held the Web Lock means it was stolen even if
        // the rejection has not reached us yet.
        let lost = held.lost || (stored.is_some() && !ours);
        drop(held);
        if lost {
            Release::WasLost
        } else {
            Release::Released
        }
    }

    /// Acquire, run `f` with the grant, release (whatever `f` returned). `LockLostError` if the
    /// lock was taken away while `f` ran: its result is then not returned.
    pub async fn with_lock<T, Fut: Future<Output = T>>(
        &self,
        f: impl FnOnce(Grant) -> Fut,
    ) -> Result<T, LockError> {
        let grant = self.acquire().await?;
        let out = f(grant.clone()).await;
        match self.release() {
            Release::WasLost => Err(LockError::Lost {
                lock: grant.lock_name,
                epoch: grant.epoch,
                newer: None,
            }),
            Release::Released | Release::NotHeld => Ok(out),
        }
    }

    /// The current holder's lease, or `None` when the lock is free. Both must agree: the Web
    /// Lock is held (`navigator.locks.query()`; a lease left by a released or crashed holder
    /// does not count) and [`Self::read_lease`] finds a current lease (in this tab the
    /// browser may report the Web Lock held for a moment after a release; this tab's registry
    /// of live grants settles that). A holder whose lease never reached this context
    /// (localStorage full, or a worker without localStorage) therefore reads as free.
    pub async fn inspect(&self) -> Result<Option<Lease>, LockError> {
        let manager = self.manager()?;
        let held = lock_manager::held_names(&manager)
            .await
            .map_err(|e| LockError::Failed(describe(&e)))?;
        if !held.iter().any(|n| n == &self.inner.names.lock) {
            return Ok(None);
        }
        Ok(self.read_lease())
    }

    /// Frees the lock if its current nonce is `expected` (steals the Web Lock, removes the
    /// lease, releases, and moves the epoch on so the old holder's fenced writes fail) and
    /// returns `true`; otherwise changes nothing and returns `false`.
    ///
    /// Race left open: if the holder releases and a new one is granted between the nonce
    /// check and the steal, the new holder loses its lock (it notices, as any steal victim)
    /// and this returns `false`.
    pub async fn force_release(&self, expected: &str) -> Result<bool, LockError> {
        let own = self
            .inner
            .held
            .borrow()
            .as_ref()
            .is_some_and(|h| !h.lost && h.grant.nonce == expected);
        if own {
            self.release();
            return Ok(true);
        }
        let manager = self.manager()?;
        let matches = |lease: Option<Lease>| lease.is_some_and(|l| l.nonce == expected);
        if expected.is_empty() || !matches(self.read_lease()) {
            return Ok(false);
        }
        let held = lock_manager::held_names(&manager)
            .await
            .map_err(|e| LockError::Failed(describe(&e)))?;
        if !held.iter().any(|n| n == &self.inner.names.lock) {
            // A crashed holder's lease: the Web Lock is already free.
            return Ok(match self.read_lease().filter(|l| l.nonce == expected) {
                Some(lease) => {
                    self.mark_released(lease);
                    true
                }
                None => false,
            });
        }
        let mut thief = lock_manager::request(
            &manager,
            &self.inner.names.lock,
            RequestOptions {
                steal: true,
                ..Default::default()
            },
        );
        match thief.wait(None).await {
            Wake::Granted(release) => {
                let victim = self.read_lease().filter(|l| l.nonce == expected);
                let epoch = self.allocate_epoch(true);
                let matched = victim.is_some();
                if let Some(mut lease) = victim {
                    lease.epoch = epoch;
                    self.mark_released(lease);
                }
                let _ = release.call0(&JsValue::UNDEFINED);
                Ok(matched)
            }
            Wake::Rejected(e) => Err(LockError::Failed(describe(&e))),
            Wake::NotAvailable | Wake::Timer => Err(LockError::Failed("steal not granted".into())),
        }
    }
}

impl DistributedLock {
    /// Replaces the lease by its released form: inspect reads it as free, the next grant reads
    /// its epoch as a hint.
    fn mark_released(&self, mut lease: Lease) {
        lease.released = true;
        self.inner
            .env
            .set(&self.inner.names.lease, &lease.to_json());
    }
}

/// Records `epoch` as the newest this tab knows for the lock; with `share`, also in the
/// localStorage hint other tabs read (ordinary grants share theirs through the lease).
fn note_epoch(env: &LockEnv, names: &Names, epoch: u64, share: bool) {
    let newer = TAB_EPOCHS.with(|t| {
        let mut t = t.borrow_mut();
        let slot = t.entry(names.lock.clone()).or_insert(0);
        let newer = epoch > *slot;
        *slot = (*slot).max(epoch);
        newer
    });
    if newer && share {
        env.set(&names.epoch, &epoch.to_string());
    }
}

/// The steal of grant `id` reached us: mark it lost (renewal stops with the request).
fn mark_lost(weak: &Weak<Inner>, id: u64) {
    if let Some(inner) = weak.upgrade() {
        if let Some(h) = inner.held.borrow_mut().as_mut().filter(|h| h.id == id) {
            h.lost = true;
        }
    }
}

/// One renewal tick of grant `id`: a new lease term, written only while the stored lease is
/// still this grant's.
fn renew(weak: &Weak<Inner>, id: u64) {
    let Some(inner) = weak.upgrade() else {
        return;
    };
    if inner.renewal_paused.get() {
        return;
    }
    let json = {
        let mut held = inner.held.borrow_mut();
        let Some(h) = held.as_mut().filter(|h| h.id == id && !h.lost) else {
            return;
        };
        h.lease.renew(now_ms());
        let stored = inner.env.get(&inner.names.lease);
        let stored_nonce = stored.as_deref().and_then(|j| lease::scan_str(j, "nonce"));
        if stored_nonce.is_some_and(|n| n != h.grant.nonce) {
            return;
        }
        h.lease.to_json()
    };
    inner.env.set(&inner.names.lease, &json);
}
