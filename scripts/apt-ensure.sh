#!/usr/bin/env bash
# apt-ensure.sh PKG...: install the Debian packages that are not installed yet.
# Idempotent, quiet on success, shows the tail of apt's output on failure. Package postinst
# scripts never start services (policy-rc.d). Runs `apt-get update` only when needed.
set -euo pipefail
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "apt-ensure: must run as root to install: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
POLICY=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"; created=1
fi
LOG=$(mktemp /tmp/apt-ensure.XXXXXX.log)
trap '[ "$created" = 1 ] && rm -f "$POLICY"; rm -f "$LOG"' EXIT
logged() { "$@" >"$LOG" 2>&1 && return 0; echo "apt-ensure: failed: $*" >&2; tail -n 30 "$LOG" >&2; return 1; }
install() { logged apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; }
echo "apt-ensure: installing ${missing[*]}"
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then logged apt-get update -q; fi
if ! install; then logged apt-get update -q; install; fi
