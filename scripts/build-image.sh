#!/usr/bin/env bash
# Builds the panorama container image with buildah (Debian's: bash scripts/apt-install.sh buildah):
# FROM scratch, holding only the compiled binary (/bin/panorama), the C library files it links,
# the CA certificates, and a non-root user (panorama, uid and gid 10001) whose home is the state
# directory /var/lib/panorama. Tagged panorama:<version> (package.json), or --tag.
#
#   bash scripts/build-image.sh [--binary dist/panorama] [--tag NAME] [--root DIR]
#
# --binary: the executable to put in (default dist/panorama, built with scripts/build.sh when
# missing); its libraries are this machine's, found with ldd, so build on the image's
# architecture. --root: a container storage of its own under DIR (vfs driver), instead of the
# machine's (the tests use it, and leave nothing behind). Prints the image's tag.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p 'require("./package.json").version')
binary=dist/panorama
tag="panorama:$version"
storage=()
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --root) storage=(--root "$2/root" --runroot "$2/run" --storage-driver vfs); shift 2 ;;
    *) echo "usage: build-image.sh [--binary PATH] [--tag NAME] [--root DIR]" >&2; exit 2 ;;
  esac
done
command -v buildah >/dev/null || { echo "build-image: buildah is missing (bash scripts/apt-install.sh buildah)" >&2; exit 1; }
[ -e "$binary" ] || bash scripts/build.sh >&2
answer=$("$binary" --version) || { echo "build-image: $binary does not start" >&2; exit 1; }
[ "$answer" = "$version" ] || { echo "build-image: $binary is version $answer, package.json says $version" >&2; exit 1; }

uid=10001
stage=$(mktemp -d)
container=
cleanup() {
  [ -n "$container" ] && buildah "${storage[@]}" rm "$container" >/dev/null 2>&1
  rm -rf "$stage"
}
trap cleanup EXIT

mkdir -p "$stage/bin" "$stage/etc/ssl/certs" "$stage/etc/panorama" "$stage/tmp"
chmod 1777 "$stage/tmp"
cp "$binary" "$stage/bin/panorama"
chmod 0755 "$stage/bin/panorama"
# The dynamic loader and every library the binary links, at the paths the binary asks for.
for lib in $(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  mkdir -p "$stage$(dirname "$lib")"
  cp -L "$lib" "$stage$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/bin/false\npanorama:x:%s:%s:panorama:/var/lib/panorama:/bin/false\n' "$uid" "$uid" >"$stage/etc/passwd"
printf 'root:x:0:\npanorama:x:%s:\n' "$uid" >"$stage/etc/group"
printf 'hosts: files dns\n' >"$stage/etc/nsswitch.conf"

container=$(buildah "${storage[@]}" from scratch)
buildah "${storage[@]}" copy --quiet "$container" "$stage" / >/dev/null
# The state directory, the user's (a volume usually covers it).
mkdir -p "$stage/empty"
buildah "${storage[@]}" copy --quiet --chown "$uid:$uid" "$container" "$stage/empty" /var/lib/panorama >/dev/null
buildah "${storage[@]}" config \
  --user "$uid:$uid" \
  --entrypoint '["/bin/panorama"]' \
  --cmd '["--help"]' \
  --workingdir /var/lib/panorama \
  --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  --env PANORAMA_CONFIG=/etc/panorama/panorama.toml \
  --label org.opencontainers.image.title=panorama \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.description=Feeds the Panorama analytics datalake of Open edX" \
  "$container"
buildah "${storage[@]}" commit --quiet --rm "$container" "$tag" >/dev/null
container=
echo "$tag"
