#!/usr/bin/env bash
# Runs CMD with a private MariaDB, s3rver and the SigV4-checking S3 proxy, all on loopback, and
# exports their settings as PANORAMA_TEST_* variables. Everything is stopped and deleted on exit,
# so two runs can share a machine.
#
#   scripts/test-env.sh CMD [ARGS...]
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/test-env.sh CMD [ARGS...]" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUN="$ROOT/node_modules/.bin/bun"
S3RVER="$ROOT/node_modules/.bin/s3rver"
# mariadbd lives in sbin, which a non-root PATH often lacks.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

die() {
  echo "test-env: $*" >&2
  exit 1
}

for tool in "$BUN" "$S3RVER"; do
  [ -x "$tool" ] || die "$tool is missing; run \`npm ci\` first."
done

if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
  echo "test-env: installing mariadb-server and mariadb-client" >&2
  bash "$ROOT/scripts/apt-install.sh" mariadb-server mariadb-client || die "could not install MariaDB"
fi
MARIADBD="$(command -v mariadbd || command -v mysqld)"
INSTALL_DB="$(command -v mariadb-install-db || command -v mysql_install_db)" || die "mariadb-install-db not found"
CLIENT="$(command -v mariadb || command -v mysql)" || die "the mariadb client is not installed"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/panorama-test-env.XXXXXX")"
CMD_PID=""
MYSQL_PID=""
S3RVER_PID=""
PROXY_PID=""

stop() {
  local pid
  for pid in "$PROXY_PID" "$S3RVER_PID" "$MYSQL_PID"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  # The data is thrown away, so a server slow to stop is killed rather than waited for.
  for pid in "$PROXY_PID" "$S3RVER_PID" "$MYSQL_PID"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}

descendants() {
  local child
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# CMD shares our process group, so a signal sent to this script alone must be passed on to CMD
# and what it started.
on_signal() {
  if [ -n "$CMD_PID" ]; then
    # shellcheck disable=SC2046 # one pid per word
    kill -TERM "$CMD_PID" $(descendants "$CMD_PID") 2>/dev/null
  fi
  exit "$1"
}
trap stop EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

random_secret() {
  od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

free_port() {
  "$BUN" -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# wait_for TENTHS PID CMD...: until CMD succeeds, for at most TENTHS tenths of a second, and only
# while process PID lives.
wait_for() {
  local tenths="$1" pid="$2"
  shift 2
  for _ in $(seq "$tenths"); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# --- MariaDB ------------------------------------------------------------------------------------
MYSQL_DIR="$WORK/mariadb"
MYSQL_SOCKET="$MYSQL_DIR/mysqld.sock"
MYSQL_LOG="$MYSQL_DIR/error.log"
MYSQL_USER=panorama
MYSQL_PASSWORD="$(random_secret 16)"
MYSQL_ROOT_PASSWORD="$(random_secret 16)"
mkdir -p "$MYSQL_DIR/data" "$MYSQL_DIR/tmp"
user_opt=()
[ "$(id -u)" -eq 0 ] && user_opt=(--user=root)

install_db() {
  "$INSTALL_DB" --no-defaults --datadir="$MYSQL_DIR/data" "${user_opt[@]}" \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    >"$MYSQL_DIR/install.log" 2>&1
}
# Seen once in a CI rehearsal while another shard started its own server: the bootstrap failed
# and the same command on an empty directory then worked. One more try, saying why the first
# failed (mariadbd's own [ERROR] lines sit above the install script's advice).
if ! install_db; then
  echo "test-env: mariadb-install-db failed; trying once more. Its errors:" >&2
  grep -iE "\[error\]|error:" "$MYSQL_DIR/install.log" | tail -n 10 >&2 || true
  rm -rf "$MYSQL_DIR/data" && mkdir -p "$MYSQL_DIR/data"
  install_db || {
    tail -n 60 "$MYSQL_DIR/install.log" >&2
    die "mariadb-install-db failed"
  }
fi

root_sql() {
  "$CLIENT" --no-defaults --socket="$MYSQL_SOCKET" --user=root "$@"
}

# The port is free when asked for but another process may take it first: then try another.
for attempt in 1 2 3; do
  MYSQL_PORT="$(free_port)"
  : >"$MYSQL_LOG"
  "$MARIADBD" --no-defaults "${user_opt[@]}" \
    --datadir="$MYSQL_DIR/data" --tmpdir="$MYSQL_DIR/tmp" --socket="$MYSQL_SOCKET" \
    --pid-file="$MYSQL_DIR/mysqld.pid" --log-error="$MYSQL_LOG" \
    --bind-address=127.0.0.1 --port="$MYSQL_PORT" --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --skip-log-bin --skip-performance-schema --innodb-buffer-pool-size=64M \
    --innodb-use-native-aio=0 --innodb-flush-log-at-trx-commit=2 \
    >/dev/null 2>&1 &
  MYSQL_PID=$!
  if wait_for 900 "$MYSQL_PID" root_sql -e "SELECT 1"; then
    break
  fi
  kill -9 "$MYSQL_PID" 2>/dev/null || true
  wait "$MYSQL_PID" 2>/dev/null || true
  MYSQL_PID=""
  if [ "$attempt" -eq 3 ] || ! grep -q "Address already in use" "$MYSQL_LOG"; then
    tail -n 30 "$MYSQL_LOG" >&2
    die "MariaDB did not answer within 90 s (its error log above)"
  fi
done

# Root keeps only its loopback accounts, each with the password: no password-less way in, not even
# over the socket. (Accounts named after the machine's host name are unusable with
# --skip-name-resolve, so they go, as would anonymous ones.)
cat >"$MYSQL_DIR/secure.sql" <<SQL
DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1'));
FLUSH PRIVILEGES;
ALTER USER 'root'@'localhost' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';
ALTER USER 'root'@'::1' IDENTIFIED BY '$MYSQL_ROOT_PASSWORD';
CREATE DATABASE edxapp CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE panorama_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL ON edxapp.* TO '$MYSQL_USER'@'%', '$MYSQL_USER'@'localhost';
GRANT ALL ON panorama_test.* TO '$MYSQL_USER'@'%', '$MYSQL_USER'@'localhost';
SQL
root_sql <"$MYSQL_DIR/secure.sql" || die "could not create the test users and databases"
rm -f "$MYSQL_DIR/secure.sql"

# --- s3rver and the signing proxy ----------------------------------------------------------------
S3_DIR="$WORK/s3rver"
mkdir -p "$S3_DIR/data"
# s3rver knows one key id, S3RVER, and ignores the secret; the proxy is what checks it.
S3_ACCESS_KEY_ID=S3RVER
S3_SECRET_ACCESS_KEY="$(random_secret 20)"
S3_BUCKET=panorama-test
S3_LOGS_BUCKET=panorama-logs-test

# s3rver's continuation tokens are DES-encrypted, which OpenSSL 3 keeps in its legacy provider:
# without it, every listing longer than a page (1,000 keys) fails with a 500.
NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider" \
  "$S3RVER" -d "$S3_DIR/data" -a 127.0.0.1 -p 0 --silent --no-vhost-buckets \
  --configure-bucket "$S3_BUCKET" --configure-bucket "$S3_LOGS_BUCKET" >"$S3_DIR/out.log" 2>&1 &
S3RVER_PID=$!
wait_for 600 "$S3RVER_PID" grep -q "listening on" "$S3_DIR/out.log" || {
  tail -n 30 "$S3_DIR/out.log" >&2
  die "s3rver did not start (log above)"
}
S3_DIRECT_PORT="$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)$/\1/p' "$S3_DIR/out.log")"

"$BUN" "$ROOT/test/support/s3-proxy.ts" --upstream "http://127.0.0.1:$S3_DIRECT_PORT" --port 0 \
  --access-key "$S3_ACCESS_KEY_ID" --secret "$S3_SECRET_ACCESS_KEY" >"$S3_DIR/proxy.log" 2>&1 &
PROXY_PID=$!
wait_for 600 "$PROXY_PID" grep -q "^listening " "$S3_DIR/proxy.log" || {
  tail -n 30 "$S3_DIR/proxy.log" >&2
  die "the S3 proxy did not start (log above)"
}
S3_PROXY_PORT="$(sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$S3_DIR/proxy.log")"

export PANORAMA_TEST_MYSQL_HOST=127.0.0.1
export PANORAMA_TEST_MYSQL_PORT="$MYSQL_PORT"
export PANORAMA_TEST_MYSQL_USER="$MYSQL_USER"
export PANORAMA_TEST_MYSQL_PASSWORD="$MYSQL_PASSWORD"
export PANORAMA_TEST_MYSQL_DATABASE=edxapp
export PANORAMA_TEST_MYSQL_SCRATCH_DATABASE=panorama_test
export PANORAMA_TEST_MYSQL_SOCKET="$MYSQL_SOCKET"
export PANORAMA_TEST_MYSQL_ROOT_PASSWORD="$MYSQL_ROOT_PASSWORD"
export PANORAMA_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PROXY_PORT"
export PANORAMA_TEST_S3_DIRECT_ENDPOINT="http://127.0.0.1:$S3_DIRECT_PORT"
export PANORAMA_TEST_S3_ACCESS_KEY_ID="$S3_ACCESS_KEY_ID"
export PANORAMA_TEST_S3_SECRET_ACCESS_KEY="$S3_SECRET_ACCESS_KEY"
export PANORAMA_TEST_S3_BUCKET="$S3_BUCKET"
export PANORAMA_TEST_S3_LOGS_BUCKET="$S3_LOGS_BUCKET"
export PANORAMA_TEST_S3_REGION=us-east-1

# In the background so that a TERM reaches the trap at once instead of after CMD; stdin is passed
# explicitly because a background command would otherwise read /dev/null.
"$@" <&0 &
CMD_PID=$!
set +e
wait "$CMD_PID"
status=$?
set -e
exit "$status"
