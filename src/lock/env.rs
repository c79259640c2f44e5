//! What a lock needs from its context, and the per-tab registries every lock of the tab shares
//! (this tab's number, its last epochs and fences, its open databases, its live grants, the
//! asks it heard).

use crate::core::sorted::SortedMap;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, IdbDatabase, MessageEvent, Storage};

use super::lease::{scan_str, Lease};

use crate::browser::interop::get;
use crate::browser::lock_manager::{self, LockManager, LockRequest};

thread_local! {
    /// This tab's number (`pid` in the lease).
    pub(crate) static PID: u32 = random_pid();
    /// The newest epoch this tab knows of, per lock name (its grants, what it read from
    /// `epochs`, its steals): proposals start above it.
    pub(crate) static TAB_EPOCHS: RefCell<SortedMap<String, u64>> = RefCell::default();
    /// The newest fence (epoch stored by a steal) this tab knows of, per lock name; absent
    /// until read from `epochs` at the tab's first acquire of the lock.
    pub(crate) static TAB_FENCES: RefCell<SortedMap<String, u64>> = RefCell::default();
    /// Open connections per database name, shared by every lock of this tab.
    pub(crate) static DATABASES: RefCell<SortedMap<String, IdbDatabase>> = RefCell::default();
    /// The live grant of each lock held in this tab (its lease, kept in memory: other locks
    /// of this tab read it here; other tabs only once it is published).
    pub(crate) static HELD_HERE: RefCell<SortedMap<String, Rc<LiveGrant>>> = RefCell::default();
    /// When an ask about each lock was last heard or made here: a grant made within the ttl
    /// of one publishes its lease at once (the waiter is still there).
    pub(crate) static ASKED: RefCell<SortedMap<String, u64>> = RefCell::default();
    /// Leases when there is no localStorage (workers): visible to this context only.
    static MEMORY_LEASES: RefCell<SortedMap<String, String>> = RefCell::default();
}

fn random_pid() -> u32 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => (u32::from_le_bytes(b) & 0x7fff_ffff).max(1),
        Err(_) => ((js_sys::Math::random() * f64::from(0x7fff_ffffu32)) as u32).max(1),
    }
}

/// `Date.now()` in ms (0 if unusable).
pub(crate) fn now_ms() -> u64 {
    let now = js_sys::Date::now();
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

/// A short description of a JS failure for an error message.
pub(crate) fn describe(value: &JsValue) -> String {
    if let Some(err) = value.dyn_ref::<js_sys::Error>() {
        return format!(
            "{}: {}",
            String::from(err.name()),
            String::from(err.message())
        );
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// What the lock needs from the browser; injectable so tests can take `navigator.locks` away.
#[derive(Debug, Clone)]
pub struct LockEnv {
    /// `navigator.locks`; `None` makes every operation fail with `LocksUnavailableError`.
    pub manager: Option<LockManager>,
    /// `localStorage`; `None` keeps leases in memory (visible to this context only).
    pub storage: Option<Storage>,
    /// Reported as the lease's `hostname`: the page's origin.
    pub hostname: String,
}

impl LockEnv {
    /// Everything read from the global scope (window or worker).
    pub fn from_global() -> LockEnv {
        let global = js_sys::global();
        let storage = get(&global, "localStorage").dyn_into::<Storage>().ok();
        let hostname = get(&get(&global, "location"), "origin")
            .as_string()
            .unwrap_or_default();
        LockEnv {
            manager: lock_manager::lock_manager(),
            storage,
            hostname,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        match &self.storage {
            Some(s) => s.get_item(key).ok().flatten(),
            None => MEMORY_LEASES.with(|m| m.borrow().get(key).cloned()),
        }
    }

    pub(crate) fn remove(&self, key: &str) {
        match &self.storage {
            Some(s) => {
                let _ = s.remove_item(key);
            }
            None => MEMORY_LEASES.with(|m| {
                m.borrow_mut().remove(key);
            }),
        }
    }

    pub(crate) fn set(&self, key: &str, value: &str) {
        match &self.storage {
            // A full localStorage only costs the lease's visibility to other tabs: the Web
            // Lock still excludes, and epochs live in IndexedDB.
            Some(s) => {
                let _ = s.set_item(key, value);
            }
            None => MEMORY_LEASES.with(|m| {
                m.borrow_mut().insert(key.to_owned(), value.to_owned());
            }),
        }
    }
}

/// What every grant of one lock puts in its lease and where it publishes it: made once per
/// lock and shared by its grants (nothing cloned per grant).
pub(crate) struct LeaseBase {
    pub(crate) path: String,
    pub(crate) ttl_ms: u64,
    pub(crate) renew_every_ms: u64,
    pub(crate) lease_key: String,
    pub(crate) env: LockEnv,
}

/// A grant held in this tab, as every lock of the tab sees it: its lease (made only when read
/// or published, its term renewed whenever it is read: a grant of this tab that is not paused
/// is alive) and whether it is published (written to storage for other tabs, because someone
/// asked; then renewed there every ttl/3 by a timer until the grant ends).
pub(crate) struct LiveGrant {
    pub(crate) nonce: String,
    pub(crate) epoch: u64,
    pub(crate) granted_ms: u64,
    /// Start of the current lease term.
    pub(crate) term_ms: Cell<u64>,
    pub(crate) base: Rc<LeaseBase>,
    pub(crate) published: Cell<bool>,
    /// A hung holder (test hook): neither renews nor answers.
    pub(crate) paused: Cell<bool>,
    /// Released or taken away: the renewal timer stops.
    pub(crate) ended: Cell<bool>,
    /// The Web Lock request: its promise rejects when the lock is stolen.
    pub(crate) request: LockRequest,
    /// Force-released from this tab: lost at once, whenever the steal's rejection arrives
    /// (WebKit delivers it after the thief's grant).
    pub(crate) taken: Cell<bool>,
}

impl LiveGrant {
    /// Taken away: force-released here, or the request rejected (a steal reached this tab).
    pub(crate) fn stolen(&self) -> bool {
        self.taken.get() || self.request.rejected()
    }

    /// The lease as of its last renewal.
    pub(crate) fn lease(&self) -> Lease {
        let base = &self.base;
        let pid = PID.with(|p| *p);
        let mut lease = Lease::granted(
            format!("tab-{pid}"),
            base.env.hostname.clone(),
            pid,
            self.granted_ms,
            base.ttl_ms,
            self.nonce.clone(),
            base.path.clone(),
            self.epoch,
        );
        lease.renew(self.term_ms.get());
        lease
    }

    /// The lease as of now: a new term unless paused (time never moves it backwards).
    pub(crate) fn current(&self) -> Lease {
        if !self.paused.get() {
            self.term_ms.set(self.term_ms.get().max(now_ms()));
        }
        self.lease()
    }

    /// Publishes the lease (a new term, written to storage) and, the first time, starts the
    /// renewal timer. A paused or ended grant does nothing.
    pub(crate) fn publish(self: &Rc<Self>) {
        // A stolen grant must not overwrite the thief's lease.
        if self.paused.get() || self.ended.get() || self.stolen() {
            return;
        }
        let json = self.current().to_json();
        self.base.env.set(&self.base.lease_key, &json);
        if self.published.replace(true) {
            return;
        }
        let live = Rc::downgrade(self);
        let every = self.base.renew_every_ms;
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                crate::browser::timer::sleep(every).await;
                let Some(live) = live.upgrade() else {
                    return;
                };
                if live.ended.get() || live.stolen() {
                    return;
                }
                // Overwritten by another holder (a steal): this grant is over.
                let (env, key) = (&live.base.env, &live.base.lease_key);
                let stored = env.get(key);
                let stored_nonce = stored.as_deref().and_then(|j| scan_str(j, "nonce"));
                if stored_nonce.is_some_and(|n| n != live.nonce) {
                    return;
                }
                if !live.paused.get() {
                    env.set(key, &live.current().to_json());
                }
            }
        });
    }
}

/// Whether an ask about `lock` was heard or made within the last `ttl_ms`.
pub(crate) fn asked_within(lock: &str, ttl_ms: u64) -> bool {
    ASKED.with(|a| {
        a.borrow()
            .get(lock)
            .is_some_and(|at| now_ms().saturating_sub(*at) <= ttl_ms)
    })
}

/// Notes an ask about `lock` and has this tab's live grant of it (if any) publish its lease.
pub(crate) fn on_ask(lock: &str) {
    ASKED.with(|a| a.borrow_mut().insert(lock.to_owned(), now_ms()));
    if let Some(live) = HELD_HERE.with(|h| h.borrow().get(lock).cloned()) {
        live.publish();
    }
}

/// The lock channel of each database this tab uses locks of (`Names::channel`).
struct Channel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

thread_local! {
    static CHANNELS: RefCell<SortedMap<String, Option<Rc<Channel>>>> = RefCell::default();
}

/// Whether this tab joined the lock channel `name` already.
pub(crate) fn joined(name: &str) -> bool {
    CHANNELS.with(|c| c.borrow().contains_key(name))
}

/// Joins the lock channel `name` (once per tab): from then on asks reach this tab's holders.
/// Without `BroadcastChannel` leases are never asked for across tabs, and a waiter in another
/// tab treats a silent holder as stale after the ttl (fencing still protects writes).
pub(crate) fn join_channel(name: &str) {
    if joined(name) {
        return;
    }
    let channel = BroadcastChannel::new(name).ok().map(|channel| {
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|e: MessageEvent| {
            if let Some(lock) = e.data().as_string() {
                on_ask(&lock);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Rc::new(Channel {
            channel,
            _on_message: on_message,
        })
    });
    CHANNELS.with(|c| c.borrow_mut().insert(name.to_owned(), channel));
}

/// Asks every holder of `lock` in other tabs (over `channel`) and in this one to publish its
/// lease. The message is the lock name.
pub(crate) fn ask(channel: &str, lock: &str) {
    join_channel(channel);
    if let Some(Some(c)) = CHANNELS.with(|c| c.borrow().get(channel).cloned()) {
        let _ = c.channel.post_message(&JsValue::from_str(lock));
    }
    on_ask(lock);
}
