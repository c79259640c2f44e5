//! The cross-tab bus: committed rows go to every other instance of the database over the
//! `BroadcastChannel` (`browser::tabs`), in stamp order through the [`Outbox`], and rows other
//! instances post are applied here by LWW. Messages that are not rows (a sync round's summary)
//! go to the handler the layer that sends them installed (removals, `{ removed: rows }`, are
//! the store's own: see `remove.rs`) ([`Db::set_message_handler`]), so
//! this module knows nothing of their meaning.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};

use super::codec::{record_to_row, row_to_record};
use super::db::Db;
use super::outbox::{Outbox, Ticket};
use crate::browser::clock::JsClock;
use crate::browser::interop::{get, Obj};
use crate::browser::tabs::Tabs;
use crate::core::hlc::Clock;
use crate::core::{Hlc, Record};

/// Handles a message that is not rows; returns whether it did.
pub type MessageHandler = Rc<dyn Fn(&Db, &JsValue) -> bool>;

/// The channel, the posting order, and the handler for other messages.
#[derive(Default)]
pub(crate) struct Bus {
    tabs: RefCell<Option<Tabs>>,
    /// Cross-tab messages held in stamp order (see `outbox.rs`).
    outbox: RefCell<Outbox<JsValue>>,
    other: RefCell<Option<MessageHandler>>,
}

impl Bus {
    /// Leaves the channel (the store shut down).
    pub fn leave(&self) {
        self.tabs.borrow_mut().take();
        self.other.borrow_mut().take();
    }

    /// Posts a message after everything reserved before it.
    pub fn push(&self, message: JsValue) -> Vec<JsValue> {
        self.outbox.borrow_mut().push(message)
    }

    /// Reserves the next place in the posting order.
    pub fn reserve(&self) -> Ticket {
        self.outbox.borrow_mut().reserve()
    }
}

/// The cross-tab message carrying committed `rows`; `remote`: they came from a sync round.
pub(crate) fn rows_message(rows: &Array, remote: bool) -> JsValue {
    Obj::new()
        .with("rows", rows.clone())
        .with_some("remote", remote.then_some(true))
        .into()
}

impl Db {
    /// Joins the channel `clientdata:<name>`; messages reach [`Db::receive`] while this
    /// instance lives.
    pub(crate) fn join_channel(&self, name: &str) {
        let weak = Rc::downgrade(&self.inner);
        let tabs = Tabs::join(name, move |message| {
            if let Some(inner) = weak.upgrade() {
                Db { inner }.receive(&message);
            }
        });
        *self.inner.bus.tabs.borrow_mut() = tabs;
    }

    /// Installs the handler for messages that are not rows (see the module docs).
    pub fn set_message_handler(&self, handler: MessageHandler) {
        *self.inner.bus.other.borrow_mut() = Some(handler);
    }

    /// Rows for `records` (for the engine and for other tabs).
    pub(crate) fn rows(records: &[Record]) -> Array {
        records.iter().map(record_to_row).collect()
    }

    /// Posts rows to the other instances of this database, after every earlier reservation.
    pub(crate) fn broadcast(&self, rows: &Array) {
        if rows.length() == 0 {
            return;
        }
        let ready = self.inner.bus.push(rows_message(rows, false));
        self.post(ready);
    }

    /// Fills a reserved place in the posting order (`None`: the commit failed, post nothing).
    pub(crate) fn fill_post(&self, ticket: Ticket, message: Option<JsValue>) {
        let ready = self.inner.bus.outbox.borrow_mut().fill(ticket, message);
        self.post(ready);
    }

    /// Posts a message that needs no ordering (a sync round's summary).
    pub fn post_now(&self, message: &JsValue) {
        self.post(vec![message.clone()]);
    }

    pub(crate) fn post(&self, messages: Vec<JsValue>) {
        if let Some(tabs) = self.inner.bus.tabs.borrow().as_ref() {
            for message in &messages {
                tabs.post(message);
            }
        }
    }

    /// Applies rows another instance posted: LWW into the index, the clock observes the newest
    /// stamp (so the next local write orders after what this tab has seen), then listeners hear
    /// of the keys that changed. Other messages go to the installed handler.
    pub(crate) fn receive(&self, message: &JsValue) {
        if self.check_open().is_err() {
            return;
        }
        let handler = self.inner.bus.other.borrow().clone();
        if handler.is_some_and(|handle| handle(self, message)) {
            return;
        }
        if let Ok(removed) = get(message, "removed").dyn_into::<Array>() {
            // Another tab removed these versions (`store::remove`): the same here.
            let records: Vec<Record> = removed
                .iter()
                .filter_map(|row| row_to_record(&row).ok())
                .collect();
            let changed = self.remove_from_index(&records);
            self.announce_as("remote-update-available", &changed, false);
            return;
        }
        let remote = get(message, "remote").as_bool().unwrap_or(false);
        let Ok(rows) = get(message, "rows").dyn_into::<Array>() else {
            return;
        };
        let mut changed = Vec::new();
        let mut newest: Option<Hlc> = None;
        {
            let mut st = self.inner.state.borrow_mut();
            if st.check_open().is_err() {
                return;
            }
            for row in rows.iter() {
                let Ok(record) = row_to_record(&row) else {
                    continue;
                };
                let hlc = record.hlc;
                if let Some(id) = st.records.apply(record, None) {
                    changed.push(id);
                    newest = newest.max(Some(hlc));
                }
            }
            if let Some(max) = newest {
                let _ = st.clock.observe(max, JsClock.now_ms());
            }
        }
        if remote {
            self.announce_as("remote-update-available", &changed, false);
        } else {
            self.announce(&changed, false);
        }
    }
}
