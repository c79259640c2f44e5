//! `createLock` and the `DistributedLock` class: swamp's lock contract over `navigator.locks`
//! (docs/DESIGN.md invariant 8). Converts only; the lock lives in [`crate::lock`].

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;

use super::client_data::ClientData;
use super::options::lock_options;
use super::promise::promise;
use crate::browser::interop::lock_grant;
use crate::browser::promise_watch::Watch;
use crate::browser::timer::{spawn_after, Deferred};
use crate::lock::{DistributedLock, Grant, Lease, LockEnv, LockError, Release};

#[wasm_bindgen(typescript_custom_section)]
const TS_LOCK: &str = r#"
/** Options of `createLock`. */
export interface LockOptions {
  /** Names the lock instead of the path. */
  lockKey?: string;
  /** A holder whose last renewal is older than this is stale and may be stolen (default 30000). */
  ttlMs?: number;
  /** How often a waiter checks whether the holder went stale (default 1000). */
  retryIntervalMs?: number;
  /** How long `acquire` waits before `LockTimeoutError` (default 60000; 0: only if free). */
  maxWaitMs?: number;
  /** Aborting it while waiting rejects `acquire` with an `AbortError` (code `aborted`). */
  signal?: AbortSignal;
}
/** The current holder (swamp's LockInfo plus `path`, `epoch`, `grantedAt`, `acquiredAtMs`). */
export interface LockInfo {
  holder: string;
  hostname: string;
  pid: number;
  /** Start of the current lease term (grant, then each renewal), ISO-8601. */
  acquiredAt: string;
  acquiredAtMs: number;
  grantedAt: string;
  ttlMs: number;
  nonce: string;
  path: string;
  epoch: number;
}
/** What code under the lock receives. */
export interface LockGrant {
  /** Fencing epoch: above every earlier grant's of this tab; the first write fenced with the grant claims the epoch it writes under, above every epoch claimed before (so never reused). */
  epoch: number;
  nonce: string;
  lockName: string;
}
"#;

/// Creates a lease lock named `clientdata:<dbName>:lock:<lockKey or path>`. Nothing is
/// requested until `acquire`/`withLock`. Throws `InvalidLockOptionsError` for out-of-range
/// options. Where `navigator.locks` is missing (insecure context, old browser) the lock is
/// still created, and every operation rejects with `LocksUnavailableError`
/// (code `locks_unavailable`).
///
/// @example
/// ```js
/// const lock = createLock("supervisor", "notes-app/export", { ttlMs: 30_000, maxWaitMs: 5_000 });
/// const n = await lock.withLock(async ({ epoch }) => exportNotes(epoch));
/// ```
#[wasm_bindgen(js_name = createLock)]
pub fn create_lock(
    #[wasm_bindgen(js_name = dbName)] db_name: &str,
    path: &str,
    #[wasm_bindgen(unchecked_optional_param_type = "LockOptions")] options: Option<Object>,
) -> Result<JsDistributedLock, JsValue> {
    let options = options.map_or(JsValue::UNDEFINED, JsValue::from);
    let (opts, signal) = lock_options(&options)?;
    let lock = DistributedLock::new(db_name, path, opts, signal, LockEnv::from_global())?;
    Ok(JsDistributedLock { lock })
}

/// A lease lock over the Web Locks API (swamp's `DistributedLock`). Create with `createLock`.
#[wasm_bindgen(js_name = DistributedLock)]
pub struct JsDistributedLock {
    lock: DistributedLock,
}

impl JsDistributedLock {
    /// Wraps a lock built from Rust (e.g. with an injected [`LockEnv`]).
    pub fn from_lock(lock: DistributedLock) -> JsDistributedLock {
        JsDistributedLock { lock }
    }

    /// The Rust lock behind this object.
    pub fn lock(&self) -> &DistributedLock {
        &self.lock
    }
}

fn grant_to_js(lock: &DistributedLock, grant: &Grant) -> JsValue {
    lock_grant(grant.epoch as f64, &grant.nonce, lock.name_js())
}

fn lease_to_js(lease: &Lease) -> JsValue {
    // The lease's own JSON is exactly the LockInfo shape.
    js_sys::JSON::parse(&lease.to_json()).unwrap_or(JsValue::NULL)
}

#[wasm_bindgen(js_class = DistributedLock)]
impl JsDistributedLock {
    /// The Web Lock name, `clientdata:<db>:lock:<key>`.
    ///
    /// @example
    /// ```js
    /// createLock("db", "a/b").name; // "clientdata:db:lock:a/b"
    /// ```
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.lock.name().to_owned()
    }

    /// The path the lock was created for.
    ///
    /// @example
    /// ```js
    /// createLock("db", "a/b").path; // "a/b"
    /// ```
    #[wasm_bindgen(getter)]
    pub fn path(&self) -> String {
        self.lock.path().to_owned()
    }

    /// Waits for the lock and resolves with the grant. Rejects with `LockTimeoutError`
    /// (code `lock_timeout`, fields `holder`, `path`) after `maxWaitMs`, `AbortError`
    /// (code `aborted`) when the signal fires, `LocksUnavailableError` without
    /// `navigator.locks`. A holder whose lease is older than its ttl is stolen.
    ///
    /// @example
    /// ```js
    /// const { epoch, nonce } = await lock.acquire();
    /// try { await exportNotes(epoch); } finally { await lock.release(); }
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<LockGrant>")]
    pub fn acquire(&self) -> Promise {
        let lock = self.lock.clone();
        promise(async move {
            let grant = lock.acquire().await?;
            Ok(grant_to_js(&lock, &grant))
        })
    }

    /// Releases the lock if this object holds it. Idempotent; a lease that carries another
    /// nonce (a thief's) is left alone.
    ///
    /// @example
    /// ```js
    /// await lock.release(); await lock.release(); // the second does nothing
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn release(&self) -> Promise {
        self.lock.release();
        Promise::resolve(&JsValue::UNDEFINED)
    }

    /// Acquires, calls `fn({ epoch, nonce, lockName })`, awaits its result, releases (also when
    /// it throws or rejects) and returns its value. Rejects with `LockLostError` (code
    /// `lock_lost`) when the lock was taken away while `fn` ran.
    ///
    /// @example
    /// ```js
    /// const total = await lock.withLock(async ({ epoch }) => recount(epoch));
    /// ```
    #[wasm_bindgen(js_name = withLock, unchecked_return_type = "Promise<unknown>")]
    pub fn with_lock(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(grant: LockGrant) => unknown")] callback: Function,
    ) -> Promise {
        let mut resolvers = None;
        let promise = Promise::new(&mut |resolve, reject| resolvers = Some((resolve, reject)));
        let Some((resolve, reject)) = resolvers else {
            return promise;
        };
        let call = Rc::new(WithLock {
            lock: self.lock.clone(),
            callback,
            resolve,
            reject,
            waiter: Cell::new(None),
        });
        // Like a raw `navigator.locks.request(name, fn)`: the grant's own lock callback calls
        // `fn`, and the reaction to its promise releases and settles (see `acquire_direct`).
        let direct = call.clone();
        let on_grant = Box::new(move |grant: Grant| {
            if let Some(waiter) = direct.waiter.take() {
                waiter.cancel();
            }
            direct.run(grant);
        });
        let (idle_ms, waiting) = self.lock.acquire_direct(on_grant);
        let call_waiter = call.clone();
        let wait = async move {
            match waiting.await {
                Ok(None) => {}
                // Granted some other way (already held, `maxWaitMs` 0, a steal).
                Ok(Some(grant)) => call.run(grant),
                Err(e) => call.settle(Err(e.into())),
            }
        };
        // Not polled before its first tick: a grant before then (the usual case) cancels it.
        match idle_ms {
            Some(ms) => call_waiter.waiter.set(Some(spawn_after(ms, wait))),
            None => wasm_bindgen_futures::spawn_local(wait),
        }
        promise
    }

    /// The current holder, or `null` when the lock is free (a lease left behind by a closed
    /// tab does not count: `navigator.locks.query()` decides). A holder in another tab is asked
    /// for its lease and has up to its ttl (at most 2 s) to answer; one that never answers
    /// reads as its last published lease, or `null`.
    ///
    /// @example
    /// ```js
    /// const info = await lock.inspect(); // { holder, hostname, pid, acquiredAt, ttlMs, nonce, path, epoch, ... } | null
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Promise<LockInfo | null>")]
    pub fn inspect(&self) -> Promise {
        let lock = self.lock.clone();
        promise(async move {
            let lease = lock.inspect().await?;
            Ok(lease.as_ref().map_or(JsValue::NULL, lease_to_js))
        })
    }

    /// Frees the lock only if its current nonce is `expectedNonce`: resolves `true` (the holder
    /// loses it and its fenced writes fail from now on), else `false` and nothing changes (a
    /// lock already free included).
    ///
    /// @example
    /// ```js
    /// const info = await lock.inspect();
    /// if (info && isStuck(info)) await lock.forceRelease(info.nonce);
    /// ```
    #[wasm_bindgen(js_name = forceRelease, unchecked_return_type = "Promise<boolean>")]
    pub fn force_release(
        &self,
        #[wasm_bindgen(js_name = expectedNonce)] expected_nonce: String,
    ) -> Promise {
        let lock = self.lock.clone();
        promise(async move {
            let freed = lock.force_release(&expected_nonce).await?;
            Ok(JsValue::from_bool(freed))
        })
    }
}

/// One `withLock` call: the user's function and withLock's promise.
struct WithLock {
    lock: DistributedLock,
    callback: Function,
    resolve: Function,
    reject: Function,
    /// The wait for a grant, not started yet (see `acquire_direct`).
    waiter: Cell<Option<Deferred>>,
}

impl WithLock {
    /// Calls the user's function with `grant`; once its outcome is known (a thenable adopted,
    /// a throw rejected), releases and settles withLock's promise.
    fn run(self: Rc<Self>, mut grant: Grant) {
        let call = self.clone();
        let nonce = std::mem::take(&mut grant.nonce);
        let fields = (grant.epoch, nonce.as_str(), self.lock.name_js());
        Watch::call_then(&self.callback, fields, move |result| {
            call.settle(call.release_after(&grant, result));
        });
    }

    /// Releases once the user's function settled with `result` (the held promise is resolved
    /// before withLock's), then what withLock settles with: `LockLostError` if the lock was
    /// taken away meanwhile.
    fn release_after(
        &self,
        grant: &Grant,
        result: Result<JsValue, JsValue>,
    ) -> Result<JsValue, JsValue> {
        let released = self.lock.release();
        let value = result?;
        if released == Release::WasLost {
            return Err(LockError::Lost {
                lock: grant.lock_name.clone(),
                epoch: grant.epoch,
                newer: None,
            }
            .into());
        }
        Ok(value)
    }

    fn settle(&self, outcome: Result<JsValue, JsValue>) {
        let _ = match outcome {
            Ok(value) => self.resolve.call1(&JsValue::UNDEFINED, &value),
            Err(e) => self.reject.call1(&JsValue::UNDEFINED, &e),
        };
    }
}

#[wasm_bindgen(js_class = ClientData)]
impl ClientData {
    /// A lease lock scoped to this database (`createLock(cd.metadata().name, path, options)`).
    /// Writes made under it can be fenced: `kv.setMany(entries, { fence: grant })`.
    ///
    /// @example
    /// ```js
    /// const lock = cd.createLock("notes-app/export", { ttlMs: 30_000, maxWaitMs: 5_000 });
    /// await lock.withLock(async (grant) => kv.setMany([["exported", Date.now()]], { fence: grant }));
    /// ```
    #[wasm_bindgen(js_name = createLock)]
    pub fn create_lock(
        &self,
        path: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "LockOptions")] options: Option<Object>,
    ) -> Result<JsDistributedLock, JsValue> {
        create_lock(self.db_name(), path, options)
    }
}
