//! Per-user caps on what the server stores: plugins, nodes (writers, and device claims),
//! records and content bytes. A push (or a content upload) that would take its user past one is
//! refused whole with 413 `user_quota_exceeded` naming the cap (docs/ERRORS.md). The counts are read inside the round's
//! transaction, after the push was written and before it commits, and only when the round added
//! something of that kind, so rounds that only overwrite or read pay nothing.

use clientdata::core::replica::{ReplicaError, ServeStats};
use clientdata::core::Error;

use crate::backend::Transaction;

/// What one user may hold on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct UserCaps {
    /// Most plugins one user may hold (a plugin counts once it has a record or coverage).
    #[arg(long = "max-plugins-per-user", env = "CLIENTDATA_MAX_PLUGINS_PER_USER", default_value_t = UserCaps::DEFAULT.plugins, value_name = "N")]
    pub plugins: u64,

    /// Most node ids one user may use: writers of its records, and device claims.
    #[arg(long = "max-nodes-per-user", env = "CLIENTDATA_MAX_NODES_PER_USER", default_value_t = UserCaps::DEFAULT.nodes, value_name = "N")]
    pub nodes: u64,

    /// Most records (tombstones included) one user may hold, over all its plugins.
    #[arg(long = "max-records-per-user", env = "CLIENTDATA_MAX_RECORDS_PER_USER", default_value_t = UserCaps::DEFAULT.records, value_name = "N")]
    pub records: u64,

    /// Most bytes of content (values synced by reference, `PUT /sync/content`) one user may
    /// hold over all its datasets; an upload past it is refused with 413.
    #[arg(long = "max-content-bytes-per-user", env = "CLIENTDATA_MAX_CONTENT_BYTES_PER_USER", default_value_t = UserCaps::DEFAULT.content_bytes, value_name = "BYTES")]
    pub content_bytes: u64,

    /// How long a user's deletions are held: a tombstone older than this that every device
    /// syncing within it has received is collected (docs/PROTOCOL.md, tombstone collection).
    #[arg(long = "tombstone-horizon-secs", env = "CLIENTDATA_TOMBSTONE_HORIZON_SECS", default_value_t = UserCaps::DEFAULT.tombstone_horizon_secs, value_name = "SECS")]
    pub tombstone_horizon_secs: u64,

    /// Most devices (the request's `device`) whose store epoch one dataset remembers for
    /// wiped-store detection; a new one beyond it forgets the least recently seen.
    #[arg(long = "max-devices-per-dataset", env = "CLIENTDATA_MAX_DEVICES_PER_DATASET", default_value_t = UserCaps::DEFAULT.devices, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub devices: u64,
}

impl UserCaps {
    /// The defaults: far above what one user of a browser app holds, low enough that no user's
    /// unscoped round or count ever costs the server much.
    pub const DEFAULT: UserCaps = UserCaps {
        plugins: 10_000,
        nodes: 1_000,
        records: 1_000_000,
        content_bytes: 1 << 30,
        tombstone_horizon_secs: clientdata::core::gc::DEFAULT_HORIZON_MS / 1000,
        devices: 1_000,
    };

    /// No caps (operations that import a user's export as it is).
    pub const NONE: UserCaps = UserCaps {
        plugins: u64::MAX,
        nodes: u64::MAX,
        records: u64::MAX,
        content_bytes: u64::MAX,
        tombstone_horizon_secs: UserCaps::DEFAULT.tombstone_horizon_secs,
        devices: UserCaps::DEFAULT.devices,
    };
}

impl Default for UserCaps {
    fn default() -> Self {
        UserCaps::DEFAULT
    }
}

/// What a transaction counts for the caps: each count stops at `upto`, so it costs at most that
/// many index entries however much the user holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Distinct plugins with coverage.
    Plugins,
    /// Distinct node ids with coverage or a claim.
    Nodes,
    /// Stored records.
    Records,
}

/// Refuses the round when what it added takes the user past a cap. `claimed`: the round wrote a
/// node claim.
pub fn check<T: Transaction>(
    tx: &mut T,
    stats: &ServeStats,
    claimed: bool,
    caps: &UserCaps,
) -> Result<(), ReplicaError<T::Error>> {
    let checks = [
        (
            stats.new_plugins > 0,
            Counted::Plugins,
            caps.plugins,
            "plugins",
        ),
        (
            stats.new_writers > 0 || claimed,
            Counted::Nodes,
            caps.nodes,
            "nodes",
        ),
        (
            stats.new_keys > 0,
            Counted::Records,
            caps.records,
            "records",
        ),
    ];
    for (grew, what, max, cap) in checks {
        if grew && max < u64::MAX {
            let held = tx
                .count(what, max.saturating_add(1))
                .map_err(ReplicaError::Store)?;
            if held > max {
                return Err(Error::UserQuotaExceeded { cap, max }.into());
            }
        }
    }
    Ok(())
}
