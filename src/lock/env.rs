//! What a lock needs from its context, and the per-tab registries every lock of the tab shares
//! (this tab's number, its last epochs, its open databases, its live grants).

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, Storage};

use crate::browser::interop::get;
use crate::browser::lock_manager::{self, LockManager};

thread_local! {
    /// This tab's number (`pid` in the lease).
    pub(crate) static PID: u32 = random_pid();
    /// The last epoch this tab granted, per lock name (epochs never go backwards in a tab,
    /// whatever localStorage says).
    pub(crate) static TAB_EPOCHS: RefCell<HashMap<String, u64>> = RefCell::default();
    /// Open connections per database name, shared by every lock of this tab.
    pub(crate) static DATABASES: RefCell<HashMap<String, IdbDatabase>> = RefCell::default();
    /// The nonce of the live grant of each lock held in this tab: a lease of this tab whose
    /// nonce is not here was released (the lease is left in place; see `release`).
    pub(crate) static HELD_HERE: RefCell<HashMap<String, String>> = RefCell::default();
    /// Leases when there is no localStorage (workers): visible to this context only.
    static MEMORY_LEASES: RefCell<HashMap<String, String>> = RefCell::default();
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
