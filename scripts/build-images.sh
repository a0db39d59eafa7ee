#!/usr/bin/env bash
# Builds the multi-arch OCI images of the tapper and the hub with podman: for each
# architecture, static binaries (crt-static, as for the kernel matrix's VMs; see
# scripts/build-static.sh) copied FROM scratch and tagged localhost/tapper:TAG-<arch>
# (amd64, arm64); then a manifest list localhost/tapper:TAG of them (the same for
# localhost/tapper-hub). A runtime picks its own architecture's image from the list;
# `podman manifest push --all localhost/tapper:TAG docker://REGISTRY/tapper:TAG` publishes all.
#
# Usage: scripts/build-images.sh [--tag TAG] [--arch x86_64,aarch64] [-- PODMAN_GLOBAL_OPTIONS...]
#   e.g. scripts/build-images.sh -- --root /tmp/store --runroot /tmp/run --storage-driver vfs
#   --arch  the architectures, comma-separated (default x86_64,aarch64)
# Environment:
#   CARGO_TARGET_DIR   cargo target dir (default target); the static binaries land in its
#                      <arch>-unknown-linux-gnu/release
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM_TAG=images
# shellcheck source=lib/vm.sh
. "$ROOT/scripts/lib/vm.sh"

tag=latest
arches=x86_64,aarch64
while [ $# -gt 0 ]; do
  case $1 in
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag=$2; shift 2 ;;
    --arch) [ $# -ge 2 ] || die "--arch needs a value, e.g. x86_64,aarch64"; arches=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
podman=(podman "$@")
command -v podman >/dev/null || die "podman not found; install it (scripts/setup.sh --test)"

# oci_arch ARCH: the OCI platform name of ARCH.
oci_arch() {
  case $1 in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    *) die "unknown architecture '$1' in --arch (x86_64 or aarch64)" ;;
  esac
}

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# The list's name must be free: drop an old list, or untag an old single-arch image.
for name in tapper tapper-hub; do
  "${podman[@]}" manifest rm "localhost/$name:$tag" >/dev/null 2>&1 ||
    "${podman[@]}" untag "localhost/$name:$tag" "localhost/$name:$tag" >/dev/null 2>&1 || true
done
for arch in ${arches//,/ }; do
  platform=$(oci_arch "$arch")
  vm_build_static "$TARGET_DIR" "$arch" --quiet -p tapper -p hub
  bin_dir=$TARGET_DIR/$(vm_triple "$arch")/release
  for image in tapper:tapper hub:tapper-hub; do
    bin=${image%%:*} name=${image#*:}
    readelf -l "$bin_dir/$bin" | grep -q 'program interpreter' &&
      die "$bin_dir/$bin is dynamically linked; a FROM scratch image needs a static binary"
    rm -rf "${context:?}"/*
    cp "$bin_dir/$bin" "$context/$bin"
    log "building localhost/$name:$tag-$platform"
    "${podman[@]}" build --quiet --platform "linux/$platform" \
      -f "$ROOT/deploy/images/$bin.Containerfile" -t "localhost/$name:$tag-$platform" "$context" >/dev/null ||
      die "podman build of localhost/$name:$tag-$platform failed"
  done
done
for name in tapper tapper-hub; do
  "${podman[@]}" manifest create "localhost/$name:$tag" >/dev/null ||
    die "podman manifest create localhost/$name:$tag failed"
  for arch in ${arches//,/ }; do
    "${podman[@]}" manifest add "localhost/$name:$tag" \
      "containers-storage:localhost/$name:$tag-$(oci_arch "$arch")" >/dev/null ||
      die "podman manifest add localhost/$name:$tag failed"
  done
done
log "built the manifest lists localhost/tapper:$tag and localhost/tapper-hub:$tag ($arches)"
