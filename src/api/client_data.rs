//! `ClientData`: one open database.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

use super::encryption::encryption_options;
use super::options::{self, MAX_SAFE};
use super::plugin_store::PluginStore;
use super::promise::promise;
use super::sync::{call_options, sync_options, totals_to_js};
use super::sync_service::SyncService;
use super::verifier::Verifier;
use crate::browser::interop::{number, or_null, Obj};
use crate::store::codec::plugin_from_js;
use crate::store::db::Db;
use crate::store::error::StoreError;
use crate::store::open::open;
use crate::sync::auto::Auto;
use crate::sync::round::{Direction, Syncer};
use crate::sync::sealed::Sealer;
use crate::sync::summary;
use crate::sync::transport::Transport;
use crate::sync::SyncError;

/// An open clientdata database: per-plugin stores, durable synchronous writes, cross-tab
/// updates.
///
/// @example
/// ```js
/// const cd = await ClientData.open({ name: "supervisor" });
/// const kv = cd.plugin("notes-app");
/// kv.set("draft", { title: "hi" });
/// await cd.close();
/// ```
#[wasm_bindgen(js_name = ClientData)]
#[derive(Debug, Clone)]
pub struct ClientData {
    db: Db,
    /// Present when opened with a `server`.
    syncer: Option<Rc<Syncer>>,
    /// Automatic sync (leader election), when opened with `autoSync`.
    auto: Rc<RefCell<Option<Auto>>>,
}

impl ClientData {
    /// The database name (`open({ name })`).
    pub(crate) fn db_name(&self) -> &str {
        &self.db.info().name
    }

    // The Rust side of the async exports (for the Rust API and tests): each export below hands
    // one of these to `promise`, the package's one future-to-promise instantiation.

    /// `open()`.
    pub async fn open_async(options: JsValue) -> Result<ClientData, JsValue> {
        let sync = sync_options(&options)?;
        let encryption = encryption_options(&options, sync.is_some())?;
        let options = options::open_options(&options)?;
        // Keys first: a passphrase that cannot be stretched (no salt, no WebCrypto) fails the
        // open before any store exists.
        let mut sealer = None;
        if let (Some(encryption), Some((config, token))) = (encryption, &sync) {
            let transport = Transport::new(config.clone(), token.clone());
            sealer = Some(encryption.ring(&transport).await?);
        }
        let db = open(options).await?;
        summary::listen(&db);
        let mut auto = None;
        let syncer = sync.map(|(config, token)| {
            let auto_config = config.auto;
            let mut syncer = Syncer::new(db.clone(), Transport::new(config, token));
            if let Some((ring, blind_plugins)) = sealer {
                syncer = syncer.sealed(Sealer::new(&db, ring, blind_plugins));
            }
            let syncer = Rc::new(syncer);
            if let Some(a) = auto_config {
                auto = Some(Auto::start(syncer.clone(), a));
            }
            syncer
        });
        Ok(ClientData {
            db,
            syncer,
            auto: Rc::new(RefCell::new(auto)),
        })
    }

    /// `flush()`: covers the writes made before the call (see [`Db::flush`]).
    pub fn flush_async(&self) -> impl Future<Output = Result<(), JsValue>> + 'static {
        let flushed = self.db.flush();
        async move { Ok(flushed.await?) }
    }

    /// `close()`: begins at the call (see [`Db::close`]).
    pub fn close_async(&self) -> impl Future<Output = Result<(), JsValue>> + 'static {
        // Stops automatic sync first: leadership passes to the next tab in the queue.
        self.auto.borrow_mut().take();
        let closing = self.db.close();
        async move { Ok(closing.await?) }
    }

    /// `exchange()`.
    pub async fn exchange_async(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let syncer = self.syncer()?;
        let o = call_options(&options, syncer.transport().config(), false)?;
        let outcome = syncer
            .round(
                o.plugins.as_deref(),
                o.limit,
                Direction::Both,
                o.signal.as_ref(),
            )
            .await?;
        Ok(crate::api::sync::outcome_to_js(&outcome))
    }

    /// `sync()`.
    pub async fn sync_async(&self, options: JsValue) -> Result<JsValue, JsValue> {
        let syncer = self.syncer()?;
        let o = call_options(&options, syncer.transport().config(), false)?;
        let progress = o.on_progress.clone();
        let totals = syncer
            .sync(
                o.plugins.as_deref(),
                o.limit,
                Direction::Both,
                o.signal.as_ref(),
                |t| {
                    if let Some(f) = &progress {
                        let _ = f.call1(&JsValue::UNDEFINED, &totals_to_js(t));
                    }
                },
            )
            .await?;
        Ok(totals_to_js(&totals))
    }
}

#[wasm_bindgen(js_class = ClientData)]
impl ClientData {
    /// Opens (creating if needed) database `options.name`: IndexedDB, else localStorage, else
    /// memory (`metadata().engine` says which). Claims a writer slot and replays writes a closed
    /// or crashed tab left in the journal.
    ///
    /// @example
    /// ```js
    /// const cd = await ClientData.open({ name: "supervisor", quotas: { "notes-app": 1_000_000 } });
    /// ```
    #[wasm_bindgen(js_name = open, unchecked_return_type = "Promise<ClientData>")]
    pub fn open(#[wasm_bindgen(unchecked_param_type = "OpenOptions")] options: JsValue) -> Promise {
        promise(async move { Ok(Self::open_async(options).await?.into()) })
    }

    /// The store of plugin `id`. `options.quotaBytes` sets (or with `null` removes) its byte
    /// quota.
    ///
    /// @example
    /// ```js
    /// const kv = cd.plugin("notes-app", { quotaBytes: 100_000 });
    /// ```
    #[wasm_bindgen(js_name = plugin)]
    pub fn plugin(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "PluginOptions")] options: JsValue,
    ) -> Result<PluginStore, JsValue> {
        self.db.check_open()?;
        let plugin = plugin_from_js(&id)?;
        let quota = options::field(&options, "quotaBytes")?;
        if quota.is_null() {
            self.db.set_quota(&plugin, None);
        } else if let Some(q) = options::integer(&quota, "quotaBytes", MAX_SAFE)? {
            self.db.set_quota(&plugin, Some(q));
        }
        Ok(PluginStore::new(
            self.db.clone(),
            plugin,
            self.syncer.clone(),
        ))
    }

    /// Which engine is in use and how durable it is.
    ///
    /// @example
    /// ```js
    /// const { engine, nodeId, slot, persisted, persistRequest, quota, pendingBytes } = cd.metadata();
    /// ```
    #[wasm_bindgen(js_name = metadata, unchecked_return_type = "Metadata")]
    pub fn metadata(&self) -> Result<JsValue, JsValue> {
        self.db.check_open()?;
        let info = self.db.info();
        let server = self
            .syncer
            .as_ref()
            .map(|s| s.transport().config().server.clone());
        let leader = self.auto.borrow().as_ref().is_some_and(Auto::is_leader);
        let (quarantined, quarantined_items) = self.db.quarantined();
        let over_quota: js_sys::Array = self
            .db
            .over_quota()
            .into_iter()
            .map(|o| -> JsValue {
                Obj::new()
                    .with("plugin", o.plugin.as_str())
                    .with("usedBytes", number(o.used))
                    .with("quotaBytes", number(o.quota))
                    .into()
            })
            .collect();
        Ok(Obj::new()
            .with("name", info.name.as_str())
            .with("engine", self.db.engine_kind())
            .with(
                "fallbackReason",
                or_null(info.fallback.as_deref().map(JsValue::from)),
            )
            .with("nodeId", info.node.to_string())
            .with("storeEpoch", info.epoch.as_str())
            .with("wiped", self.db.wiped().is_some())
            .with("slot", or_null(info.slot.map(JsValue::from)))
            .with("persisted", info.storage.persisted())
            .with("persistRequest", info.storage.persist_request().as_str())
            .with("quota", or_null(info.storage.quota.map(JsValue::from)))
            .with("pendingBytes", number(self.db.pending_bytes()))
            .with("journal", self.db.has_journal())
            .with("journalBytes", number(self.db.journal_bytes()))
            .with("server", or_null(server.map(JsValue::from)))
            .with("leader", leader)
            .with("quarantined", number(quarantined))
            .with("quarantinedItems", quarantined_items)
            .with("overQuota", over_quota)
            .into())
    }

    /// Subscribes to an event; returns the function that unsubscribes.
    /// `local-change-recorded` fires once per plugin per committed batch (this instance's
    /// writes) and for writes other instances broadcast, with `{ plugin, keys,
    /// fromThisInstance }`; `write-failed` fires with the typed error when a batch could not be
    /// committed (the writes stay journaled and are retried). Sync: `remote-update-available`
    /// `{ plugin, keys }` when a round changed local values, `data-quarantined` with a
    /// `CorruptValueError` when a stored value is found corrupt on read (what open quarantined
    /// is in `metadata().quarantined`), `over-quota` `{ plugin, usedBytes, quotaBytes }` when a
    /// sync round took a plugin past its quota (also in `metadata().overQuota`), `local-data-synced` after every
    /// round (in every tab), `sync-failed` with the typed error of a failed automatic round,
    /// `store-wiped` `{ epoch, previousEpoch, applied }` after the first complete sync of a store
    /// found wiped: by open (IndexedDB evicted while localStorage kept the epoch's mirror) or by
    /// the server (with `sync.device`, it last saw the device with another epoch).
    ///
    /// @example
    /// ```js
    /// const off = cd.on("local-change-recorded", (e) => console.log(e.plugin, e.keys));
    /// off();
    /// ```
    #[wasm_bindgen(js_name = on, unchecked_return_type = "() => void")]
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ClientDataEventType")] kind: String,
        #[wasm_bindgen(unchecked_param_type = "(event: ClientDataEvent) => void")]
        listener: Function,
    ) -> Result<Function, JsValue> {
        self.db.check_open()?;
        let unknown = || StoreError::InvalidOptions(format!("unknown event type {kind:?}"));
        Ok(self.db.on(&kind, listener).ok_or_else(unknown)?)
    }

    /// Resolves when the database holds every write made before the call.
    ///
    /// @example
    /// ```js
    /// await cd.flush();
    /// ```
    #[wasm_bindgen(js_name = flush, unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Promise {
        let flushed = self.flush_async();
        promise(async move { flushed.await.map(|()| JsValue::UNDEFINED) })
    }

    /// Flushes, releases the writer slot and closes the database. Every later call fails with
    /// `StoreClosedError`.
    ///
    /// @example
    /// ```js
    /// await cd.close();
    /// ```
    #[wasm_bindgen(js_name = close, unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        let closing = self.close_async();
        promise(async move { closing.await.map(|()| JsValue::UNDEFINED) })
    }

    /// One exchange round with the server: ships the local records it has not covered,
    /// receives records above the local watermarks, and commits both with the new watermarks
    /// in one transaction. A round that fails anywhere changes nothing; just retry.
    ///
    /// @example
    /// ```js
    /// const { applied, shipped, hasMore } = await cd.exchange({ signal, plugins: ["notes-app"] });
    /// ```
    #[wasm_bindgen(js_name = exchange, unchecked_return_type = "Promise<ExchangeResult>")]
    pub fn exchange(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "ExchangeOptions")] options: JsValue,
    ) -> Promise {
        let this = self.clone();
        promise(async move { this.exchange_async(options).await })
    }

    /// Runs rounds while there is more to move (`hasMore`), calling `onProgress` after each.
    ///
    /// @example
    /// ```js
    /// const { rounds, applied, shipped } = await cd.sync({ onProgress: (p) => console.log(p) });
    /// ```
    #[wasm_bindgen(js_name = sync, unchecked_return_type = "Promise<SyncResult>")]
    pub fn sync(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncCallOptions")] options: JsValue,
    ) -> Promise {
        let this = self.clone();
        promise(async move { this.sync_async(options).await })
    }

    /// The swamp-shaped sync service of this store (pullChanged, pushChanged, markDirty,
    /// capabilities, hydrateFile).
    ///
    /// @example
    /// ```js
    /// const svc = cd.createSyncService();
    /// const pulled = await svc.pullChanged({ context: { models: ["notes-app"] } });
    /// ```
    #[wasm_bindgen(js_name = createSyncService)]
    pub fn create_sync_service(&self) -> Result<SyncService, JsValue> {
        Ok(SyncService::new(self.syncer()?))
    }

    /// The health verifier: probes IndexedDB, localStorage, Web Locks, storage persistence and
    /// quota, and the server's `/health`.
    ///
    /// @example
    /// ```js
    /// const { healthy, message, latencyMs, datastoreType, details } = await cd.createVerifier().verify();
    /// ```
    #[wasm_bindgen(js_name = createVerifier)]
    pub fn create_verifier(&self) -> Result<Verifier, JsValue> {
        self.db.check_open()?;
        Ok(Verifier::new(self.db.clone(), self.syncer.clone()))
    }
}

impl ClientData {
    fn syncer(&self) -> Result<Rc<Syncer>, JsValue> {
        self.db.check_open()?;
        Ok(self.syncer.clone().ok_or(SyncError::NotConfigured)?)
    }
}

impl ClientData {
    /// The Rust handle (for the sync layer and tests).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Simulates the tab dying (see [`Db::simulate_crash`]). Tests only.
    #[doc(hidden)]
    pub fn simulate_crash(&self) {
        self.db.simulate_crash()
    }
}
