//! `navigator.storage`: ask for persistent storage where the browser allows it, without waiting
//! for the answer (Firefox asks the user, who may never answer), and read the origin's quota,
//! for `metadata()`.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use super::interop::get;

#[wasm_bindgen(module = "/src/browser/storage_manager.js")]
extern "C" {
    #[wasm_bindgen(js_name = storageInfo)]
    fn storage_info_js(ask_persist: bool) -> Promise;
}

/// Where the request for persistent storage stands (`metadata().persistRequest`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PersistRequest {
    /// Not asked: `persist: false`, already persisted, no API, or an engine that does not
    /// persist anyway.
    #[default]
    NotAsked,
    /// Asked; the browser has not answered (Firefox's prompt, unanswered).
    Pending,
    /// The browser made storage persistent.
    Granted,
    /// The browser refused.
    Denied,
}

impl PersistRequest {
    /// `"not-asked"`, `"pending"`, `"granted"` or `"denied"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PersistRequest::NotAsked => "not-asked",
            PersistRequest::Pending => "pending",
            PersistRequest::Granted => "granted",
            PersistRequest::Denied => "denied",
        }
    }
}

/// What the browser says about this origin's storage. Clones share the request's state, which
/// changes when the browser answers.
#[derive(Debug, Clone, Default)]
pub struct StorageInfo {
    persisted_at_open: bool,
    /// The origin's quota in bytes, if reported.
    pub quota: Option<f64>,
    request: Rc<Cell<PersistRequest>>,
}

impl StorageInfo {
    /// Whether storage is persistent (not evicted under pressure): at open, or granted since.
    pub fn persisted(&self) -> bool {
        self.persisted_at_open || self.request.get() == PersistRequest::Granted
    }

    /// Where the request for persistence stands.
    pub fn persist_request(&self) -> PersistRequest {
        self.request.get()
    }
}

/// Reads the storage state and, when `ask_persist`, requests persistence in the background
/// (never fails: a missing API reports not persisted and no quota; never waits on a prompt).
pub async fn storage_info(ask_persist: bool) -> StorageInfo {
    let Ok(info) = JsFuture::from(storage_info_js(ask_persist)).await else {
        return StorageInfo::default();
    };
    let out = StorageInfo {
        persisted_at_open: get(&info, "persisted").as_bool().unwrap_or(false),
        quota: get(&info, "quota").as_f64(),
        request: Rc::default(),
    };
    if let Ok(answer) = get(&info, "request").dyn_into::<Promise>() {
        out.request.set(PersistRequest::Pending);
        let request = out.request.clone();
        spawn_local(async move {
            let granted = JsFuture::from(answer).await.ok().and_then(|v| v.as_bool());
            request.set(match granted {
                Some(true) => PersistRequest::Granted,
                _ => PersistRequest::Denied,
            });
        });
    }
    out
}
