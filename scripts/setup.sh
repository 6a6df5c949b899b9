#!/usr/bin/env bash
# Set up everything posgw needs on this machine, idempotently:
#   - on Debian as root: the system packages (pcscd, vsmartcard-vpcd, mosquitto, socat, ...);
#     elsewhere: a clear list of what to install;
#   - a virtual environment in .venv with the pinned Python dependencies (constraints.txt).
# Sourced by scripts/demo and scripts/test; safe to run on its own.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

SYSTEM_PACKAGES=(pcscd vsmartcard-vpcd mosquitto mosquitto-clients socat pcsc-tools chromium)
# Needed to build pyscard from source where no wheel fits this machine.
BUILD_PACKAGES=(gcc swig libpcsclite-dev python3-dev)

need_system=()
command -v pcscd >/dev/null 2>&1 || [ -x /usr/sbin/pcscd ] || need_system+=(pcscd)
ls /usr/lib/pcsc/drivers/serial/libifdvpcd.so* >/dev/null 2>&1 \
  || ls /usr/lib/*/pcsc/drivers/serial/libifdvpcd.so* >/dev/null 2>&1 || need_system+=(vsmartcard-vpcd)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_system+=(mosquitto)
# benchmarks/sync.py measures the outbox against mosquitto_pub in the same run
command -v mosquitto_pub >/dev/null 2>&1 || need_system+=(mosquitto-clients)
command -v socat >/dev/null 2>&1 || need_system+=(socat)
# The status page's browser tests drive Debian's chromium through Playwright (executable_path).
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_system+=(chromium)

if [ ${#need_system[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages: ${SYSTEM_PACKAGES[*]} ${BUILD_PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${SYSTEM_PACKAGES[@]}" "${BUILD_PACKAGES[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${need_system[*]}" >&2
    echo "setup: on Debian/Ubuntu run as root: apt-get install ${SYSTEM_PACKAGES[*]}" >&2
    echo "setup: tests that need these services will fail until they are installed." >&2
  fi
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python >= 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

stamp=.venv/.posgw-setup
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
  log=$(mktemp)
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'; } >"$log" 2>&1; then
    cat "$log" >&2; echo "setup: pip install failed (log above)" >&2; exit 1
  fi
  rm -f "$log"
  echo "$want" > "$stamp"
fi
