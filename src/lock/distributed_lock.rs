//! `DistributedLock`: the lock over `navigator.locks` (mutual exclusion, queueing, stealing,
//! tab death) and leases published on demand (in memory for this tab, in localStorage for the
//! others once asked): creating it, reading the lease, releasing, `withLock`, `inspect`,
//! `forceRelease`. Acquiring, granting and
//! renewing are in `acquire`; the rules it follows are in [`super::rules`]; epochs are stored
//! by [`super::fencing`]. About 340 lines because the contract's operations share one grant
//! state and each carries the race it must survive in its docs; splitting them apart would
//! separate `forceRelease` from the release rules it mirrors.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::JsValue;
use web_sys::{AbortSignal, IdbDatabase};

pub use super::env::LockEnv;
use super::env::{self, describe, now_ms, LeaseBase, LiveGrant, DATABASES, HELD_HERE, PID};
use super::lease::{self, Lease};
use super::rules::{LockOptions, Names};
use super::LockError;
use crate::browser::idb_requests::grant_close;
use crate::browser::lock_manager::{self, LockManager, RequestOptions, Wake};
use crate::browser::timer::sleep;

/// What code running under the lock gets: the fencing epoch to pass to store writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The Web Lock name (the key of the epoch in `epochs`).
    pub lock_name: String,
    /// The epoch this grant was given: strictly greater than every earlier grant's of this
    /// tab. Its first fenced write claims the epoch it writes under (this one, or above the
    /// stored epoch if that is newer), so no epoch is ever reused across tabs (`fencing`).
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
    pub(super) inner: Rc<Inner>,
}

impl std::fmt::Debug for DistributedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedLock")
            .field("name", &self.inner.names.lock)
            .field("held", &self.is_held())
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) db_name: String,
    pub(super) path: String,
    pub(super) names: Names,
    /// `names.lock` as a JS string and the options of a queued request, made once (not at
    /// every request and grant).
    pub(super) name_js: JsValue,
    pub(super) request_options: js_sys::Object,
    pub(super) opts: LockOptions,
    pub(super) signal: Option<AbortSignal>,
    pub(super) env: LockEnv,
    /// What this lock's grants share (see `LiveGrant`).
    pub(super) lease_base: Rc<LeaseBase>,
    pub(super) holding: RefCell<Option<Holding>>,
    pub(super) renewal_paused: Cell<bool>,
}

/// One grant, while held. Dropping it releases the Web Lock and stops renewing.
pub(super) struct Holding {
    pub(super) grant: Grant,
    /// The lock's `name_js`.
    pub(super) name_js: JsValue,
    pub(super) live: Rc<LiveGrant>,
    pub(super) release: Function,
    /// Known lost before the rejection arrived (another nonce in the published lease).
    pub(super) lost: bool,
}

impl Holding {
    /// Taken away (stolen, force-released).
    pub(super) fn is_lost(&self) -> bool {
        self.lost || self.live.stolen()
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let lock = &self.grant.lock_name;
        HELD_HERE.with(|h| {
            let mut h = h.borrow_mut();
            if h.get(lock).is_some_and(|l| l.nonce == self.grant.nonce) {
                h.remove(lock);
            }
        });
        // A published lease is removed (if still ours): a leftover would describe a holder
        // that is gone. An unpublished grant wrote nothing.
        if self.live.published.get() {
            let (env, key) = (&self.live.base.env, &self.live.base.lease_key);
            let stored = env.get(key);
            if stored
                .as_deref()
                .and_then(|json| lease::scan_str(json, "nonce"))
                .is_some_and(|n| n == self.grant.nonce)
            {
                env.remove(key);
            }
        }
        self.live.ended.set(true);
        grant_close(&self.name_js, self.grant.epoch as f64, self.is_lost());
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
                name_js: JsValue::from_str(&names.lock),
                request_options: lock_manager::options_object(RequestOptions {
                    signal: signal.as_ref(),
                    ..Default::default()
                }),
                lease_base: Rc::new(LeaseBase {
                    path: path.to_owned(),
                    ttl_ms: opts.ttl_ms,
                    renew_every_ms: opts.renew_interval_ms(),
                    lease_key: names.lease.clone(),
                    env: env.clone(),
                }),
                names,
                opts,
                signal,
                env,
                holding: RefCell::new(None),
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

    /// [`Self::name`] as a JS string.
    pub fn name_js(&self) -> &JsValue {
        &self.inner.name_js
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
        self.inner
            .holding
            .borrow()
            .as_ref()
            .is_some_and(|h| !h.is_lost())
    }

    /// Whether this object's grant was taken away (stolen, force-released) and not yet
    /// released by it.
    pub fn is_lost(&self) -> bool {
        self.inner
            .holding
            .borrow()
            .as_ref()
            .is_some_and(|h| h.is_lost())
    }

    /// Test hook: a paused holder stops renewing its lease and answering asks (as a hung tab
    /// would), so waiters find it stale after its ttl.
    #[doc(hidden)]
    pub fn set_renewal_paused(&self, paused: bool) {
        self.inner.renewal_paused.set(paused);
        if let Some(h) = self.inner.holding.borrow().as_ref() {
            h.live.paused.set(paused);
        }
    }

    /// Test hook: this context forgets every epoch it knew (as a context that has not heard
    /// of the other contexts' grants since its first acquire), so its next grants propose
    /// epochs already used elsewhere. The fences it knows stay.
    #[doc(hidden)]
    pub fn forget_tab_epochs() {
        super::env::TAB_EPOCHS.with(|t| t.borrow_mut().clear());
    }

    /// The connection used for epochs: the shared one of this tab, opened on first use.
    pub async fn database(&self) -> Result<IdbDatabase, LockError> {
        let db_name = &self.inner.db_name;
        if let Some(db) = DATABASES.with(|d| d.borrow().get(db_name).cloned()) {
            return Ok(db);
        }
        let db = crate::store::schema::open(db_name)
            .await
            .map_err(|e| LockError::Storage(e.to_string()))?;
        DATABASES.with(|d| d.borrow_mut().insert(db_name.clone(), db.clone()));
        Ok(db)
    }

    pub(super) fn manager(&self) -> Result<LockManager, LockError> {
        self.inner.env.manager.clone().ok_or_else(|| {
            LockError::Unavailable(
                "navigator.locks is missing (insecure context, old browser or no navigator)".into(),
            )
        })
    }

    pub(super) fn user_aborted(&self) -> bool {
        self.inner.signal.as_ref().is_some_and(|s| s.aborted())
    }

    /// The lease of the current holder as far as this tab knows without asking: this tab's
    /// live grant of the lock (in memory), else the lease published in storage, unless it is
    /// marked released or it is one of this tab's (then it outlived its grant).
    pub fn read_lease(&self) -> Option<Lease> {
        let lock = &self.inner.names.lock;
        // A grant here that was stolen no longer describes the holder: storage may.
        if let Some(live) = HELD_HERE.with(|h| h.borrow().get(lock).cloned()) {
            if !live.stolen() {
                return Some(live.current());
            }
        }
        let json = self.inner.env.get(&self.inner.names.lease)?;
        let lease = Lease::from_json(&json)?;
        if lease.released || lease.pid == PID.with(|p| *p) {
            return None;
        }
        Some(lease)
    }

    /// Releases this object's grant. Idempotent. Writes nothing unless the lease was published
    /// (then removes it). A published grant also checks the stored lease: another nonce there
    /// while we held the Web Lock means it was stolen even if the rejection has not reached
    /// us yet. (An unpublished grant was never asked about, so nobody saw it go stale; a
    /// `forceRelease` asks first.)
    pub fn release(&self) -> Release {
        let held = self.inner.holding.borrow_mut().take();
        let Some(mut held) = held else {
            return Release::NotHeld;
        };
        if held.live.published.get() {
            let stored = self.inner.env.get(&self.inner.names.lease);
            let ours = stored
                .as_deref()
                .and_then(|json| lease::scan_str(json, "nonce"))
                .is_some_and(|n| n == held.grant.nonce);
            // Our own lease marked released, which only `forceRelease` writes, is lost too
            // (WebKit delivers the steal's rejection after the thief's grant).
            let freed = stored.as_deref().is_some_and(lease::scan_released);
            held.lost |= stored.is_some() && (!ours || freed);
        }
        let lost = held.is_lost();
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

    /// The current holder's lease, or `None` when the lock is free. The Web Lock must be
    /// held (`navigator.locks.query()`; a lease left by a crashed holder does not count).
    /// This tab's own grant answers from memory; another tab's holder is asked (over the lock
    /// channel) unless its published lease is live, and has up to the ttl (at most 2 s) to
    /// publish it. A holder that does not answer (hung, or a context without localStorage)
    /// reads as its last published lease, or as free if it never published one.
    pub async fn inspect(&self) -> Result<Option<Lease>, LockError> {
        let manager = self.manager()?;
        if !self.held_now(&manager).await? {
            return Ok(None);
        }
        let live = |l: &Lease| !l.is_stale(now_ms());
        if let Some(lease) = self.read_lease().filter(live) {
            return Ok(Some(lease));
        }
        let started = now_ms();
        env::ask(&self.inner.names.channel, &self.inner.names.lock);
        let patience = self.inner.opts.ttl_ms.min(2_000);
        let mut pause = 2;
        loop {
            sleep(pause).await;
            pause = (pause * 2).min(50);
            // Released meanwhile (or the browser reported a release of this tab late).
            if !self.held_now(&manager).await? {
                return Ok(None);
            }
            if let Some(lease) = self.read_lease().filter(live) {
                return Ok(Some(lease));
            }
            if now_ms().saturating_sub(started) >= patience {
                return Ok(self.read_lease());
            }
        }
    }

    /// Whether the Web Lock is held right now, as `navigator.locks.query()` reports.
    async fn held_now(&self, manager: &LockManager) -> Result<bool, LockError> {
        let held = lock_manager::held_names(manager)
            .await
            .map_err(|e| LockError::Failed(describe(&e)))?;
        Ok(held.iter().any(|n| n == &self.inner.names.lock))
    }

    /// Frees the lock if its current nonce is `expected` (steals the Web Lock, removes the
    /// lease, releases, and moves the epoch on so the old holder's fenced writes fail) and
    /// returns `true`; otherwise changes nothing and returns `false` (a free lock included: a
    /// crashed holder's leftover lease is then only marked released).
    ///
    /// Race left open: if the holder releases and a new one is granted between the nonce
    /// check and the steal, the new holder loses its lock (it notices, as any steal victim)
    /// and this returns `false`.
    pub async fn force_release(&self, expected: &str) -> Result<bool, LockError> {
        let own = self
            .inner
            .holding
            .borrow()
            .as_ref()
            .is_some_and(|h| !h.is_lost() && h.grant.nonce == expected);
        if own {
            self.release();
            return Ok(true);
        }
        let manager = self.manager()?;
        let matches = |lease: Option<Lease>| lease.is_some_and(|l| l.nonce == expected);
        if expected.is_empty() {
            return Ok(false);
        }
        // The holder's lease: asked for (`inspect`) unless a live one is at hand. A stale one
        // may be a crashed holder's leftover (the lock then reads as free) or a hung holder's
        // (its last lease is returned after `inspect` waited for an answer).
        let current = match self.read_lease() {
            Some(lease) if lease.nonce == expected && !lease.is_stale(now_ms()) => Some(lease),
            _ => self.inspect().await?,
        };
        if !matches(current) {
            return Ok(false);
        }
        if !self.held_now(&manager).await? {
            // A crashed holder's leftover lease: the Web Lock is already free, nothing is
            // freed here (leases are not overwritten by every grant any more, so a leftover
            // may be old). The leftover is marked released for other readers.
            if let Some(lease) = self.read_lease().filter(|l| l.nonce == expected) {
                self.mark_released(lease);
            }
            return Ok(false);
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
                // The victim of this steal: this tab's grant (its request has just been
                // rejected) or the lease in storage.
                let lock = &self.inner.names.lock;
                let here = HELD_HERE.with(|h| h.borrow().get(lock).cloned());
                let victim = match here.filter(|l| l.nonce == expected) {
                    Some(live) => {
                        live.taken.set(true);
                        Some(live.lease())
                    }
                    None => self.read_lease().filter(|l| l.nonce == expected),
                };
                let epoch = self.allocate_epoch(true);
                let matched = victim.is_some();
                if let Some(mut lease) = victim {
                    // A victim in this tab: no longer the live grant here either.
                    HELD_HERE.with(|h| {
                        let mut h = h.borrow_mut();
                        if h.get(lock).is_some_and(|l| l.nonce == expected) {
                            h.remove(lock);
                        }
                    });
                    lease.epoch = epoch;
                    self.mark_released(lease);
                }
                let _ = release.call0(&JsValue::UNDEFINED);
                Ok(matched)
            }
            Wake::Rejected(e) => Err(LockError::Failed(describe(&e))),
            Wake::NotAvailable | Wake::Timer | Wake::HandedOver => {
                Err(LockError::Failed("steal not granted".into()))
            }
        }
    }
}

impl DistributedLock {
    /// Replaces the lease by its released form: readers in every tab treat it as no lease.
    pub(super) fn mark_released(&self, mut lease: Lease) {
        lease.released = true;
        self.inner
            .env
            .set(&self.inner.names.lease, &lease.to_json());
    }
}
