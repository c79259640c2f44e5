//! `Verifier`: swamp's DatastoreVerifier shape. Probes each part the store relies on and names
//! the unhealthy ones in `message`; never throws for an unhealthy part.

use std::rc::Rc;

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use super::js_error::to_js;
use super::sync::sync_error;
use crate::browser::local_storage::{self, local_storage};
use crate::browser::storage_manager::storage_info;
use crate::browser::web_locks::{self, lock_manager, RequestOptions, Wake};
use crate::store::db::Db;
use crate::sync::round::Syncer;
use crate::sync::transport::parse_json;

/// Checks that the store can do its job right now.
///
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

fn set(obj: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(name), value);
}

/// One probe's result: `{ ok, latencyMs, error? }` plus extra fields.
struct Probe {
    name: &'static str,
    ok: bool,
    detail: Object,
}

fn probe(name: &'static str, started: f64, result: Result<(), String>) -> Probe {
    let detail = Object::new();
    set(&detail, "ok", &JsValue::from_bool(result.is_ok()));
    set(
        &detail,
        "latencyMs",
        &JsValue::from(js_sys::Date::now() - started),
    );
    if let Err(e) = &result {
        set(&detail, "error", &JsValue::from_str(e));
    }
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
    /// ```js
    /// const { healthy, message } = await cd.createVerifier().verify();
    /// ```
    #[wasm_bindgen(js_name = verify, unchecked_return_type = "VerifyResult")]
    pub async fn verify(&self) -> Result<JsValue, JsValue> {
        self.db.check_open().map_err(to_js)?;
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
            Some(s) => local_storage::probe(&s, &key)
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
                let mut request = web_locks::request(&m, &format!("{key}:lock"), options);
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
        set(
            &quota.detail,
            "persisted",
            &JsValue::from_bool(info.persisted),
        );
        set(
            &quota.detail,
            "quota",
            &info.quota.map_or(JsValue::NULL, JsValue::from),
        );
        probes.push(quota);

        if let Some(syncer) = &self.syncer {
            let t = js_sys::Date::now();
            let answer = syncer.transport().health().await;
            let health = answer.as_ref().ok().and_then(|a| parse_json(&a.text).ok());
            let healthy = health
                .as_ref()
                .and_then(|h| Reflect::get(h, &"healthy".into()).ok())
                .and_then(|h| h.as_bool());
            let result = match (&answer, healthy) {
                (Err(e), _) => Err(sync_error(e).message().into()),
                (Ok(_), Some(false)) => Err("the server reports itself unhealthy".into()),
                (Ok(_), None) => Err("the server's /health answer is not { healthy }".into()),
                (Ok(_), Some(true)) => Ok(()),
            };
            let server = probe("server", t, result);
            let url = syncer.transport().config().health_url();
            set(&server.detail, "url", &JsValue::from_str(&url));
            if let Some(h) = health {
                set(&server.detail, "health", &h);
            }
            probes.push(server);
        }

        let failed: Vec<String> = probes
            .iter()
            .filter(|p| !p.ok)
            .map(|p| {
                let error = Reflect::get(&p.detail, &"error".into())
                    .ok()
                    .and_then(|e| e.as_string())
                    .unwrap_or_default();
                format!("{}: {error}", p.name)
            })
            .collect();
        let details = Object::new();
        set(
            &details,
            "engine",
            &JsValue::from_str(self.db.engine_kind()),
        );
        for p in &probes {
            set(&details, p.name, &p.detail);
        }
        let report = Object::new();
        set(&report, "healthy", &JsValue::from_bool(failed.is_empty()));
        let message = if failed.is_empty() {
            format!("healthy ({} engine)", self.db.engine_kind())
        } else {
            format!("unhealthy: {}", failed.join("; "))
        };
        set(&report, "message", &JsValue::from_str(&message));
        set(
            &report,
            "latencyMs",
            &JsValue::from(js_sys::Date::now() - started),
        );
        let kind = format!("clientdata-{}", self.db.engine_kind());
        set(&report, "datastoreType", &JsValue::from_str(&kind));
        set(&report, "details", &details);
        Ok(report.into())
    }
}
