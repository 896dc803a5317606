#!/usr/bin/env bash
# Installs Debian packages with apt-get, as root or through sudo (the test environment and the
# test command install what they need on a fresh machine).
#
#   scripts/apt-install.sh PACKAGE...
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "apt-install: need root (or sudo) to install $*" >&2
  exit 1
fi
# Two test runs (or a test run and an install by hand) may install at the same moment: wait for
# the other's lock rather than fail.
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  -o DPkg::Lock::Timeout=300 "$@"
