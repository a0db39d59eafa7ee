#!/usr/bin/env bash
# Builds and tests the hub side: proto, hub, hub-client (Rust unit + integration tests with
# real processes on 127.0.0.1:0), then the Python tests (real grpcurl, grpcio client).
set -euo pipefail

cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac

cargo build -p hub -p hub-client
cargo test -p hub -p hub-client -p tapper-proto -p tapper-names

export HUB_BIN="${HUB_BIN:-$target/debug/hub}"
export HUB_CLIENT_BIN="${HUB_CLIENT_BIN:-$target/debug/hub-client}"
python3 -m pytest -q tests/python
