//! `PluginStore`: one plugin's namespace.

use js_sys::{Array, JsString, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::options;
use super::promise::promise;
use super::scan::scan_iterable;
use crate::browser::interop::items_of;
use crate::core::PluginId;
use crate::store::codec::{key_from_js, value_from_js};
use crate::store::db::Db;
use crate::store::error::StoreError;
use crate::sync::error::SyncError;
use crate::sync::hydrate::hydrate_key;
use crate::sync::round::Syncer;
use std::rc::Rc;

/// Default and largest `keys()` limit.
pub const KEYS_DEFAULT_LIMIT: usize = 1_000;
/// See [`KEYS_DEFAULT_LIMIT`].
pub const KEYS_MAX_LIMIT: f64 = 100_000.0;
/// Default and largest `scan()` page size.
pub const SCAN_DEFAULT_PAGE: u32 = 100;
/// See [`SCAN_DEFAULT_PAGE`].
pub const SCAN_MAX_PAGE: f64 = 10_000.0;

/// One plugin's key/value namespace. Reads are synchronous from memory; `set` and `delete` are
/// synchronous and durable on return (localStorage journal, then one IndexedDB transaction per
/// batch). Values up to 64 KiB on the synchronous path; `setAsync`/`setMany` take up to 8 MiB.
/// Values above `sync.lazyThreshold` (32 KiB) sync by reference: on other devices `get` throws
/// `NotHydratedError` until `getAsync` (or `hydrateFile`, or eager hydration) fetched them.
///
/// @example
/// ```js
/// const kv = cd.plugin("notes-app");
/// kv.set("draft", { title: "hi" });
/// kv.get("draft"); // { title: "hi" } (a fresh copy)
/// ```
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct PluginStore {
    db: Db,
    plugin: PluginId,
    /// `plugin` as a JS string, made once: every write's journal entry and row name it.
    plugin_js: JsString,
    /// The store's syncer, if it syncs: `getAsync` fetches content through it.
    syncer: Option<Rc<Syncer>>,
}

impl PluginStore {
    pub(crate) fn new(db: Db, plugin: PluginId, syncer: Option<Rc<Syncer>>) -> Self {
        // Creates the plugin's read-cache map now, so every write from here on fills it and the
        // first read of a value just written is already a hit.
        db.read_cache(&plugin);
        PluginStore {
            db,
            plugin_js: plugin.as_str().into(),
            plugin,
            syncer,
        }
    }
}

#[wasm_bindgen]
impl PluginStore {
    /// The plugin id.
    ///
    /// @example
    /// ```js
    /// kv.id; // "notes-app"
    /// ```
    #[wasm_bindgen(getter, js_name = id)]
    pub fn id(&self) -> String {
        self.plugin.to_string()
    }

    /// The value of `key` (a fresh copy: mutating it does not change the store), or `undefined`.
    ///
    /// @example
    /// ```js
    /// const draft = kv.get("draft");
    /// ```
    #[wasm_bindgen(js_name = get, unchecked_return_type = "StoredValue | undefined")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Result<JsValue, JsValue> {
        let key = key_from_js(&key)?;
        Ok(self.db.get(&self.plugin, &key)?)
    }

    /// The value of `key` like `get`, fetching its content first if it synced by reference and
    /// is not local yet (checked against its SHA-256, then stored: later `get`s answer it).
    /// Rejects with the sync error if the content cannot be had (`ContentHashMismatchError`
    /// for content that does not match), or `SyncNotConfiguredError` without a server.
    ///
    /// @example
    /// ```js
    /// const report = await kv.getAsync("report"); // a 2 MB value synced from another device
    /// ```
    #[wasm_bindgen(
        js_name = getAsync,
        unchecked_return_type = "Promise<StoredValue | undefined>"
    )]
    pub fn get_async(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Promise {
        let (db, plugin, syncer) = (self.db.clone(), self.plugin.clone(), self.syncer.clone());
        promise(async move {
            let key = key_from_js(&key)?;
            match db.get(&plugin, &key) {
                Err(StoreError::NotHydrated { .. }) => {}
                other => return Ok(other?),
            }
            let syncer = syncer.ok_or(SyncError::NotConfigured)?;
            hydrate_key(syncer.content(), &db, &plugin, &key, None).await?;
            Ok(db.get(&plugin, &key)?)
        })
    }

    /// The read cache the package entry answers `get` and `has` from (see `js/index.js`).
    #[doc(hidden)]
    #[wasm_bindgen(js_name = __readCache, skip_typescript)]
    pub fn read_cache(&self) -> js_sys::Map {
        self.db.read_cache(&self.plugin)
    }

    /// Whether `key` holds a value.
    ///
    /// @example
    /// ```js
    /// if (kv.has("draft")) console.log("there");
    /// ```
    #[wasm_bindgen(js_name = has)]
    pub fn has(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Result<bool, JsValue> {
        let key = key_from_js(&key)?;
        Ok(self.db.has(&self.plugin, &key)?)
    }

    /// Stores `value` (JSON-compatible or `Uint8Array`, at most 64 KiB encoded). Durable when
    /// it returns (journaled in localStorage; `metadata().pendingBytes` counts writes beyond the
    /// journal budget until they are committed). Throws a typed error and changes nothing if
    /// the key, value or quota check fails.
    ///
    /// @example
    /// ```js
    /// kv.set("draft", { title: "hi" });
    /// kv.set("blob", new Uint8Array([1, 2, 3]));
    /// ```
    #[wasm_bindgen(js_name = set)]
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredValue")] value: JsValue,
    ) -> Result<(), JsValue> {
        let checked = key_from_js(&key)?;
        self.db.check_open()?;
        let value = value_from_js(&value)?;
        // A key that passed `key_from_js` is a string of valid UTF-16: the same text as JS.
        let key_js = key.unchecked_into();
        Ok(self
            .db
            .write(&self.plugin, checked, Some(value), &self.plugin_js, key_js)?)
    }

    /// Deletes `key` (a tombstone, so the delete syncs). Durable when it returns.
    ///
    /// @example
    /// ```js
    /// kv.delete("draft");
    /// ```
    #[wasm_bindgen(js_name = delete)]
    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Result<(), JsValue> {
        let checked = key_from_js(&key)?;
        let key_js = key.unchecked_into();
        Ok(self
            .db
            .write(&self.plugin, checked, None, &self.plugin_js, key_js)?)
    }

    /// Up to `limit` (default 1000, at most 100000) keys starting with `prefix`, sorted by code
    /// point.
    ///
    /// @example
    /// ```js
    /// kv.keys({ prefix: "d", limit: 100 });
    /// ```
    #[wasm_bindgen(js_name = keys, unchecked_return_type = "string[]")]
    pub fn keys(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "KeysOptions")] options: JsValue,
    ) -> Result<Array, JsValue> {
        let prefix = options::string(&options, "prefix")?;
        let limit = options::count(&options, "limit", KEYS_MAX_LIMIT)?;
        let keys = self.db.keys(
            &self.plugin,
            prefix.as_deref().unwrap_or(""),
            limit.unwrap_or(KEYS_DEFAULT_LIMIT),
        )?;
        Ok(keys.iter().map(|k| JsValue::from_str(k)).collect())
    }

    /// An async iterator of `[key, value]` with `prefix`, in code-point order like `keys`,
    /// copying one page of `pageSize` (default 100) at a time; it first flushes pending writes.
    ///
    /// @example
    /// ```js
    /// for await (const [key, value] of kv.scan({ prefix: "d", pageSize: 500 })) { }
    /// ```
    #[wasm_bindgen(
        js_name = scan,
        unchecked_return_type = "AsyncIterableIterator<[string, StoredValue]>"
    )]
    pub fn scan(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "ScanOptions")] options: JsValue,
    ) -> Result<JsValue, JsValue> {
        self.db.check_open()?;
        let prefix = options::string(&options, "prefix")?;
        let page = options::count(&options, "pageSize", SCAN_MAX_PAGE)?;
        if page == Some(0) {
            return Err(StoreError::InvalidOptions("pageSize must be at least 1".into()).into());
        }
        Ok(scan_iterable(
            self.db.clone(),
            self.plugin.clone(),
            prefix.unwrap_or_default(),
            page.map_or(SCAN_DEFAULT_PAGE, |p| p as u32),
        ))
    }

    /// Resolves when the database holds every write made before the call.
    ///
    /// @example
    /// ```js
    /// kv.set("a", 1); await kv.flush();
    /// ```
    #[wasm_bindgen(js_name = flush, unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Promise {
        let flushed = self.db.flush();
        promise(async move { Ok(flushed.await.map(|()| JsValue::UNDEFINED)?) })
    }

    /// Stores one value of up to 8 MiB without the journal; resolves when it is durable. The
    /// path for large values: the synchronous `set` stops at 64 KiB because its durability
    /// comes from the localStorage journal, whose few MiB per origin one value must not fill.
    /// The value is copied and stamped at the call, as `set` does: changing it afterwards
    /// changes nothing stored, and a `set` of the same key called later wins. Reads see it once
    /// it is durable, when the promise resolves (until then they return what was there before).
    ///
    /// @example
    /// ```js
    /// await kv.setAsync("big", new Uint8Array(500_000));
    /// ```
    #[wasm_bindgen(js_name = setAsync, unchecked_return_type = "Promise<void>")]
    pub fn set_async(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "StoredValue")] value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "WriteOptions")] options: JsValue,
    ) -> Promise {
        // Read and begun at the call (see `Db::set_many`); the promise only waits.
        let written = (|| -> Result<_, JsValue> {
            let key = key_from_js(&key)?;
            let value = value_from_js(&value)?;
            let fence = options::fence(&options)?;
            Ok(self
                .db
                .set_many(&self.plugin, vec![(key, Some(value))], fence.as_ref()))
        })();
        promise(async move {
            written?.await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Stores many `[key, value]` pairs in one transaction without the journal (bulk loads);
    /// resolves when durable. All-or-nothing: one invalid entry rejects the whole call. The
    /// entries are copied and stamped at the call, as in `setAsync`.
    ///
    /// With `{ fence: grant }` (what `DistributedLock.acquire()` resolves to, or the argument of
    /// `withLock`'s callback) the write is fenced: it rejects with `LockLostError` and writes
    /// nothing if the lock was granted to someone else since (IndexedDB engine only).
    ///
    /// @example
    /// ```js
    /// await kv.setMany([["a", 1], ["b", { x: 2 }]]);
    /// await lock.withLock(async (grant) => kv.setMany([["report", data]], { fence: grant }));
    /// ```
    #[wasm_bindgen(js_name = setMany, unchecked_return_type = "Promise<void>")]
    pub fn set_many(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Iterable<[string, StoredValue]>")] entries: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "WriteOptions")] options: JsValue,
    ) -> Promise {
        // Read and begun at the call (see `Db::set_many`); the promise only waits.
        let written = (|| -> Result<_, JsValue> {
            let fence = options::fence(&options)?;
            let invalid =
                || StoreError::InvalidOptions("entries must be an iterable of [key, value]".into());
            let entries = items_of(&entries);
            if entries.is_null() {
                return Err(invalid().into());
            }
            let entries: Array = entries.unchecked_into();
            let mut parsed = Vec::with_capacity(entries.length() as usize);
            for entry in entries.iter() {
                if !Array::is_array(&entry) {
                    return Err(invalid().into());
                }
                let pair: Array = entry.unchecked_into();
                let key = key_from_js(&pair.get(0))?;
                let value = value_from_js(&pair.get(1))?;
                parsed.push((key, Some(value)));
            }
            Ok(self.db.set_many(&self.plugin, parsed, fence.as_ref()))
        })();
        promise(async move {
            written?.await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
