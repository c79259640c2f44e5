//! HLC properties over seeded random cases (deterministic: a failure prints its seed and case).
#![cfg(not(target_arch = "wasm32"))]

use clientdata::core::hlc::{check_drift, ManualClock, MAX_WALL_MS};
use clientdata::core::{Clock, ClockState, Hlc, HlcClock, NodeId};

const T0: u64 = 1_700_000_000_000;

fn node(n: u64) -> NodeId {
    NodeId::new(n).unwrap()
}

#[test]
fn monotonic_over_100k_random_local_remote_and_clock_readings() {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut clock = HlcClock::new(node(1), ClockState::default(), 60_000);
    let mut now = T0;
    let mut last = clock.tick(now).unwrap();
    for case in 0..100_000 {
        // Physical time wanders, including backwards jumps.
        now = match rng.u8(0..10) {
            0 => now.saturating_sub(rng.u64(0..5_000)),
            1 => now + rng.u64(0..5_000),
            _ => now + rng.u64(0..2),
        };
        let stamp = if rng.bool() {
            clock.tick(now)
        } else {
            let remote = Hlc::new(
                now.saturating_sub(30_000) + rng.u64(0..60_000),
                rng.u16(0..100),
                node(rng.u64(2..9)),
            )
            .unwrap();
            let result = clock.observe(remote, now);
            if let Ok(s) = result {
                assert!(
                    s > remote,
                    "case {case}: receive stamp {s} not above remote {remote}"
                );
            }
            result
        };
        let stamp = stamp.unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert!(stamp > last, "case {case}: {stamp} not above {last}");
        assert!(
            stamp.wall_ms >= now,
            "case {case}: wall below physical time"
        );
        last = stamp;
    }
}

#[test]
fn a_remote_stamp_beyond_max_drift_is_rejected_and_the_clock_does_not_move() {
    let mut clock = HlcClock::new(node(1), ClockState::default(), 60_000);
    clock.tick(T0).unwrap();
    let before = clock.state();
    let far = Hlc::new(T0 + 60_001, 0, node(2)).unwrap();
    let err = clock.observe(far, T0).unwrap_err();
    assert_eq!(err.code(), "clock_drift");
    assert_eq!(clock.state(), before);
    // Exactly at the bound is accepted.
    let edge = Hlc::new(T0 + 60_000, 0, node(2)).unwrap();
    assert!(check_drift(edge, T0, 60_000).is_ok());
    assert_eq!(clock.observe(edge, T0).unwrap().wall_ms, T0 + 60_000);
}

#[test]
fn drift_bound_is_configurable() {
    let mut strict = HlcClock::new(node(1), ClockState::default(), 10);
    assert_eq!(strict.max_drift_ms(), 10);
    assert!(strict
        .observe(Hlc::new(T0 + 11, 0, node(2)).unwrap(), T0)
        .is_err());
    assert!(strict
        .observe(Hlc::new(T0 + 10, 0, node(2)).unwrap(), T0)
        .is_ok());
}

#[test]
fn counter_overflow_is_a_typed_error_never_a_wrap() {
    let mut clock = HlcClock::new(
        node(1),
        ClockState {
            wall_ms: T0,
            counter: u16::MAX - 1,
        },
        60_000,
    );
    assert_eq!(clock.tick(T0).unwrap().counter, u16::MAX);
    let before = clock.state();
    let err = clock.tick(T0).unwrap_err();
    assert_eq!(err.code(), "counter_overflow");
    assert_eq!(
        clock.state(),
        before,
        "a failed tick must not move the clock"
    );
    // Observing a remote stamp at the same wall time with a full counter overflows too.
    let remote = Hlc::new(T0, u16::MAX, node(2)).unwrap();
    let mut other = HlcClock::new(
        node(3),
        ClockState {
            wall_ms: T0,
            counter: 1,
        },
        60_000,
    );
    assert_eq!(
        other.observe(remote, T0).unwrap_err().code(),
        "counter_overflow"
    );
    assert_eq!(
        other.state(),
        ClockState {
            wall_ms: T0,
            counter: 1
        }
    );
    // Time moving on resets the counter.
    assert_eq!(clock.tick(T0 + 1).unwrap().counter, 0);
}

#[test]
fn restart_with_the_wall_clock_set_back_stays_monotonic() {
    let physical = ManualClock::new(T0);
    let mut clock = HlcClock::new(node(1), ClockState::default(), 60_000);
    let mut last = clock.tick(physical.now_ms()).unwrap();
    for _ in 0..100 {
        physical.advance(3);
        last = clock.tick(physical.now_ms()).unwrap();
    }
    // Persist, "restart" with the wall clock an hour behind.
    let saved: ClockState =
        serde_json::from_str(&serde_json::to_string(&clock.state()).unwrap()).unwrap();
    physical.set(T0 - 3_600_000);
    let mut restarted = HlcClock::new(node(1), saved, 60_000);
    for _ in 0..1_000 {
        physical.advance(1);
        let next = restarted.tick(physical.now_ms()).unwrap();
        assert!(next > last);
        last = next;
    }
}

#[test]
fn clock_readings_beyond_48_bits_are_typed_errors() {
    let mut clock = HlcClock::new(node(1), ClockState::default(), 60_000);
    assert_eq!(
        clock.tick(MAX_WALL_MS + 1).unwrap_err().code(),
        "invalid_clock_reading"
    );
    assert_eq!(clock.state(), ClockState::default());
    assert!(clock.tick(MAX_WALL_MS).is_ok());
    assert_eq!(
        Hlc::new(MAX_WALL_MS + 1, 0, node(1)).unwrap_err().code(),
        "invalid_clock_reading"
    );
}

#[test]
fn encoding_round_trips_and_byte_order_equals_hlc_order_over_100k_pairs() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut pick = || {
        // Mix edge values with random ones so equal prefixes are common.
        let wall = match rng.u8(0..4) {
            0 => rng.u64(0..4),
            1 => MAX_WALL_MS - rng.u64(0..4),
            _ => rng.u64(0..=MAX_WALL_MS),
        };
        let counter = if rng.bool() {
            rng.u16(0..3)
        } else {
            rng.u16(..)
        };
        let n = if rng.bool() {
            rng.u64(1..4)
        } else {
            rng.u64(1..)
        };
        Hlc::new(wall, counter, node(n)).unwrap()
    };
    for case in 0..100_000 {
        let (a, b) = (pick(), pick());
        let (ea, eb) = (a.encode(), b.encode());
        assert_eq!(ea.len(), Hlc::ENCODED_LEN);
        assert_eq!(Hlc::parse(&ea).unwrap(), a, "case {case}");
        assert_eq!(
            ea.as_bytes().cmp(eb.as_bytes()),
            a.cmp(&b),
            "case {case}: {ea} vs {eb}"
        );
    }
}

#[test]
fn over_100_malformed_encodings_are_typed_errors() {
    let good = Hlc::new(T0, 7, node(0xabc)).unwrap().encode();
    let mut bad: Vec<String> = vec![
        String::new(),
        "-".into(),
        good[..33].into(),
        format!("{good}0"),
        good.to_uppercase(),
        good.replace('-', "_"),
        good.replace('-', ""),
        format!("{}-0000-0000000000000000", &good[..12]),
        " ".repeat(34),
        "\0".repeat(34),
        format!("+{}", &good[1..]),
        format!("{}é", &good[..32]),
    ];
    // Every position replaced by every kind of wrong character.
    for (i, _) in good.char_indices() {
        for c in ['g', 'G', 'A', ' ', '-', '+', 'x', '\u{0}'] {
            let mut chars: Vec<char> = good.chars().collect();
            if chars[i] == c {
                continue;
            }
            chars[i] = c;
            bad.push(chars.into_iter().collect());
        }
    }
    assert!(bad.len() > 100);
    for text in &bad {
        let err = Hlc::parse(text).expect_err(text);
        assert_eq!(err.code(), "invalid_hlc", "{text:?}");
        assert!(serde_json::from_value::<Hlc>(serde_json::Value::String(text.clone())).is_err());
    }
}

#[test]
fn a_write_stamped_over_a_stored_version_supersedes_it_whatever_the_clock() {
    // A fresh writer (new slot) whose wall clock is a day behind the stamp it overwrites.
    let stored = Hlc::new(T0, 7, node(9)).unwrap();
    let mut clock = HlcClock::new(node(1), ClockState::default(), 60_000);
    let stamped = clock.tick_over(T0 - 86_400_000, Some(stored)).unwrap();
    assert!(stamped > stored, "{stamped} over {stored}");
    assert_eq!((stamped.wall_ms, stamped.counter), (T0, 8));
    // And the clock stays there: the next local tick is above both.
    assert!(clock.tick(T0 - 86_400_000).unwrap() > stamped);
    // Same wall and counter, a greater node: still above.
    let mut clock = HlcClock::new(node(1), ClockState::default(), 60_000);
    let tie = Hlc::new(T0, 0, node(u64::MAX)).unwrap();
    assert!(clock.tick_over(T0, Some(tie)).unwrap() > tie);
    // Nothing stored, or an older version: exactly a tick.
    let mut a = HlcClock::new(node(1), ClockState::default(), 60_000);
    let mut b = a.clone();
    let old = Hlc::new(T0 - 5, 0, node(2)).unwrap();
    assert_eq!(a.tick_over(T0, Some(old)).unwrap(), b.tick(T0).unwrap());
    assert_eq!(a.tick_over(T0, None).unwrap(), b.tick(T0).unwrap());
    // No drift check on what is already stored (a record a year ahead still gets overwritten).
    let far = Hlc::new(T0 + 365 * 86_400_000, 0, node(2)).unwrap();
    assert!(a.tick_over(T0, Some(far)).unwrap() > far);
    // On error (counter overflow at the stored stamp) the clock does not move.
    let mut a = HlcClock::new(node(1), ClockState::default(), 60_000);
    a.tick(T0).unwrap();
    let full = Hlc::new(T0 + 1_000_000, u16::MAX, node(2)).unwrap();
    let before = a.state();
    assert_eq!(
        a.tick_over(T0, Some(full)).unwrap_err().code(),
        "counter_overflow"
    );
    assert_eq!(a.state(), before);
}
