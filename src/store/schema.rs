//! The IndexedDB layout of one clientdata database, and opening it.
//!
//! Opened by `openDatabase` in `browser/idb_requests.js` (the request's callbacks are a few
//! lines of JS; no IndexedDB wrapper crate is linked) with the upgrade step in Rust: explicit
//! `match (old, new)` migrations on web-sys types, never a builder that deletes every store it
//! is not told about. The connection closes itself on `versionchange`, so a newer tab's upgrade
//! is never blocked by this one.
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

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbObjectStoreParameters, IdbTransaction};

use crate::browser::idb_requests::open_database;
use crate::lock::env::describe;

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

/// Opens (creating or migrating) the database `name`. The returned connection closes itself
/// when another connection asks for a version change.
pub async fn open(name: &str) -> Result<IdbDatabase, OpenError> {
    let migrate =
        Closure::<dyn FnMut(IdbDatabase, IdbTransaction, u32, u32) -> Option<String>>::new(
            |db: IdbDatabase, upgrade: IdbTransaction, old: u32, new: u32| {
                migrate(&db, &upgrade, old, new).err()
            },
        );
    let opening = open_database(
        name,
        VERSION,
        UPGRADE_BLOCKED_EVENT,
        VERSION_CHANGE_EVENT,
        &migrate,
    )
    .map_err(|e| OpenError::Unavailable(describe(&e)))?;
    // `migrate` lives until the open settles: the upgrade runs before that.
    let db = JsFuture::from(opening)
        .await
        .map_err(|e| OpenError::Failed(describe(&e)))?;
    Ok(db.unchecked_into())
}

/// The upgrade from `old` to `new` inside the version-change transaction `upgrade`, one arm
/// per pair this build knows: a new database is made as version 1 and then upgraded, so both
/// paths run the same steps.
fn migrate(db: &IdbDatabase, upgrade: &IdbTransaction, old: u32, new: u32) -> Result<(), String> {
    let v1_to_v2 = || {
        upgrade
            .object_store(RECORDS)
            .and_then(|records| records.delete_index(V1_BY_HLC))
            .map_err(|e| describe(&e))
    };
    let v2_to_v3 = || {
        db.create_object_store(PACKS)
            .map(|_| ())
            .map_err(|e| describe(&e))
    };
    match (old, new) {
        (0, 3) => {
            create_v1(db).map_err(|e| describe(&e))?;
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

fn create_v1(db: &IdbDatabase) -> Result<(), JsValue> {
    let keyed = |name: &str, key_path: &JsValue| {
        let params = IdbObjectStoreParameters::new();
        params.set_key_path(key_path);
        db.create_object_store_with_optional_parameters(name, &params)
    };
    let pair = |a: &str, b: &str| JsValue::from(js_sys::Array::of2(&a.into(), &b.into()));
    let records = keyed(RECORDS, &pair("p", "k"))?;
    records.create_index_with_str(V1_BY_HLC, "h")?;
    db.create_object_store(META)?;
    keyed(VECTORS, &pair("kind", "plugin"))?;
    keyed(SLOTS, &"slot".into())?;
    db.create_object_store(EPOCHS)?;
    Ok(())
}
