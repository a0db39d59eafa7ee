#!/usr/bin/env bash
# Runs the whole test suite: lint, unit tests, privileged end-to-end tests on this kernel,
# the hub's tests with real gRPC clients, and the kernel matrix in VMs. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (the tests load eBPF programs)" >&2; exit 1; }
. scripts/lib/rust-path.sh
. scripts/lib/test-tools.sh
command -v bpf-linker >/dev/null || { echo "test.sh: bpf-linker is missing; run scripts/setup.sh --test first" >&2; exit 1; }
missing=$(missing_test_tools)
[ -z "$missing" ] || { echo "test.sh: test tools are missing ($missing); run scripts/setup.sh --test first" >&2; exit 1; }

echo "== format and lint"
# The host commands cover the workspace's default members; the eBPF crate only builds for
# the BPF target, so it is linted there (with nightly's clippy, when that is installed).
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
if cargo +nightly clippy --version >/dev/null 2>&1; then
  (cd tapper-ebpf && cargo +nightly clippy --quiet --release --target bpfel-unknown-none \
    -Z build-std=core -- -D warnings)
else
  echo "note: nightly has no clippy component; the eBPF crate is not linted" >&2
fi

echo "== build"
cargo build --quiet

echo "== unit and end-to-end tests"
cargo test --quiet 2>&1

echo "== gRPC clients against the real hub and tapper (grpcurl, grpcio)"
python3 -m pytest -q tests/python

echo "== kernel matrix (other kernels in qemu, the kprobe pair included)"
bash scripts/kernel-matrix.sh

# ---- benchmarks (smoke) ------------------------------------------------------------------
# Checks that every benchmark part still runs, at tiny sizes; no speed assertions.
echo "== benchmark smoke"
bash scripts/bench.sh --smoke
