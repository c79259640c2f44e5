//! Hybrid Logical Clock (Kulkarni et al., 2014): a 48-bit wall time in milliseconds, a 16-bit
//! logical counter and the writer's node id. Compared in that order, HLCs are a total order
//! (node ids are unique per writer), which is what last-write-wins needs.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{de_error, excerpt, Error, Result};
use super::ids::{is_lower_hex, NodeId};

/// Largest wall time an HLC can carry (2^48 - 1 ms, the year 10889).
pub const MAX_WALL_MS: u64 = (1 << 48) - 1;

/// Default bound on how far a remote stamp may be ahead of local physical time.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 60_000;

/// A source of physical time in milliseconds since the Unix epoch. Injected so tests are
/// deterministic and so wasm never reads `SystemTime`.
pub trait Clock {
    /// The current physical time.
    fn now_ms(&self) -> u64;
}

/// A clock the test moves by hand.
#[derive(Debug, Default)]
pub struct ManualClock(std::cell::Cell<u64>);

impl ManualClock {
    /// A clock reading `ms`.
    pub fn new(ms: u64) -> Self {
        ManualClock(std::cell::Cell::new(ms))
    }
    /// Sets the reading (backwards too).
    pub fn set(&self, ms: u64) {
        self.0.set(ms)
    }
    /// Moves the reading forward.
    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// The operating system's clock; native builds only (wasm gets `JsClock` in the browser layer).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[cfg(not(target_arch = "wasm32"))]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// One timestamp. Field order is comparison order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (48 bits).
    pub wall_ms: u64,
    /// Logical counter within one wall millisecond.
    pub counter: u16,
    /// The writer that made this stamp.
    pub node: NodeId,
}

impl Hlc {
    /// Length of the text encoding: `wwwwwwwwwwww-cccc-nnnnnnnnnnnnnnnn`.
    pub const ENCODED_LEN: usize = 34;

    /// A stamp, checking the wall time fits 48 bits.
    pub fn new(wall_ms: u64, counter: u16, node: NodeId) -> Result<Self> {
        if wall_ms > MAX_WALL_MS {
            return Err(Error::InvalidClockReading(wall_ms));
        }
        Ok(Hlc {
            wall_ms,
            counter,
            node,
        })
    }

    /// The highest stamp `node` can make: a floor at it covers every record of that node.
    pub fn top(node: NodeId) -> Self {
        Hlc {
            wall_ms: MAX_WALL_MS,
            counter: u16::MAX,
            node,
        }
    }

    /// Fixed-width lowercase hex; byte order of the text equals HLC order.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(Self::ENCODED_LEN);
        super::hex::push_u64(&mut out, self.wall_ms, 12);
        out.push('-');
        super::hex::push_u64(&mut out, u64::from(self.counter), 4);
        out.push('-');
        super::hex::push_u64(&mut out, self.node.get(), 16);
        out
    }

    /// Parses [`Hlc::encode`]'s output; anything else is a typed error.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidHlc {
            text: excerpt(text),
            reason,
        };
        let b = text.as_bytes();
        if b.len() != Self::ENCODED_LEN {
            return Err(bad("must be 34 characters"));
        }
        if b[12] != b'-' || b[17] != b'-' {
            return Err(bad("separators must be at positions 12 and 17"));
        }
        let hex = |range: std::ops::Range<usize>| -> Result<u64> {
            if !b[range.clone()].iter().all(|&c| is_lower_hex(c)) {
                return Err(bad("only lowercase hex digits are allowed"));
            }
            u64::from_str_radix(&text[range], 16).map_err(|_| bad("not a number"))
        };
        let wall_ms = hex(0..12)?;
        let counter = hex(13..17)? as u16;
        hex(18..34)?;
        let node = NodeId::parse(&text[18..34]).map_err(|_| bad("node id must not be zero"))?;
        Ok(Hlc {
            wall_ms,
            counter,
            node,
        })
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        Hlc::parse(&text).map_err(de_error)
    }
}

/// What must be persisted so a restarted writer stays monotonic even if the wall clock was set
/// back: the last stamp's wall time and counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockState {
    /// Wall time of the last stamp issued or observed.
    pub wall_ms: u64,
    /// Counter of the last stamp issued or observed.
    pub counter: u16,
}

/// The clock of one writer: issues stamps for local events and absorbs remote ones.
#[derive(Debug, Clone)]
pub struct HlcClock {
    node: NodeId,
    state: ClockState,
    max_drift_ms: u64,
}

impl HlcClock {
    /// A clock for `node` starting from a persisted `state` (use `ClockState::default()` for new).
    pub fn new(node: NodeId, state: ClockState, max_drift_ms: u64) -> Self {
        HlcClock {
            node,
            state,
            max_drift_ms,
        }
    }

    /// The writer this clock stamps for.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The state to persist.
    pub fn state(&self) -> ClockState {
        self.state
    }

    /// The configured drift bound.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// Stamps a local event: `l' = max(l, now)`; counter +1 if `l` did not move, else 0.
    /// On error the clock does not move.
    pub fn tick(&mut self, now_ms: u64) -> Result<Hlc> {
        check_reading(now_ms)?;
        let l = self.state.wall_ms;
        let next = if now_ms > l {
            ClockState {
                wall_ms: now_ms,
                counter: 0,
            }
        } else {
            let counter = self
                .state
                .counter
                .checked_add(1)
                .ok_or(Error::CounterOverflow { wall_ms: l })?;
            ClockState {
                wall_ms: l,
                counter,
            }
        };
        self.state = next;
        Ok(self.stamp())
    }

    /// Stamps a local write that replaces `current`, the version this store holds for the key:
    /// like [`HlcClock::tick`], and also above `current`, so a write always supersedes what it
    /// overwrites (read-your-writes) even when this writer's clock is behind the one that wrote
    /// `current` (a new writer slot after a reload with the wall clock set back, another tab
    /// ahead). No drift check: `current` is already stored here, checked when it arrived.
    /// On error the clock does not move.
    pub fn tick_over(&mut self, now_ms: u64, current: Option<Hlc>) -> Result<Hlc> {
        let saved = self.state;
        if let Some(c) = current {
            if (c.wall_ms, c.counter) > (saved.wall_ms, saved.counter) {
                self.state = ClockState {
                    wall_ms: c.wall_ms,
                    counter: c.counter,
                };
            }
        }
        self.tick(now_ms).inspect_err(|_| self.state = saved)
    }

    /// Absorbs a remote stamp (the paper's receive rule) and returns the receive event's stamp.
    /// A remote stamp more than `max_drift_ms` ahead of `now_ms` is rejected and the clock does
    /// not move; so is a counter overflow.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc> {
        check_reading(now_ms)?;
        check_drift(remote, now_ms, self.max_drift_ms)?;
        let (l, c) = (self.state.wall_ms, self.state.counter);
        let (rl, rc) = (remote.wall_ms, remote.counter);
        let wall_ms = l.max(rl).max(now_ms);
        let overflow = Error::CounterOverflow { wall_ms };
        let counter = if wall_ms == l && wall_ms == rl {
            c.max(rc).checked_add(1).ok_or(overflow)?
        } else if wall_ms == l {
            c.checked_add(1).ok_or(overflow)?
        } else if wall_ms == rl {
            rc.checked_add(1).ok_or(overflow)?
        } else {
            0
        };
        self.state = ClockState { wall_ms, counter };
        Ok(self.stamp())
    }

    /// The last stamp issued or observed; every record this writer made is at or below it.
    pub fn last(&self) -> Hlc {
        self.stamp()
    }

    fn stamp(&self) -> Hlc {
        Hlc {
            wall_ms: self.state.wall_ms,
            counter: self.state.counter,
            node: self.node,
        }
    }
}

/// Rejects a stamp more than `max_drift_ms` ahead of `now_ms`. Separate from
/// [`HlcClock::observe`] so a whole page can be checked before anything changes.
pub fn check_drift(remote: Hlc, now_ms: u64, max_drift_ms: u64) -> Result<()> {
    let ahead_ms = remote.wall_ms.saturating_sub(now_ms);
    if ahead_ms > max_drift_ms {
        return Err(Error::ClockDrift {
            remote_ms: remote.wall_ms,
            ahead_ms,
            max_drift_ms,
        });
    }
    Ok(())
}

fn check_reading(now_ms: u64) -> Result<()> {
    if now_ms > MAX_WALL_MS {
        return Err(Error::InvalidClockReading(now_ms));
    }
    Ok(())
}

/// Converts a JS `Date.now()` reading (an f64) into milliseconds, rejecting NaN, negative,
/// fractional-overflow and out-of-range readings with a typed error.
pub fn reading_from_f64(ms: f64) -> Result<u64> {
    if !ms.is_finite() || ms < 0.0 || ms > MAX_WALL_MS as f64 {
        return Err(Error::InvalidClockReading(if ms.is_finite() && ms > 0.0 {
            ms as u64
        } else {
            0
        }));
    }
    Ok(ms as u64)
}
