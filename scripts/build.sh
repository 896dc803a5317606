#!/usr/bin/env bash
# Build the single executable: dist/panorama for this machine (or --out FILE); with --all also
# dist/panorama-linux-x64 and dist/panorama-linux-arm64.
#
#   bash scripts/build.sh [--out FILE] [--all]
#
# --out: the tests build into a directory of their own, so that two test runs never write or run
# the same file at once.
# A host tool run from cron must not read .env or bunfig.toml from whatever directory it starts
# in, hence the two --no-compile-autoload flags. --bytecode needs --format=esm (without it bun
# prints an error, exits 0 and writes a binary that dies at start), so every binary built is run
# once here and the build fails if it does not answer.
# --compile-jit-policy 64: the rows are encoded in WebAssembly, and the JS around them (a socket
# read, a chunk written) runs a few thousand times a run: at the normal thresholds JavaScriptCore
# spent 85 ms of a 1 M-row extraction compiling 93 such functions with its optimizing tier, on
# a core the server needed. Code that is really hot (BSON, per-row encoders) still tiers up;
# log-ship, all JS per line, sets the normal thresholds back (src/commands/log-ship.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bun=node_modules/.bin/bun
version=$(node -p 'require("./package.json").version')
flags=(--compile --minify --bytecode --format=esm --no-compile-autoload-dotenv --no-compile-autoload-bunfig --compile-jit-policy 64)
out=dist/panorama
all=false
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --all) all=true; shift ;;
    *) echo "usage: build.sh [--out FILE] [--all]" >&2; exit 2 ;;
  esac
done
case $out in /* | ./* | ../*) ;; *) out=./$out ;; esac
mkdir -p dist "$(dirname "$out")"

build() { # outfile [bun executable of the target]
  local out=$1 base=${2:-}
  local extra=()
  [ -n "$base" ] && extra=(--compile-executable-path="$base")
  "$bun" build "${flags[@]}" "${extra[@]}" src/cli.ts --outfile "$out" >/dev/null
}

check() { # binary: must print the package version
  local answer
  answer=$("$1" --version 2>&1) || { echo "build: $1 does not start: $answer" >&2; exit 1; }
  [ "$answer" = "$version" ] || { echo "build: $1 --version printed '$answer', expected $version" >&2; exit 1; }
}

build "$out"
check "$out"
echo "$out $(du -m "$out" | cut -f1) MiB"

if [ "$all" = true ]; then
  # The target runtimes come from the same npm packages that bring bun itself, never from a download of bun's own.
  bun_version=$("$bun" --version)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  for pair in "x64:linux-x64" "arm64:linux-aarch64"; do
    arch=${pair%%:*} pkg=${pair#*:}
    if [ -x "node_modules/@oven/bun-$pkg/bin/bun" ]; then
      base="node_modules/@oven/bun-$pkg/bin/bun"
    else
      (cd "$work" && npm pack --silent "@oven/bun-$pkg@$bun_version" >/dev/null && tar -xzf oven-bun-$pkg-$bun_version.tgz && mv package "$pkg")
      base="$work/$pkg/bin/bun"
    fi
    build "dist/panorama-linux-$arch" "$base"
    if [ "$(uname -m)" = "$( [ "$arch" = x64 ] && echo x86_64 || echo aarch64)" ]; then check "dist/panorama-linux-$arch"; fi
    echo "dist/panorama-linux-$arch $(du -m "dist/panorama-linux-$arch" | cut -f1) MiB"
  done
fi
