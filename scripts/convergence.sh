#!/usr/bin/env bash
# The native convergence simulation (tests/core_convergence.rs), optimized (the server profile).
#   bash scripts/convergence.sh           10,000 schedules, seeds 0..10,000 (what CI runs, in debug)
#   bash scripts/convergence.sh --long    1,000,000 schedules from a random base seed, printed
# CONVERGENCE_BASE, CONVERGENCE_SCHEDULES and CONVERGENCE_THREADS override; a failure prints the
# seed to replay with CONVERGENCE_SEED=N.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--long" ]; then
  export CONVERGENCE_SCHEDULES="${CONVERGENCE_SCHEDULES:-1000000}"
  # A fresh region of seed space every long run; the base is printed so a run can be repeated.
  export CONVERGENCE_BASE="${CONVERGENCE_BASE:-$(( (RANDOM << 30 | RANDOM << 15 | RANDOM) * 1000 ))}"
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--long]" >&2; exit 2
fi
echo "convergence: ${CONVERGENCE_SCHEDULES:-10000} schedules from seed ${CONVERGENCE_BASE:-0}"
cargo test --profile server --test core_convergence ten_thousand_random_schedules -- --nocapture
