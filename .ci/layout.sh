#!/usr/bin/env bash
# The workspace's shape (docs/design.md section 2): dependencies point one way, the trace
# parsers and the cost model are leaves, and the only module cycle is the model's core.
set -euo pipefail
cd "$(dirname "$0")/.."

# The workspace crates each crate depends on (normal edges, any depth), itself left out.
deps() {
    cargo tree -q -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null |
        awk -v self="$1" '$1 ~ /^lazymm/ && $1 != self {print $1}' | sort -u | tr '\n' ' '
}
expect() { # crate, allowed workspace dependencies (space-separated, sorted)
    local got
    got="$(deps "$1")"
    [ "${got% }" = "$2" ] || { echo "layout: $1 depends on '${got% }', expected '$2'" >&2; exit 1; }
}
expect lazymm ""
expect lazymm-trace ""
expect lazymm-cost "lazymm"
expect lazymm-engine "lazymm"
expect lazymm-sim "lazymm lazymm-cost lazymm-engine"
expect lazymm-replay "lazymm lazymm-cost lazymm-engine lazymm-trace"

# The parsers build on their own (what the fuzz targets link).
cargo check -q -p lazymm-trace --lib

# No crate has cargo features, so the builds above and in .ci/test are every combination
# there is (a feature once broke the parsers-only build, f8883a5). A crate that adds one
# must add a build per combination here (`cargo hack check --feature-powerset`) and
# drop it from this list.
featured="$(grep -l '^\[features\]' crates/*/Cargo.toml || true)"
[ -z "$featured" ] || { echo "layout: cargo features in $featured: add a build per feature combination to .ci/layout.sh" >&2; exit 1; }

python3 .ci/cycles.py --allow lazymm:arch,cpu,kernel,scheme,smp
echo "layout: one direction, trace and cost are leaves, no cycle outside the model's core"
