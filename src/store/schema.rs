//! The IndexedDB layout of one clientdata database, and opening it.
//!
//! Built on `idb`, the crate underneath rexie, because rexie hides the two things this needs:
//! the upgrade callback (for explicit `match (old, new)` migrations instead of a builder that
//! deletes every store it is not told about) and the database's `versionchange` event (on which
//! we close, so a newer tab's upgrade is never blocked by this one).
//!
//! Stores (version 3):
//! - `records`: one row per (plugin, key), keyPath `["p", "k"]`, so identity is a tuple and
//!   never a concatenated string. No secondary index: HLC order is the in-memory index's job,
//!   and version 1's index `by_hlc` on `h`, never read, cost every put an index update, so
//!   version 2 drops it.
//! - `packs` (version 3): many records in one row, `{ rows: [records-store row, ...] }` under an
//!   out-of-line key the writer picks (`putPack` in `idb_requests.js`: no autoIncrement, so no
//!   await for a key). IndexedDB's cost is per row, so a big commit (a sync page, a `setMany`)
//!   writes one pack instead of a row per record. Versions of one key may then sit in a row and
//!   in several packs; opening lets the index's last-write-wins pick the current one, and a
//!   removal takes every version at or below its stamp from rows and packs alike. Version 3
//!   only adds this store: version 2's rows stay valid as they are.
//! - `meta`: small named values (store epoch, schema notes), out-of-line string keys.
//! - `vectors`: watermarks, keyPath `["kind", "plugin"]`.
//! - `slots`: writer slots (docs/DESIGN.md invariant 3), keyPath `slot` (a number): node id,
//!   clock state.
//! - `epochs`: fencing epochs of locks, out-of-line key = lock name, value = number.

use std::cell::Cell;
use std::rc::Rc;

use crate::browser::interop::Obj;
use crate::browser::page_events;
use idb::{
    Database, DatabaseEvent, Event, Factory, IndexParams, KeyPath, ObjectStoreParams, Request,
    Transaction,
};

/// Dispatched on the global scope, `{ name }`, when another tab (a newer build) upgrades the
/// database: this store has closed its connection so the upgrade is not blocked, and its
/// writes fail from then on; the app should reload.
pub const VERSION_CHANGE_EVENT: &str = "clientdata:versionchange";

/// Dispatched on the global scope, `{ name, oldVersion, newVersion }`, when opening must upgrade
/// the database but another tab holds an older version open and has not closed it on
/// `versionchange` (a build from before it did, or the app's own connection): the upgrade, and
/// so `open()`, waits until that tab closes it. The app's cue to ask the user to close the tab.
pub const UPGRADE_BLOCKED_EVENT: &str = "clientdata:upgrade-blocked";

/// Current schema version.
pub const VERSION: u32 = 3;

/// Object store names.
pub const RECORDS: &str = "records";
/// See module docs.
pub const PACKS: &str = "packs";
/// See module docs.
pub const META: &str = "meta";
/// See module docs.
pub const VECTORS: &str = "vectors";
/// See module docs.
pub const SLOTS: &str = "slots";
/// See module docs.
pub const EPOCHS: &str = "epochs";
/// Version 1's index of `records` on the HLC text (dropped by version 2).
const V1_BY_HLC: &str = "by_hlc";

/// Why opening failed; the caller falls back to another engine and says so in `metadata()`.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No `indexedDB` in this global scope (some private modes, old workers).
    #[error("IndexedDB is not available: {0}")]
    Unavailable(String),
    /// Opening or upgrading failed (quota, corrupted profile, a newer schema version on disk).
    #[error("IndexedDB could not be opened: {0}")]
    Failed(String),
}

/// Opens (creating or migrating) the database `name`. The returned handle closes itself when
/// another connection asks for a version change.
pub async fn open(name: &str) -> Result<Database, OpenError> {
    let factory = Factory::new().map_err(|e| OpenError::Unavailable(e.to_string()))?;
    let mut request = factory
        .open(name, Some(VERSION))
        .map_err(|e| OpenError::Failed(e.to_string()))?;
    let blocked_name = name.to_owned();
    request.on_blocked(move |event| {
        let detail = Obj::new()
            .with("name", blocked_name.as_str())
            .with_some("oldVersion", event.old_version().ok())
            .with("newVersion", VERSION);
        page_events::dispatch_global(UPGRADE_BLOCKED_EVENT, &detail.into());
    });
    let migration_error: Rc<Cell<Option<String>>> = Rc::default();
    let report = migration_error.clone();
    request.on_upgrade_needed(move |event| {
        let result = (|| -> Result<(), String> {
            let db = event.database().map_err(|e| e.to_string())?;
            let old = event.old_version().map_err(|e| e.to_string())?;
            let new = event
                .new_version()
                .map_err(|e| e.to_string())?
                .unwrap_or(VERSION);
            let upgrade = event
                .target()
                .ok()
                .and_then(|request| request.transaction());
            migrate(&db, upgrade.as_ref(), old, new)
        })();
        if let Err(e) = result {
            // Abort the upgrade so a half-built schema is never committed at the new version.
            if let Some(upgrade) = event
                .target()
                .ok()
                .and_then(|request| request.transaction())
            {
                let _ = upgrade.abort();
            }
            report.set(Some(e));
        }
    });
    let result = request.await;
    if let Some(e) = migration_error.take() {
        return Err(OpenError::Failed(format!("migration failed: {e}")));
    }
    let raw: web_sys::IdbDatabase = result.map_err(|e| OpenError::Failed(e.to_string()))?.into();
    let closer = raw.clone();
    let mut db = Database::from(raw);
    let db_name = name.to_owned();
    db.on_version_change(move |_| {
        closer.close();
        // The app's cue to reload with the newer build (this connection is gone for good).
        let detail = Obj::new().with("name", db_name.as_str());
        page_events::dispatch_global(VERSION_CHANGE_EVENT, &detail.into());
    });
    // The handler must outlive this function; it is dropped with the JS database object.
    db.forget_callbacks();
    Ok(db)
}

/// The upgrade from `old` to `new` inside the version-change transaction `upgrade`, one arm
/// per pair this build knows: a new database is made as version 1 and then upgraded, so both
/// paths run the same steps.
fn migrate(db: &Database, upgrade: Option<&Transaction>, old: u32, new: u32) -> Result<(), String> {
    let v1_to_v2 = || {
        let upgrade = upgrade.ok_or("no version-change transaction")?;
        upgrade
            .object_store(RECORDS)
            .and_then(|records| records.delete_index(V1_BY_HLC))
            .map_err(|e| e.to_string())
    };
    let v2_to_v3 = || {
        db.create_object_store(PACKS, ObjectStoreParams::new())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    match (old, new) {
        (0, 3) => {
            create_v1(db).map_err(|e| e.to_string())?;
            v1_to_v2()?;
            v2_to_v3()
        }
        (1, 3) => {
            v1_to_v2()?;
            v2_to_v3()
        }
        (2, 3) => v2_to_v3(),
        (old, new) => Err(format!("no migration from version {old} to {new}")),
    }
}

fn create_v1(db: &Database) -> Result<(), idb::Error> {
    let mut records = ObjectStoreParams::new();
    records.key_path(Some(KeyPath::new_array(["p", "k"])));
    let records = db.create_object_store(RECORDS, records)?;
    records.create_index(
        V1_BY_HLC,
        KeyPath::new_single("h"),
        Some(IndexParams::new()),
    )?;

    db.create_object_store(META, ObjectStoreParams::new())?;

    let mut vectors = ObjectStoreParams::new();
    vectors.key_path(Some(KeyPath::new_array(["kind", "plugin"])));
    db.create_object_store(VECTORS, vectors)?;

    let mut slots = ObjectStoreParams::new();
    slots.key_path(Some(KeyPath::new_single("slot")));
    db.create_object_store(SLOTS, slots)?;

    db.create_object_store(EPOCHS, ObjectStoreParams::new())?;
    Ok(())
}
