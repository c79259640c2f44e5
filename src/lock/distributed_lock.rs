//! `DistributedLock`: the lock over `navigator.locks` (mutual exclusion, queueing, stealing,
//! tab death) and localStorage (the lease every tab can read synchronously): creating it,
//! reading the lease, releasing, `withLock`, `inspect`, `forceRelease`. Acquiring, granting and
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
use super::env::{describe, DATABASES, HELD_HERE, PID};
use super::lease::{self, Lease};
use super::rules::{LockOptions, Names};
use super::LockError;
use crate::browser::lock_manager::{self, LockManager, RequestOptions, Wake};

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
    pub(super) opts: LockOptions,
    pub(super) signal: Option<AbortSignal>,
    pub(super) env: LockEnv,
    pub(super) holding: RefCell<Option<Holding>>,
    pub(super) grants: Cell<u64>,
    pub(super) renewal_paused: Cell<bool>,
}

/// One grant, while held. Dropping it releases the Web Lock and stops renewing.
pub(super) struct Holding {
    pub(super) id: u64,
    pub(super) grant: Grant,
    pub(super) lease: Lease,
    pub(super) release: Function,
    pub(super) lost: bool,
}

impl Drop for Holding {
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
                holding: RefCell::new(None),
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
        self.inner
            .holding
            .borrow()
            .as_ref()
            .is_some_and(|h| !h.lost)
    }

    /// Whether this object's grant was taken away (stolen, force-released) and not yet
    /// released by it.
    pub fn is_lost(&self) -> bool {
        self.inner.holding.borrow().as_ref().is_some_and(|h| h.lost)
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

    /// Releases this object's grant. Idempotent. Writes nothing: the lease stays as the next
    /// grant's epoch hint, and readers tell it is over from `navigator.locks.query()` (other
    /// tabs) or from this tab's registry of live grants (this tab, where the browser may still
    /// report the Web Lock held for a moment after the release).
    pub fn release(&self) -> Release {
        let held = self.inner.holding.borrow_mut().take();
        let Some(held) = held else {
            return Release::NotHeld;
        };
        let stored = self.inner.env.get(&self.inner.names.lease);
        let ours = stored
            .as_deref()
            .and_then(|json| lease::scan_str(json, "nonce"))
            .is_some_and(|n| n == held.grant.nonce);
        // Another nonce in the lease while we held the Web Lock means it was stolen even if
        // the rejection has not reached us yet; so does our own lease marked released, which
        // only `forceRelease` writes (WebKit delivers the steal's rejection after the thief's
        // grant, so a `forceRelease` awaited inside `withLock` got there first).
        let freed = stored.as_deref().is_some_and(lease::scan_released);
        let lost = held.lost || (stored.is_some() && (!ours || freed));
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
            .holding
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
    pub(super) fn mark_released(&self, mut lease: Lease) {
        lease.released = true;
        self.inner
            .env
            .set(&self.inner.names.lease, &lease.to_json());
    }
}
