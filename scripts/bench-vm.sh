#!/usr/bin/env bash
# The syscall overhead in a VM: boots one Debian cloud kernel with kprobes under qemu and measures the
# syscall overhead there with no probes and the tapper in each probe mode (exit-only, kprobe,
# fexit, tracepoint), side by side in the same boot. Reuses the kernel matrix's kernel cache.
#
# Usage: scripts/bench-vm.sh OUT.json
# Environment:
#   BENCH_VM_KERNEL     Debian kernel package (default: the last amd64 kernel in scripts/kernels.txt;
#                       an arm64 one boots under qemu-system-aarch64)
#   BENCH_VM_RUNS       runs (default 5)          BENCH_VM_ITERS   calls per loop (default 20000)
#   BENCH_VM_TIMEOUT    seconds for the whole VM run (default 900)
#   BENCH_BIN_DIR       prebuilt static tapper and tapper-bench for this machine's architecture
#                       (default: build them; a kernel of another architecture always builds)
#   KERNEL_CACHE_DIR    downloaded kernels (default .cache/kernels, shared with the matrix)
#   CARGO_TARGET_DIR    cargo target dir (default target)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: scripts/bench-vm.sh OUT.json}
CACHE_DIR=${KERNEL_CACHE_DIR:-$ROOT/.cache/kernels}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
KERNEL=${BENCH_VM_KERNEL:-$(awk '!/^#/ && NF && $1 != "host" && $1 !~ /-arm64$/ {k=$1} END {print k}' "$ROOT/scripts/kernels.txt")}
RUNS=${BENCH_VM_RUNS:-5}
ITERS=${BENCH_VM_ITERS:-20000}
VM_TIMEOUT=${BENCH_VM_TIMEOUT:-900}

VM_TAG=bench-vm
# shellcheck source=lib/vm.sh
. "$ROOT/scripts/lib/vm.sh"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Kernel: the matrix's cache entry ($CACHE_DIR/<package>/vmlinuz), fetched the same way.
vm_fetch_kernel "$KERNEL" "$CACHE_DIR"
VMLINUZ=$CACHE_DIR/$KERNEL/vmlinuz
ARCH=$(vm_kernel_arch "$KERNEL")
vm_qemu "$ARCH"

if [ -n "${BENCH_BIN_DIR:-}" ] && [ "$ARCH" = "$(uname -m)" ]; then
  BIN_DIR=$BENCH_BIN_DIR
else
  vm_build_static "$TARGET_DIR" "$ARCH" --quiet -p tapper -p tapper-bench
  BIN_DIR=$TARGET_DIR/$(vm_triple "$ARCH")/release
fi
vm_initramfs "$WORK/initrd.gz" "$ROOT/scripts/bench-vm-init.sh" "$(vm_busybox "$ARCH" "$CACHE_DIR")" \
  "$BIN_DIR/tapper" "$BIN_DIR/tapper-bench"

# TCG only: KVM is unreliable on these machines and a benchmark must not depend on luck.
LOGF=$WORK/serial.log
log "booting $KERNEL under qemu TCG ($RUNS runs x $ITERS calls)"
timeout -k 5 "$VM_TIMEOUT" "${VM_QEMU[@]}" -accel tcg -cpu "$VM_TCG_CPU" -smp 2 -m 1024 -nographic \
  -no-reboot -nic none -kernel "$VMLINUZ" -initrd "$WORK/initrd.gz" \
  -append "console=$VM_CONSOLE quiet panic=-1 bench.runs=$RUNS bench.iters=$ITERS" \
  </dev/null >"$LOGF" 2>&1 || log "qemu exited with $?"
sed -i 's/\r$//' "$LOGF"
if ! grep -q '^@@bench result-end' "$LOGF"; then
  tail -n 60 "$LOGF" >&2
  die "no result from the VM"
fi
sed -n '/^@@bench result-begin$/,/^@@bench result-end$/p' "$LOGF" | sed '1d;$d' >"$OUT"
log "wrote $OUT"
