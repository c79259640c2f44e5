//! Receiving JS callbacks and awaiting JS promises without a Rust closure per call: three
//! closures per thread, bound (`Function.prototype.bind`) to a watch id for each use. On hot
//! paths (every lock grant) this replaces `Closure::once` and `JsFuture`, which create fresh JS
//! function wrappers every time.
//!
//! A watch entry lives until its promise settles, even when its Rust owner is dropped first, so a
//! late callback always finds it (or finds it abandoned and does the safe thing).

use crate::core::sorted::SortedMap;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// A promise, seen only for `then(onFulfilled, onRejected)` with plain functions.
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_with(this: &Thenable, on_fulfilled: &Function, on_rejected: &Function) -> JsValue;
    /// A function, seen only for `bind(this, id)`.
    type Bindable;
    #[wasm_bindgen(method, js_name = bind)]
    fn bind_id(this: &Bindable, context: &JsValue, id: u32) -> Function;
}

#[derive(Default)]
struct Watched {
    /// Set by the lock callback: `Some(release)` when granted, `None` for `ifAvailable` misses.
    granted: Option<Option<Function>>,
    settled: Option<Result<JsValue, JsValue>>,
    /// The promise settled (`settled` may have been taken since).
    done: bool,
    waker: Option<Waker>,
    /// The owner is gone: a later grant is released at once, settling removes the entry.
    abandoned: bool,
}

#[derive(Default)]
struct Watches {
    next: u32,
    map: SortedMap<u32, Watched>,
}

struct Handlers {
    lock_callback: Closure<dyn FnMut(u32, JsValue) -> JsValue>,
    fulfilled: Closure<dyn FnMut(u32, JsValue)>,
    rejected: Closure<dyn FnMut(u32, JsValue)>,
}

thread_local! {
    static WATCHES: RefCell<Watches> = RefCell::default();
    /// Created once per thread and kept for its life.
    static HANDLERS: Handlers = Handlers {
        lock_callback: Closure::new(on_lock_callback),
        fulfilled: Closure::new(|id, value| on_settled(id, Ok(value))),
        rejected: Closure::new(|id, reason| on_settled(id, Err(reason))),
    };
}

fn with_watched<R>(id: u32, f: impl FnOnce(&mut Watched) -> R) -> Option<R> {
    WATCHES.with(|s| s.borrow_mut().map.get_mut(&id).map(f))
}

fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// A pending promise and the function that resolves it. (Not `Promise.withResolvers`, which
/// is newer than Web Locks in Safari and Firefox.) The executor runs synchronously, so the
/// function is always there; `None` would only mean a broken `Promise`.
fn held_promise() -> Option<(Promise, Function)> {
    let mut resolve = None;
    let promise = Promise::new(&mut |res, _rej| resolve = Some(res));
    resolve.map(|r| (promise, r))
}

fn on_lock_callback(id: u32, lock: JsValue) -> JsValue {
    let abandoned = with_watched(id, |watched| watched.abandoned).unwrap_or(true);
    if abandoned {
        // Granted after the waiter gave up: hold nothing, the lock is released at once.
        return JsValue::UNDEFINED;
    }
    let held = if lock.is_null_or_undefined() {
        None
    } else {
        held_promise()
    };
    let (release, hold) = match held {
        Some((promise, resolve)) => (Some(resolve), promise.into()),
        None => (None, JsValue::UNDEFINED),
    };
    let waker = with_watched(id, |watched| {
        watched.granted = Some(release);
        watched.waker.take()
    });
    wake(waker.flatten());
    hold
}

fn on_settled(id: u32, result: Result<JsValue, JsValue>) {
    let waker = WATCHES.with(|s| {
        let mut s = s.borrow_mut();
        let watched = s.map.get_mut(&id)?;
        if watched.abandoned {
            s.map.remove(&id);
            return None;
        }
        watched.settled = Some(result);
        watched.done = true;
        watched.waker.take()
    });
    wake(waker);
}

/// One watch: a promise being watched and, for lock requests, the callback's grant.
#[derive(Debug)]
pub struct Watch {
    id: u32,
}

impl Watch {
    /// A new watch (call [`Watch::watch`] once the promise exists).
    pub fn new() -> Watch {
        let id = WATCHES.with(|s| {
            let mut s = s.borrow_mut();
            s.next = s.next.wrapping_add(1);
            let id = s.next;
            s.map.insert(id, Watched::default());
            id
        });
        Watch { id }
    }

    /// The `navigator.locks.request` callback for this watch: on grant it returns a promise
    /// that holds the lock until the function from [`Watch::poll_granted`] is called.
    pub fn lock_callback(&self) -> Function {
        HANDLERS.with(|h| {
            h.lock_callback
                .as_ref()
                .unchecked_ref::<Bindable>()
                .bind_id(&JsValue::NULL, self.id)
        })
    }

    /// Watches `promise`: its outcome becomes [`Watch::poll_settled`].
    pub fn watch(&self, promise: &Promise) {
        HANDLERS.with(|h| {
            let ok = h.fulfilled.as_ref().unchecked_ref::<Bindable>();
            let err = h.rejected.as_ref().unchecked_ref::<Bindable>();
            let _ = promise.unchecked_ref::<Thenable>().then_with(
                &ok.bind_id(&JsValue::NULL, self.id),
                &err.bind_id(&JsValue::NULL, self.id),
            );
        });
    }

    /// Awaits `promise`.
    pub fn promise(promise: &Promise) -> Settled {
        let watch = Watch::new();
        watch.watch(promise);
        Settled { watch }
    }

    fn register(&self, cx: &Context<'_>) {
        with_watched(self.id, |watched| watched.waker = Some(cx.waker().clone()));
    }

    /// The grant, once the lock callback ran (`Some(None)`: `ifAvailable` found it taken).
    pub fn poll_granted(&self, cx: &Context<'_>) -> Poll<Option<Function>> {
        match with_watched(self.id, |watched| watched.granted.take()).flatten() {
            Some(granted) => Poll::Ready(granted),
            None => {
                self.register(cx);
                Poll::Pending
            }
        }
    }

    /// The grant if the callback already ran, without waiting.
    pub fn try_granted(&self) -> Option<Option<Function>> {
        with_watched(self.id, |watched| watched.granted.take()).flatten()
    }

    /// Whether the promise already rejected, without waiting or taking the outcome.
    pub fn rejected(&self) -> bool {
        with_watched(self.id, |watched| matches!(watched.settled, Some(Err(_)))).unwrap_or(false)
    }

    /// The promise's outcome.
    pub fn poll_settled(&self, cx: &Context<'_>) -> Poll<Result<JsValue, JsValue>> {
        match with_watched(self.id, |watched| watched.settled.take()).flatten() {
            Some(result) => Poll::Ready(result),
            None => {
                self.register(cx);
                Poll::Pending
            }
        }
    }
}

impl Default for Watch {
    fn default() -> Self {
        Watch::new()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let release = WATCHES.with(|s| {
            let mut s = s.borrow_mut();
            let watched = s.map.get_mut(&self.id)?;
            // A grant nobody took: release it rather than hold the lock forever.
            let release = watched.granted.take().flatten();
            if watched.done {
                s.map.remove(&self.id);
            } else {
                watched.abandoned = true;
                watched.waker = None;
            }
            release
        });
        if let Some(release) = release {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}

/// A JS promise as a future, without closures of its own.
#[derive(Debug)]
pub struct Settled {
    watch: Watch,
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.watch.poll_settled(cx)
    }
}

/// How many watches are open (tests check that nothing accumulates).
pub fn open_watches() -> usize {
    WATCHES.with(|s| s.borrow().map.len())
}
