#!/usr/bin/env bash
# A short fuzz smoke run of every trace parser (about 20 s in all): each cargo-fuzz target
# runs from its seeds for a few seconds; any crash fails. Needs the nightly toolchain and
# cargo-fuzz; skips with a reason when either is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)"; exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"; exit 0
fi
# The targets are fuzz/Cargo.toml's [[bin]]s, as cargo-fuzz itself lists them: a new
# target is fuzzed here without touching this script.
mapfile -t targets < <(cargo +nightly fuzz list)
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz: cargo fuzz list found no target" >&2; exit 1; }
per=$(( ${FUZZ_SECONDS:-20} / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
cargo +nightly fuzz build -O 2>&1 | tail -1
for t in "${targets[@]}"; do
    corpus="$(mktemp -d)"
    cargo +nightly fuzz run -O "$t" "$corpus" "seeds/$t" -- -max_total_time="$per" -max_len=4096 -print_final_stats=1 2>"$corpus/log" \
        || { tail -30 "$corpus/log" >&2; echo "fuzz: $t crashed" >&2; exit 1; }
    echo "fuzz: $t: $(grep -o "stat::number_of_executed_units: [0-9]*" "$corpus/log" | tail -1 | grep -o "[0-9]*$") executions, no crash"
    rm -rf "$corpus"
done
echo "fuzz: every parser survived"
