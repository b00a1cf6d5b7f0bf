#!/usr/bin/env bash
# Install what the test network (tests/netlab.py) needs: net-snmp's snmpd and
# client tools, lldpd, iproute2, OpenSSH server, ping (Debian packages), and
# FakeNOS + netmiko into a virtualenv.
#
# Usage: scripts/install-netlab-deps.sh [VENV]   (VENV defaults to .venv)
#
# Idempotent; runs as root on Debian bookworm. Services are never started
# (a policy-rc.d guard is in place during apt-get), and the system-wide
# daemons that the packages may have enabled are left alone: netlab runs its
# own instances with private configs inside network namespaces.
set -euo pipefail

VENV=${1:-.venv}
PKGS=(snmpd snmp lldpd iproute2 openssh-server openssh-client iputils-ping procps util-linux)
PIP_PKGS=(fakenos netmiko)

have_bins() {
    command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || return 1
    command -v snmpget >/dev/null 2>&1 || return 1
    command -v snmpbulkwalk >/dev/null 2>&1 || return 1
    command -v lldpd >/dev/null 2>&1 || [ -x /usr/sbin/lldpd ] || return 1
    command -v lldpcli >/dev/null 2>&1 || [ -x /usr/sbin/lldpcli ] || return 1
    command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || return 1
    [ -x /usr/sbin/sshd ] || return 1
    command -v ssh-keygen >/dev/null 2>&1 || return 1
    command -v ping >/dev/null 2>&1 || return 1
    command -v setpriv >/dev/null 2>&1 || return 1
    command -v pkill >/dev/null 2>&1 || return 1
}

install_apt() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-netlab-deps: must run as root to install: ${PKGS[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local policy=/usr/sbin/policy-rc.d policy_created=0 log
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        policy_created=1
        echo "install-netlab-deps: created $policy (no service starts)"
    fi
    log=$(mktemp /tmp/install-netlab-deps.XXXXXX.log)
    # shellcheck disable=SC2064
    trap "rm -f '$log'; [ $policy_created = 1 ] && rm -f '$policy' || true" EXIT

    logged() {
        "$@" >"$log" 2>&1 && return 0
        echo "install-netlab-deps: failed: $*" >&2
        tail -n 30 "$log" >&2
        return 1
    }
    # wait for another apt/dpkg run (other engineers share this machine)
    local lock=(-o DPkg::Lock::Timeout=600)
    apt_update() { logged apt-get "${lock[@]}" update -q; }
    apt_install() {
        logged apt-get "${lock[@]}" install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${PKGS[@]}"
    }

    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        echo "install-netlab-deps: package lists empty, running apt-get update"
        apt_update
    fi
    echo "install-netlab-deps: installing ${PKGS[*]}"
    if ! apt_install; then
        echo "install-netlab-deps: install failed, running apt-get update and retrying"
        apt_update
        apt_install
    fi
    have_bins || { echo "install-netlab-deps: binaries still missing after install" >&2; exit 1; }
}

if have_bins; then
    echo "install-netlab-deps: all binaries present, skipping apt"
else
    install_apt
fi

# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd 2>/dev/null || true

if [ ! -x "$VENV/bin/python" ]; then
    echo "install-netlab-deps: no virtualenv at $VENV (expected $VENV/bin/python)" >&2
    exit 1
fi
if "$VENV/bin/python" -c 'import fakenos, netmiko' >/dev/null 2>&1; then
    echo "install-netlab-deps: fakenos and netmiko present in $VENV, skipping pip"
else
    echo "install-netlab-deps: pip-installing ${PIP_PKGS[*]} into $VENV"
    "$VENV/bin/python" -m pip install -q "${PIP_PKGS[@]}"
fi
echo "install-netlab-deps: done"
