//! What an open store tells its listeners: `on(type, fn)` (the registry is
//! `browser::events::Emitter`), the `local-change-recorded` / `remote-update-available`
//! payloads (`{ plugin, keys, fromThisInstance }`, one per plugin), and the hook automatic
//! sync sets to hear of every local change.

use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::JsValue;

use super::db::Db;
use crate::browser::interop::Obj;
use crate::core::sorted::SortedMap;
use crate::core::{Key, PluginId};

/// The `local-change-recorded` (or `remote-update-available`) payloads for `changed`
/// (plugin, key) pairs, one per plugin.
pub fn change_events(changed: &[(PluginId, Key)], from_this_instance: bool) -> Vec<JsValue> {
    let mut by_plugin: SortedMap<&PluginId, Array> = SortedMap::new();
    for (plugin, key) in changed {
        by_plugin
            .get_or_insert_with(plugin, Array::new)
            .push(&JsValue::from_str(key.as_str()));
    }
    by_plugin
        .into_iter()
        .map(|(plugin, keys)| {
            Obj::new()
                .with("plugin", plugin.as_str())
                .with("keys", keys)
                .with("fromThisInstance", from_this_instance)
                .into()
        })
        .collect()
}

impl Db {
    /// Adds an event listener; `None` for an unknown event type.
    pub fn on(&self, kind: &str, listener: js_sys::Function) -> Option<js_sys::Function> {
        self.inner.emitter.on(kind, listener)
    }

    /// Emits `kind` to this instance's listeners.
    pub fn emit(&self, kind: &str, payload: &JsValue) {
        self.inner.emitter.emit(kind, payload);
    }

    /// Whether anyone listens to `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.inner.emitter.wants(kind)
    }

    /// Whether anything (a listener, or automatic sync's hook) needs to hear of local changes.
    pub(crate) fn wants_changes(&self) -> bool {
        self.inner.change_hook.borrow().is_some() || self.wants("local-change-recorded")
    }

    /// Sets the hook run after local changes (see `Inner::change_hook`).
    pub fn set_change_hook(&self, hook: Option<Rc<dyn Fn()>>) {
        *self.inner.change_hook.borrow_mut() = hook;
    }

    /// Emits `local-change-recorded` for the `changed` keys (after running the change hook).
    pub(crate) fn announce(&self, changed: &[(PluginId, Key)], from_this_instance: bool) {
        if changed.is_empty() {
            return;
        }
        let hook = self.inner.change_hook.borrow().clone();
        if let Some(hook) = hook {
            hook();
        }
        self.announce_as("local-change-recorded", changed, from_this_instance);
    }

    /// Emits `kind` (`local-change-recorded` or `remote-update-available`) for `changed` keys.
    pub fn announce_as(&self, kind: &str, changed: &[(PluginId, Key)], from_this: bool) {
        if changed.is_empty() || !self.inner.emitter.wants(kind) {
            return;
        }
        for event in change_events(changed, from_this) {
            self.inner.emitter.emit(kind, &event);
        }
    }
}
