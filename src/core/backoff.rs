//! How long automatic sync waits after failed rounds: exponential from [`BASE_MS`], doubling per
//! consecutive failure up to [`CAP_MS`], with "equal jitter" (a uniform draw in the upper half)
//! so many clients recovering from the same outage do not return in lockstep, and never sooner
//! than the server's `Retry-After` (itself clamped to the cap: a server cannot park a client for
//! a day). Pure: the random draw and the `Retry-After` are passed in.

/// Delay after the first failed round.
pub const BASE_MS: u64 = 1_000;
/// Longest delay, whatever the failures or `Retry-After`.
pub const CAP_MS: u64 = 5 * 60 * 1_000;

/// The delay before the next round after `failures` consecutive failed rounds (0: none, no
/// delay). `random` is a uniform draw; `retry_after_ms` the server's `Retry-After`, if any.
pub fn delay_ms(failures: u32, random: u32, retry_after_ms: Option<u64>) -> u64 {
    if failures == 0 {
        return 0;
    }
    let full = BASE_MS
        .saturating_mul(1u64 << (failures - 1).min(20))
        .min(CAP_MS);
    let half = full / 2;
    let jittered = half + u64::from(random) % (half + 1);
    jittered.max(retry_after_ms.unwrap_or(0).min(CAP_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_failure_no_delay() {
        assert_eq!(delay_ms(0, 12345, None), 0);
    }

    #[test]
    fn doubles_from_one_second_to_five_minutes_within_the_jitter_band() {
        let mut rng = fastrand::Rng::with_seed(14);
        for failures in 1..=40u32 {
            let full = (BASE_MS << (failures - 1).min(20)).min(CAP_MS);
            let (mut lo, mut hi) = (u64::MAX, 0);
            for _ in 0..500 {
                let d = delay_ms(failures, rng.u32(..), None);
                assert!(
                    (full / 2..=full).contains(&d),
                    "failure {failures}: {d} outside [{}, {full}]",
                    full / 2
                );
                lo = lo.min(d);
                hi = hi.max(d);
            }
            // The draw spreads over the band (not a constant).
            assert!(hi - lo >= full / 4, "failure {failures}: spread {lo}..{hi}");
        }
        assert_eq!(delay_ms(1, 0, None), 500);
        assert!(delay_ms(1, u32::MAX, None) <= 1_000);
        assert!(delay_ms(u32::MAX, u32::MAX, None) <= CAP_MS);
    }

    #[test]
    fn retry_after_is_a_floor_clamped_to_the_cap() {
        let mut rng = fastrand::Rng::with_seed(3);
        for failures in 1..12u32 {
            let r = rng.u32(..);
            let plain = delay_ms(failures, r, None);
            assert_eq!(delay_ms(failures, r, Some(0)), plain);
            assert_eq!(
                delay_ms(failures, r, Some(plain + 1)),
                plain + 1,
                "a longer Retry-After wins"
            );
            assert_eq!(
                delay_ms(failures, r, Some(plain.saturating_sub(1))),
                plain,
                "a shorter one does not shorten"
            );
            assert_eq!(delay_ms(failures, r, Some(u64::MAX)), CAP_MS, "clamped");
            assert_eq!(delay_ms(failures, r, Some(86_400_000)), CAP_MS);
        }
    }

    #[test]
    fn the_sequence_of_a_seeded_run_is_reproducible() {
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..10)
                .map(|f| delay_ms(f, rng.u32(..), None))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
        let total: u64 = run(9).iter().sum();
        // Nine failures in a row spread over minutes, not the seconds a fixed 500 ms gave.
        assert!(total >= (1..10).map(|f| (BASE_MS << (f - 1)) / 2).sum::<u64>());
    }
}
