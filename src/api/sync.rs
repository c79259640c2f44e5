//! The sync surface of `ClientData`: open options (`server`, `token`, `autoSync`, `sync`),
//! the options of `exchange`/`sync`/the sync service, and their results.

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use super::options::{count, field, function, string, typed, MAX_SAFE};
use crate::browser::interop::{number, Obj};
use crate::core::PluginId;
use crate::store::codec::plugin_from_js;
use crate::store::error::{StoreError, StoreResult};
use crate::sync::config::{
    AutoSync, Eager, SyncConfig, MAX_REPLY_BYTES, MAX_RETRIES, MIN_REPLY_BYTES,
};
use crate::sync::round::{Outcome, Totals};

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidOptions(message.into())
}

/// The sync part of `ClientData.open`'s options: `None` without `server`.
pub fn sync_options(options: &JsValue) -> StoreResult<Option<(SyncConfig, Option<Function>)>> {
    let server = field(options, "server")?;
    let token = field(options, "token")?;
    let auto = field(options, "autoSync")?;
    let tuning = field(options, "sync")?;
    if server.is_null_or_undefined() {
        let configured = [&token, &auto, &tuning]
            .iter()
            .any(|v| !v.is_null_or_undefined() && v.as_bool() != Some(false));
        if configured {
            return Err(invalid("token, autoSync and sync need a server"));
        }
        return Ok(None);
    }
    let server = server
        .as_string()
        .ok_or_else(|| invalid("server must be a string (the sync server's base URL)"))?;
    let mut config = SyncConfig::new(&server).map_err(invalid)?;
    let token = function(
        token,
        "token must be a function returning a string or a promise of one",
    )?;
    if let Some(ms) = count(&tuning, "timeoutMs", MAX_SAFE)? {
        if ms == 0 {
            return Err(invalid("sync.timeoutMs must be at least 1"));
        }
        config.timeout_ms = ms as u64;
    }
    if let Some(n) = count(&tuning, "retries", f64::from(MAX_RETRIES))? {
        config.retries = n as u32;
    }
    if let Some(dataset) = string(&tuning, "dataset")? {
        crate::core::protocol::check_dataset(&dataset).map_err(|_| {
            invalid("sync.dataset must be 1 to 256 bytes without control characters")
        })?;
        config.dataset = Some(dataset);
    }
    if let Some(device) = string(&tuning, "device")? {
        if !crate::core::protocol::is_device_id(&device) {
            return Err(invalid(
                "sync.device must be 1 to 128 characters without control characters",
            ));
        }
        config.device = Some(device);
    }
    if let Some(n) = count(&tuning, "maxReplyBytes", MAX_REPLY_BYTES as f64)? {
        if n < MIN_REPLY_BYTES {
            return Err(invalid(format!(
                "sync.maxReplyBytes must be from {MIN_REPLY_BYTES} to {MAX_REPLY_BYTES}"
            )));
        }
        config.max_reply_bytes = n;
    }
    if let Some(n) = count(
        &tuning,
        "lazyThreshold",
        config.limits.max_value_bytes as f64,
    )? {
        config.lazy_threshold = n;
    }
    let eager = field(&tuning, "eagerHydration")?;
    config.eager = match eager.as_bool() {
        Some(true) => Eager::All,
        Some(false) => Eager::None,
        None if eager.is_null_or_undefined() => Eager::None,
        None => {
            let list = eager.dyn_ref::<Array>().ok_or_else(|| {
                invalid("sync.eagerHydration must be a boolean or an array of plugin ids")
            })?;
            let mut plugins = Vec::with_capacity(list.length() as usize);
            for id in list.iter() {
                plugins.push(plugin_from_js(&id)?);
            }
            Eager::Plugins(plugins)
        }
    };
    if let Some(n) = count(&tuning, "pageLimit", f64::from(config.limits.max_page))? {
        config.page_limit = config.check_page_limit(n as u32).map_err(invalid)?;
    }
    config.auto = match auto.as_bool() {
        Some(true) => Some(AutoSync::default()),
        Some(false) => None,
        None if auto.is_null_or_undefined() => None,
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
    let signal = typed::<AbortSignal>(field(options, "signal")?, "signal must be an AbortSignal")?;
    let list = if swamp_scope {
        field(&field(options, "context")?, "models")?
    } else {
        field(options, "plugins")?
    };
    let plugins = if list.is_null_or_undefined() {
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
    let on_progress = function(
        field(options, "onProgress")?,
        "onProgress must be a function",
    )?;
    Ok(CallOptions {
        signal,
        plugins,
        limit,
        on_progress,
    })
}

/// `{ rounds, applied, shipped, hasMore, wiped, contentFailures, kind, upserts, deletions }`.
pub fn totals_to_js(t: &Totals) -> JsValue {
    Obj::new()
        .with("rounds", number(t.rounds))
        .with("applied", number(t.applied))
        .with("shipped", number(t.shipped))
        .with("hasMore", t.has_more)
        .with("wiped", t.wiped)
        .with("contentFailures", number(t.content_failures))
        .with("kind", if t.full { "full" } else { "partial" })
        .with("upserts", number(t.upserts))
        .with("deletions", number(t.deletions))
        .into()
}

/// `{ applied, shipped, hasMore, kind, upserts, deletions }` of one round.
pub fn outcome_to_js(o: &Outcome) -> JsValue {
    Obj::new()
        .with("applied", number(o.applied))
        .with("shipped", number(o.shipped))
        .with("hasMore", o.has_more)
        .with("kind", if o.full { "full" } else { "partial" })
        .with("upserts", number(o.applied - o.deletions))
        .with("deletions", number(o.deletions + o.removed))
        .into()
}
