//! Fairness (issue 14) in a test binary of its own: it measures latency, and cargo runs test
//! binaries one after another, so no other test loads the machine while it measures. Its own
//! tests take turns too (see `fairness::TURN`).

#[path = "../server/support/mod.rs"]
#[macro_use]
#[allow(dead_code, unused_macros)]
mod support;

mod fairness;
