//! Acquiring a `DistributedLock`: waiting in the Web Locks queue while watching the holder's
//! lease (asking for it when there is none, stealing from a holder silent past the ttl, giving
//! up at `maxWaitMs`), recording a grant (proposed epoch, nonce, lease in memory), and renewing
//! the lease every ttl/3 until the grant ends (in memory; in storage once published). The
//! rules are in [`super::rules`].

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Function;

use super::distributed_lock::{DistributedLock, Grant, Holding};
use super::env::{
    self, asked_within, describe, now_ms, LiveGrant, DATABASES, HELD_HERE, TAB_EPOCHS, TAB_FENCES,
};
use super::lease::Lease;
use super::rules::{self, WaitStep};
use super::{fencing, LockError};
use crate::browser::idb_requests::grant_open;
use crate::browser::lock_manager::{self, LockManager, LockRequest, RequestOptions, Wake};
use crate::browser::timer::Deadline;

/// Takes a grant in the lock callback itself (see [`DistributedLock::acquire_direct`]).
pub type OnGrant = Box<dyn FnOnce(Grant)>;

impl DistributedLock {
    /// Waits for the lock in the Web Locks queue, checking every
    /// `retryIntervalMs` whether the holder's lease went stale (then stealing it), until
    /// `maxWaitMs` (`LockTimeoutError` naming the holder) or the signal aborts (`AbortError`,
    /// no lock held). Already holding: returns the current grant.
    pub async fn acquire(&self) -> Result<Grant, LockError> {
        let granted = self.acquire_then(None).await?;
        granted.ok_or_else(|| LockError::Failed("grant handed over".into()))
    }

    /// `withLock`'s acquire, shaped like a raw `navigator.locks.request(name, fn)`: the queued
    /// request's grant is recorded and handed to `on_grant` in the lock callback itself, and
    /// the future resolves to `None`. A grant made any other way (already held, `maxWaitMs`
    /// 0, a steal) is returned instead. When nothing needs awaiting first (the usual case
    /// after the lock's first acquire in this tab), the request is made before this returns,
    /// and the future only watches the wait (timeouts, stale holders, the signal); then, if
    /// there is no signal, the first ms are returned too: until then it has nothing to do, so
    /// it need not be polled before (see `timer::spawn_after`).
    pub fn acquire_direct(
        &self,
        on_grant: OnGrant,
    ) -> (
        Option<u64>,
        impl std::future::Future<Output = Result<Option<Grant>, LockError>> + 'static,
    ) {
        let lock = self.clone();
        let queued = match self.manager() {
            Ok(manager) if self.ready_now() => {
                let queued = self.queue(&manager, Some(on_grant));
                Ok((manager, queued, now_ms()))
            }
            _ => Err(on_grant),
        };
        let opts = &self.inner.opts;
        let idle_ms = (queued.is_ok() && self.inner.signal.is_none())
            .then(|| opts.retry_interval_ms.min(opts.max_wait_ms));
        let waiting = async move {
            match queued {
                Ok((manager, queued, started)) => lock.wait_queued(&manager, queued, started).await,
                Err(on_grant) => lock.acquire_then(Some(on_grant)).await,
            }
        };
        (idle_ms, waiting)
    }

    /// Whether a request can be queued without awaiting anything first: nothing held (or
    /// lost) here, not aborted, the tab's epochs of the lock known, a queued wait.
    fn ready_now(&self) -> bool {
        let lock = &self.inner.names.lock;
        self.inner.holding.borrow().is_none()
            && !self.user_aborted()
            && self.inner.opts.max_wait_ms > 0
            && DATABASES.with(|d| d.borrow().contains_key(&self.inner.db_name))
            && TAB_FENCES.with(|f| f.borrow().contains_key(lock))
            && env::joined(&self.inner.names.channel)
    }

    /// [`Self::acquire`], with an optional `on_grant` for the queued request (see
    /// [`Self::acquire_direct`]).
    async fn acquire_then(&self, on_grant: Option<OnGrant>) -> Result<Option<Grant>, LockError> {
        if let Some(h) = self
            .inner
            .holding
            .borrow()
            .as_ref()
            .filter(|h| !h.is_lost())
        {
            return Ok(Some(h.grant.clone()));
        }
        self.release();
        let manager = self.manager()?;
        let path = || self.inner.path.clone();
        if self.user_aborted() {
            return Err(LockError::Aborted { path: path() });
        }
        // Fencing is best-effort when IndexedDB cannot be opened: epochs are then only
        // proposed, and fenced writes (which need the database) fail on their own.
        if let Ok(db) = self.database().await {
            self.learn_epochs(&db).await;
        }
        env::join_channel(&self.inner.names.channel);
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
                Wake::Granted(release) => Ok(Some(self.on_grant(now_or_never, release, false))),
                Wake::NotAvailable | Wake::Timer | Wake::HandedOver => Err(LockError::Timeout {
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
        let queued = self.queue(&manager, on_grant);
        self.wait_queued(&manager, queued, started).await
    }

    /// Queues the request. The caller's signal is passed straight through; timing out and
    /// stealing abandon the queued request instead of aborting it (no AbortController on the
    /// common path).
    fn queue(&self, manager: &LockManager, on_grant: Option<OnGrant>) -> LockRequest {
        let name = &self.inner.names.lock;
        let options = RequestOptions {
            signal: self.inner.signal.as_ref(),
            ..Default::default()
        };
        let Some(on_grant) = on_grant else {
            return lock_manager::request(manager, name, options);
        };
        let lock = self.clone();
        let options = &self.inner.request_options;
        lock_manager::request_direct(
            manager,
            &self.inner.name_js,
            options,
            move |request, release| on_grant(lock.on_grant(request, release, false)),
        )
    }

    /// Waits for the queued request's grant (`None`: handed over in the lock callback),
    /// watching the holder's lease every `retryIntervalMs`: asks for it when there is none,
    /// steals from a holder silent past the ttl, gives up at `maxWaitMs`.
    async fn wait_queued(
        &self,
        manager: &LockManager,
        mut queued: LockRequest,
        started: u64,
    ) -> Result<Option<Grant>, LockError> {
        let path = || self.inner.path.clone();
        let name = &self.inner.names.lock;
        // The first look at the lease waits for the first tick: the uncontended path parses
        // nothing. `asked`: the first ask since the last live lease seen (see `wait_step`).
        // A wait started at its first tick (see `acquire_direct`) takes that look now.
        let mut looked = now_ms().saturating_sub(started) >= self.inner.opts.retry_interval_ms;
        let mut lease: Option<Lease> = if looked { self.read_lease() } else { None };
        let mut asked: Option<u64> = None;
        loop {
            let now = now_ms();
            match rules::wait_step(now, started, &self.inner.opts, lease.as_ref(), asked) {
                step @ (WaitStep::Sleep(ms) | WaitStep::Ask(ms)) => {
                    // Nobody is asked before the first look (nor on the uncontended path).
                    if matches!(step, WaitStep::Ask(_)) && looked {
                        asked.get_or_insert(now);
                        env::ask(&self.inner.names.channel, name);
                    }
                    let mut tick = Deadline::after(ms);
                    match queued.wait(Some(&mut tick)).await {
                        Wake::Granted(release) => {
                            return Ok(Some(self.on_grant(queued, release, false)))
                        }
                        Wake::HandedOver => return Ok(None),
                        Wake::Timer => {
                            looked = true;
                            lease = self.read_lease();
                            if lease.as_ref().is_some_and(|l| !l.is_stale(now_ms())) {
                                asked = None;
                            }
                        }
                        Wake::Rejected(_) if self.user_aborted() => {
                            return Err(LockError::Aborted { path: path() })
                        }
                        Wake::Rejected(e) => return Err(LockError::Failed(describe(&e))),
                        Wake::NotAvailable => {
                            return Err(LockError::Failed("queued request not granted".into()))
                        }
                    }
                }
                // A grant handed over in the lock callback was seen by `wait` before this
                // step was chosen (both run in one poll), so abandoning cannot lose one.
                WaitStep::Steal => {
                    // The grant may have raced the decision: then it is ours without stealing.
                    if let Some((queued, release)) = queued.abandon() {
                        return Ok(Some(self.on_grant(queued, release, false)));
                    }
                    let mut thief = lock_manager::request(
                        manager,
                        name,
                        RequestOptions {
                            steal: true,
                            ..Default::default()
                        },
                    );
                    return match thief.wait(None).await {
                        Wake::Granted(release) => Ok(Some(self.on_grant(thief, release, true))),
                        Wake::Rejected(e) => Err(LockError::Failed(describe(&e))),
                        Wake::NotAvailable | Wake::Timer | Wake::HandedOver => {
                            Err(LockError::Failed("steal not granted".into()))
                        }
                    };
                }
                WaitStep::GiveUp => {
                    if let Some((queued, release)) = queued.abandon() {
                        return Ok(Some(self.on_grant(queued, release, false)));
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

    /// Once per tab and lock: reads the stored epoch and fence, so this tab's proposals start
    /// above every epoch claimed so far and its grants know the newest fence. (Not on the
    /// common path: later acquires find the lock in `TAB_FENCES`.)
    async fn learn_epochs(&self, db: &web_sys::IdbDatabase) {
        let lock = &self.inner.names.lock;
        if TAB_FENCES.with(|f| f.borrow().contains_key(lock)) {
            return;
        }
        if let Ok((stored, fence)) = fencing::stored_and_fence(db, lock).await {
            note_epoch(lock, stored.unwrap_or(0));
            note_fence(lock, fence.unwrap_or(0));
        }
    }

    /// The next epoch of this lock, proposed from the newest this tab knows. A steal
    /// (`store`) also stores it in IndexedDB as the lock's epoch and fence, in a transaction
    /// created right now; an ordinary grant leaves IndexedDB alone (its first fenced write
    /// claims its epoch) — see the module docs of `fencing`.
    pub(super) fn allocate_epoch(&self, store: bool) -> u64 {
        let lock = &self.inner.names.lock;
        let tab_last = TAB_EPOCHS.with(|t| t.borrow().get(lock).copied().unwrap_or(0));
        let epoch = rules::propose_epoch(tab_last);
        note_epoch(lock, epoch);
        if !store {
            return epoch;
        }
        note_fence(lock, epoch);
        if let Some(db) = DATABASES.with(|d| d.borrow().get(&self.inner.db_name).cloned()) {
            match fencing::start_bump(&db, lock, epoch) {
                Ok(bump) => {
                    let lock = lock.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        if let Ok(stored) = bump.await {
                            note_epoch(&lock, stored);
                            note_fence(&lock, stored);
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
        // No task and no timer per grant: a steal is seen from the request's rejection when
        // asked (`is_lost`, `release`), the in-memory lease is renewed when read, and only a
        // published lease gets a renewal timer (see `LiveGrant::renew`).
        self.record_grant(request, release, stolen)
    }

    fn record_grant(&self, request: LockRequest, release: Function, stolen: bool) -> Grant {
        let inner = &self.inner;
        let lock = &inner.names.lock;
        let floor = TAB_FENCES.with(|f| f.borrow().get(lock).copied().unwrap_or(0));
        let epoch = self.allocate_epoch(stolen);
        grant_open(&inner.name_js, epoch as f64, floor as f64);
        // 32 hex digits either way (see `rules::nonce_words`).
        let nonce = rules::new_nonce().unwrap_or_else(|_| {
            let random = || (js_sys::Math::random() * 2f64.powi(53)) as u64;
            format!("{:016x}{:016x}", random(), random())
        });
        let now = now_ms();
        let live = Rc::new(LiveGrant {
            nonce: nonce.clone(),
            epoch,
            granted_ms: now,
            term_ms: Cell::new(now),
            base: inner.lease_base.clone(),
            published: Cell::new(false),
            paused: Cell::new(inner.renewal_paused.get()),
            ended: Cell::new(false),
            request,
            taken: Cell::new(false),
        });
        // Published at once when someone is waiting: a steal (the victim's waiters and the
        // victim's lease must see the new holder), or an ask heard within the ttl.
        if stolen || asked_within(lock, inner.opts.ttl_ms) {
            live.publish();
        }
        HELD_HERE.with(|h| h.borrow_mut().insert(lock.clone(), live.clone()));
        let grant = Grant {
            lock_name: lock.clone(),
            epoch,
            nonce,
        };
        *inner.holding.borrow_mut() = Some(Holding {
            grant: grant.clone(),
            name_js: inner.name_js.clone(),
            live,
            release,
            lost: false,
        });
        grant
    }
}

/// Records `epoch` as one this tab knows for `lock` (proposals start above it).
fn note_epoch(lock: &str, epoch: u64) {
    TAB_EPOCHS.with(|t| note_max(&mut t.borrow_mut(), lock, epoch));
}

/// Raises `map[lock]` to `value` (the key is copied only when new).
fn note_max(map: &mut crate::core::sorted::SortedMap<String, u64>, lock: &str, value: u64) {
    match map.get_mut(lock) {
        Some(slot) => *slot = (*slot).max(value),
        None => {
            map.insert(lock.to_owned(), value);
        }
    }
}

/// Records `fence` as a fence this tab knows for `lock` (its later grants are made after it).
pub(super) fn note_fence(lock: &str, fence: u64) {
    TAB_FENCES.with(|f| note_max(&mut f.borrow_mut(), lock, fence));
}
