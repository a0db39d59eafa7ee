#!/bin/busybox sh
# /init of the kernel-matrix VM (busybox sh): mounts what the capture tests need, runs
# capture-check in every probe mode this kernel supports (plain and with --stacks), then
# context-check (default mode, and tracepoint mode where supported), then file-max-check (it lowers fs.file-max, which only a VM may do), reports over the serial
# console and powers off. scripts/kernel-matrix.sh packs it and parses the "@@kmatrix" lines; it
# also requires capture-check's own "capture-check: PASS probe=<mode>" line for a pass.

. /guest-setup.sh # scripts/vm-guest-setup.sh: busybox applets and mounts

say() { echo "@@kmatrix $*"; }

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
  if [ "$rc" = 0 ]; then
    say "result mode=$mode status=PASS"
  elif [ "$rc" = 3 ]; then
    say "result mode=$mode status=UNSUPPORTED"
  else
    reason="exit=$rc"
    [ "$rc" = 137 ] && reason="timeout after ${timeout_s}s (exit=137)"
    say "result mode=$mode status=FAIL $reason"
    say "dmesg-tail-begin mode=$mode"
    dmesg | tail -n 40
    say "dmesg-tail-end mode=$mode"
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
if [ "$rc" = 0 ]; then
  say "result mode=context status=PASS"
else
  say "result mode=context status=FAIL exit=$rc"
  say "dmesg-tail-begin mode=context"
  dmesg | tail -n 40
  say "dmesg-tail-end mode=context"
fi

# ENFILE ahead: lowers fs.file-max and expects the tapper's file-max warning before ENFILE.
say "begin mode=file-max"
timeout -s KILL "$timeout_s" file-max-check --tapper /bin/tapper </dev/null
rc=$?
kill -9 -1 2>/dev/null
if [ "$rc" = 0 ]; then
  say "result mode=file-max status=PASS"
else
  say "result mode=file-max status=FAIL exit=$rc"
fi

say "done"
sync
poweroff -f
