#!/usr/bin/env bash
# The loom models (crates/lazymm/tests/loom.rs): each scheme's critical races on the
# real model code, with loom's atomics swapped in through the `sync` facade.
set -euo pipefail
cd "$(dirname "$0")/.."

# --cfg loom: switches lazymm::sync (and so the whole model) to loom's atomics, fences
# and locks; the tests file is empty without it.
export RUSTFLAGS="--cfg loom"
# A target dir of its own: the cfg changes every artifact, and sharing the default dir
# would rebuild the normal workspace from scratch after each loom run (and back).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_LOOM:-target/loom}"
# At most two preemptions per execution: every race the models target needs at most
# two, and it keeps each model to seconds on two cores.
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
# The release profile's thin LTO, single codegen unit and debug info are for the
# benchmarks; here they only slow down a build that starts from scratch in its own
# target dir, while loom's exploration itself takes well under a second.
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_DEBUG=0
# The mutant tests make loom report a failing execution on purpose; its backtraces
# would bury the real output.
export RUST_BACKTRACE=0

# --release: loom explores thousands of executions; an optimised build is far faster.
# -p lazymm --test loom: only the model crate has loom models; the engine and the CLI
# start real threads and are not built for loom.
cargo test --release -p lazymm --test loom
