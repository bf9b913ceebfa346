#!/usr/bin/env bash
# Instructions per 2-parameter RMSProp step, counted by callgrind (independent of machine
# noise): the difference between runs of 101,000 and 1,000 steps of
# crates/rmsprop/examples/small_step.rs, over the 100,000 steps between them.
# Needs valgrind (apt-get install -y valgrind). Usage: tools/bench/small_step_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p rmsprop --example small_step
bin=${CARGO_TARGET_DIR:-target}/release/examples/small_step
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
a=$(count 1000)
b=$(count 101000)
echo "instructions per step: $(( (b - a) / 100000 ))"
