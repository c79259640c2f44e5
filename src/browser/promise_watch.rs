//! Receiving JS callbacks and awaiting JS promises without a Rust closure per call: three
//! closures per thread, called with a watch id by small JS callbacks (`promise_watch.js`) that
//! also make the promise holding a granted Web Lock. On hot paths (every lock grant) this
//! replaces `Closure::once` and `JsFuture`, which create fresh JS function wrappers every time.
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

#[wasm_bindgen(module = "/src/browser/promise_watch.js")]
extern "C" {
    /// `promise.then(v => fulfilled(id, v), e => rejected(id, e))`: one crossing, where
    /// binding both handlers from here took three.
    #[wasm_bindgen(js_name = watchPromise)]
    fn watch_promise(promise: &Promise, id: u32, fulfilled: &JsValue, rejected: &JsValue);

    /// The Web Lock callback of watch `id`: a grant is held by a promise made in JS and
    /// passed on as `on_lock(id, release)` (`null` for an `ifAvailable` miss).
    #[wasm_bindgen(js_name = lockCallback)]
    fn lock_callback_for(id: u32, on_lock: &JsValue) -> Function;

    /// `fn({ epoch, nonce, lockName })` (the nonce as `rules::nonce_words`), its outcome
    /// watched as `watchPromise` does.
    #[wasm_bindgen(js_name = callWatched)]
    fn call_watched(
        callback: &Function,
        epoch: f64,
        w0: u32,
        w1: u32,
        w2: u32,
        w3: u32,
        lock_name: &JsValue,
        id: u32,
        fulfilled: &JsValue,
        rejected: &JsValue,
    );
}

/// Takes a grant in the lock callback itself (the grant's own task): gets a new handle on the
/// request's watch and the function that releases the lock.
pub type OnGrant = Box<dyn FnOnce(Watch, Function)>;

/// Receives a promise's outcome in its reaction (see [`Watch::call_then`]).
type OnSettled = Box<dyn FnOnce(Result<JsValue, JsValue>)>;

#[derive(Default)]
struct Watched {
    /// Set by the lock callback: `Some(release)` when granted, `None` for `ifAvailable` misses.
    granted: Option<Option<Function>>,
    /// Takes the grant instead of `granted` (see [`Watch::lock_callback_with`]).
    on_grant: Option<OnGrant>,
    /// `on_grant` took the grant.
    handed_over: bool,
    /// Called with the outcome instead of storing it (see [`Watch::call_then`]).
    on_settled: Option<OnSettled>,
    /// Live [`Watch`] handles on this entry (more than one once `on_grant` got its own).
    owners: u32,
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
    lock_callback: Closure<dyn FnMut(u32, Option<Function>)>,
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

fn on_lock_callback(id: u32, release: Option<Function>) {
    let abandoned = with_watched(id, |watched| watched.abandoned).unwrap_or(true);
    if abandoned {
        // Granted after the waiter gave up: the lock is released at once.
        if let Some(release) = release {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
        return;
    }
    let (direct, waker) = with_watched(id, |watched| {
        let waker = watched.waker.take();
        match release.as_ref().and_then(|_| watched.on_grant.take()) {
            Some(on_grant) => {
                watched.handed_over = true;
                watched.owners += 1;
                (release.map(|r| (on_grant, r)), waker)
            }
            None => {
                watched.granted = Some(release);
                (None, waker)
            }
        }
    })
    .unwrap_or((None, None));
    // The handler runs before the waiter is woken, so whatever it queues (a reaction to the
    // user's promise) runs first.
    if let Some((on_grant, release)) = direct {
        on_grant(Watch { id }, release);
    }
    wake(waker);
}

fn on_settled(id: u32, result: Result<JsValue, JsValue>) {
    let waker = WATCHES.with(|s| {
        let mut s = s.borrow_mut();
        let watched = s.map.get_mut(&id)?;
        if let Some(f) = watched.on_settled.take() {
            s.map.remove(&id);
            return Some(Box::new(move || f(result)) as Box<dyn FnOnce()>);
        }
        if watched.abandoned {
            s.map.remove(&id);
            return None;
        }
        watched.settled = Some(result);
        watched.done = true;
        let waker = watched.waker.take()?;
        Some(Box::new(move || waker.wake()) as Box<dyn FnOnce()>)
    });
    // Outside the borrow: the callback may watch more promises.
    if let Some(then) = waker {
        then();
    }
}

/// One watch: a promise being watched and, for lock requests, the callback's grant.
#[derive(Debug)]
pub struct Watch {
    id: u32,
}

impl Watch {
    /// A new watch (call [`Watch::watch`] once the promise exists).
    pub fn new() -> Watch {
        Watch::with_entry(Watched::default())
    }

    fn with_entry(mut watched: Watched) -> Watch {
        watched.owners = 1;
        let id = WATCHES.with(|s| {
            let mut s = s.borrow_mut();
            s.next = s.next.wrapping_add(1);
            let id = s.next;
            s.map.insert(id, watched);
            id
        });
        Watch { id }
    }

    /// Like [`Watch::lock_callback`], but a grant goes to `on_grant`, called in the lock
    /// callback itself; the waiter then sees [`Watch::poll_granted`] report `handed_over`.
    pub fn lock_callback_with(&self, on_grant: OnGrant) -> Function {
        with_watched(self.id, |watched| watched.on_grant = Some(on_grant));
        self.lock_callback()
    }

    /// Calls `callback({ epoch, nonce, lockName })` (withLock's `fn` under a grant) and `f`
    /// with its outcome (a throw rejects), in the outcome's reaction (no future, no task),
    /// in one crossing.
    pub fn call_then(
        callback: &Function,
        (epoch, nonce, lock_name): (u64, &str, &JsValue),
        f: impl FnOnce(Result<JsValue, JsValue>) + 'static,
    ) {
        let watch = Watch::with_entry(Watched {
            on_settled: Some(Box::new(f)),
            ..Watched::default()
        });
        let [w0, w1, w2, w3] = crate::lock::rules::nonce_words(nonce);
        HANDLERS.with(|h| {
            call_watched(
                callback,
                epoch as f64,
                w0,
                w1,
                w2,
                w3,
                lock_name,
                watch.id,
                h.fulfilled.as_ref(),
                h.rejected.as_ref(),
            );
        });
        // Owned by the entry alone: the reaction removes it.
        std::mem::forget(watch);
    }

    /// Whether `on_grant` took the grant.
    pub fn handed_over(&self) -> bool {
        with_watched(self.id, |watched| watched.handed_over).unwrap_or(false)
    }

    /// The `navigator.locks.request` callback for this watch: on grant it returns a promise
    /// that holds the lock until the function from [`Watch::poll_granted`] is called.
    pub fn lock_callback(&self) -> Function {
        HANDLERS.with(|h| lock_callback_for(self.id, h.lock_callback.as_ref()))
    }

    /// Watches `promise`: its outcome becomes [`Watch::poll_settled`].
    pub fn watch(&self, promise: &Promise) {
        HANDLERS.with(|h| {
            watch_promise(promise, self.id, h.fulfilled.as_ref(), h.rejected.as_ref());
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
            watched.owners -= 1;
            if watched.owners > 0 {
                return None;
            }
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
