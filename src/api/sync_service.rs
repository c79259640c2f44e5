//! `SyncService`: swamp's DatastoreSyncService shape over this store's exchange rounds.
//! Scope is `options.context.models` (plugin ids); every method takes an optional `signal`.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::promise::promise;
use super::sync::call_options;
use crate::browser::interop::Obj;
use crate::core::{Key, PluginId};
use crate::store::error::StoreError;
use crate::sync::hydrate::hydrate_key;
use crate::sync::round::{Direction, Syncer, Totals};

/// Moves changed records between this store and the server.
///
/// @example
/// ```js
/// const svc = cd.createSyncService();
/// svc.markDirty({ relPath: "notes-app/draft" });
/// const pushed = await svc.pushChanged();
/// const pulled = await svc.pullChanged({ context: { models: ["notes-app"] } });
/// ```
#[wasm_bindgen]
#[derive(Debug, Clone)]
pub struct SyncService {
    syncer: Rc<Syncer>,
}

impl SyncService {
    pub(crate) fn new(syncer: Rc<Syncer>) -> Self {
        SyncService { syncer }
    }

    /// Rounds while there is more, with `options` (scope from `context.models`, unless `only`
    /// names the one plugin).
    async fn run(
        &self,
        options: &JsValue,
        only: Option<PluginId>,
        direction: Direction,
    ) -> Result<Totals, JsValue> {
        let o = call_options(options, self.syncer.transport().config(), true)?;
        let scope = match only {
            Some(plugin) => Some(vec![plugin]),
            None => o.plugins,
        };
        Ok(self
            .syncer
            .sync(
                scope.as_deref(),
                o.limit,
                direction,
                o.signal.as_ref(),
                |_| {},
            )
            .await?)
    }
}

/// Splits `"plugin/key"` at the first `/` (plugin ids never contain one; keys may).
fn rel_path(path: &JsValue) -> Result<(PluginId, Key), StoreError> {
    let text = path
        .as_string()
        .ok_or_else(|| StoreError::InvalidOptions("relPath must be a string".into()))?;
    let (plugin, key) = text.split_once('/').ok_or_else(|| {
        StoreError::InvalidOptions(format!("relPath {text:?} is not \"plugin/key\""))
    })?;
    Ok((PluginId::new(plugin)?, Key::new(key)?))
}

#[wasm_bindgen]
impl SyncService {
    /// Pulls what the server has and this store has not (rounds while `hasMore`, pushing
    /// nothing); resolves to the number of records that changed local values. With
    /// `metadataOnly: true` no content is fetched: values synced by reference stay metadata
    /// even in plugins of `sync.eagerHydration` (small values ride in the reply as always).
    ///
    /// @example
    /// ```js
    /// const n = await svc.pullChanged({ signal, context: { models: ["notes-app"] } });
    /// await svc.pullChanged({ metadataOnly: true });
    /// ```
    #[wasm_bindgen(js_name = pullChanged, unchecked_return_type = "Promise<number>")]
    pub fn pull_changed(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncServiceOptions")] options: JsValue,
    ) -> Promise {
        let this = self.clone();
        promise(async move {
            let direction = match super::options::field(&options, "metadataOnly")?.as_bool() {
                Some(true) => Direction::PullMetadata,
                _ => Direction::Pull,
            };
            Ok((this.run(&options, None, direction).await?.applied as f64).into())
        })
    }

    /// Pushes every local record the server has not covered (and keys marked dirty); resolves
    /// to the number shipped. Records the server sends back meanwhile are applied too.
    ///
    /// @example
    /// ```js
    /// const n = await svc.pushChanged();
    /// ```
    #[wasm_bindgen(js_name = pushChanged, unchecked_return_type = "Promise<number>")]
    pub fn push_changed(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncServiceOptions")] options: JsValue,
    ) -> Promise {
        let this = self.clone();
        promise(async move {
            Ok((this.run(&options, None, Direction::Both).await?.shipped as f64).into())
        })
    }

    /// Marks `relPath` (`"plugin/key"`) to be pushed again by the next push, or with no
    /// `relPath` the whole store (a full walk, page by page). Cheap and idempotent.
    ///
    /// @example
    /// ```js
    /// svc.markDirty({ relPath: "notes-app/draft" });
    /// svc.markDirty();
    /// ```
    #[wasm_bindgen(js_name = markDirty)]
    pub fn mark_dirty(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "{ relPath?: string }")] options: JsValue,
    ) -> Result<(), JsValue> {
        self.syncer.db().check_open()?;
        let path = super::options::field(&options, "relPath")?;
        if path.is_null_or_undefined() {
            self.syncer.mark_dirty(None);
        } else {
            self.syncer.mark_dirty(Some(rel_path(&path)?));
        }
        Ok(())
    }

    /// What this service supports: scoped sync and lazy hydration (values above
    /// `sync.lazyThreshold` pull as metadata; `hydrateFile` fetches their content).
    ///
    /// @example
    /// ```js
    /// svc.capabilities(); // { scopedSync: true, lazyHydration: true }
    /// ```
    #[wasm_bindgen(js_name = capabilities, unchecked_return_type = "SyncCapabilities")]
    pub fn capabilities(&self) -> JsValue {
        Obj::new()
            .with("scopedSync", true)
            .with("lazyHydration", true)
            .into()
    }

    /// Makes sure `relPath`'s newest version is local: pulls its plugin's changes (metadata
    /// only), then fetches the value's content if it synced by reference, checked against its
    /// SHA-256 (`ContentHashMismatchError`, nothing stored, if it does not match).
    ///
    /// @example
    /// ```js
    /// await svc.hydrateFile("notes-app/report");
    /// kv.get("report"); // no NotHydratedError now
    /// ```
    #[wasm_bindgen(js_name = hydrateFile, unchecked_return_type = "Promise<void>")]
    pub fn hydrate_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] rel: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncServiceOptions")] options: JsValue,
    ) -> Promise {
        let this = self.clone();
        promise(async move {
            let (plugin, key) = rel_path(&rel)?;
            this.run(&options, Some(plugin.clone()), Direction::PullMetadata)
                .await?;
            let syncer = &this.syncer;
            let signal = call_options(&options, syncer.transport().config(), true)?.signal;
            hydrate_key(
                syncer.content(),
                syncer.db(),
                &plugin,
                &key,
                signal.as_ref(),
            )
            .await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
