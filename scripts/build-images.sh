#!/usr/bin/env bash
# Builds the OCI images of the tapper and the hub with podman: static binaries (crt-static,
# as for the kernel matrix's VMs) copied FROM scratch, tagged localhost/tapper:TAG and
# localhost/tapper-hub:TAG.
#
# Usage: scripts/build-images.sh [--tag TAG] [-- PODMAN_GLOBAL_OPTIONS...]
#   e.g. scripts/build-images.sh -- --root /tmp/store --runroot /tmp/run --storage-driver vfs
# Environment:
#   CARGO_TARGET_DIR   cargo target dir (default target); the static binaries land in its
#                      x86_64-unknown-linux-gnu/release
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM_TAG=images
# shellcheck source=lib/vm.sh
. "$ROOT/scripts/lib/vm.sh"

tag=latest
while [ $# -gt 0 ]; do
  case $1 in
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
podman=(podman "$@")
command -v podman >/dev/null || die "podman not found; install it (scripts/setup.sh --test)"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
vm_build_static "$TARGET_DIR" --quiet -p tapper -p hub
BIN_DIR=$TARGET_DIR/$VM_TRIPLE/release

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for image in tapper:tapper hub:tapper-hub; do
  bin=${image%%:*} name=${image#*:}
  readelf -l "$BIN_DIR/$bin" | grep -q 'program interpreter' &&
    die "$BIN_DIR/$bin is dynamically linked; a FROM scratch image needs a static binary"
  rm -rf "${context:?}"/*
  cp "$BIN_DIR/$bin" "$context/$bin"
  log "building localhost/$name:$tag"
  "${podman[@]}" build --quiet -f "$ROOT/deploy/images/$bin.Containerfile" \
    -t "localhost/$name:$tag" "$context" >/dev/null ||
    die "podman build of localhost/$name:$tag failed"
done
log "built localhost/tapper:$tag and localhost/tapper-hub:$tag"
