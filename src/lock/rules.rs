//! Every rule about a lock, with time passed in: options and their ranges, names, renewal
//! cadence, what a waiter does next, epoch proposals and fencing decisions. Pure, tested
//! natively; the browser parts (`distributed_lock`, `acquire`, `fencing`) only carry these
//! decisions out. The lease record itself is `lease`. (Over 300 lines only with its tests:
//! each rule has its own, with injected time.)

use super::lease::Lease;
use super::LockError;

/// Default lease time to live.
pub const DEFAULT_TTL_MS: u64 = 30_000;
/// Default interval between staleness checks while waiting.
pub const DEFAULT_RETRY_INTERVAL_MS: u64 = 1_000;
/// Default longest wait before `LockTimeoutError`.
pub const DEFAULT_MAX_WAIT_MS: u64 = 60_000;
/// Upper bound of every duration option (about 24 days, what `setTimeout` accepts).
pub const MAX_DURATION_MS: u64 = i32::MAX as u64;

/// `createLock` options, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOptions {
    /// Names the lock instead of the path (several paths can share one lock).
    pub lock_key: Option<String>,
    /// A holder whose last renewal is older than this is stale and may be stolen.
    pub ttl_ms: u64,
    /// How often a waiter checks whether the holder went stale.
    pub retry_interval_ms: u64,
    /// How long `acquire` waits before `LockTimeoutError` (0: only if free right now).
    pub max_wait_ms: u64,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            lock_key: None,
            ttl_ms: DEFAULT_TTL_MS,
            retry_interval_ms: DEFAULT_RETRY_INTERVAL_MS,
            max_wait_ms: DEFAULT_MAX_WAIT_MS,
        }
    }
}

impl LockOptions {
    /// Checks ranges: ttl ≥ 3 ms (so renewals every ttl/3 are at least 1 ms apart), retry
    /// interval ≥ 1 ms, everything ≤ [`MAX_DURATION_MS`], lock key non-empty.
    pub fn validate(&self) -> Result<(), LockError> {
        let bad = |what: &str| Err(LockError::InvalidOptions(what.to_owned()));
        if self.ttl_ms < 3 || self.ttl_ms > MAX_DURATION_MS {
            return bad("ttlMs must be between 3 and 2^31-1");
        }
        if self.retry_interval_ms < 1 || self.retry_interval_ms > MAX_DURATION_MS {
            return bad("retryIntervalMs must be between 1 and 2^31-1");
        }
        if self.max_wait_ms > MAX_DURATION_MS {
            return bad("maxWaitMs must be between 0 and 2^31-1");
        }
        if self.lock_key.as_deref() == Some("") {
            return bad("lockKey must not be empty");
        }
        Ok(())
    }

    /// The key naming the lock: `lockKey`, else the path.
    pub fn key<'a>(&'a self, path: &'a str) -> &'a str {
        self.lock_key.as_deref().unwrap_or(path)
    }

    /// How often a live holder rewrites its lease: ttl/3, so two renewals can be missed
    /// before anyone may call it stale.
    pub fn renew_interval_ms(&self) -> u64 {
        (self.ttl_ms / 3).max(1)
    }
}

/// Escapes one component of a `:`-separated name so that no database name or key can make two
/// different (db, key) pairs produce the same name: `%` → `%25`, `:` → `%3A`. Plain names are
/// unchanged.
pub fn escape_part(part: &str) -> std::borrow::Cow<'_, str> {
    if !part.contains([':', '%']) {
        return part.into();
    }
    part.replace('%', "%25").replace(':', "%3A").into()
}

/// Storage names of one lock of database `db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The Web Lock name, `clientdata:<db>:lock:<key>`; also the key of its row in `epochs`.
    pub lock: String,
    /// The localStorage key of the lease, `clientdata:<db>:lease:<key>`.
    pub lease: String,
    /// The localStorage key of the last granted epoch (a hint), `clientdata:<db>:epoch:<key>`.
    pub epoch: String,
}

impl Names {
    /// Names for the lock `key` of database `db`.
    pub fn new(db: &str, key: &str) -> Names {
        let (db, key) = (escape_part(db), escape_part(key));
        Names {
            lock: format!("clientdata:{db}:lock:{key}"),
            lease: format!("clientdata:{db}:lease:{key}"),
            epoch: format!("clientdata:{db}:epoch:{key}"),
        }
    }
}

/// What a waiter does at time `now_ms`, having started waiting at `started_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStep {
    /// Keep waiting in the Web Locks queue; look again after this many ms.
    Sleep(u64),
    /// The holder's lease is stale: steal the Web Lock.
    Steal,
    /// `maxWaitMs` has passed: give up with `LockTimeoutError`.
    GiveUp,
}

/// The waiter's rule. The deadline wins over staleness; with no lease (a holder that wrote
/// none, or whose write has not reached this tab) there is no evidence of staleness, so the
/// waiter only waits.
pub fn wait_step(
    now_ms: u64,
    started_ms: u64,
    opts: &LockOptions,
    lease: Option<&Lease>,
) -> WaitStep {
    let deadline = started_ms.saturating_add(opts.max_wait_ms);
    if now_ms >= deadline {
        return WaitStep::GiveUp;
    }
    if lease.is_some_and(|l| l.is_stale(now_ms)) {
        return WaitStep::Steal;
    }
    WaitStep::Sleep(opts.retry_interval_ms.min(deadline - now_ms))
}

/// The epoch a new grant proposes: one above the largest this tab knows of (its own last
/// grant, and the hint every holder leaves in localStorage).
pub fn propose_epoch(hint: Option<u64>, tab_last: u64) -> u64 {
    hint.unwrap_or(0).max(tab_last) + 1
}

/// What the grant-time transaction on `epochs` does with the stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    /// The proposal is above everything stored: store it; the grant's epoch is current.
    Store(u64),
    /// Another grant already stored this proposal or more (a localStorage hint that had not
    /// yet reached this tab, or a cleared localStorage). Store `stored + 1`: that fences out
    /// both the other grant and this one, whose epoch is then never current; the next grant
    /// proposes above it. Fails closed: a spurious `LockLostError`, never two current holders.
    Supersede(u64),
}

/// The bump rule.
pub fn bump(stored: Option<u64>, proposed: u64) -> Bump {
    match stored {
        Some(s) if s >= proposed => Bump::Supersede(s + 1),
        _ => Bump::Store(proposed),
    }
}

/// What a write made under `epoch` finds in `epochs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceCheck {
    /// The stored epoch is this one: write.
    Current,
    /// Nothing newer is stored (the grant's own bump has not been stored, e.g. it failed):
    /// raise the stored epoch to this one in the same transaction, then write.
    Raise,
    /// A newer epoch exists: this holder lost the lock; write nothing.
    Stale(u64),
}

/// The fencing rule.
pub fn fence(stored: Option<u64>, epoch: u64) -> FenceCheck {
    match stored {
        Some(s) if s > epoch => FenceCheck::Stale(s),
        Some(s) if s == epoch => FenceCheck::Current,
        _ => FenceCheck::Raise,
    }
}

/// A random nonce: 128 bits as 32 lowercase hex digits.
pub fn new_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let mut out = String::with_capacity(32);
    for b in bytes {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease_at(ms: u64, ttl: u64) -> Lease {
        Lease::granted(
            "tab-1".into(),
            "https://a.example".into(),
            1,
            ms,
            ttl,
            "n".into(),
            "p".into(),
            1,
        )
    }

    #[test]
    fn defaults_match_the_issue_and_validate() {
        let o = LockOptions::default();
        assert_eq!(
            (o.ttl_ms, o.retry_interval_ms, o.max_wait_ms),
            (30_000, 1_000, 60_000)
        );
        assert_eq!(o.validate(), Ok(()));
        assert_eq!(o.renew_interval_ms(), 10_000);
    }

    #[test]
    fn options_out_of_range_are_typed_errors() {
        for bad in [
            LockOptions {
                ttl_ms: 2,
                ..Default::default()
            },
            LockOptions {
                ttl_ms: MAX_DURATION_MS + 1,
                ..Default::default()
            },
            LockOptions {
                retry_interval_ms: 0,
                ..Default::default()
            },
            LockOptions {
                max_wait_ms: MAX_DURATION_MS + 1,
                ..Default::default()
            },
            LockOptions {
                lock_key: Some(String::new()),
                ..Default::default()
            },
        ] {
            assert_eq!(
                bad.validate().unwrap_err().code(),
                "invalid_lock_options",
                "{bad:?}"
            );
        }
        let zero_wait = LockOptions {
            max_wait_ms: 0,
            ..Default::default()
        };
        assert_eq!(zero_wait.validate(), Ok(()));
    }

    #[test]
    fn names_follow_the_layout_and_cannot_collide() {
        let n = Names::new("supervisor", "notes-app/export");
        assert_eq!(n.lock, "clientdata:supervisor:lock:notes-app/export");
        assert_eq!(n.lease, "clientdata:supervisor:lease:notes-app/export");
        assert_eq!(n.epoch, "clientdata:supervisor:epoch:notes-app/export");
        // Without escaping these two would both be "clientdata:x:lock:y:lock:z".
        let a = Names::new("x:lock:y", "z");
        let b = Names::new("x", "y:lock:z");
        assert_ne!(a.lock, b.lock);
        assert_ne!(Names::new("a%3A", "b").lock, Names::new("a:", "b").lock);
        let o = LockOptions {
            lock_key: Some("k".into()),
            ..Default::default()
        };
        assert_eq!(o.key("path"), "k");
        assert_eq!(LockOptions::default().key("path"), "path");
    }

    #[test]
    fn waiter_sleeps_steals_stale_holders_and_gives_up_at_the_deadline() {
        let opts = LockOptions {
            ttl_ms: 300,
            retry_interval_ms: 100,
            max_wait_ms: 1_000,
            lock_key: None,
        };
        let live = lease_at(0, 300);
        assert_eq!(wait_step(0, 0, &opts, Some(&live)), WaitStep::Sleep(100));
        assert_eq!(wait_step(300, 0, &opts, Some(&live)), WaitStep::Sleep(100));
        assert_eq!(wait_step(301, 0, &opts, Some(&live)), WaitStep::Steal);
        assert_eq!(
            wait_step(950, 0, &opts, None),
            WaitStep::Sleep(50),
            "never sleeps past the deadline"
        );
        assert_eq!(wait_step(2_000, 0, &opts, None), WaitStep::GiveUp);
        assert_eq!(
            wait_step(1_000, 0, &opts, Some(&live)),
            WaitStep::GiveUp,
            "deadline wins over staleness"
        );
        let zero = LockOptions {
            max_wait_ms: 0,
            ..opts
        };
        assert_eq!(wait_step(5, 5, &zero, None), WaitStep::GiveUp);
    }

    #[test]
    fn epochs_strictly_increase_and_conflicts_fence_out_both_grants() {
        assert_eq!(propose_epoch(None, 0), 1);
        assert_eq!(propose_epoch(Some(7), 3), 8);
        assert_eq!(
            propose_epoch(Some(2), 9),
            10,
            "a lagging hint never moves a tab backwards"
        );
        assert_eq!(bump(None, 1), Bump::Store(1));
        assert_eq!(bump(Some(4), 5), Bump::Store(5));
        // Two tabs both proposed 6 (a lagging hint): the second to bump fences out both.
        assert_eq!(bump(Some(6), 6), Bump::Supersede(7));
        assert_eq!(fence(Some(7), 6), FenceCheck::Stale(7));
        // localStorage cleared: proposals restart at 1 but the database still says 9.
        assert_eq!(bump(Some(9), 1), Bump::Supersede(10));
        assert_eq!(propose_epoch(Some(10), 1), 11);
    }

    #[test]
    fn fencing_rejects_only_newer_epochs() {
        assert_eq!(fence(Some(5), 5), FenceCheck::Current);
        assert_eq!(fence(Some(6), 5), FenceCheck::Stale(6));
        assert_eq!(fence(Some(4), 5), FenceCheck::Raise);
        assert_eq!(fence(None, 1), FenceCheck::Raise);
    }

    #[test]
    fn nonces_are_random_hex() {
        let a = new_nonce().unwrap();
        let b = new_nonce().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
