#!/usr/bin/env bash
# The cost of watching: a sandbox of 100 containers (a root container and 99
# subcontainers, each `sleep`), each followed by `sandvisor events
# --interval 100ms` (1000 stats events a second in all), against the same
# sandbox unwatched. Prints the supervisor's CPU time as a share of one
# core, from its /proc/PID/stat, over the same window for both (the target
# is under 5%), and the CPU of the 100 `events` clients. The reference, in
# the same run: 100 runc containers of the same bundle, each followed by
# `runc events --interval 100ms`, which reads the same cgroup files itself;
# their CPU over the same window. Also times one Metrics.Export.
#
#   benches/events.sh                 100 containers, 10 s windows
#   CONTAINERS=50 WINDOW=5 benches/events.sh
#
# Needs root; installs busybox-static and runc if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CONTAINERS="${CONTAINERS:-100}"
WINDOW="${WINDOW:-10}"

for pkg in busybox-static runc; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"
done
cargo build --release --locked --quiet
sandvisor="$PWD/target/release/sandvisor"

work="$(mktemp -d /tmp/sandvisor-events.XXXXXX)"
root="ev-$$"
watchers=()
runc_ids=()
cleanup() {
    for pid in "${watchers[@]}"; do kill "$pid" 2>/dev/null || true; done
    "$sandvisor" --root "$work/state" delete --force "$root" >/dev/null 2>&1 || true
    for id in "${runc_ids[@]}"; do
        runc --root "$work/runc" delete --force "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

bundle="$work/bundle"
mkdir -p "$bundle"/rootfs/{bin,proc,dev,sys,tmp}
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/sleep"
(cd "$bundle" && "$sandvisor" spec)
sed -i 's/"terminal": true/"terminal": false/; s/^\(\s*\)"sh"$/\1"sleep", "1000"/' "$bundle/config.json"
grep -q '"sleep", "1000"' "$bundle/config.json"
member="$work/member"
mkdir -p "$member"
ln -s "$bundle/rootfs" "$member/rootfs"
sed "s/\"ociVersion\"/\"annotations\": {\"io.sandvisor.sandbox-id\": \"$root\"}, \"ociVersion\"/" \
    "$bundle/config.json" >"$member/config.json"

sv() { "$sandvisor" --root "$work/state" "$@"; }
sv run -d --bundle "$bundle" "$root"
ids=("$root")
for i in $(seq 2 "$CONTAINERS"); do
    sv run -d --bundle "$member" "$root-$i"
    ids+=("$root-$i")
done
supervisor="$(pgrep -f -- "boot --id $root " | head -n1)"
[[ -n "$supervisor" ]] || { echo "no supervisor found for $root" >&2; exit 1; }
running="$(sv list | awk -v r="$root" '$1 ~ "^"r && $3 == "running"' | wc -l)"
echo "sandbox $root: $running containers running, supervisor pid $supervisor"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz="$(getconf CLK_TCK)"
# The CPU share of one core the processes given used over WINDOW seconds,
# in percent.
share() {
    local before=0 after=0 pid
    for pid in "$@"; do before=$((before + $(ticks "$pid"))); done
    sleep "$WINDOW"
    for pid in "$@"; do after=$((after + $(ticks "$pid"))); done
    awk -v t=$((after - before)) -v hz="$hz" -v w="$WINDOW" 'BEGIN { printf "%.2f", 100 * t / hz / w }'
}

idle="$(share "$supervisor")"
for id in "${ids[@]}"; do
    "$sandvisor" --root "$work/state" events --interval 100ms "$id" >"$work/events-$id.out" &
    watchers+=("$!")
done
sleep 1
# The supervisor's share, and the clients' over the next window.
watched="$(share "$supervisor")"
clients="$(share "${watchers[@]}")"
if [[ -n "${PROFILE:-}" ]]; then
    perf record -g -p "$supervisor" -o "$PROFILE" -- sleep 3 >/dev/null 2>&1
fi
lines="$(cat "$work"/events-*.out | wc -l)"
for pid in "${watchers[@]}"; do kill "$pid" 2>/dev/null || true; done
watchers=()
export_s="$( { /usr/bin/time -f '%e' "$sandvisor" call --socket "$work/state/$root/ctl.sock" Metrics.Export >/dev/null; } 2>&1 )"
"$sandvisor" --root "$work/state" delete --force "$root" >/dev/null

# The reference: runc containers, each watched by runc's own events.
for i in $(seq 1 "$CONTAINERS"); do
    runc --root "$work/runc" run -d --bundle "$bundle" "runc-$$-$i" </dev/null >/dev/null 2>&1
    runc_ids+=("runc-$$-$i")
done
for id in "${runc_ids[@]}"; do
    runc --root "$work/runc" events --interval 100ms "$id" >/dev/null 2>&1 &
    watchers+=("$!")
done
sleep 1
runc_watchers="$(share "${watchers[@]}")"

echo "supervisor CPU, $CONTAINERS containers, ${WINDOW} s windows:"
echo "  unwatched: ${idle}% of one core"
echo "  watched by $CONTAINERS x events --interval 100ms: ${watched}% of one core (target < 5%); $lines events written"
echo "  the $CONTAINERS sandvisor events clients: ${clients}% of one core"
echo "reference: $CONTAINERS runc containers, each watched by runc events --interval 100ms: ${runc_watchers}% of one core"
awk -v a="$watched" -v b="$clients" -v r="$runc_watchers" 'BEGIN {
    if (r > 0) printf "ratio (sandvisor supervisor + clients) / runc events: %.2fx\n", (a + b) / r }'
echo "one Metrics.Export of $CONTAINERS containers: ${export_s} s (the call command, end to end)"
