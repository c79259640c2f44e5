//! A hand-written binding for the Web Locks API (`navigator.locks`); web-sys hides it behind
//! `--cfg=web_sys_unstable_apis`, which every consumer would then need.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::browser::interop::{get, Obj};
use crate::browser::promise_watch::Watch;

#[wasm_bindgen]
extern "C" {
    /// `LockManager` (window.navigator.locks or self.navigator.locks).
    #[derive(Debug, Clone)]
    pub type LockManager;

    /// `locks.request(name, options, callback)`: the callback's promise holds the lock.
    #[wasm_bindgen(method, js_name = request)]
    pub fn request_with_options(
        this: &LockManager,
        name: &JsValue,
        options: &Object,
        callback: &Function,
    ) -> Promise;

    /// `locks.query()` → `{ held: [{name, mode, clientId}], pending: [...] }`.
    #[wasm_bindgen(method)]
    pub fn query(this: &LockManager) -> Promise;
}

/// The global scope's `navigator.locks`, or `None` (insecure context, old browser, no navigator).
/// Read through `js_sys::global()` so it works in windows and workers.
pub fn lock_manager() -> Option<LockManager> {
    let locks = get(&get(&js_sys::global(), "navigator"), "locks");
    if locks.is_null_or_undefined() {
        return None;
    }
    Some(locks.unchecked_into())
}

/// Options of one [`request`].
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// `ifAvailable: true`: granted only if free right now, else the callback sees `null`.
    pub if_available: bool,
    /// `steal: true`: take the lock from its holder, whose request promise then rejects with
    /// an `AbortError`.
    pub steal: bool,
    /// Passed through as `signal`: aborting it removes the request from the queue.
    pub signal: Option<&'a web_sys::AbortSignal>,
}

/// What a pending [`LockRequest`] woke up for.
#[derive(Debug)]
pub enum Wake {
    /// Granted; calling the function (the held promise's `resolve`) releases the lock.
    Granted(Function),
    /// `ifAvailable` and the lock was taken.
    NotAvailable,
    /// The request was rejected before a grant (aborted, or an error).
    Rejected(JsValue),
    /// The caller's timer fired first.
    Timer,
    /// Granted, and the grant went to the request's `on_grant` (see [`request_direct`]).
    HandedOver,
}

/// One `navigator.locks.request(name, options, callback)`. Dropping it before a grant
/// abandons it: a later grant is released at once.
#[derive(Debug)]
pub struct LockRequest {
    watch: Watch,
    settled: bool,
}

/// Requests the exclusive lock `name`. When granted, the lock is held until the function in
/// [`Wake::Granted`] is called (or the lock is stolen, or the page goes away).
pub fn request(manager: &LockManager, name: &str, options: RequestOptions<'_>) -> LockRequest {
    let watch = Watch::new();
    let callback = watch.lock_callback();
    let name = JsValue::from_str(name);
    send(manager, &name, &options_object(options), watch, &callback)
}

/// Like [`request`], but the grant is handed to `on_grant` in the lock callback itself (the
/// grant's own task, as a raw `navigator.locks.request` callback runs) with a second handle on
/// the request; the waiter sees [`Wake::HandedOver`].
pub fn request_direct(
    manager: &LockManager,
    name: &JsValue,
    options: &Object,
    on_grant: impl FnOnce(LockRequest, Function) + 'static,
) -> LockRequest {
    let watch = Watch::new();
    let callback = watch.lock_callback_with(Box::new(move |watch, release| {
        on_grant(
            LockRequest {
                watch,
                settled: false,
            },
            release,
        )
    }));
    send(manager, name, options, watch, &callback)
}

/// The options object of a request (made once per lock for its queued requests: Web Locks
/// only reads it).
pub fn options_object(options: RequestOptions<'_>) -> Object {
    Obj::new()
        .with_some("ifAvailable", options.if_available.then_some(true))
        .with_some("steal", options.steal.then_some(true))
        .with_some("signal", options.signal.cloned())
        .into_object()
}

fn send(
    manager: &LockManager,
    name: &JsValue,
    options: &Object,
    watch: Watch,
    callback: &Function,
) -> LockRequest {
    let done = manager.request_with_options(name, options, callback);
    watch.watch(&done);
    LockRequest {
        watch,
        settled: false,
    }
}

impl LockRequest {
    /// Waits for the grant, for the request's rejection, or for `timer`, whichever is first.
    /// After [`Wake::Rejected`] or [`Wake::NotAvailable`] the request is over.
    pub async fn wait(&mut self, mut timer: Option<&mut crate::browser::timer::Deadline>) -> Wake {
        std::future::poll_fn(|cx| {
            if self.watch.handed_over() {
                return Poll::Ready(Wake::HandedOver);
            }
            match self.watch.poll_granted(cx) {
                Poll::Ready(Some(release)) => return Poll::Ready(Wake::Granted(release)),
                Poll::Ready(None) => return Poll::Ready(Wake::NotAvailable),
                Poll::Pending => {}
            }
            if !self.settled {
                if let Poll::Ready(result) = self.watch.poll_settled(cx) {
                    self.settled = true;
                    if let Some(Some(release)) = self.watch.try_granted() {
                        return Poll::Ready(Wake::Granted(release));
                    }
                    return Poll::Ready(Wake::Rejected(result.err().unwrap_or(JsValue::UNDEFINED)));
                }
            } else {
                return Poll::Ready(Wake::Rejected(JsValue::UNDEFINED));
            }
            if let Some(timer) = timer.as_mut() {
                if Pin::new(&mut **timer).poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Gives up waiting without aborting (no signal needed). A grant that already happened
    /// wins: the request comes back with it and the caller holds the lock. Otherwise a later
    /// grant is released at once.
    pub fn abandon(self) -> Option<(LockRequest, Function)> {
        if let Some(Some(release)) = self.watch.try_granted() {
            return Some((self, release));
        }
        None
    }

    /// Whether the request's promise already rejected: a held lock was stolen (checked
    /// without a task per grant waiting for it).
    pub fn rejected(&self) -> bool {
        self.watch.rejected()
    }

    /// Resolves when the request is over: `Ok` after a normal release, `Err` (an `AbortError`
    /// `DOMException`) when the held lock was stolen or the waiting request aborted.
    pub async fn finished(self) -> Result<JsValue, JsValue> {
        if self.settled {
            return Ok(JsValue::UNDEFINED);
        }
        std::future::poll_fn(|cx| self.watch.poll_settled(cx)).await
    }
}

/// The names of the locks currently held in this origin, from `locks.query()`.
pub async fn held_names(manager: &LockManager) -> Result<Vec<String>, JsValue> {
    let snapshot = JsFuture::from(manager.query()).await?;
    let held = get(&snapshot, "held");
    let Some(held) = held.dyn_ref::<js_sys::Array>() else {
        return Ok(Vec::new());
    };
    Ok(held
        .iter()
        .filter_map(|info| get(&info, "name").as_string())
        .collect())
}

/// A granted Web Lock (or, with `None`, a stand-in where the API is missing), released when
/// dropped.
#[derive(Debug)]
pub struct HeldLock(Option<Function>);

impl HeldLock {
    /// Holds the lock `release` releases.
    pub fn new(release: Function) -> HeldLock {
        HeldLock(Some(release))
    }

    /// Holds nothing (no Web Locks API: the caller runs unguarded).
    pub fn none() -> HeldLock {
        HeldLock(None)
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}
