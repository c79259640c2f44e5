//! The IndexedDB layout of one clientdata database, and opening it.
//!
//! Built on `idb`, the crate underneath rexie, because rexie hides the two things this needs:
//! the upgrade callback (for explicit `match (old, new)` migrations instead of a builder that
//! deletes every store it is not told about) and the database's `versionchange` event (on which
//! we close, so a newer tab's upgrade is never blocked by this one).
//!
//! Stores (version 1):
//! - `records`: one row per (plugin, key), keyPath `["p", "k"]`, so identity is a tuple and
//!   never a concatenated string. Index `by_hlc` on `h` (the sortable HLC text) for "records
//!   above these watermarks, in HLC order".
//! - `meta`: small named values (store epoch, schema notes), out-of-line string keys.
//! - `vectors`: watermarks, keyPath `["kind", "plugin"]`.
//! - `slots`: writer slots (DESIGN invariant 3), keyPath `slot` (a number): node id, clock state.
//! - `epochs`: fencing epochs of locks, out-of-line key = lock name, value = number.

use std::cell::Cell;
use std::rc::Rc;

use idb::{Database, DatabaseEvent, Factory, IndexParams, KeyPath, ObjectStoreParams};

/// Current schema version.
pub const VERSION: u32 = 1;

/// Object store names.
pub const RECORDS: &str = "records";
/// See module docs.
pub const META: &str = "meta";
/// See module docs.
pub const VECTORS: &str = "vectors";
/// See module docs.
pub const SLOTS: &str = "slots";
/// See module docs.
pub const EPOCHS: &str = "epochs";
/// Index of `records` on the HLC text.
pub const BY_HLC: &str = "by_hlc";

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
    let migration_error: Rc<Cell<Option<String>>> = Rc::default();
    let report = migration_error.clone();
    request.on_upgrade_needed(move |event| {
        let result = (|| -> Result<(), idb::Error> {
            let db = event.database()?;
            let old = event.old_version()?;
            let new = event.new_version()?.unwrap_or(VERSION);
            migrate(&db, old, new)
        })();
        if let Err(e) = result {
            report.set(Some(e.to_string()));
        }
    });
    let result = request.await;
    if let Some(e) = migration_error.take() {
        return Err(OpenError::Failed(format!("migration failed: {e}")));
    }
    let raw: web_sys::IdbDatabase = result.map_err(|e| OpenError::Failed(e.to_string()))?.into();
    let closer = raw.clone();
    let mut db = Database::from(raw);
    db.on_version_change(move |_| closer.close());
    // The handler must outlive this function; it is dropped with the JS database object.
    db.forget_callbacks();
    Ok(db)
}

/// Every step from `old` to `new`, one arm per version.
fn migrate(db: &Database, old: u32, new: u32) -> Result<(), idb::Error> {
    for version in old + 1..=new {
        // One arm per schema version; later versions add arms here.
        #[allow(clippy::single_match)]
        match version {
            1 => create_v1(db)?,
            _ => {}
        }
    }
    Ok(())
}

fn create_v1(db: &Database) -> Result<(), idb::Error> {
    let mut records = ObjectStoreParams::new();
    records.key_path(Some(KeyPath::new_array(["p", "k"])));
    let records = db.create_object_store(RECORDS, records)?;
    records.create_index(BY_HLC, KeyPath::new_single("h"), Some(IndexParams::new()))?;

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
