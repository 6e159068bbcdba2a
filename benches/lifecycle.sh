#!/usr/bin/env bash
# The OCI lifecycle benchmark: a create+start+delete cycle of /bin/true,
# sandvisor against runc in one hyperfine run (as youki compares itself
# with runc), on the same busybox bundle from `runc spec`.
#
#   benches/lifecycle.sh            50 runs of each
#   RUNS=200 benches/lifecycle.sh
#
# Every cycle is preceded by a 50 ms pause (hyperfine --prepare), as in
# `cargo bench --bench containers`: the first cgroup v1 move after a quiet
# spell waits for an RCU grace period, and each cycle must pay its own.
# Needs root; installs hyperfine, runc and busybox-static if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-50}"

missing=()
for pkg in hyperfine runc busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --locked --quiet
sandvisor="$PWD/target/release/sandvisor"

work="$(mktemp -d /tmp/sandvisor-lifecycle.XXXXXX)"
cleanup() {
    "$sandvisor" --root "$work/sandvisor" delete --force bench >/dev/null 2>&1 || true
    runc --root "$work/runc" delete --force bench >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

bundle="$work/bundle"
mkdir -p "$bundle"/rootfs/{bin,proc,dev,sys,tmp}
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
(cd "$bundle" && runc spec)
sed -i 's/"terminal": true/"terminal": false/; s/^\(\s*\)"sh"$/\1"\/bin\/true"/' "$bundle/config.json"
grep -q '"/bin/true"' "$bundle/config.json"

cycle() { # runtime root
    echo "$1 --root $2 create --bundle $bundle bench && $1 --root $2 start bench && $1 --root $2 delete --force bench"
}
hyperfine --warmup 3 --runs "$RUNS" --prepare 'sleep 0.05' \
    --export-json "$work/result.json" \
    --command-name sandvisor "$(cycle "$sandvisor" "$work/sandvisor")" \
    --command-name runc "$(cycle runc "$work/runc")"

# The ratio of the means and of the medians, sandvisor over runc.
awk -F'[:,]' '
    /"command"/ { name = $2; gsub(/[" ]/, "", name) }
    /"mean"/    { mean[name] = $2 }
    /"median"/  { median[name] = $2 }
    END {
        printf "create+start+delete /bin/true: sandvisor %.1f ms, runc %.1f ms (means)\n", mean["sandvisor"] * 1000, mean["runc"] * 1000
        printf "ratio sandvisor/runc: %.2fx (means), %.2fx (medians); target <= 0.5x\n", mean["sandvisor"] / mean["runc"], median["sandvisor"] / median["runc"]
    }' "$work/result.json"
