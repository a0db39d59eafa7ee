#!/usr/bin/env bash
# Kernel matrix: boots every kernel in scripts/kernels.txt under qemu and runs capture-check
# there in every probe mode the kernel supports (the host kernel runs directly), then
# context-check (a static C process gone right after EMFILE: its context, stack and diagnosis;
# in the default mode and in tracepoint mode) on every kernel, and in each VM file-max-check
# (fs.file-max lowered to provoke the file-max warning and ENFILE; never on the host, whose
# limit is shared), in each arm64 VM hub-check (the aarch64 hub and hub-client in the guest,
# the tapper shipping to them; x86_64's hub runs on x86_64 in every test run, arm64's nowhere
# else), then prints a kernel x mode table. Any failure, missing expected mode or
# timeout exits 1.
#
# Usage: scripts/kernel-matrix.sh [NAME_SUBSTRING...]   (only kernels whose line matches)
# Environment:
#   KERNELS_FILE                 kernel list (default scripts/kernels.txt)
#   KERNEL_CACHE_DIR             downloaded kernels (default .cache/kernels)
#   CARGO_TARGET_DIR             cargo target dir (default target); logs go to its kernel-matrix/
#   KERNEL_MATRIX_BIN_DIR        use prebuilt static tapper, capture-check, socket-workload,
#                                context-check, file-max-check
#   KERNEL_MATRIX_ACCEL          auto (KVM, falling back to TCG), kvm or tcg (default auto)
#   KERNEL_MATRIX_MODE_TIMEOUT   seconds for one capture-check run (default 150; a VM runs each
#                                mode twice, plain and with --stacks)
#   KERNEL_MATRIX_VM_TIMEOUT     seconds for one whole VM run (default: twice every mode's timeout + 120)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KERNELS_FILE=${KERNELS_FILE:-$ROOT/scripts/kernels.txt}
CACHE_DIR=${KERNEL_CACHE_DIR:-$ROOT/.cache/kernels}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOG_DIR=$TARGET_DIR/kernel-matrix
ACCEL=${KERNEL_MATRIX_ACCEL:-auto}
MODE_TIMEOUT=${KERNEL_MATRIX_MODE_TIMEOUT:-150}
KVM_BOOT_TIMEOUT=15 # a KVM guest that has not reached /init by then is hung: use TCG
ALL_MODES=(exit-only fexit kprobe tracepoint) # every mode capture-check knows, in table order
# Each mode runs twice in a VM: plain and with --stacks.
CHECKS=(context file-max hub) # checks after the modes, as extra columns (file-max in VMs only, hub in arm64 VMs only)
VM_TIMEOUT=${KERNEL_MATRIX_VM_TIMEOUT:-$((MODE_TIMEOUT * (2 * ${#ALL_MODES[@]} + ${#CHECKS[@]}) + 120))}
BINARIES=(tapper capture-check socket-workload context-check file-max-check)
HUB_BINARIES=(hub hub-client) # and the hub check, packed for arm64 guests only

VM_TAG=kernel-matrix
# shellcheck source=lib/vm.sh
. "$ROOT/scripts/lib/vm.sh"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOG_DIR"

# ---- kernel list --------------------------------------------------------------------------
NAMES=() EXPECTED=()
declare -A LOSSY=() # "<kernel>" -> modes known to miss events there (kernels.txt's lossy=)
while read -r name modes extra _; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  [ -n "${modes:-}" ] || die "$KERNELS_FILE: no modes for $name"
  for m in ${modes//,/ }; do
    [[ " ${ALL_MODES[*]} " == *" $m "* ]] || die "$KERNELS_FILE: unknown mode '$m' for $name (known: ${ALL_MODES[*]})"
  done
  if [ $# -gt 0 ]; then
    keep=0
    for f in "$@"; do [[ "$name" == *"$f"* ]] && keep=1; done
    [ $keep = 1 ] || continue
  fi
  NAMES+=("$name") EXPECTED+=("${modes//,/ }")
  if [[ "${extra:-}" == lossy=* ]]; then
    lossy=${extra#lossy=}
    LOSSY[${name#linux-image-}]=" ${lossy//,/ } "
  fi
done <"$KERNELS_FILE"
[ ${#NAMES[@]} -gt 0 ] || die "no kernels selected from $KERNELS_FILE"

# ---- fetch kernels ------------------------------------------------------------------------
HOST_ARCH=$(uname -m)
declare -A ARCH=()    # "<kernel package>" -> x86_64 | aarch64
for name in "${NAMES[@]}"; do
  if [ "$name" = host ]; then
    ARCH[$name]=$HOST_ARCH
  else
    ARCH[$name]=$(vm_kernel_arch "$name")
    vm_fetch_kernel "$name" "$CACHE_DIR"
  fi
done

# ---- static binaries, the short-lived workload and an initramfs per architecture ----------
# Parameters go on the kernel command line, so one initramfs serves every kernel of an arch.
# The host's binaries are always built: its context-check builds the short-lived C workload
# (static, with the arch's gcc as CC) for every arch, since the VMs have no compiler.
declare -A BIN_DIR=() INITRD=() SHORT_LIVED=()
ARCHES=$(printf '%s\n' "$HOST_ARCH" "${ARCH[@]}" | awk '!seen[$0]++')
for arch in $ARCHES; do
  if [ "$arch" = "$HOST_ARCH" ] && [ -n "${KERNEL_MATRIX_BIN_DIR:-}" ]; then
    BIN_DIR[$arch]=$KERNEL_MATRIX_BIN_DIR
    log "using prebuilt $arch binaries from $KERNEL_MATRIX_BIN_DIR"
  else
    hub_packages=()
    [ "$arch" = aarch64 ] && hub_packages=(-p hub -p hub-client)
    vm_build_static "$TARGET_DIR" "$arch" -p tapper -p tapper-e2e "${hub_packages[@]}"
    BIN_DIR[$arch]=$TARGET_DIR/$(vm_triple "$arch")/release
  fi
  SHORT_LIVED[$arch]=$WORK/$arch/short-lived
  mkdir -p "$WORK/$arch"
  CC=$(vm_cc "$arch") "${BIN_DIR[$HOST_ARCH]}/context-check" --build-workload "${SHORT_LIVED[$arch]}" ||
    die "building the short-lived workload for $arch failed"
  INITRD[$arch]=$WORK/initramfs-$arch.cpio.gz
  hub_files=()
  [ "$arch" = aarch64 ] &&
    hub_files=("${HUB_BINARIES[@]/#/${BIN_DIR[$arch]}/}" "$ROOT/scripts/kernel-matrix-hub-check.sh")
  vm_initramfs "${INITRD[$arch]}" "$ROOT/scripts/kernel-matrix-init.sh" "$(vm_busybox "$arch" "$CACHE_DIR")" \
    "${BINARIES[@]/#/${BIN_DIR[$arch]}/}" "${SHORT_LIVED[$arch]}" "${hub_files[@]}"
done

# ---- run ----------------------------------------------------------------------------------
declare -A CELL=()   # "<kernel>|<mode>" -> PASS | FAIL | -
declare -A HOW=()    # "<kernel>" -> accel and seconds
FAILURES=()          # printed again at the end
failed=0
kvm_ok=unknown
[ "$ACCEL" = tcg ] && kvm_ok=no
[ "$ACCEL" = auto ] && { [ -r /dev/kvm ] && [ -w /dev/kvm ] || kvm_ok=no; }

# fail KERNEL MODE REASON LOGFILE: records a failure and prints the logs: for a guest mode that
# ran, the tail of its output and the guest's dmesg tail; otherwise the tail of the whole log.
fail() {
  local kernel=$1 mode=$2 reason=$3 logf=$4 output dmesg_tail
  if [[ "${LOSSY[$kernel]:-}" == *" $mode "* ]]; then
    # Known to miss events on this kernel (kernels.txt says why): shown, not fatal.
    CELL["$kernel|$mode"]=LOSSY
    log "$kernel: $mode failed as kernels.txt expects (lossy=): $reason"
    return
  fi
  CELL["$kernel|$mode"]=FAIL
  failed=1
  output=$(sed -n "/^@@kmatrix begin mode=$mode\$/,/^@@kmatrix result mode=$mode /p" "$logf")
  dmesg_tail=$(sed -n "/^@@kmatrix dmesg-tail-begin mode=$mode\$/,/^@@kmatrix dmesg-tail-end mode=$mode\$/p" "$logf")
  [ -n "$output" ] || output=$(cat "$logf")
  if grep -qiE 'verifier|BPF_PROG_LOAD|invalid argument|permission denied' <<<"$output"; then
    reason="$reason; the log mentions a load error (verifier?)"
  fi
  FAILURES+=("kernel=$kernel mode=$mode: $reason")
  {
    echo "================ FAIL kernel=$kernel mode=$mode: $reason"
    echo "---------------- output tail (full log: $logf)"
    tail -n 120 <<<"$output"
    if [ -n "$dmesg_tail" ]; then
      echo "---------------- guest kernel log tail"
      echo "$dmesg_tail"
    fi
    echo "================"
  } >&2
}

# boot_vm VMLINUZ ARCH LOG ACCEL MODES: 0 when the guest reported "done"; 2 when a KVM guest never
# reached /init (caller falls back to TCG); 3 on timeout; 1 when qemu stopped without "done".
boot_vm() {
  local vmlinuz=$1 arch=$2 logf=$3 accel=$4 modes=$5 pid start accel_args
  vm_qemu "$arch"
  case $accel in
    kvm) accel_args=(-accel kvm -cpu host) ;;
    tcg) accel_args=(-accel tcg -cpu "$VM_TCG_CPU") ;;
  esac
  start=$SECONDS
  "${VM_QEMU[@]}" "${accel_args[@]}" -smp 2 -m 1024 -nographic -no-reboot -nic none \
    -kernel "$vmlinuz" -initrd "${INITRD[$arch]}" \
    -append "console=$VM_CONSOLE quiet panic=-1 kmatrix.modes=$modes kmatrix.timeout=$MODE_TIMEOUT" \
    </dev/null >"$logf" 2>&1 &
  pid=$!
  disown "$pid" # the markers in the log decide; spare the "Aborted" notice of a failed KVM try
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$accel" = kvm ] && ((SECONDS - start > KVM_BOOT_TIMEOUT)) &&
      ! grep -q '@@kmatrix init-started' "$logf"; then
      kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
      return 2
    fi
    if ((SECONDS - start > VM_TIMEOUT)); then
      kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
      return 3
    fi
    sleep 0.5
  done
  wait "$pid" 2>/dev/null || true
  grep -q '^@@kmatrix done' "$logf" && return 0
  [ "$accel" = kvm ] && ! grep -q '@@kmatrix init-started' "$logf" && return 2
  return 1
}

run_guest() {
  local name=$1 expected=$2 kernel=${1#linux-image-} arch=${ARCH[$1]} logf rc=0 accel start m status line
  logf=$LOG_DIR/$kernel.serial.log
  start=$SECONDS
  if [ "$kvm_ok" != no ] && [ "$arch" = "$HOST_ARCH" ]; then
    accel=kvm
    log "$kernel: booting under KVM"
    boot_vm "$CACHE_DIR/$name/vmlinuz" "$arch" "$logf" kvm "$(IFS=,; echo "${ALL_MODES[*]}")" || rc=$?
    if [ $rc = 2 ]; then
      [ "$ACCEL" = kvm ] && die "$kernel: KVM guest did not reach /init (KERNEL_MATRIX_ACCEL=kvm); serial log: $logf"
      log "$kernel: KVM guest did not reach /init in ${KVM_BOOT_TIMEOUT}s or crashed; using TCG from now on"
      cp "$logf" "$logf.kvm"
      kvm_ok=no rc=0
    else
      kvm_ok=yes
    fi
  fi
  if [ "$kvm_ok" = no ] || [ "$arch" != "$HOST_ARCH" ]; then
    accel=tcg
    log "$kernel: booting under TCG ($arch)"
    boot_vm "$CACHE_DIR/$name/vmlinuz" "$arch" "$logf" tcg "$(IFS=,; echo "${ALL_MODES[*]}")" || rc=$?
  fi
  HOW[$kernel]="$accel $((SECONDS - start))s"
  # Firmware and kernel send terminal resets and colours; keep the log plain text.
  sed -i -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[A-Za-z]//g' -e 's/[\x00-\x08\x0b-\x1f]//g' "$logf"
  for m in "${ALL_MODES[@]}"; do
    line=$(grep -m1 "^@@kmatrix result mode=$m " "$logf" || true)
    status=$(sed -n 's/.* status=\([A-Z]*\).*/\1/p' <<<"$line")
    if [ "$status" = PASS ] && sed -n "/^@@kmatrix begin mode=$m\$/,/^@@kmatrix result mode=$m /p" "$logf" |
      grep -q "^capture-check: PASS probe=$m"; then
      CELL["$kernel|$m"]=PASS
    elif [ "$status" = PASS ]; then
      fail "$kernel" "$m" "capture-check exited 0 without its 'capture-check: PASS probe=$m' line" "$logf"
    elif [ "$status" = FAIL ]; then
      fail "$kernel" "$m" "capture-check failed: ${line#*status=FAIL }" "$logf"
    elif [ "$status" = UNSUPPORTED ]; then
      unsupported "$kernel" "$m" "$expected" "$logf"
    elif [ $rc = 3 ]; then
      fail "$kernel" "$m" "VM timed out after ${VM_TIMEOUT}s ($accel)" "$logf"
    else
      fail "$kernel" "$m" "no result: the VM stopped early ($accel; panic or crash?)" "$logf"
    fi
  done
  for m in "${CHECKS[@]}"; do
    line=$(grep -m1 "^@@kmatrix result mode=$m " "$logf" || true)
    if [ "$m" = hub ] && [ "$arch" != aarch64 ]; then
      CELL["$kernel|$m"]=- # packed for arm64 guests only
    elif [[ "$line" == *status=PASS* ]] &&
      sed -n "/^@@kmatrix begin mode=$m\$/,/^@@kmatrix result mode=$m /p" "$logf" |
      grep -q "^$m-check: PASS"; then
      CELL["$kernel|$m"]=PASS
    elif [ -n "$line" ]; then
      fail "$kernel" "$m" "$m-check failed: ${line#*status=}" "$logf"
    else
      fail "$kernel" "$m" "no result: the VM stopped early or timed out ($accel)" "$logf"
    fi
  done
}

host_supported() {
  case $1 in
    exit-only) [ -e /sys/kernel/tracing/events/syscalls/sys_exit_socket ] && [ -e /sys/kernel/btf/vmlinux ] ;;
    fexit) [ -e /sys/kernel/btf/vmlinux ] ;; # capture-check exits 3 if the kernel refuses it
    kprobe) [ -e /sys/bus/event_source/devices/kprobe ] ;;
    tracepoint) [ -e /sys/kernel/tracing/events/syscalls/sys_enter_socket ] ;;
  esac
}

# unsupported KERNEL MODE EXPECTED LOGFILE: a mode the kernel lacks fails only if expected.
unsupported() {
  if [[ " $3 " == *" $2 "* ]]; then
    fail "$1" "$2" "expected mode is not supported by this kernel" "$4"
  else
    CELL["$1|$2"]=-
  fi
}

run_host() {
  local expected=$1 kernel="host" logf m rc bin start=$SECONDS
  mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
  for m in "${ALL_MODES[@]}"; do
    logf=$LOG_DIR/host.$m.log
    if ! host_supported "$m"; then
      echo "@@kmatrix result mode=$m status=UNSUPPORTED" >"$logf"
      unsupported host "$m" "$expected" "$logf"
      continue
    fi
    log "host $(uname -r): capture-check --probe $m"
    rc=0
    bin=${BIN_DIR[$HOST_ARCH]}
    (cd "$WORK" && timeout -k 5 "$MODE_TIMEOUT" "$bin/capture-check" --tapper "$bin/tapper" \
      --workload "$bin/socket-workload" --probe "$m") </dev/null >"$logf" 2>&1 || rc=$?
    sed 's/^/    /' "$logf" | tail -n 5 >&2
    if [ $rc = 0 ] && grep -q "^capture-check: PASS probe=$m" "$logf"; then
      CELL["host|$m"]=PASS
    elif [ $rc = 3 ] && grep -q "^capture-check: UNSUPPORTED probe=$m" "$logf"; then
      unsupported host "$m" "$expected" "$logf"
    elif [ $rc = 124 ] || [ $rc = 137 ]; then
      fail host "$m" "timed out after ${MODE_TIMEOUT}s" "$logf"
    else
      fail host "$m" "capture-check failed (exit=$rc)" "$logf"
    fi
  done
  logf=$LOG_DIR/host.context.log
  log "host $(uname -r): context-check (default mode, then tracepoint)"
  rc=0
  : >"$logf"
  for probe in "" tracepoint; do
    bin=${BIN_DIR[$HOST_ARCH]}
    (cd "$WORK" && timeout -k 5 "$MODE_TIMEOUT" "$bin/context-check" --tapper "$bin/tapper" \
      --workload "${SHORT_LIVED[$HOST_ARCH]}" ${probe:+--probe "$probe"}) </dev/null >>"$logf" 2>&1 || rc=$?
    [ $rc = 0 ] || break
  done
  sed 's/^/    /' "$logf" | tail -n 5 >&2
  if [ $rc = 0 ]; then
    CELL["host|context"]=PASS
  else
    fail host context "context-check failed (exit=$rc)" "$logf"
  fi
  CELL["host|file-max"]=- # fs.file-max is the shared host's: lowered in VMs only
  CELL["host|hub"]=-      # the hub check runs the aarch64 hub in arm64 VMs
  HOW[host]="- $((SECONDS - start))s"
}

total_start=$SECONDS
for i in "${!NAMES[@]}"; do
  if [ "${NAMES[$i]}" = host ]; then
    run_host "${EXPECTED[$i]}"
  else
    run_guest "${NAMES[$i]}" "${EXPECTED[$i]}"
  fi
done

# ---- table --------------------------------------------------------------------------------
echo
printf '%-32s' kernel
printf ' %-11s' "${ALL_MODES[@]}" "${CHECKS[@]}"
printf ' %s\n' "accel/time"
for name in "${NAMES[@]}"; do
  kernel=${name#linux-image-}
  label=$kernel
  [ "$name" = host ] && label="host ($(uname -r))"
  printf '%-32s' "$label"
  for m in "${ALL_MODES[@]}" "${CHECKS[@]}"; do printf ' %-11s' "${CELL["$kernel|$m"]:-FAIL}"; done
  printf ' %s\n' "${HOW[$kernel]:-}"
done
echo "(- = the kernel lacks the mode and kernels.txt does not expect it; LOSSY = failed where kernels.txt"
echo "  marks the mode lossy=, known to miss events on that kernel; logs in $LOG_DIR)"
echo "(capture-check runs the io_uring workload in every mode where the kernel has io_uring_complete)"
echo "(context: a static C process gone right after EMFILE, default mode and tracepoint: exe, limits, fd count, stack, diagnosis)"
echo "(file-max: fs.file-max lowered in the VM, the file-max warning expected before ENFILE)"
echo "(hub: arm64 VMs: the aarch64 hub in memory, the tapper shipping to it, hub-client reading 5 failures back)"
echo "total $((SECONDS - total_start))s"
if [ $failed = 1 ]; then
  echo "kernel-matrix: FAIL"
  printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
echo "kernel-matrix: PASS"
