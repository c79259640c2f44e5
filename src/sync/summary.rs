//! What a round tells listeners: `remote-update-available` for the keys it changed, then the
//! `local-data-synced` summary `{ applied, shipped, hasMore, changes, fromThisInstance }` to this
//! instance's listeners and, as the cross-tab message `{ synced: summary }`, to every other
//! instance, whose store hands it back here ([`listen`]) to emit it to its own listeners.

use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::JsValue;

use super::round::Outcome;
use crate::browser::interop::{get, number, Obj};
use crate::store::db::Db;
use crate::store::events::change_events;

/// Emits a round's events here and posts its summary to the other tabs.
pub fn announce(db: &Db, outcome: &Outcome) {
    db.announce_as("remote-update-available", &outcome.changed, true);
    let summary = |from_this: bool| -> JsValue {
        let changes: Array = change_events(&outcome.changed, from_this)
            .into_iter()
            .collect();
        Obj::new()
            .with("applied", number(outcome.applied))
            .with("shipped", number(outcome.shipped))
            .with("hasMore", outcome.has_more)
            .with("changes", changes)
            .with("fromThisInstance", from_this)
            .into()
    };
    if db.wants("local-data-synced") {
        db.emit("local-data-synced", &summary(true));
    }
    db.post_now(&Obj::new().with("synced", summary(false)).into());
}

/// Makes `db` emit `local-data-synced` for the summaries other tabs' rounds post (every
/// instance does, whether or not it syncs itself).
pub fn listen(db: &Db) {
    db.set_message_handler(Rc::new(|db: &Db, message: &JsValue| {
        let synced = get(message, "synced");
        if !synced.is_object() {
            return false;
        }
        db.emit("local-data-synced", &synced);
        true
    }));
}
