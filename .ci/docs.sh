#!/usr/bin/env bash
# The API docs build with no warning (broken intra-doc links, private links, missing docs
# where a crate denies them).
set -euo pipefail
cd "$(dirname "$0")/.."
# -D warnings: any rustdoc warning fails CI.
export RUSTDOCFLAGS="-D warnings"
# --lib: the `lazymm` binary and the `lazymm` library would write the same doc path
# (cargo#6313); the binary's docs are its --help.
# --no-deps: only our crates.
cargo doc --workspace --no-deps --lib
