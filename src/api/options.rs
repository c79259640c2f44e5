//! Reading option objects passed from JS (`open`, `plugin`, `keys`, `scan`), with typed
//! `InvalidOptions` errors for anything malformed.

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::PluginId;
use crate::store::engine::Choice;
use crate::store::error::{StoreError, StoreResult};
use crate::store::open::OpenOptions;

fn invalid(message: String) -> StoreError {
    StoreError::InvalidOptions(message)
}

/// `options[name]`, or `undefined` when `options` itself is `undefined`/`null`.
pub fn field(options: &JsValue, name: &str) -> StoreResult<JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(JsValue::UNDEFINED);
    }
    if !options.is_object() {
        return Err(invalid("options must be an object".into()));
    }
    Reflect::get(options, &JsValue::from_str(name))
        .map_err(|_| invalid(format!("option {name} could not be read")))
}

/// A non-negative integer option up to `max`; `None` when absent.
pub fn count(options: &JsValue, name: &str, max: f64) -> StoreResult<Option<usize>> {
    integer(&field(options, name)?, name, max)
}

/// `value` as a non-negative integer up to `max`; `None` for `undefined`/`null`.
pub fn integer(value: &JsValue, name: &str, max: f64) -> StoreResult<Option<usize>> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= max => {
            Ok(Some(n as usize))
        }
        _ => Err(invalid(format!(
            "{name} must be an integer from 0 to {max}"
        ))),
    }
}

/// A string option; `None` when absent.
pub fn string(options: &JsValue, name: &str) -> StoreResult<Option<String>> {
    let value = field(options, name)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| invalid(format!("{name} must be a string")))
}

fn boolean(options: &JsValue, name: &str) -> StoreResult<Option<bool>> {
    let value = field(options, name)?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_bool()
        .map(Some)
        .ok_or_else(|| invalid(format!("{name} must be a boolean")))
}

/// Largest integer a JS number represents exactly.
pub const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// Parses `ClientData.open`'s options.
pub fn open_options(options: &JsValue) -> StoreResult<OpenOptions> {
    let name = string(options, "name")?.ok_or_else(|| invalid("name is required".into()))?;
    let mut out = OpenOptions::new(name);
    if let Some(engine) = string(options, "engine")? {
        out.engine = Choice::parse(&engine)?;
    }
    if let Some(budget) = count(options, "journalBudgetBytes", MAX_SAFE)? {
        out.journal_budget = budget;
    }
    if let Some(persist) = boolean(options, "persist")? {
        out.persist = persist;
    }
    if let Some(drift) = count(options, "maxDriftMs", MAX_SAFE)? {
        out.max_drift_ms = drift as u64;
    }
    let quotas = field(options, "quotas")?;
    if !quotas.is_undefined() && !quotas.is_null() {
        let object = quotas
            .dyn_ref::<Object>()
            .ok_or_else(|| invalid("quotas must be an object".into()))?;
        for entry in Object::entries(object).iter() {
            let plugin = Reflect::get_u32(&entry, 0)
                .ok()
                .and_then(|p| p.as_string())
                .unwrap_or_default();
            let plugin = PluginId::new(plugin)?;
            let bytes = Reflect::get_u32(&entry, 1).unwrap_or(JsValue::UNDEFINED);
            let bytes = integer(&bytes, &format!("quotas.{plugin}"), MAX_SAFE)?
                .ok_or_else(|| invalid(format!("quotas.{plugin} must be a number")))?;
            out.quotas.insert(plugin, bytes);
        }
    }
    Ok(out)
}
