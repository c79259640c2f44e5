//! The async iterator `PluginStore.scan` returns. Holds at most one page; `next()` calls are
//! chained so concurrent calls never fetch the same page twice.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::promise::promise;
use crate::browser::interop::{async_iterable, Obj};
use crate::core::{Key, PluginId, Value};
use crate::store::codec::value_to_js;
use crate::store::db::Db;
use crate::store::error::StoreError;

#[derive(Debug)]
struct Scan {
    db: Db,
    plugin: PluginId,
    prefix: String,
    page_size: u32,
    after: Option<String>,
    buffer: VecDeque<(String, Value)>,
    exhausted: bool,
    flushed: bool,
    tail: Option<Promise>,
}

fn result(value: &JsValue, done: bool) -> JsValue {
    Obj::new()
        .with("value", value.clone())
        .with("done", done)
        .into()
}

async fn next(scan: Rc<RefCell<Scan>>) -> Result<JsValue, JsValue> {
    loop {
        let (db, plugin, prefix, after, size, flushed) = {
            let mut s = scan.borrow_mut();
            if let Some((key, value)) = s.buffer.pop_front() {
                let value = match value_to_js(&value) {
                    Ok(value) => value,
                    Err(StoreError::CorruptValue { reason, .. }) => {
                        // Quarantined and skipped: one bad value never stops a scan.
                        let db = s.db.clone();
                        let plugin = s.plugin.clone();
                        drop(s);
                        if let Ok(key) = Key::new(key) {
                            db.quarantine_value(&plugin, &key, reason);
                        }
                        continue;
                    }
                    // Unhydrated (a value synced by reference): named, so the app can fetch it.
                    Err(StoreError::NotHydrated { .. }) => {
                        return Err(StoreError::NotHydrated {
                            plugin: s.plugin.to_string(),
                            key,
                        }
                        .into())
                    }
                    Err(e) => return Err(e.into()),
                };
                let pair = Array::of2(&JsValue::from_str(&key), &value);
                return Ok(result(&pair, false));
            }
            if s.exhausted {
                return Ok(result(&JsValue::UNDEFINED, true));
            }
            (
                s.db.clone(),
                s.plugin.clone(),
                s.prefix.clone(),
                s.after.clone(),
                s.page_size,
                s.flushed,
            )
        };
        if !flushed {
            db.flush().await?;
            scan.borrow_mut().flushed = true;
        }
        let (page, last, exhausted) = db.page(&plugin, &prefix, after.as_deref(), size).await?;
        let mut s = scan.borrow_mut();
        s.buffer.extend(page);
        if last.is_some() {
            s.after = last;
        }
        s.exhausted = exhausted;
    }
}

/// A JS async iterable over `plugin`'s live entries with `prefix`.
pub fn scan_iterable(db: Db, plugin: PluginId, prefix: String, page_size: u32) -> JsValue {
    let scan = Rc::new(RefCell::new(Scan {
        db,
        plugin,
        prefix,
        page_size: page_size.max(1),
        after: None,
        buffer: VecDeque::new(),
        exhausted: false,
        flushed: false,
        tail: None,
    }));
    let for_next = scan.clone();
    let next_fn = Closure::<dyn FnMut() -> Promise>::new(move || {
        let scan = for_next.clone();
        let previous = scan.borrow_mut().tail.take();
        let promise = promise(async move {
            if let Some(previous) = previous {
                let _ = JsFuture::from(previous).await;
            }
            next(scan).await
        });
        for_next.borrow_mut().tail = Some(promise.clone());
        promise
    });
    let return_fn = Closure::<dyn FnMut() -> Promise>::new(move || {
        let mut s = scan.borrow_mut();
        s.buffer.clear();
        s.exhausted = true;
        Promise::resolve(&result(&JsValue::UNDEFINED, true))
    });
    async_iterable(&next_fn.into_js_value(), &return_fn.into_js_value())
}
