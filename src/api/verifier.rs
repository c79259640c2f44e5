//! `Verifier`: swamp's DatastoreVerifier shape. Probes each part the store relies on and names
//! the unhealthy ones in `message`; never throws for an unhealthy part.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::promise::promise;
use crate::browser::interop::{get, number, or_null, parse_json, set, Obj};
use crate::browser::lock_manager::{self, lock_manager, RequestOptions, Wake};
use crate::browser::storage_manager::storage_info;
use crate::browser::web_storage::{self, local_storage};
use crate::store::db::Db;
use crate::sync::round::Syncer;

/// Checks that the store can do its job right now.
///
/// @example
/// ```js
/// const report = await cd.createVerifier().verify();
/// if (!report.healthy) console.warn(report.message, report.details);
/// ```
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct Verifier {
    db: Db,
    syncer: Option<Rc<Syncer>>,
}

impl Verifier {
    pub(crate) fn new(db: Db, syncer: Option<Rc<Syncer>>) -> Self {
        Verifier { db, syncer }
    }
}

/// One probe's result: `{ ok, latencyMs, error? }` plus extra fields.
struct Probe {
    name: &'static str,
    ok: bool,
    detail: JsValue,
}

fn probe(name: &'static str, started: f64, result: Result<(), String>) -> Probe {
    let detail = Obj::new()
        .with("ok", result.is_ok())
        .with("latencyMs", js_sys::Date::now() - started)
        .with_some("error", result.as_ref().err().map(String::as_str))
        .into();
    Probe {
        name,
        ok: result.is_ok(),
        detail,
    }
}

#[wasm_bindgen]
impl Verifier {
    /// Probes IndexedDB (a write and a delete in one transaction), localStorage, Web Locks,
    /// persistence and quota, and the server's `/health`. Resolves to `{ healthy, message,
    /// latencyMs, datastoreType, details }`; `healthy` is false if any probe failed.
    ///
    /// @example
    /// ```js
    /// const { healthy, message } = await cd.createVerifier().verify();
    /// ```
    #[wasm_bindgen(js_name = verify, unchecked_return_type = "Promise<VerifyResult>")]
    pub fn verify(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.probe_all().await })
    }

    /// `verify()`'s work (not exported: not `pub`).
    async fn probe_all(&self) -> Result<JsValue, JsValue> {
        self.db.check_open()?;
        let started = js_sys::Date::now();
        let name = self.db.info().name.clone();
        let mut probes = Vec::new();

        let t = js_sys::Date::now();
        probes.push(probe(
            "storage",
            t,
            self.db.probe().await.map_err(|e| e.to_string()),
        ));

        let t = js_sys::Date::now();
        let key = format!("clientdata:{name}:verifier-probe");
        let ls = match local_storage() {
            None => Err("localStorage is not available".into()),
            Some(s) => web_storage::probe(&s, &key)
                .map_err(|e| format!("localStorage write failed: {e:?}")),
        };
        probes.push(probe("localStorage", t, ls));

        let t = js_sys::Date::now();
        let locks = match lock_manager() {
            None => Err("navigator.locks is not available (insecure context?)".into()),
            Some(m) => {
                let options = RequestOptions {
                    if_available: true,
                    ..RequestOptions::default()
                };
                let mut request = lock_manager::request(&m, &format!("{key}:lock"), options);
                match request.wait(None).await {
                    Wake::Granted(release) => {
                        let _ = release.call0(&JsValue::UNDEFINED);
                        Ok(())
                    }
                    // Held by a concurrent verify: the API works.
                    Wake::NotAvailable => Ok(()),
                    other => Err(format!("Web Locks request failed: {other:?}")),
                }
            }
        };
        probes.push(probe("webLocks", t, locks));

        let t = js_sys::Date::now();
        let info = storage_info(false).await;
        let quota = probe("quota", t, Ok(()));
        set(&quota.detail, "persisted", &info.persisted().into());
        set(
            &quota.detail,
            "quota",
            &or_null(info.quota.map(JsValue::from)),
        );
        probes.push(quota);

        if let Some(syncer) = &self.syncer {
            let t = js_sys::Date::now();
            let answer = syncer.transport().health().await;
            let health = answer.as_ref().ok().and_then(|a| parse_json(&a.text).ok());
            let healthy = health.as_ref().and_then(|h| get(h, "healthy").as_bool());
            let result = match (&answer, healthy) {
                (Err(e), _) => Err(e.to_string()),
                (Ok(_), Some(false)) => Err("the server reports itself unhealthy".into()),
                (Ok(_), None) => Err("the server's /health answer is not { healthy }".into()),
                (Ok(_), Some(true)) => Ok(()),
            };
            let server = probe("server", t, result);
            let url = syncer.transport().config().health_url();
            set(&server.detail, "url", &url.into());
            if let Some(h) = health {
                set(&server.detail, "health", &h);
            }
            probes.push(server);
        }

        let failed: Vec<String> = probes
            .iter()
            .filter(|p| !p.ok)
            .map(|p| {
                let error = get(&p.detail, "error").as_string().unwrap_or_default();
                format!("{}: {error}", p.name)
            })
            .collect();
        let info = self.db.info();
        let wiped = self.db.wiped();
        let store = Obj::new()
            .with("epoch", info.epoch.as_str())
            .with("wiped", wiped.is_some())
            .with("previousEpoch", or_null(wiped.map(JsValue::from)));
        let (quarantined, items) = self.db.quarantined();
        let details = Obj::new()
            .with("engine", self.db.engine_kind())
            .with("store", store)
            .with("quarantined", number(quarantined))
            .with("quarantinedItems", items);
        for p in &probes {
            set(details.as_object(), p.name, &p.detail);
        }
        let message = if failed.is_empty() {
            format!("healthy ({} engine)", self.db.engine_kind())
        } else {
            format!("unhealthy: {}", failed.join("; "))
        };
        let kind = format!("clientdata-{}", self.db.engine_kind());
        Ok(Obj::new()
            .with("healthy", failed.is_empty())
            .with("message", message)
            .with("latencyMs", js_sys::Date::now() - started)
            .with("datastoreType", kind)
            .with("details", details)
            .into())
    }
}
