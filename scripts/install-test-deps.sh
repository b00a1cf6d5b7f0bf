#!/usr/bin/env bash
# Install the real servers used by the integration tests (tests/servers.py):
# InfluxDB 1.x, VictoriaMetrics, PostgreSQL, plus small system tools.
# Idempotent; runs as root on Debian bookworm. Services are never started.
set -euo pipefail

PKGS=(influxdb victoria-metrics postgresql iproute2 procps ca-certificates openssl faketime curl)

have_all() {
    command -v influxd >/dev/null 2>&1 || return 1
    command -v victoria-metrics >/dev/null 2>&1 || return 1
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || return 1
    command -v ip >/dev/null 2>&1 || return 1
    command -v pkill >/dev/null 2>&1 || return 1
    command -v openssl >/dev/null 2>&1 || return 1
    command -v faketime >/dev/null 2>&1 || return 1
    command -v curl >/dev/null 2>&1 || return 1
}

if have_all; then
    echo "install-test-deps: all binaries present, skipping apt"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: must run as root to install: ${PKGS[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
POLICY=/usr/sbin/policy-rc.d
policy_created=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    policy_created=1
    echo "install-test-deps: created $POLICY (no service starts)"
fi
LOG=$(mktemp /tmp/install-test-deps.XXXXXX.log)
cleanup() {
    if [ "$policy_created" = 1 ]; then
        rm -f "$POLICY"
        echo "install-test-deps: removed $POLICY"
    fi
    rm -f "$LOG"
}
trap cleanup EXIT

# Run quietly; on failure show the tail of the output.
logged() {
    "$@" >"$LOG" 2>&1 && return 0
    echo "install-test-deps: failed: $*" >&2
    tail -n 30 "$LOG" >&2
    return 1
}
apt_update() { logged apt-get update -q; }
apt_install() {
    logged apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${PKGS[@]}"
}

if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    echo "install-test-deps: package lists empty, running apt-get update"
    apt_update
fi

echo "install-test-deps: installing ${PKGS[*]}"
if ! apt_install; then
    echo "install-test-deps: install failed, running apt-get update and retrying"
    apt_update
    apt_install
fi

have_all || { echo "install-test-deps: binaries still missing after install" >&2; exit 1; }
echo "install-test-deps: done"
