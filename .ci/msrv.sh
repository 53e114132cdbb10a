#!/usr/bin/env bash
# The declared rust-version (the root Cargo.toml's [workspace.package]), guarded as far as
# this machine can: rustup here cannot download toolchains, and only the current stable
# and a nightly are installed.
#
# 1. Every dependency the library and binary build pulls in on this target (normal and
#    build edges, from `cargo metadata --filter-platform`) declares a rust-version no
#    newer than ours. Dev-dependencies are listed with their needs, not failed: the tests
#    need a newer toolchain than the crates (trybuild 1.0.122 declares 1.88).
# 2. The standard-library APIs our code calls: clippy's `incompatible_msrv` lint, on by
#    default, reads rust-version and flags anything stabilised later; `.ci/clippy.sh`
#    denies warnings, so it fails CI there.
# 3. Where a toolchain of exactly that version is installed (a developer's rustup), the
#    crates are built with it: `cargo +VERSION check --workspace --lib --bins`.
# What no step here can check without that toolchain is language syntax newer than the
# declared version.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(rustc -vV | sed -n 's/^host: //p')"
cargo metadata --format-version 1 --locked --filter-platform "$target" >"${TMPDIR:-/tmp}/lazymm-msrv-$$.json"
trap 'rm -f "${TMPDIR:-/tmp}/lazymm-msrv-$$.json"' EXIT
msrv="$(python3 - "${TMPDIR:-/tmp}/lazymm-msrv-$$.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
def ver(s):
    parts = [int(x) for x in s.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))
pkgs = {p["id"]: p for p in m["packages"]}
ours = {pid for pid in m["workspace_members"]}
declared = {pkgs[pid].get("rust_version") for pid in ours}
if len(declared) != 1 or None in declared:
    sys.exit(f"msrv: workspace crates declare {sorted(map(str, declared))}: want one rust-version")
msrv = declared.pop()
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
def reach(kinds):
    seen, todo = set(), list(ours)
    while todo:
        pid = todo.pop()
        for d in nodes[pid]["deps"]:
            if any(k["kind"] in kinds for k in d["dep_kinds"]) and d["pkg"] not in seen:
                seen.add(d["pkg"])
                todo.append(d["pkg"])
    return seen - ours
def needs(ids):
    return sorted((pkgs[i]["name"], pkgs[i]["version"], pkgs[i]["rust_version"])
                  for i in ids if pkgs[i].get("rust_version") and ver(pkgs[i]["rust_version"]) > ver(msrv))
build = reach({None, "build"})
too_new = needs(build)
if too_new:
    sys.exit("msrv: rust-version " + msrv + ", but the build pulls in " +
             ", ".join(f"{n} {v} (rust-version {r})" for n, v, r in too_new))
dev = reach({None, "build", "dev"}) - build
print(msrv)
print(f"msrv: rust-version {msrv}: the {len(build)} crates the build pulls in on this target declare no newer one", file=sys.stderr)
for n, v, r in needs(dev):
    print(f"msrv: (tests only) {n} {v} needs {r}", file=sys.stderr)
PY
)"
if rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
    cargo +"$msrv" check --workspace --lib --bins --locked -q
    echo "msrv: the crates build with $msrv"
else
    echo "msrv: no $msrv toolchain installed here (rustup cannot download one): the build with it is not run; clippy's incompatible_msrv covers the standard-library APIs"
fi
