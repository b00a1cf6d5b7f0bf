#!/usr/bin/env bash
# ensure-python.sh [PYTHON]: make sure PYTHON (default python3) exists, is >= 3.11 and can
# create a virtual environment. On a fresh Debian bookworm that means the python3 and
# python3-venv packages (Debian's python3 has no ensurepip without the latter).
set -euo pipefail
PY=${1:-python3}
here=$(dirname "$0")
if ! command -v "$PY" >/dev/null 2>&1; then
    bash "$here/apt-ensure.sh" python3 python3-venv
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "ensure-python: $PY is $("$PY" -V 2>&1); spbe-monitor needs Python >= 3.11" >&2
    exit 1
fi
# the system interpreter: Debian ships venv's ensurepip in a separate package
if [ "$(readlink -f "$(command -v "$PY")")" = "$(readlink -f /usr/bin/python3 2>/dev/null)" ]; then
    bash "$here/apt-ensure.sh" python3-venv
fi
