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
# seccomp profiles, busybox-static for test root filesystems, containerd
# (whose ctr drives sandvisor in tests/containerd.rs), procps (ps, which
# `sandvisor ps` filters as runc's does) and gcc with a static libc (the
# attacker program of tests/security.rs); the real clients of
# tests/clients.rs: podman with conmon and catatonit (its --init and its
# pods' infra), docker.io (dockerd, its docker-init), the CNI plugins and
# uidmap podman expects.
APT_PACKAGES=(libseccomp-dev pkg-config busybox-static containerd procps gcc libc6-dev
    podman conmon catatonit docker.io containernetworking-plugins uidmap)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # The tests start a containerd and dockerds of their own: the
    # packages must not start the host's services (policy-rc.d 101
    # forbids it, for this install only).
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod +x "$policy"
        made_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    if [[ -n "$made_policy" ]]; then
        rm -f "$policy"
        trap - EXIT
    fi
fi

echo "==> cargo test (workspace)"
cargo test --workspace --locked

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
if [[ "$FUZZ_SECONDS" != 0 ]]; then
    echo "==> fuzz smoke run (${FUZZ_SECONDS}s per target)"
    fuzz/run.sh "$FUZZ_SECONDS"
fi
echo "==> all tests passed"
