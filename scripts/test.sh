#!/usr/bin/env bash
# The test command (`npm test`): lint, type-check, then every bun test against a private MariaDB
# and S3 (scripts/test-env.sh): the whole suite in two shards side by side, each with its own. Lint and type-check are reported on their own lines ("lint: ok"
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
# API models from botocore, read by the Glue/Athena test server; zsh and fish, which run the
# completion scripts; buildah, podman and runc for the container image; clang and lld, which
# compile the WebAssembly row encoder again to check it against the committed module.
missing=()
[ -d /usr/lib/python3/dist-packages/botocore/data ] || python3 -c 'import botocore' 2>/dev/null ||
  missing+=(python3-botocore)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
# The container image test builds with buildah and runs the image with podman on runc (crun
# refuses the hybrid cgroups of many VMs).
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v wasm-ld >/dev/null 2>&1 || missing+=(lld)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}" >&2
  bash "$ROOT/scripts/apt-install.sh" "${missing[@]}" >&2 ||
    echo "== could not install ${missing[*]}: the tests that need them will fail or be skipped" >&2
fi

check lint "$BIN/biome" check .
check typecheck "$BIN/tsc" --noEmit

# --timeout: bunfig.toml's [test] timeout is not read by this bun, and the tests that start servers
# and CLI processes need more than its default 5 s on a loaded machine.
BUN_TEST=("$BIN/bun" test --timeout 60000)
work="$(mktemp -d "${TMPDIR:-/tmp}/panorama-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The tests' temporary files go under it too (test/support/preload.ts makes its directory there
# and removes it at the end): what a test process that dies leaves goes with the rest.
# Traversable, as /tmp is: some tests run the CLI as another user.
chmod 755 "$work"
export TMPDIR="$work"

# bun writes results and its summary to stderr: copy that stream to a log, keep stdout as is.
run_tests() { # LOG [FILES...]: one test environment, one bun process
  local log="$1"
  shift
  { "$ROOT/scripts/test-env.sh" "${BUN_TEST[@]}" "$@" 2>&1 1>&3 3>&- | tee "$log" >&2 3>&-; } 3>&1
}

has_summary() { # LOG: bun printed its closing counts
  grep -qE '^ *[0-9]+ fail$' "$1"
}

statuses=()
if [ "$#" -gt 0 ]; then
  echo "== tests: scripts/test-env.sh bun test --timeout 60000 $*" >&2
  run_tests "$work/1.log" "$@"
  statuses+=("$?")
  logs=("$work/1.log")
else
  # The whole suite in two shards, each with its own MariaDB and S3 (test-env.sh), side by side:
  # most of the time goes to waiting (CLI processes, kills, servers), so two cores serve two runs.
  # Files are dealt by their measured seconds, the heaviest first, to the lighter shard (the sums
  # of their tests' times in a run of the whole suite, and half a second each for its start; the
  # files not named take 1).
  declare -A weight=(
    [test/integration/unchanged-probe.test.ts]=48 [test/integration/modes.test.ts]=32
    [test/integration/run.test.ts]=26 [test/integration/s3-run.test.ts]=31
    [test/integration/logship.test.ts]=30 [test/integration/verify.test.ts]=38
    [test/integration/s3-client.test.ts]=20 [test/integration/logship-downtime.test.ts]=18
    [test/integration/extract.test.ts]=21 [test/integration/s3-verify.test.ts]=18
    [test/integration/logship-s3.test.ts]=18 [test/integration/readme.test.ts]=16
    [test/integration/doctor.test.ts]=12 [test/integration/pk-ranges.test.ts]=12
    [test/integration/raw-rows.test.ts]=11 [test/integration/schema-variants.test.ts]=11
    [test/integration/cli.test.ts]=10 [test/integration/course-structures.test.ts]=11
    [test/integration/privacy-logship.test.ts]=9 [test/integration/glue-unreachable.test.ts]=9
    [test/integration/columns-change.test.ts]=8 [test/integration/disk-full.test.ts]=8
    [test/integration/upstream-tables.test.ts]=8 [test/integration/catalog.test.ts]=8
    [test/unit/logship-downtime.test.ts]=7 [test/unit/rows-to-csv.test.ts]=7
    [test/integration/catalog-policy.test.ts]=7 [test/integration/partition-keys-change.test.ts]=7
    [test/integration/schema-pull-write.test.ts]=6 [test/unit/logship-ship.test.ts]=6
    [test/integration/privacy.test.ts]=6 [test/integration/run-outage.test.ts]=6
    [test/integration/state-dir.test.ts]=6 [test/integration/hidden-privileges.test.ts]=6
    [test/integration/server-sql-mode.test.ts]=5 [test/integration/metrics.test.ts]=5
    [test/integration/schema-snapshot.test.ts]=5 [test/integration/cli-init.test.ts]=5
    [test/integration/cli-setup.test.ts]=4 [test/integration/folded-partitions.test.ts]=4
    [test/integration/restore.test.ts]=4 [test/integration/image.test.ts]=4
    [test/integration/run-output.test.ts]=4 [test/integration/run-before-catalog.test.ts]=3
    [test/integration/mysql8-auth.test.ts]=3 [test/unit/aws-credential-sources.test.ts]=2
    [test/unit/mongodb.test.ts]=2 [test/unit/spool-writer.test.ts]=2
    [test/unit/course-structures.test.ts]=2 [test/unit/completions.test.ts]=2
    [test/integration/private-files.test.ts]=2 [test/unit/raw-csv.test.ts]=2
    [test/integration/connection-limits.test.ts]=2 [test/unit/logship-cri.test.ts]=2
    [test/integration/schema-change-mid-run.test.ts]=2 [test/integration/preset-layout.test.ts]=2
    [test/integration/upgrade-layout.test.ts]=2 [test/integration/statement-limits.test.ts]=2
    [test/integration/wrong-database.test.ts]=2 [test/integration/s3-proxy.test.ts]=2
    [test/integration/mysql-restart.test.ts]=14
  )
  shard=("" "")
  load=(0 0)
  while read -r w file; do
    i=0
    [ "${load[1]}" -lt "${load[0]}" ] && i=1
    shard[i]+=" ./$file"
    load[i]=$((load[i] + w))
  done < <(find test -name '*.test.ts' | sort | while read -r f; do echo "${weight[$f]:-1} $f"; done | sort -rn -k1,1 -s)
  echo "== tests: two shards of bun test --timeout 60000, each under scripts/test-env.sh" >&2
  # The first shard is shown as it runs; the second one's output follows it.
  # shellcheck disable=SC2086
  run_tests "$work/1.log" ${shard[0]} &
  first=$!
  # shellcheck disable=SC2086
  "$ROOT/scripts/test-env.sh" "${BUN_TEST[@]}" ${shard[1]} >"$work/2.out" 2>"$work/2.log" &
  second=$!
  wait "$first"
  statuses+=("$?")
  wait "$second"
  statuses+=("$?")
  cat "$work/2.out"
  cat "$work/2.log" >&2
  logs=("$work/1.log" "$work/2.log")
  # A shard that ended without bun's summary never finished its files (its test environment did
  # not start, or bun itself died): say so where the end of the output shows it, then run that
  # shard once more, alone. A shard whose tests failed is not run again.
  for i in 0 1; do
    if [ "${statuses[i]}" -ne 0 ] && ! has_summary "${logs[i]}"; then
      echo "== shard $((i + 1)) ended with status ${statuses[i]} and no summary; its last lines:" >&2
      tail -n 40 "${logs[i]}" >&2
      echo "== shard $((i + 1)) again, alone" >&2
      cp "${logs[i]}" "$work/$((i + 1)).first.log"
      # shellcheck disable=SC2086
      run_tests "${logs[i]}" ${shard[i]}
      statuses[i]=$?
    fi
  done
fi

count() { # WORD: the sum over the logs of bun's closing "N WORD" line
  local total=0 log n
  for log in "${logs[@]}"; do
    n="$(sed -n "s/^ *\([0-9][0-9]*\) $1\$/\1/p" "$log" | tail -n 1)"
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
passed="$(count pass)"
failed="$(count fail)"
skipped="$(count skip)"
# A shard without a summary but a failure (the environment did not start, bun crashed): still one
# failure each.
for i in "${!statuses[@]}"; do
  if [ "${statuses[i]}" -ne 0 ] && ! has_summary "${logs[i]}"; then
    failed=$((failed + 1))
  elif [ "${statuses[i]}" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
  fi
done

# The failed tests again, last, where a reader of only the end of a long output sees them.
if [ "$failed" -gt 0 ]; then
  echo "== failed:" >&2
  grep -h '^(fail)' "${logs[@]}" >&2
  for i in "${!statuses[@]}"; do
    [ "${statuses[i]}" -ne 0 ] && ! has_summary "${logs[i]}" &&
      echo "shard $((i + 1)): status ${statuses[i]}, no summary (its last lines are above)" >&2
  done
fi

for line in "${checks[@]}"; do echo "$line"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$checks_failed" -eq 0 ]
