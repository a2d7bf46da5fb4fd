#!/usr/bin/env bash
# The acceptance runs of issue #27 (safe under concurrency, signals and odd targets), at full counts:
#   - 100 trials each of two concurrent in-place edits, an in-place edit beside a rewrite, and
#     40 readers (inspect --json, hash, verify) during in-place edits (tests/concurrency.rs);
#   - 60 trials of SIGINT, SIGTERM and SIGHUP at random points of an in-place edit, a rewriting edit and
#     a split (tests/signals.rs): the output is the old or the new one, no temporary file is left;
#   - every writing command against private device nodes, FIFOs, sockets, directories, existing files and
#     symlinks (tests/write_targets.rs, tests/edit_links.rs).
# The same tests run at small counts in `cargo test`. Counts: TRIALS, READERS, SIGNAL_TRIALS.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-100}
READERS=${READERS:-40}
SIGNAL_TRIALS=${SIGNAL_TRIALS:-60}
cargo build --release --quiet
t0=$(date +%s)
POCKET_STRESS_TRIALS=$TRIALS POCKET_STRESS_READERS=$READERS \
    cargo test --release --quiet --test concurrency -- --nocapture --test-threads 1 2>&1 |
    grep -E "trials|test result|panicked|FAILED"
POCKET_SIGNAL_TRIALS=$SIGNAL_TRIALS cargo test --release --quiet --test signals -- --nocapture 2>&1 |
    grep -E "seed|old|test result|panicked|FAILED"
cargo test --release --quiet --test write_targets --test edit_links 2>&1 | grep -E "test result|panicked|FAILED|note"
echo "stress-concurrency: done in $(( $(date +%s) - t0 )) s"
