#!/bin/busybox sh
# /init of the kernel-matrix VM (busybox sh): mounts what the capture tests need, runs
# capture-check in every probe mode this kernel supports (plain and with --stacks; kprobe mode
# also restarts after a killed tapper), then
# context-check (default mode, and tracepoint mode where supported), then file-max-check (it
# lowers fs.file-max, which only a VM may do), then hub-check where packed, reports over the serial
# console and powers off. scripts/kernel-matrix.sh packs it and parses the "@@kmatrix" lines; it
# also requires capture-check's own "capture-check: PASS probe=<mode>" line for a pass.

. /guest-setup.sh # scripts/vm-guest-setup.sh: busybox applets and mounts

say() { echo "@@kmatrix $*"; }

# A check's result line from its exit code: PASS, or FAIL with the reason and the kernel
# log's tail (timeout_s is set below, before any check runs).
verdict() {
  if [ "$2" = 0 ]; then
    say "result mode=$1 status=PASS"
    return
  fi
  reason="exit=$2"
  [ "$2" = 137 ] && reason="timeout after ${timeout_s}s (exit=137)"
  say "result mode=$1 status=FAIL $reason"
  say "dmesg-tail-begin mode=$1"
  dmesg | tail -n 40
  say "dmesg-tail-end mode=$1"
}

echo # the firmware leaves the cursor mid-line
say "init-started kernel=$(uname -r)"

# Parameters from the kernel command line: kmatrix.modes=a,b kmatrix.timeout=SECONDS.
modes=""
timeout_s=180
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    kmatrix.modes=*) modes=$(echo "${arg#kmatrix.modes=}" | tr , ' ') ;;
    kmatrix.timeout=*) timeout_s=${arg#kmatrix.timeout=} ;;
  esac
done

supported() {
  case "$1" in
    exit-only) [ -e /sys/kernel/tracing/events/syscalls/sys_exit_socket ] && [ -e /sys/kernel/btf/vmlinux ] ;;
    fexit) [ -e /sys/kernel/btf/vmlinux ] ;; # capture-check exits 3 if the kernel refuses it
    kprobe) [ -e /sys/bus/event_source/devices/kprobe ] ;;
    tracepoint) [ -e /sys/kernel/tracing/events/syscalls/sys_enter_socket ] ;;
    *) return 1 ;;
  esac
}

# wait_ready LOG: until the tapper logging to LOG wrote its ready line (60 s at most).
wait_ready() {
  i=0
  while ! grep -q '"ready"' "$1"; do
    i=$((i + 1))
    [ "$i" -gt 120 ] && return 1
    sleep 0.5
  done
}

# A tapper killed in kprobe mode leaves the tracefs kretprobe it makes on kernels without
# CONFIG_PREEMPTION: the next one must start, remove it, and remove its own on a clean stop.
kprobe_restart() {
  events=/sys/kernel/tracing/kprobe_events
  tapper --probe kprobe --output none 2>/tmp/kprobe-1.log &
  first=$!
  wait_ready /tmp/kprobe-1.log || { echo "kprobe-restart: the first tapper never got ready"; return 1; }
  kill -9 "$first"
  wait "$first"
  left=$(grep -c "kprobes/tapper_${first}_" "$events")
  tapper --probe kprobe --output none 2>/tmp/kprobe-2.log &
  second=$!
  wait_ready /tmp/kprobe-2.log || { echo "kprobe-restart: no start after a killed tapper"; cat /tmp/kprobe-2.log; return 1; }
  if grep -q "kprobes/tapper_${first}_" "$events"; then
    echo "kprobe-restart: the killed tapper's kretprobe is still there"; return 1
  fi
  kill -TERM "$second"
  wait "$second"
  if grep -q "kprobes/tapper_" "$events"; then
    echo "kprobe-restart: a tracefs kretprobe outlived a clean stop: $(cat "$events")"; return 1
  fi
  echo "kprobe-restart: PASS (tracefs kretprobes left by the killed tapper: $left)"
}

for mode in $modes; do
  if ! supported "$mode"; then
    say "result mode=$mode status=UNSUPPORTED"
    continue
  fi
  say "begin mode=$mode"
  # Twice: plain, then with --stacks (the verifier checks only the branch a load enables).
  rc=0
  for stacks in "" --stacks; do
    timeout -s KILL "$timeout_s" capture-check --tapper /bin/tapper \
      --workload /bin/socket-workload --probe "$mode" $stacks </dev/null
    rc=$?
    # Nothing a mode started (tapper, workloads) may outlive it: kill all but init.
    kill -9 -1 2>/dev/null
    [ "$rc" = 0 ] || break
  done
  if [ "$rc" = 0 ] && [ "$mode" = kprobe ]; then
    kprobe_restart </dev/null
    rc=$?
    kill -9 -1 2>/dev/null
  fi
  if [ "$rc" = 3 ]; then
    say "result mode=$mode status=UNSUPPORTED"
  else
    verdict "$mode" "$rc"
  fi
done

# A process gone right after EMFILE: its kernel context, stack and diagnosis, exactly.
say "begin mode=context"
rc=0
for probe in "" tracepoint; do
  if [ -n "$probe" ] && ! supported "$probe"; then continue; fi
  timeout -s KILL "$timeout_s" context-check --tapper /bin/tapper --workload /bin/short-lived \
    ${probe:+--probe "$probe"} </dev/null
  rc=$?
  kill -9 -1 2>/dev/null
  [ "$rc" = 0 ] || break
done
verdict context "$rc"

# ENFILE ahead: lowers fs.file-max and expects the tapper's file-max warning before ENFILE.
say "begin mode=file-max"
timeout -s KILL "$timeout_s" file-max-check --tapper /bin/tapper </dev/null
rc=$?
kill -9 -1 2>/dev/null
verdict file-max "$rc"

# The hub on this architecture (packed only into arm64 guests, see kernel-matrix.sh): the
# tapper ships to a hub in the guest, and hub-client reads the failures back from it.
if [ -x /bin/hub ]; then
  say "begin mode=hub"
  timeout -s KILL "$timeout_s" sh /bin/kernel-matrix-hub-check.sh </dev/null
  rc=$?
  kill -9 -1 2>/dev/null
  verdict hub "$rc"
fi

say "done"
sync
poweroff -f
