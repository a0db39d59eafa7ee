#!/usr/bin/env bash
# Runs the whole test suite: lint, unit tests, privileged end-to-end tests on this kernel,
# the hub's tests with real gRPC clients, and the kernel matrix in VMs. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (the tests load eBPF programs)" >&2; exit 1; }
for tool in bpf-linker bpftrace; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing; run scripts/setup.sh first" >&2; exit 1; }
done

echo "== format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== build"
cargo build --workspace --quiet

echo "== unit and end-to-end tests"
cargo test --workspace --quiet 2>&1

if [ -x scripts/test-hub.sh ]; then
  echo "== hub tests with real gRPC clients"
  bash scripts/test-hub.sh
fi

if [ -x scripts/kernel-matrix.sh ]; then
  echo "== kernel matrix"
  bash scripts/kernel-matrix.sh
fi

# ---- benchmarks (smoke) ------------------------------------------------------------------
# Checks that every benchmark part still runs, at tiny sizes; no speed assertions.
if [ -x scripts/bench.sh ]; then
  echo "== benchmark smoke"
  bash scripts/bench.sh --smoke
fi
