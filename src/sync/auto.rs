//! Automatic sync. Every instance opened with `autoSync` queues for the Web Lock
//! `clientdata:<db>:sync`; the one holding it is the leader and runs rounds: at once, every
//! `intervalMs`, when the page comes back `online` or becomes visible, and `debounceMs` after a
//! local write (of any tab: other tabs' writes reach the leader over the BroadcastChannel).
//! Other tabs hear each round's result over the channel (`local-data-synced`). After a failed
//! round the next waits `core::backoff` (1 s doubling to 5 min, jittered, never sooner than
//! the server's `Retry-After`), whatever writes happen meanwhile. When the leader closes or its
//! tab dies, the lock passes to the next instance in the queue.

use std::cell::Cell;
use std::rc::Rc;

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::future::{select, Either};
use futures::StreamExt;
use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::AbortController;

use super::config::AutoSync;
use super::round::{Direction, Syncer};
use crate::browser::lock_manager::{self, lock_manager, HeldLock, RequestOptions, Wake};
use crate::browser::page_events::on_wake;
use crate::browser::timer::sleep;
use crate::core::backoff;
use crate::store::db::Db;

/// Why the leader should run a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// A local write: wait `debounceMs` so a burst of writes ships in one round.
    Write,
    /// Online again or visible again: run now.
    Now,
}

/// A running auto-sync; dropping it stops the loop and gives up (or releases) leadership.
#[derive(Debug)]
pub struct Auto {
    db: Db,
    leader: Rc<Cell<bool>>,
    controller: Option<AbortController>,
    unsubscribe: Function,
    _wake: Closure<dyn FnMut()>,
    _trigger: UnboundedSender<Trigger>,
}

impl Auto {
    /// Starts queueing for leadership and, once leader, syncing.
    pub fn start(syncer: Rc<Syncer>, config: AutoSync) -> Auto {
        let (tx, rx) = unbounded();
        let leader = Rc::new(Cell::new(false));
        // Only the leader listens: a queued instance must not pile up triggers.
        let trigger = |kind: Trigger| {
            let (tx, leader) = (tx.clone(), leader.clone());
            move || {
                if leader.get() {
                    let _ = tx.unbounded_send(kind);
                }
            }
        };
        syncer
            .db()
            .set_change_hook(Some(Rc::new(trigger(Trigger::Write))));
        let wake = Closure::<dyn FnMut()>::new(trigger(Trigger::Now));
        let unsubscribe = on_wake(wake.as_ref().unchecked_ref());
        let controller = AbortController::new().ok();
        let signal = controller.as_ref().map(AbortController::signal);
        let db = syncer.db().clone();
        spawn_local(run(syncer, config, rx, signal, leader.clone()));
        Auto {
            db,
            leader,
            controller,
            unsubscribe,
            _wake: wake,
            _trigger: tx,
        }
    }

    /// Whether this instance is the leader right now.
    pub fn is_leader(&self) -> bool {
        self.leader.get()
    }
}

impl Drop for Auto {
    fn drop(&mut self) {
        // With every trigger sender gone the loop ends at once and releases the lock.
        self.db.set_change_hook(None);
        let _ = self.unsubscribe.call0(&JsValue::UNDEFINED);
        if let Some(c) = &self.controller {
            c.abort();
        }
    }
}

/// Waits out the backoff after `failures` failed rounds in a row. Local writes do not cut it
/// short (they ship with the next round); coming back online or visible does, unless the server
/// asked for a pause with `Retry-After`. `false` once the store stopped.
async fn back_off(
    failures: u32,
    retry_after_ms: Option<u64>,
    triggers: &mut UnboundedReceiver<Trigger>,
) -> bool {
    let delay = backoff::delay_ms(failures, getrandom::u32().unwrap_or(0), retry_after_ms);
    let mut timer = sleep(delay);
    loop {
        match select(&mut timer, triggers.next()).await {
            Either::Left(_) => return true,
            Either::Right((None, _)) => return false,
            Either::Right((Some(Trigger::Now), _)) if retry_after_ms.is_none() => return true,
            Either::Right((Some(_), _)) => {}
        }
    }
}

async fn run(
    syncer: Rc<Syncer>,
    config: AutoSync,
    mut triggers: UnboundedReceiver<Trigger>,
    signal: Option<web_sys::AbortSignal>,
    leader: Rc<Cell<bool>>,
) {
    let _held = match lock_manager() {
        // Without Web Locks every instance syncs for itself.
        None => HeldLock::none(),
        Some(manager) => {
            let name = format!("clientdata:{}:sync", syncer.db().info().name);
            let options = RequestOptions {
                signal: signal.as_ref(),
                ..RequestOptions::default()
            };
            match lock_manager::request(&manager, &name, options)
                .wait(None)
                .await
            {
                Wake::Granted(release) => HeldLock::new(release),
                _ => return, // closed while queued
            }
        }
    };
    leader.set(true);
    // Consecutive failed rounds: after each, the next waits `core::backoff::delay_ms`.
    let mut failures = 0u32;
    loop {
        if syncer.db().check_open().is_err() || signal.as_ref().is_some_and(|s| s.aborted()) {
            break;
        }
        let limit = syncer.transport().config().page_limit;
        let mut retry_after = None;
        match syncer
            .sync(None, limit, Direction::Both, signal.as_ref(), |_| {})
            .await
        {
            Ok(_) => failures = 0,
            Err(e) => {
                if syncer.db().check_open().is_err() || signal.as_ref().is_some_and(|s| s.aborted())
                {
                    break;
                }
                failures = failures.saturating_add(1);
                retry_after = e.retry_after_ms();
                syncer.db().emit("sync-failed", &JsValue::from(e));
            }
        }
        let go_on = if failures > 0 {
            back_off(failures, retry_after, &mut triggers).await
        } else {
            match select(sleep(config.interval_ms), triggers.next()).await {
                Either::Left(_) => true,
                Either::Right((None, _)) => false,
                Either::Right((Some(Trigger::Now), _)) => true,
                Either::Right((Some(Trigger::Write), _)) => {
                    sleep(config.debounce_ms).await;
                    true
                }
            }
        };
        if !go_on {
            break;
        }
        // Triggers that arrived meanwhile are served by the round about to run.
        while triggers.try_recv().is_ok() {}
    }
    leader.set(false);
}
