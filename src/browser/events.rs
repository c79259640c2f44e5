//! `on(type, fn)` listeners: a registry of JS functions by event type. Emitting copies the
//! listener list first, so a listener may subscribe, unsubscribe or write re-entrantly.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Function;
use wasm_bindgen::prelude::*;

/// Event types a listener may subscribe to.
pub const EVENT_TYPES: [&str; 8] = [
    "local-change-recorded",
    "write-failed",
    "data-quarantined",
    "over-quota",
    "remote-update-available",
    "local-data-synced",
    "sync-failed",
    "store-wiped",
];

type Listeners = Rc<RefCell<Vec<(u32, &'static str, Function)>>>;

/// The listeners of one open store.
#[derive(Debug, Default)]
pub struct Emitter {
    listeners: Listeners,
    next_id: Cell<u32>,
}

impl Emitter {
    /// Adds a listener for `kind`; returns the unsubscribe function (idempotent), or `None` for
    /// an unknown event type.
    pub fn on(&self, kind: &str, listener: Function) -> Option<Function> {
        let kind = *EVENT_TYPES.iter().find(|k| **k == kind)?;
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        self.listeners.borrow_mut().push((id, kind, listener));
        let weak = Rc::downgrade(&self.listeners);
        let off = Closure::<dyn FnMut()>::new(move || {
            if let Some(listeners) = weak.upgrade() {
                listeners.borrow_mut().retain(|(i, _, _)| *i != id);
            }
        });
        Some(off.into_js_value().unchecked_into())
    }

    /// Whether anyone listens to `kind` (so callers can skip building the payload).
    pub fn wants(&self, kind: &str) -> bool {
        self.listeners.borrow().iter().any(|(_, k, _)| *k == kind)
    }

    /// Calls every `kind` listener with `payload`; a throwing listener does not stop the others.
    pub fn emit(&self, kind: &str, payload: &JsValue) {
        let targets: Vec<Function> = self
            .listeners
            .borrow()
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(_, _, f)| f.clone())
            .collect();
        for f in targets {
            let _ = f.call1(&JsValue::UNDEFINED, payload);
        }
    }

    /// Drops every listener (on close).
    pub fn clear(&self) {
        self.listeners.borrow_mut().clear();
    }
}
