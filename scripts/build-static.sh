#!/usr/bin/env bash
# Builds the static tapper, hub and hub-client (static-pie glibc, crt-static) for one
# architecture, natively or cross-compiled. Prints the tapper binary's path last.
#
# Usage: scripts/build-static.sh ARCH [CARGO_ARGS...]
#   ARCH        x86_64 or aarch64 (aarch64 needs gcc-aarch64-linux-gnu and the Rust target
#               aarch64-unknown-linux-gnu: scripts/setup.sh --test installs both)
#   CARGO_ARGS  more cargo build arguments, e.g. -p tapper-e2e for the test binaries
# Environment:
#   CARGO_TARGET_DIR   cargo target dir (default target); the binaries land in its
#                      ARCH-unknown-linux-gnu/release
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM_TAG=build-static
# shellcheck source=lib/vm.sh
. "$ROOT/scripts/lib/vm.sh"

case ${1:-} in
  -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") die "missing ARCH: scripts/build-static.sh x86_64|aarch64 [CARGO_ARGS...]" ;;
esac
arch=$1
shift
triple=$(vm_triple "$arch")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
vm_build_static "$TARGET_DIR" "$arch" -p tapper -p hub -p hub-client "$@" >&2
echo "$TARGET_DIR/$triple/release/tapper"
