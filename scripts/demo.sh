#!/usr/bin/env bash
# The main job on the embedded default, on generated Open edX data:
#
#   bash scripts/demo.sh [DIR]          (DIR: else $PANORAMA_DEMO_DIR, else ./panorama-demo)
#
# Installs what is missing (`npm ci`; MariaDB through scripts/test-env.sh, which also starts and
# at the end stops a private server), generates an Open edX database (scripts/gen-openedx-data.ts),
# writes DIR/panorama.toml (mode CUSTOM, target "local"), runs `panorama run` into DIR/datalake,
# ships a sample tracking log with `panorama log-ship --once`, and prints the datalake tree, the
# rows per table (generated and in the datalake) and, when the command exists, `catalog --print-ddl`.
# Run it again with the same DIR: the run is incremental (watermarks in DIR/state) and the
# datalake ends the same; the tracking log is not shipped twice.
#
# Sizes: PANORAMA_DEMO_USERS, PANORAMA_DEMO_COURSES, PANORAMA_DEMO_ENROLLMENTS,
# PANORAMA_DEMO_STUDENTMODULE (default 500, 8, 2000, 20000).
# Course structures need MongoDB, which the demo does not start: that table is excluded.
set -euo pipefail

# -P: the real checkout, also when scripts/ is reached through a symbolic link.
ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUN="$ROOT/node_modules/.bin/bun"

say() {
  printf '\n== %s\n' "$*"
}

if [ -z "${PANORAMA_DEMO_INSIDE:-}" ]; then
  DIR="${1:-${PANORAMA_DEMO_DIR:-panorama-demo}}"
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  cd "$ROOT"
  if [ ! -d node_modules ]; then
    say "npm ci"
    npm ci
  fi
  # npm can skip bun's postinstall (ignore-scripts), which leaves a stub in place of the binary.
  if ! "$BUN" --version >/dev/null 2>&1; then
    (cd node_modules/bun && node install.js)
  fi
  say "starting a private MariaDB (scripts/test-env.sh)"
  PANORAMA_DEMO_INSIDE=1 exec "$ROOT/scripts/test-env.sh" bash "$ROOT/scripts/demo.sh" "$DIR"
fi

# ---- inside scripts/test-env.sh: the servers run, PANORAMA_TEST_* say where ------------------
DIR="$1"
cd "$ROOT"
# The operator's own PANORAMA_* settings (a Tutor host has some) would override the demo's file.
while IFS= read -r name; do
  case "$name" in
  PANORAMA_TEST_* | PANORAMA_DEMO_*) ;;
  PANORAMA_* | LMS_HOST) unset "$name" ;;
  esac
done < <(compgen -e)

CONFIG="$DIR/panorama.toml"
DATALAKE="$DIR/datalake"
LOG="$DIR/logs/tracking.log"
panorama() {
  "$BUN" "$ROOT/src/cli.ts" --config "$CONFIG" "$@"
}
# A TOML basic string.
toml() {
  local s="${1//\\/\\\\}"
  printf '"%s"' "${s//\"/\\\"}"
}

say "generating an Open edX database"
MYSQL_PWD="$PANORAMA_TEST_MYSQL_PASSWORD" "$BUN" scripts/gen-openedx-data.ts \
  --host "$PANORAMA_TEST_MYSQL_HOST" --port "$PANORAMA_TEST_MYSQL_PORT" \
  --user "$PANORAMA_TEST_MYSQL_USER" --database "$PANORAMA_TEST_MYSQL_DATABASE" \
  --users "${PANORAMA_DEMO_USERS:-500}" --courses "${PANORAMA_DEMO_COURSES:-8}" \
  --enrollments "${PANORAMA_DEMO_ENROLLMENTS:-2000}" \
  --studentmodule "${PANORAMA_DEMO_STUDENTMODULE:-20000}" --seed 1 >"$DIR/generated.json"

# The server's password is new each time, so the file is written each time.
umask 077
cat >"$CONFIG" <<TOML
# Written by scripts/demo.sh: a local datalake fed by a private MariaDB with generated data.
mode = "CUSTOM"
lms_host = "lms.demo.example"
state_dir = $(toml "$DIR/state")

[datalake]
target = "local"
path = $(toml "$DATALAKE")

[mysql]
host = $(toml "$PANORAMA_TEST_MYSQL_HOST")
port = $PANORAMA_TEST_MYSQL_PORT
user = $(toml "$PANORAMA_TEST_MYSQL_USER")
password = $(toml "$PANORAMA_TEST_MYSQL_PASSWORD")
database = $(toml "$PANORAMA_TEST_MYSQL_DATABASE")

[extract]
preset = "openedx"
exclude = ["course_structures"]   # from MongoDB, which the demo does not run

[logs]
paths = [$(toml "$LOG")]
TOML
umask 022
chmod 600 "$CONFIG"
echo "configuration: $CONFIG"

say "panorama run"
panorama run

# Real tracking events (test/fixtures/tracking/SOURCES.md says where they come from). Copied once:
# a second demo finds them checkpointed and ships nothing again.
mkdir -p "$(dirname "$LOG")"
[ -e "$LOG" ] || cp test/fixtures/tracking/events.jsonl "$LOG"
say "panorama log-ship --once"
panorama log-ship --once

say "the datalake: $DATALAKE"
(cd "$DATALAKE" && find . -type f -printf '%10s  %P\n' | sort -k2)

# The DDL is long (a table and a view per table): to a file, so that the rows check ends the demo.
DDL="$DIR/catalog.sql"
say "panorama catalog --print-ddl > $DDL"
panorama catalog --print-ddl >"$DDL"
echo "the Athena DDL of the tables and views: $DDL ($(wc -l <"$DDL") lines)"

echo
echo "Run \`bash scripts/demo.sh $DIR\` again: the second run is incremental and changes nothing."
echo "The private MariaDB stops at the end."

say "rows per table"
# CSV fields never hold a line break (DESIGN §5), so a file's rows are its lines minus the header.
"$BUN" -e '
  const { readdirSync, readFileSync, statSync } = require("node:fs");
  const { join } = require("node:path");
  const { gunzipSync } = require("node:zlib");
  const [generatedFile, root] = process.argv.slice(1);
  const generated = JSON.parse(readFileSync(generatedFile, "utf8")).tables;
  const files = (dir) => readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
  const lines = (file) => {
    const text = (file.endsWith(".gz") ? gunzipSync(readFileSync(file)) : readFileSync(file)).toString("utf8");
    return text.split("\n").filter((l) => l !== "").length;
  };
  const base = join(root, "openedx");
  const inLake = {};
  for (const table of readdirSync(base)) {
    const all = files(join(base, table));
    inLake[table] = all.reduce((n, f) => n + lines(f) - (table === "tracking_logs" ? 0 : 1), 0);
  }
  // The course index feeds course structures (MongoDB); it is not a datalake table.
  const names = [...new Set([...Object.keys(generated), ...Object.keys(inLake)])]
    .filter((t) => t !== "split_modulestore_django_splitmodulestorecourseindex").sort();
  let different = 0;
  console.log(`${"table".padEnd(52)} ${"generated".padStart(9)} ${"datalake".padStart(9)}`);
  for (const t of names) {
    const g = generated[t];
    const d = inLake[t] ?? 0;
    const same = g === undefined || g === d;
    if (!same) different++;
    console.log(`${t.padEnd(52)} ${String(g ?? "-").padStart(9)} ${String(d).padStart(9)}${same ? "" : "  DIFFERENT"}`);
  }
  console.log(different === 0 ? "every generated row is in the datalake" : `${different} table(s) differ`);
  process.exit(different === 0 ? 0 : 1);
' "$DIR/generated.json" "$DATALAKE"
