//! Cross-tab notification over `BroadcastChannel("clientdata:<db>")`: every committed batch is
//! posted as rows, and every other instance of the same database (other tabs, or another
//! instance in this page) applies them to its index by LWW.

use wasm_bindgen::prelude::*;
use web_sys::{BroadcastChannel, MessageEvent};

/// A subscription to a database's channel; closes the channel when dropped.
#[derive(Debug)]
pub struct Tabs {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Tabs {
    /// Joins `clientdata:<db>`; `on_message` gets each message's data. `None` when the API is
    /// missing (the store then works, without cross-tab updates).
    pub fn join(db: &str, mut on_message: impl FnMut(JsValue) + 'static) -> Option<Tabs> {
        let channel = BroadcastChannel::new(&format!("clientdata:{db}")).ok()?;
        let closure =
            Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| on_message(e.data()));
        channel.set_onmessage(Some(closure.as_ref().unchecked_ref()));
        Some(Tabs {
            channel,
            _on_message: closure,
        })
    }

    /// Posts `message` to every other instance. A failure (e.g. an uncloneable value) is
    /// ignored: other tabs then see the write when they next open.
    pub fn post(&self, message: &JsValue) {
        let _ = self.channel.post_message(message);
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}
