//! The store epoch: a random id given to a local store when it is created, kept in the store
//! (IndexedDB `meta`) and mirrored in localStorage (`clientdata:<db>:epoch`). Browsers evict
//! IndexedDB under storage pressure while localStorage stays (Chromium, Firefox), so a store
//! created while the mirror still names an older epoch was wiped behind our back: the open
//! reports it, and the first sync after it says so (`wiped` in the result, a `store-wiped`
//! event, the verifier's details). Rows, watermarks and slots went with the store, so the store
//! syncs from nothing: everything the server holds comes back, and journaled writes that the
//! wipe caught uncommitted are replayed from localStorage.
//!
//! A wipe of both (Safari's seven-day rule, "clear site data") leaves nothing on the device
//! that outlives the store. With an app-named device (`sync.device`) every round carries the
//! epoch, the server keeps the last one per device, and a reply's `replacedStoreEpoch` reports such a
//! wipe through the same path (`Db::replaced_by_server`); without one the store is a new
//! device. The server's copy is whole either way. Pure; tested natively.

/// The epoch of an opened store and what the open learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    /// This store's epoch.
    pub epoch: String,
    /// The epoch of the store this one replaced, when it was wiped behind our back.
    pub wiped: Option<String>,
    /// The localStorage mirror must be (re)written with `epoch`.
    pub write_mirror: bool,
}

/// Decides from the store's epoch (`created`: this open created it) and the mirror's.
pub fn reconcile(stored: &str, created: bool, mirror: Option<&str>) -> Epoch {
    let wiped = mirror
        .filter(|m| created && *m != stored)
        .map(str::to_owned);
    Epoch {
        epoch: stored.to_owned(),
        wiped,
        write_mirror: mirror != Some(stored),
    }
}

/// The localStorage key of database `name`'s mirror.
pub fn mirror_key(name: &str) -> String {
    format!("clientdata:{name}:epoch")
}

/// A fresh epoch from 64 random bits, as 16 hex digits.
pub fn format_epoch(bits: u64) -> String {
    format!("{bits:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_under_an_older_mirror_was_wiped() {
        assert_eq!(
            reconcile("bb", true, Some("aa")),
            Epoch {
                epoch: "bb".into(),
                wiped: Some("aa".into()),
                write_mirror: true
            }
        );
    }

    #[test]
    fn a_first_store_an_existing_store_and_a_lost_mirror_are_no_wipe() {
        let first = reconcile("aa", true, None);
        assert_eq!((first.wiped, first.write_mirror), (None, true));
        let again = reconcile("aa", false, Some("aa"));
        assert_eq!((again.wiped, again.write_mirror), (None, false));
        // localStorage cleared, the store intact: nothing was lost, the mirror is rewritten.
        let lost_mirror = reconcile("aa", false, None);
        assert_eq!((lost_mirror.wiped, lost_mirror.write_mirror), (None, true));
        // Another tab created the store a moment ago and mirrored it already.
        let raced = reconcile("aa", false, Some("aa"));
        assert_eq!(raced.wiped, None);
        // A store older than the mirror (another database's mirror? never: keys are per name).
        assert_eq!(reconcile("aa", false, Some("bb")).wiped, None);
        assert_eq!(format_epoch(255), "00000000000000ff");
        assert_eq!(mirror_key("a"), "clientdata:a:epoch");
    }
}
