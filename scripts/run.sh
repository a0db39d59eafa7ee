#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build, and watch every failed
# socket() call on this machine live. Extra arguments go to the tapper. Ctrl-C stops it
# and prints the final counters.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (the tapper loads eBPF programs)" >&2; exit 1; }
bash scripts/setup.sh
cargo build --release --quiet -p tapper
exec target/release/tapper --output table "$@"
