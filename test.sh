#!/usr/bin/env bash
# Runs every test of sandvisor on a fresh Debian 12 machine, as root.
# Installs what the tests need (idempotent), builds, runs the unit and
# integration tests, then runs each fuzz target for a short bounded time.
#
#   ./test.sh                  everything
#   FUZZ_SECONDS=0 ./test.sh   skip the fuzz smoke run
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the build and the tests need: libseccomp to compile
# seccomp profiles, busybox-static for test root filesystems.
APT_PACKAGES=(libseccomp-dev pkg-config busybox-static)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

echo "==> cargo test (workspace)"
cargo test --workspace --locked

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
if [[ "$FUZZ_SECONDS" != 0 ]]; then
    echo "==> fuzz smoke run (${FUZZ_SECONDS}s per target)"
    fuzz/run.sh "$FUZZ_SECONDS"
fi
echo "==> all tests passed"
