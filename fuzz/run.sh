#!/usr/bin/env bash
# Runs every fuzz target in turn and prints one summary line per target.
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [extra libFuzzer args...]
#
# SECONDS_PER_TARGET defaults to 20. Extra arguments go to libFuzzer after
# the defaults below, so they can override them (e.g. -max_len=4096).
# Installs cargo-fuzz when it is missing (needs the nightly toolchain).
# Targets build with cargo-fuzz's default AddressSanitizer; FUZZ_SANITIZER=none
# (or any other `cargo fuzz run --sanitizer` value) overrides it: without ASan
# the targets run about 3-4 times faster, which suits long runs over this
# safe code (overflow checks and debug assertions stay on either way).
# Corpora live in fuzz/corpus/<target>/ (seeded here when missing), crashes
# in fuzz/artifacts/<target>/, full logs in fuzz/target/fuzz-logs/.
# Exits non-zero when any target crashes or fails to run.
set -euo pipefail

usage() {
    sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//'
}

seconds=20
if (($# > 0)); then
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    esac
    seconds=$1
    shift
fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
    echo "run.sh: SECONDS_PER_TARGET must be a positive integer, got '$seconds'" >&2
    usage >&2
    exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")"

targets=(frame_decoder request_decoder response_decoder roundtrip)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# --- seeds -----------------------------------------------------------------

# Hex of the bytes of a string.
hex() {
    printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

# Hex of a CBOR text string (up to 255 bytes).
text() {
    local n=${#1}
    if ((n < 24)); then
        printf '%02x' $((0x60 + n))
    else
        printf '78%02x' "$n"
    fi
    hex "$1"
}

# Hex of a frame: frame NFDS BODY_HEX.
frame() {
    printf '535601%02x%08x%s' "$1" $((${#2} / 2)) "$2"
}

# Hex of one read in the frame_decoder input layout: read NFDS BYTES_HEX.
read_() {
    local n=$((${#2} / 2)) ctl=0
    if (($1 > 0)); then
        ctl=$(($1 << 1 | 1))
    fi
    printf '%02x%02x%02x%s' "$ctl" $((n & 0xff)) $((n >> 8)) "$2"
}

# Writes corpus/TARGET/seed-NAME from hex unless it exists: seed TARGET NAME HEX.
seed() {
    local file="corpus/$1/seed-$2"
    if [[ ! -e $file ]]; then
        printf '%b' "$(sed 's/../\\x&/g' <<<"$3")" >"$file"
    fi
}

write_seeds() {
    local t
    for t in "${targets[@]}"; do
        mkdir -p "corpus/$t"
    done

    local id method args
    id=$(text id)
    method=$(text method)
    args=$(text args)
    local ping stacks inject change pending indefinite
    ping="a3${id}01${method}$(text debug.Ping)${args}a1$(text payload)43010203"
    stacks="a3${id}02${method}$(text debug.Stacks)${args}f6"
    inject="a3${id}03${method}$(text debug.InjectFault)${args}a2$(text actor)$(text Debug)$(text kind)a1$(text stall)a1$(text ms)05"
    change="a3${id}04${method}$(text Logging.Change)${args}a2$(text level)$(text warn)$(text format)$(text json)"
    pending="a2${id}1864${method}$(text containerManager.StartRoot)"
    indefinite="bf${method}$(text debug.Ping)${id}05${args}a1$(text payload)5f41014102ffff"
    seed request_decoder ping "$ping"
    seed request_decoder stacks "$stacks"
    seed request_decoder inject "$inject"
    seed request_decoder change "$change"
    seed request_decoder pending "$pending"
    seed request_decoder indefinite "$indefinite"

    local ok
    ok=$(text ok)
    local actor thread
    actor="a5$(text name)$(text Debug)$(text state)$(text running)$(text restarts)00$(text mailbox)00$(text handling)f6"
    thread="a3$(text tid)01$(text name)$(text main)$(text state)$(text S)"
    seed response_decoder ping "a2${id}01${ok}a1$(text payload)420102"
    seed response_decoder empty "a2${id}02${ok}a0"
    seed response_decoder logging "a2${id}03${ok}a2$(text level)$(text info)$(text format)$(text text)"
    seed response_decoder stacks "a2${id}04${ok}a5$(text actors)81${actor}$(text threads)81${thread}$(text connections)01$(text uptime_ms)0a$(text fault_injection)f4"
    seed response_decoder err "a2${id}05$(text err)a2$(text code)$(text not_found)$(text message)$(text 'no such method')"

    # frame_decoder: byte 0 picks the limits, then reads (see its doc comment).
    local hello pair partial
    hello=$(frame 0 "$(hex hello)")
    pair="$(frame 2 "$(hex ab)")$(frame 0 '')"
    partial=$(frame 1 "$(hex z)")
    seed frame_decoder hello "00$(read_ 0 "$hello")"
    seed frame_decoder fds "00$(read_ 3 "$pair${partial:0:6}")$(read_ 0 "${partial:6}")"
    seed frame_decoder small-limits "020402$(read_ 0 "$(frame 0 "$(hex hello)")")"
    local request
    request=$(frame 0 "$ping")
    seed frame_decoder split-request "030000010002$(read_ 0 "${request:0:20}")$(read_ 0 "${request:20}")"
    seed frame_decoder bad-magic "00$(read_ 0 5858010000000000)"
    # A 256 KiB body sent as one filler read (ctl fe: 16 * 0x3fff bytes of 0x41).
    seed frame_decoder big "00$(read_ 0 535601000003fff0)fe3fff41$(read_ 0 "$hello")"

    # roundtrip input is arbitrary-driven: any bytes will do.
    local b
    for b in 00 01 02 03 04; do
        seed roundtrip "$b" "$(printf "$b%.0s" {1..48})"
    done
}

write_seeds

# --- runs ------------------------------------------------------------------

# The last value of libFuzzer's final stat NAME in LOG: final_stat LOG NAME.
final_stat() {
    sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}

# Each sanitizer other than the default builds into its own target dir, so
# that switching does not rebuild everything.
sanitizer=()
if [[ -n ${FUZZ_SANITIZER:-} ]]; then
    sanitizer=(--sanitizer "$FUZZ_SANITIZER" --target-dir "target/sanitizer-$FUZZ_SANITIZER")
fi

mkdir -p target/fuzz-logs
failed=()
for target in "${targets[@]}"; do
    log="target/fuzz-logs/$target.log"
    status=0
    cargo +nightly fuzz run "${sanitizer[@]}" "$target" -- \
        -max_total_time="$seconds" \
        -rss_limit_mb=1024 \
        -max_len=65536 \
        -print_final_stats=1 \
        "$@" >"$log" 2>&1 || status=$?
    printf '%-17s execs=%-10s exec/s=%-7s peak_rss_mb=%-5s %s\n' \
        "$target" "$(final_stat "$log" number_of_executed_units)" \
        "$(final_stat "$log" average_exec_per_sec)" "$(final_stat "$log" peak_rss_mb)" \
        "$([[ $status == 0 ]] && echo ok || echo "FAILED (exit $status, log $log)")"
    if [[ $status != 0 ]]; then
        failed+=("$target")
        grep -E 'panicked at|^SUMMARY|Test unit written to|^Running:|ERROR' "$log" | head -n 20 >&2 || true
    fi
done

if ((${#failed[@]} > 0)); then
    echo "run.sh: failing targets: ${failed[*]}" >&2
    exit 1
fi
