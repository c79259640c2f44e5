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
    /// The database's lock channel, `BroadcastChannel("clientdata-locks:<db>")`: waiters and
    /// `inspect` ask holders to publish their leases there. One per database, shared by every
    /// lock of the tab.
    pub channel: String,
}

impl Names {
    /// Names for the lock `key` of database `db`.
    pub fn new(db: &str, key: &str) -> Names {
        let (db, key) = (escape_part(db), escape_part(key));
        Names {
            lock: format!("clientdata:{db}:lock:{key}"),
            lease: format!("clientdata:{db}:lease:{key}"),
            // Not under `clientdata:`, where the store's channels are (any database name).
            channel: format!("clientdata-locks:{db}"),
        }
    }
}

/// What a waiter does at time `now_ms`, having started waiting at `started_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStep {
    /// Keep waiting in the Web Locks queue; look again after this many ms.
    Sleep(u64),
    /// No live lease in sight: ask the holder to publish its lease (over the lock channel),
    /// then look again after this many ms.
    Ask(u64),
    /// The holder has shown no sign of life for longer than the ttl: steal the Web Lock.
    Steal,
    /// `maxWaitMs` has passed: give up with `LockTimeoutError`.
    GiveUp,
}

/// The waiter's rule. Leases are published on demand: a holder writes one only when asked
/// (by a waiter or `inspect`), so the waiter asks whenever it sees no live lease, and the
/// holder's last sign of life is the later of its lease term start and the waiter's *first*
/// ask since it last saw a live lease (`asked_ms`; the caller forgets it on a live lease).
/// Silent for longer than the ttl (the lease's, else the waiter's own) counts as stale: a lock
/// held with no lease within the ttl may be stolen. A stale lease is asked about first (it may
/// be a crashed tab's leftover while a live holder never published), so a hung holder is
/// stolen between one and two ttls after its last renewal. The deadline wins over everything.
pub fn wait_step(
    now_ms: u64,
    started_ms: u64,
    opts: &LockOptions,
    lease: Option<&Lease>,
    asked_ms: Option<u64>,
) -> WaitStep {
    let deadline = started_ms.saturating_add(opts.max_wait_ms);
    if now_ms >= deadline {
        return WaitStep::GiveUp;
    }
    let sleep = opts.retry_interval_ms.min(deadline - now_ms);
    if lease.is_some_and(|l| !l.is_stale(now_ms)) {
        return WaitStep::Sleep(sleep);
    }
    let Some(asked) = asked_ms else {
        return WaitStep::Ask(sleep);
    };
    let last_sign = lease.map_or(asked, |l| l.acquired_at_ms.max(asked));
    let ttl = lease.map_or(opts.ttl_ms, |l| l.ttl_ms);
    if now_ms > last_sign.saturating_add(ttl) {
        return WaitStep::Steal;
    }
    // Asked again each round: a holder granted after the first ask (the queue moved on)
    // hears of it too.
    WaitStep::Ask(sleep)
}

/// The epoch a new grant proposes: one above the largest this tab knows of (its own grants,
/// what it read from `epochs`, what its fenced writes and steals stored). A proposal is only
/// a handle: a grant's epoch becomes final at its first fenced write ([`fence_grant`]).
pub fn propose_epoch(tab_last: u64) -> u64 {
    tab_last.saturating_add(1)
}

/// The value a steal (stale takeover or `forceRelease`) stores, both as the lock's newest
/// epoch and as its *fence*: above everything stored and at least the thief's proposal.
pub fn bump(stored: Option<u64>, proposed: u64) -> u64 {
    stored.map_or(proposed, |s| s.saturating_add(1).max(proposed))
}

/// What a write made under `epoch` finds in `epochs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceCheck {
    /// The stored epoch is this one: write.
    Current,
    /// Nothing newer is stored (the grant's own bump has not been stored, e.g. it failed):
    /// raise the stored epoch to this one in the same transaction, then write.
    Raise,
    /// The grant's first fenced write: store this epoch (above everything stored) in the same
    /// transaction, make it the grant's, then write.
    Claim(u64),
    /// A newer epoch exists: this holder lost the lock; write nothing.
    Stale(u64),
}

/// The fencing rule for an epoch this context knows nothing else about (a grant of another
/// context, or one released here).
pub fn fence(stored: Option<u64>, epoch: u64) -> FenceCheck {
    match stored {
        Some(s) if s > epoch => FenceCheck::Stale(s),
        Some(s) if s == epoch => FenceCheck::Current,
        _ => FenceCheck::Raise,
    }
}

/// A grant of this context, as its fenced writes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEpoch {
    /// Granted, no fenced write yet. `floor`: the newest *fence* (epoch stored by a steal)
    /// this context knew of when the grant was made.
    Unclaimed {
        /// See above.
        floor: u64,
    },
    /// Its first fenced write (or its steal) stored this epoch.
    Claimed(u64),
    /// Taken away (stolen, force-released) and released here: nothing more may be written.
    Lost,
}

/// The epoch rule (docs/DESIGN.md invariant 8). A grant needs no stored epoch until it fences
/// a write; its first fenced write takes its epoch from `epochs` inside the write's own
/// transaction: one above the stored epoch (or the grant's proposal if that is higher), so
/// two grants never fence writes with the same epoch, and every later grant's epoch is
/// greater than every epoch a write was fenced with. A steal stores a *fence* (`fenced`):
/// a grant made before it (its `floor` is lower) is refused even if it never wrote; so is,
/// failing closed, a grant made after a steal this context had not heard of yet.
pub fn fence_grant(
    stored: Option<u64>,
    fenced: Option<u64>,
    grant: GrantEpoch,
    proposed: u64,
) -> FenceCheck {
    let newest = || stored.unwrap_or(0).max(fenced.unwrap_or(0));
    match grant {
        GrantEpoch::Lost => FenceCheck::Stale(newest()),
        // Nothing as new stored (storage cleared, or the claiming write aborted): claim again.
        GrantEpoch::Claimed(epoch) => match fence(stored, epoch) {
            FenceCheck::Raise => FenceCheck::Claim(epoch),
            other => other,
        },
        GrantEpoch::Unclaimed { floor } if fenced.unwrap_or(0) > floor => {
            FenceCheck::Stale(newest())
        }
        GrantEpoch::Unclaimed { .. } => FenceCheck::Claim(bump(stored, proposed)),
    }
}

/// A random nonce: 128 bits as 32 lowercase hex digits. The bits come from a pool refilled
/// 32 nonces at a time: one `getrandom` per grant (`crypto.getRandomValues`, ~9 µs in
/// Chromium) cost more than the rest of a grant's bookkeeping.
pub fn new_nonce() -> Result<String, getrandom::Error> {
    const NONCE: usize = 16;
    thread_local! {
        static POOL: std::cell::RefCell<([u8; 32 * NONCE], usize)> =
            const { std::cell::RefCell::new(([0; 32 * NONCE], 32 * NONCE)) };
    }
    POOL.with(|pool| {
        let (bytes, used) = &mut *pool.borrow_mut();
        if *used == bytes.len() {
            getrandom::fill(bytes)?;
            *used = 0;
        }
        let out = crate::core::hex::encode(&bytes[*used..*used + NONCE]);
        *used += NONCE;
        Ok(out)
    })
}

/// A nonce of [`new_nonce`] as four 32-bit words, each spelling 8 of its digits (JS spells
/// them back: crossing the text itself costs a `TextDecoder` call). Other than lowercase hex
/// digits read as 0.
pub fn nonce_words(nonce: &str) -> [u32; 4] {
    let mut words = [0u32; 4];
    for (i, b) in nonce.bytes().take(32).enumerate() {
        let digit = crate::core::hex::digit(b).unwrap_or(0);
        words[i / 8] = words[i / 8] << 4 | u32::from(digit);
    }
    words
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
        assert_eq!(n.channel, "clientdata-locks:supervisor");
        assert_eq!(Names::new("a:b", "k").channel, "clientdata-locks:a%3Ab");
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
    fn waiter_sleeps_on_a_live_lease_steals_stale_holders_and_gives_up_at_the_deadline() {
        let opts = LockOptions {
            ttl_ms: 300,
            retry_interval_ms: 100,
            max_wait_ms: 1_000,
            lock_key: None,
        };
        let live = lease_at(0, 300);
        assert_eq!(
            wait_step(0, 0, &opts, Some(&live), None),
            WaitStep::Sleep(100)
        );
        assert_eq!(
            wait_step(300, 0, &opts, Some(&live), None),
            WaitStep::Sleep(100)
        );
        // A stale lease: ask once (the lease may be a leftover and the holder another),
        // then steal when the holder stays silent past the ttl from the last sign of life.
        assert_eq!(
            wait_step(301, 0, &opts, Some(&live), None),
            WaitStep::Ask(100)
        );
        assert_eq!(
            wait_step(301, 0, &opts, Some(&live), Some(0)),
            WaitStep::Steal
        );
        assert_eq!(
            wait_step(400, 0, &opts, Some(&live), Some(200)),
            WaitStep::Ask(100),
            "asked at 200: the holder has until 500"
        );
        assert_eq!(
            wait_step(501, 0, &opts, Some(&live), Some(200)),
            WaitStep::Steal
        );
        assert_eq!(
            wait_step(950, 0, &opts, None, Some(900)),
            WaitStep::Ask(50),
            "never sleeps past the deadline"
        );
        assert_eq!(wait_step(2_000, 0, &opts, None, None), WaitStep::GiveUp);
        assert_eq!(
            wait_step(1_000, 0, &opts, Some(&live), Some(0)),
            WaitStep::GiveUp,
            "deadline wins over staleness"
        );
        let zero = LockOptions {
            max_wait_ms: 0,
            ..opts
        };
        assert_eq!(wait_step(5, 5, &zero, None, None), WaitStep::GiveUp);
    }

    #[test]
    fn a_holder_that_publishes_no_lease_within_the_ttl_counts_as_stale() {
        let opts = LockOptions {
            ttl_ms: 300,
            retry_interval_ms: 100,
            max_wait_ms: 10_000,
            lock_key: None,
        };
        // No lease at the first look: ask, keep asking while the ttl runs from the first ask.
        assert_eq!(wait_step(100, 0, &opts, None, None), WaitStep::Ask(100));
        assert_eq!(
            wait_step(200, 0, &opts, None, Some(100)),
            WaitStep::Ask(100)
        );
        assert_eq!(
            wait_step(400, 0, &opts, None, Some(100)),
            WaitStep::Ask(100)
        );
        assert_eq!(wait_step(401, 0, &opts, None, Some(100)), WaitStep::Steal);
        // The holder answered at 150 with its own (longer) ttl: alive until 150 + 1000. The
        // waiter forgets its ask once it sees a live lease, so a lease going stale is asked
        // about again before anything is stolen.
        let answered = lease_at(150, 1_000);
        assert_eq!(
            wait_step(1_100, 0, &opts, Some(&answered), None),
            WaitStep::Sleep(100)
        );
        assert_eq!(
            wait_step(1_151, 0, &opts, Some(&answered), None),
            WaitStep::Ask(100)
        );
        assert_eq!(
            wait_step(2_151, 0, &opts, Some(&answered), Some(1_151)),
            WaitStep::Ask(100),
            "silence is measured from the ask, with the holder's ttl"
        );
        assert_eq!(
            wait_step(2_152, 0, &opts, Some(&answered), Some(1_151)),
            WaitStep::Steal
        );
    }

    #[test]
    fn epoch_proposals_and_steals_only_move_forwards() {
        assert_eq!(propose_epoch(0), 1);
        assert_eq!(propose_epoch(7), 8);
        assert_eq!(propose_epoch(u64::MAX), u64::MAX, "saturates, never wraps");
        assert_eq!(bump(None, 1), 1);
        assert_eq!(bump(Some(4), 9), 9, "a proposal above the store is kept");
        assert_eq!(
            bump(Some(9), 3),
            10,
            "a thief that knew less still lands above everything stored"
        );
    }

    #[test]
    fn first_fenced_writes_take_their_epoch_from_the_store_and_never_reuse_one() {
        let fresh = GrantEpoch::Unclaimed { floor: 0 };
        // The first claim keeps the proposal when nothing as new is stored.
        assert_eq!(fence_grant(None, None, fresh, 7), FenceCheck::Claim(7));
        // Two contexts that never talked, both proposing 1, alternating grants: each first
        // write claims one above the other's, so the older epoch is refused afterwards.
        let mut stored = None;
        let mut claims = Vec::new();
        for _ in 0..6 {
            let FenceCheck::Claim(c) = fence_grant(stored, None, fresh, 1) else {
                panic!("a first write under a live grant is never refused here");
            };
            stored = Some(c);
            claims.push(c);
        }
        assert_eq!(claims, [1, 2, 3, 4, 5, 6]);
        for old in &claims[..5] {
            assert_eq!(
                fence_grant(stored, None, GrantEpoch::Claimed(*old), 1),
                FenceCheck::Stale(6)
            );
            assert_eq!(fence(stored, *old), FenceCheck::Stale(6));
        }
        assert_eq!(
            fence_grant(stored, None, GrantEpoch::Claimed(6), 1),
            FenceCheck::Current
        );
        // The claim was lost (aborted transaction, cleared storage): claimed again, same value.
        assert_eq!(
            fence_grant(Some(5), None, GrantEpoch::Claimed(6), 1),
            FenceCheck::Claim(6)
        );
    }

    #[test]
    fn a_steal_fences_out_grants_made_before_it_even_without_a_write() {
        // A victim granted when the newest fence was 3 never wrote; a steal stored 8 as the
        // lock's epoch and its fence.
        let victim = GrantEpoch::Unclaimed { floor: 3 };
        let fenced = bump(Some(7), 2);
        assert_eq!(fenced, 8);
        assert_eq!(
            fence_grant(Some(fenced), Some(fenced), victim, 5),
            FenceCheck::Stale(8)
        );
        // A grant made after the steal, knowing of it, claims above it.
        let after = GrantEpoch::Unclaimed { floor: 8 };
        assert_eq!(
            fence_grant(Some(8), Some(8), after, 2),
            FenceCheck::Claim(9)
        );
        // A victim that had claimed before the steal is stale by its epoch alone.
        assert_eq!(
            fence_grant(Some(8), Some(8), GrantEpoch::Claimed(7), 7),
            FenceCheck::Stale(8)
        );
        // A grant released here after it was taken away writes nothing, ever.
        assert_eq!(
            fence_grant(Some(8), Some(8), GrantEpoch::Lost, 99),
            FenceCheck::Stale(8)
        );
    }

    #[test]
    fn fencing_an_unknown_epoch_rejects_only_newer_ones() {
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
        let [w0, w1, w2, w3] = nonce_words(&a);
        assert_eq!(format!("{w0:08x}{w1:08x}{w2:08x}{w3:08x}"), a);
    }

    #[test]
    fn nonces_stay_distinct_across_pool_refills() {
        let nonces: std::collections::BTreeSet<String> =
            (0..100).map(|_| new_nonce().unwrap()).collect();
        assert_eq!(nonces.len(), 100);
        assert!(nonces.iter().all(|n| n.len() == 32));
    }
}
