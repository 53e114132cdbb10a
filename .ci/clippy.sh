#!/usr/bin/env bash
# Clippy on every crate and target (tests, benches, examples), warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
# --all-targets: tests, benches and examples are code others live in too.
# -D warnings: a lint that fires fails CI, so the tree stays clean.
cargo clippy --workspace --all-targets -- -D warnings
