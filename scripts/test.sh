#!/usr/bin/env bash
# The test command (`npm test`): lint, type-check, then every bun test against a private MariaDB
# and S3 (scripts/test-env.sh). Lint and type-check are reported on their own lines ("lint: ok"
# or "lint: FAILED"); the last line counts the tests only and is always
# "N passed, N failed, N skipped" (CI reads it). The exit status is non-zero when lint,
# type-check or any test failed. The tests leave nothing behind (test/support/preload.ts).
#
#   scripts/test.sh [BUN TEST ARGS...]
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
BIN="$ROOT/node_modules/.bin"

checks=()
checks_failed=0

check() {
  local name="$1"
  shift
  echo "== $name: $*" >&2
  if "$@"; then
    checks+=("$name: ok")
  else
    checks+=("$name: FAILED")
    checks_failed=$((checks_failed + 1))
  fi
}

# What the tests need besides MariaDB (scripts/test-env.sh installs that): AWS's Glue and Athena
# API models from botocore, read by the Glue/Athena test server, and zsh and fish, which run the
# completion scripts.
missing=()
[ -d /usr/lib/python3/dist-packages/botocore/data ] || python3 -c 'import botocore' 2>/dev/null ||
  missing+=(python3-botocore)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}" >&2
  bash "$ROOT/scripts/apt-install.sh" "${missing[@]}" >&2 ||
    echo "== could not install ${missing[*]}: the tests that need them will fail or be skipped" >&2
fi

check lint "$BIN/biome" check .
check typecheck "$BIN/tsc" --noEmit

echo "== tests: scripts/test-env.sh bun test --timeout 60000 $*" >&2
log="$(mktemp "${TMPDIR:-/tmp}/panorama-test.XXXXXX")"
trap 'rm -f "$log"' EXIT
# bun writes results and its summary to stderr: copy that stream to the log, keep stdout as is.
# --timeout: bunfig.toml's [test] timeout is not read by this bun, and the tests that start servers
# and CLI processes need more than its default 5 s on a loaded machine.
{ "$ROOT/scripts/test-env.sh" "$BIN/bun" test --timeout 60000 "$@" 2>&1 1>&3 3>&- | tee "$log" >&2 3>&-; } 3>&1
status=$?

count() {
  local n
  n="$(sed -n "s/^ *\([0-9][0-9]*\) $1\$/\1/p" "$log" | tail -n 1)"
  echo "${n:-0}"
}
passed="$(count pass)"
failed="$(count fail)"
skipped="$(count skip)"
# No summary but a failure (the environment did not start, bun crashed): still one failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi

for line in "${checks[@]}"; do echo "$line"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$checks_failed" -eq 0 ]
