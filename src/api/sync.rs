//! The sync surface of `ClientData`: open options (`server`, `token`, `autoSync`, `sync`),
//! `exchange`, `sync`, and the conversion of `SyncError` into JS errors.

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use super::js_error::{js_error, set_field};
use super::options::{count, field, MAX_SAFE};
use crate::core::PluginId;
use crate::store::codec::plugin_from_js;
use crate::store::error::{StoreError, StoreResult};
use crate::sync::config::{AutoSync, SyncConfig, MAX_RETRIES};
use crate::sync::round::Totals;
use crate::sync::SyncError;

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidOptions(message.into())
}

/// A `SyncError` as a JS `Error`: `SyncHttpError` carries the server's `code` and the `status`.
pub fn sync_error(err: &SyncError) -> js_sys::Error {
    let error = js_error(err);
    if let SyncError::Http { status, code, .. } = err {
        set_field(&error, "code", &JsValue::from_str(code));
        set_field(&error, "status", &JsValue::from(*status));
    }
    error
}

/// Rejection value for a failed sync call.
pub fn to_js_sync(err: SyncError) -> JsValue {
    sync_error(&err).into()
}

/// The sync part of `ClientData.open`'s options: `None` without `server`.
pub fn sync_options(options: &JsValue) -> StoreResult<Option<(SyncConfig, Option<Function>)>> {
    let server = field(options, "server")?;
    let token = field(options, "token")?;
    let auto = field(options, "autoSync")?;
    let tuning = field(options, "sync")?;
    if server.is_undefined() || server.is_null() {
        let configured = [&token, &auto, &tuning]
            .iter()
            .any(|v| !v.is_undefined() && !v.is_null() && v.as_bool() != Some(false));
        if configured {
            return Err(invalid("token, autoSync and sync need a server"));
        }
        return Ok(None);
    }
    let server = server
        .as_string()
        .ok_or_else(|| invalid("server must be a string (the sync server's base URL)"))?;
    let mut config = SyncConfig::new(&server).map_err(invalid)?;
    let token = if token.is_undefined() || token.is_null() {
        None
    } else {
        Some(token.dyn_into::<Function>().map_err(|_| {
            invalid("token must be a function returning a string or a promise of one")
        })?)
    };
    if let Some(ms) = count(&tuning, "timeoutMs", MAX_SAFE)? {
        if ms == 0 {
            return Err(invalid("sync.timeoutMs must be at least 1"));
        }
        config.timeout_ms = ms as u64;
    }
    if let Some(n) = count(&tuning, "retries", f64::from(MAX_RETRIES))? {
        config.retries = n as u32;
    }
    if let Some(n) = count(&tuning, "pageLimit", f64::from(config.limits.max_page))? {
        config.page_limit = config.check_page_limit(n as u32).map_err(invalid)?;
    }
    config.auto = match auto.as_bool() {
        Some(true) => Some(AutoSync::default()),
        Some(false) => None,
        None if auto.is_undefined() || auto.is_null() => None,
        None if auto.is_object() => {
            let mut a = AutoSync::default();
            if let Some(ms) = count(&auto, "intervalMs", MAX_SAFE)? {
                if ms < 100 {
                    return Err(invalid("autoSync.intervalMs must be at least 100"));
                }
                a.interval_ms = ms as u64;
            }
            if let Some(ms) = count(&auto, "debounceMs", MAX_SAFE)? {
                a.debounce_ms = ms as u64;
            }
            Some(a)
        }
        None => {
            return Err(invalid(
                "autoSync must be a boolean or { intervalMs, debounceMs }",
            ))
        }
    };
    Ok(Some((config, token)))
}

/// What `exchange`/`sync`/the sync service take: signal, scope, page limit.
pub struct CallOptions {
    /// Aborts the call.
    pub signal: Option<AbortSignal>,
    /// Plugins in scope (`None`: all).
    pub plugins: Option<Vec<PluginId>>,
    /// Records per page.
    pub limit: u32,
    /// `sync`'s progress callback.
    pub on_progress: Option<Function>,
}

/// Parses `{ signal, plugins, limit, onProgress }`; with `swamp_scope` the plugin list is read
/// from the sync service's `context.models` instead of `plugins`.
pub fn call_options(
    options: &JsValue,
    config: &SyncConfig,
    swamp_scope: bool,
) -> StoreResult<CallOptions> {
    let signal = field(options, "signal")?;
    let signal = if signal.is_undefined() || signal.is_null() {
        None
    } else {
        Some(
            signal
                .dyn_into::<AbortSignal>()
                .map_err(|_| invalid("signal must be an AbortSignal"))?,
        )
    };
    let list = if swamp_scope {
        field(&field(options, "context")?, "models")?
    } else {
        field(options, "plugins")?
    };
    let plugins = if list.is_undefined() || list.is_null() {
        None
    } else {
        let array = list
            .dyn_ref::<Array>()
            .ok_or_else(|| invalid("the plugin scope must be an array of plugin ids"))?;
        let mut out = Vec::with_capacity(array.length() as usize);
        for id in array.iter() {
            out.push(plugin_from_js(&id)?);
        }
        if out.len() > config.limits.max_plugins {
            return Err(invalid(format!(
                "at most {} plugins per scope",
                config.limits.max_plugins
            )));
        }
        Some(out)
    };
    let limit = match count(options, "limit", f64::from(u32::MAX))? {
        Some(n) => config.check_page_limit(n as u32).map_err(invalid)?,
        None => config.page_limit,
    };
    let progress = field(options, "onProgress")?;
    let on_progress = if progress.is_undefined() || progress.is_null() {
        None
    } else {
        Some(
            progress
                .dyn_into::<Function>()
                .map_err(|_| invalid("onProgress must be a function"))?,
        )
    };
    Ok(CallOptions {
        signal,
        plugins,
        limit,
        on_progress,
    })
}

fn set(obj: &Object, name: &str, value: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(name), value);
}

/// `{ rounds, applied, shipped, hasMore }`.
pub fn totals_to_js(t: &Totals) -> JsValue {
    let o = Object::new();
    set(&o, "rounds", &JsValue::from(t.rounds as f64));
    set(&o, "applied", &JsValue::from(t.applied as f64));
    set(&o, "shipped", &JsValue::from(t.shipped as f64));
    set(&o, "hasMore", &JsValue::from_bool(t.has_more));
    o.into()
}
