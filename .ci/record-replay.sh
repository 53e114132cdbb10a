#!/usr/bin/env bash
# Records a real trace on this machine (`lazymm record -- perf bench sched messaging`) and
# replays it on every scheme: exit 0 and one row per scheme, or a skip with the reason
# when perf cannot trace here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v perf >/dev/null 2>&1; then
    echo "record-replay: skipped: perf is not installed (apt-get install linux-perf)"; exit 0
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
if [ -z "${LAZYMM:-}" ]; then
    cargo build --release -q -p lazymm-cli
fi
bin="${LAZYMM:-target/release/lazymm}"
status=0
"$bin" record --out "$dir/trace.txt" -- perf bench sched messaging -l 20 >"$dir/record.log" 2>&1 || status=$?
if [ "$status" = 2 ]; then
    echo "record-replay: skipped: $(tail -1 "$dir/record.log")"; exit 0
fi
[ "$status" = 0 ] || { cat "$dir/record.log" >&2; exit "$status"; }
"$bin" replay "$dir/trace.txt" --json >"$dir/rows.json"
schemes=$("$bin" schemes | awk '/^schemes:/{on=1; next} /^[a-z]+:/{on=0} on{n++} END{print n+0}')
rows=$(grep -c '"scheme"' "$dir/rows.json")
switches=$(grep -c 'sched:sched_switch:' "$dir/trace.txt")
bad=$(grep -vc "\"context_switches\":$switches," "$dir/rows.json" || true)
[ "$rows" = "$schemes" ] && [ "$bad" = 0 ] || { echo "record-replay: rows do not replay all $switches switches" >&2; cat "$dir/rows.json" >&2; exit 1; }
echo "record-replay: $rows rows, each with all $switches sched_switch events of the recorded trace, no violation"
