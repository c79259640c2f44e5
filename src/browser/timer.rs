//! Owned timers on the global `setTimeout` (windows and workers alike). Dropping a [`Sleep`]
//! or a [`Deadline`] cancels it, so nothing outlives its owner.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::core::sorted::SortedMap;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

fn clamp_ms(ms: u64) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// A future that completes after `ms` milliseconds; dropping it clears the timeout.
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    promise: JsFuture,
    handle: JsValue,
}

/// Sleeps for `ms` milliseconds (clamped to 2^31-1).
pub fn sleep(ms: u64) -> Sleep {
    let mut handle = JsValue::UNDEFINED;
    let promise = Promise::new(&mut |resolve, _reject| {
        handle = set_timeout(&resolve, clamp_ms(ms));
    });
    Sleep {
        promise: JsFuture::from(promise),
        handle,
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.promise).poll(cx).map(|_| ())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        clear_timeout(&self.handle);
    }
}

/// A future that completes at a point in time, on ONE timeout shared by every [`Deadline`] of
/// this thread: creating, waiting on and dropping deadlines costs no JS call, and the shared
/// `setTimeout` is re-armed only for an earlier deadline. Meant for timers that usually never
/// fire (lock waits, lease renewals) on hot paths.
#[must_use = "a Deadline does nothing unless awaited"]
#[derive(Debug)]
pub struct Deadline {
    due: u64,
    id: u64,
    registered: bool,
}

thread_local! {
    static WHEEL: RefCell<Wheel> = RefCell::default();
}

#[derive(Default)]
struct Wheel {
    entries: SortedMap<(u64, u64), Waker>,
    next_id: u64,
    armed_for: Option<u64>,
    handle: JsValue,
    /// Created once per thread and kept for the thread's life: one closure, not one per timer.
    fire: Option<Closure<dyn FnMut()>>,
}

fn now_ms() -> u64 {
    let now = js_sys::Date::now();
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

impl Wheel {
    fn arm(&mut self, due: u64, now: u64) {
        if self.armed_for.is_some_and(|armed| armed <= due) {
            return;
        }
        if self.armed_for.is_some() {
            clear_timeout(&self.handle);
        }
        let fire = self
            .fire
            .get_or_insert_with(|| Closure::<dyn FnMut()>::new(fire));
        self.handle = set_timeout(
            fire.as_ref().unchecked_ref(),
            clamp_ms(due.saturating_sub(now)),
        );
        self.armed_for = Some(due);
    }
}

/// The shared timeout fired: wake what is due, re-arm for the next.
fn fire() {
    let now = now_ms();
    let due: Vec<Waker> = WHEEL.with(|w| {
        let mut w = w.borrow_mut();
        w.armed_for = None;
        let later = w.entries.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut w.entries, later);
        let next = w.entries.keys().next().map(|&(due, _)| due);
        if let Some(next) = next {
            w.arm(next, now);
        }
        due.into_iter().map(|(_, waker)| waker).collect()
    });
    for waker in due {
        waker.wake();
    }
}

impl Deadline {
    /// Completes `ms` milliseconds from now.
    pub fn after(ms: u64) -> Deadline {
        let id = WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            w.next_id += 1;
            w.next_id
        });
        Deadline {
            due: now_ms().saturating_add(ms),
            id,
            registered: false,
        }
    }

    fn unregister(&mut self) {
        if self.registered {
            self.registered = false;
            let key = (self.due, self.id);
            WHEEL.with(|w| w.borrow_mut().entries.remove(&key));
        }
    }
}

impl Future for Deadline {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = now_ms();
        if now >= self.due {
            self.unregister();
            return Poll::Ready(());
        }
        let key = (self.due, self.id);
        WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            w.entries.insert(key, cx.waker().clone());
            w.arm(key.0, now);
        });
        self.registered = true;
        Poll::Pending
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// A task spawned at a point in time unless cancelled first (see [`spawn_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred((u64, u64));

type Task = Pin<Box<dyn Future<Output = ()>>>;

#[derive(Default)]
struct Later {
    tasks: SortedMap<(u64, u64), Task>,
    next_id: u64,
    /// When the sweeper in charge wakes (others exit once they wake).
    sweeper_due: Option<u64>,
}

thread_local! {
    static LATER: RefCell<Later> = RefCell::default();
}

/// Spawns `task` in `ms` milliseconds unless [`Deferred::cancel`]led first: for waits that
/// usually never start (a lock's grant usually comes before its first look at the holder),
/// at the cost of a map entry, where spawning the task at once cost a task, two polls and a
/// wake-up each. One sweeper task sleeps until the earliest.
pub fn spawn_after(ms: u64, task: impl Future<Output = ()> + 'static) -> Deferred {
    let due = now_ms().saturating_add(ms);
    let (key, new_sweeper) = LATER.with(|l| {
        let mut l = l.borrow_mut();
        l.next_id += 1;
        let key = (due, l.next_id);
        l.tasks.insert(key, Box::pin(task));
        let new_sweeper = l.sweeper_due.is_none_or(|at| due < at);
        if new_sweeper {
            l.sweeper_due = Some(due);
        }
        (key, new_sweeper)
    });
    if new_sweeper {
        wasm_bindgen_futures::spawn_local(sweep(due));
    }
    Deferred(key)
}

impl Deferred {
    /// Drops the task if it has not started.
    pub fn cancel(self) {
        let task = LATER.with(|l| l.borrow_mut().tasks.remove(&self.0));
        drop(task);
    }
}

/// Spawns the tasks due at `due`, then sleeps until the next, while it is the sweeper in
/// charge (a later task's sweeper is replaced by an earlier one's).
async fn sweep(mut due: u64) {
    loop {
        Deadline::after(due.saturating_sub(now_ms())).await;
        let now = now_ms();
        let (ready, next) = LATER.with(|l| {
            let mut l = l.borrow_mut();
            let later = l.tasks.split_off(&(now + 1, 0));
            let ready = std::mem::replace(&mut l.tasks, later);
            let in_charge = l.sweeper_due == Some(due);
            let next = l.tasks.keys().next().map(|&(at, _)| at);
            if in_charge {
                l.sweeper_due = next;
            }
            (ready, next.filter(|_| in_charge))
        });
        for (_, task) in ready {
            wasm_bindgen_futures::spawn_local(task);
        }
        match next {
            Some(next) => due = next,
            None => return,
        }
    }
}
