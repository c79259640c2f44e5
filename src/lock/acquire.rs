//! Acquiring a `DistributedLock`: waiting in the Web Locks queue while watching the holder's
//! lease (stealing it once stale, giving up at `maxWaitMs`), recording a grant (epoch, nonce,
//! lease), and renewing the lease every ttl/3 until the grant ends. The rules are in
//! [`super::rules`].

use std::rc::{Rc, Weak};

use js_sys::Function;

use super::distributed_lock::{DistributedLock, Grant, Holding, Inner};
use super::env::{describe, now_ms, LockEnv, DATABASES, HELD_HERE, PID, TAB_EPOCHS};
use super::lease::{self, Lease};
use super::rules::{self, Bump, Names, WaitStep};
use super::{fencing, LockError};
use crate::browser::lock_manager::{self, LockRequest, RequestOptions, Wake};
use crate::browser::timer::Deadline;

impl DistributedLock {
    /// Waits for the lock in the Web Locks queue, checking every
    /// `retryIntervalMs` whether the holder's lease went stale (then stealing it), until
    /// `maxWaitMs` (`LockTimeoutError` naming the holder) or the signal aborts (`AbortError`,
    /// no lock held). Already holding: returns the current grant.
    pub async fn acquire(&self) -> Result<Grant, LockError> {
        if let Some(h) = self.inner.holding.borrow().as_ref().filter(|h| !h.lost) {
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
            match rules::wait_step(now_ms(), started, &self.inner.opts, lease.as_ref()) {
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
    pub(super) fn allocate_epoch(&self, store: bool) -> u64 {
        let names = &self.inner.names;
        let env = &self.inner.env;
        let hint = env.get(&names.epoch).and_then(|s| s.parse::<u64>().ok());
        let lease_epoch = env
            .get(&names.lease)
            .and_then(|json| lease::scan_u64(&json, "epoch"));
        let tab_last = TAB_EPOCHS.with(|t| t.borrow().get(&names.lock).copied().unwrap_or(0));
        let epoch = rules::propose_epoch(hint.max(lease_epoch), tab_last);
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
        let nonce = rules::new_nonce().unwrap_or_else(|_| {
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
        *inner.holding.borrow_mut() = Some(Holding {
            id,
            grant: grant.clone(),
            lease,
            release,
            lost: false,
        });
        (grant, id)
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
        if let Some(h) = inner.holding.borrow_mut().as_mut().filter(|h| h.id == id) {
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
        let mut held = inner.holding.borrow_mut();
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
