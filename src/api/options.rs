//! Reading every option object passed from JS (`open`, `plugin`, `keys`, `scan`, writes'
//! `fence`, sync calls, `createLock`), with typed errors for anything malformed
//! (`InvalidOptions`, or `InvalidLockOptions` for locks). Built on `browser::interop`.

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::AbortSignal;

use crate::browser::interop::{entries_of, get};
use crate::core::PluginId;
use crate::lock::{LockError, LockOptions};
use crate::store::engine::{Choice, Fence};
use crate::store::error::{StoreError, StoreResult};
use crate::store::open::OpenOptions;

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidOptions(message.into())
}

/// Largest integer a JS number represents exactly.
pub const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// `options[name]`, or `undefined` when `options` itself is `undefined`/`null`.
pub fn field(options: &JsValue, name: &str) -> StoreResult<JsValue> {
    if options.is_null_or_undefined() {
        return Ok(JsValue::UNDEFINED);
    }
    if !options.is_object() {
        return Err(invalid("options must be an object"));
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
    if value.is_null_or_undefined() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= max => {
            Ok(Some(n as usize))
        }
        // `max` printed as an integer: formatting an f64 would link core's float printing.
        _ => Err(invalid(format!(
            "{name} must be an integer from 0 to {}",
            max as u64
        ))),
    }
}

/// A string option; `None` when absent.
pub fn string(options: &JsValue, name: &str) -> StoreResult<Option<String>> {
    let value = field(options, name)?;
    if value.is_null_or_undefined() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| invalid(format!("{name} must be a string")))
}

fn boolean(options: &JsValue, name: &str) -> StoreResult<Option<bool>> {
    let value = field(options, name)?;
    if value.is_null_or_undefined() {
        return Ok(None);
    }
    value
        .as_bool()
        .map(Some)
        .ok_or_else(|| invalid(format!("{name} must be a boolean")))
}

/// `value` cast to `T` (a function, an `AbortSignal`); `None` for `undefined`/`null`, the
/// `wrong` message when it is something else.
pub fn typed<T: JsCast>(value: JsValue, wrong: &str) -> StoreResult<Option<T>> {
    if value.is_null_or_undefined() {
        return Ok(None);
    }
    value.dyn_into::<T>().map(Some).map_err(|_| invalid(wrong))
}

/// Parses `ClientData.open`'s options.
pub fn open_options(options: &JsValue) -> StoreResult<OpenOptions> {
    let name = string(options, "name")?.ok_or_else(|| invalid("name is required"))?;
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
    if !quotas.is_null_or_undefined() {
        if !quotas.is_object() {
            return Err(invalid("quotas must be an object"));
        }
        let entries = entries_of(&quotas);
        if entries.is_null() {
            return Err(invalid("quotas could not be read"));
        }
        for entry in entries.unchecked_into::<Array>().iter() {
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

/// 2^53 - 1: epochs travel as JS numbers.
const MAX_SAFE_EPOCH: f64 = MAX_SAFE;

/// The `fence` of a write's options: `{ lockName: string, epoch: number }` (a lock grant).
pub fn fence(options: &JsValue) -> StoreResult<Option<Fence>> {
    if options.is_null_or_undefined() {
        return Ok(None);
    }
    let fence = get(options, "fence");
    if fence.is_null_or_undefined() {
        return Ok(None);
    }
    let invalid = || invalid("fence must be a lock grant { lockName: string, epoch: number }");
    let lock = get(&fence, "lockName")
        .as_string()
        .filter(|s| !s.is_empty())
        .ok_or_else(invalid)?;
    let epoch = get(&fence, "epoch")
        .as_f64()
        .filter(|e| e.fract() == 0.0 && *e >= 1.0 && *e <= MAX_SAFE_EPOCH)
        .ok_or_else(invalid)?;
    Ok(Some(Fence {
        lock,
        epoch: epoch as u64,
    }))
}

/// `createLock`'s options (absent fields take their defaults).
pub fn lock_options(options: &JsValue) -> Result<(LockOptions, Option<AbortSignal>), LockError> {
    let mut opts = LockOptions::default();
    if options.is_null_or_undefined() {
        return Ok((opts, None));
    }
    let field = |name: &str| {
        Reflect::get(options, &JsValue::from_str(name))
            .ok()
            .filter(|v| !v.is_null_or_undefined())
    };
    let ms = |name: &str, into: &mut u64| -> Result<(), LockError> {
        if let Some(v) = field(name) {
            match v.as_f64() {
                Some(n) if n.is_finite() && n >= 0.0 && n <= i32::MAX as f64 => {
                    *into = n.round() as u64
                }
                _ => {
                    return Err(LockError::InvalidOptions(format!(
                        "{name} must be a number of milliseconds"
                    )))
                }
            }
        }
        Ok(())
    };
    ms("ttlMs", &mut opts.ttl_ms)?;
    ms("retryIntervalMs", &mut opts.retry_interval_ms)?;
    ms("maxWaitMs", &mut opts.max_wait_ms)?;
    if let Some(v) = field("lockKey") {
        opts.lock_key = Some(
            v.as_string()
                .ok_or_else(|| LockError::InvalidOptions("lockKey must be a string".into()))?,
        );
    }
    let signal = match field("signal") {
        Some(v) => Some(
            v.dyn_into::<AbortSignal>()
                .map_err(|_| LockError::InvalidOptions("signal must be an AbortSignal".into()))?,
        ),
        None => None,
    };
    Ok((opts, signal))
}

/// A function option (`token`, `onProgress`); see [`typed`].
pub fn function(value: JsValue, wrong: &str) -> StoreResult<Option<Function>> {
    typed::<Function>(value, wrong)
}
