#!/bin/busybox sh
# /init of the benchmark VM (busybox sh): mounts what the tapper needs, runs the syscall
# overhead benchmark (no probes and each tapper mode, side by side), prints
# its JSON result between "@@bench" markers on the serial console and powers off.
# scripts/bench-vm.sh packs it; parameters come from the kernel command line.

. /guest-setup.sh # scripts/vm-guest-setup.sh: busybox applets and mounts

echo

runs=5
iters=20000
conditions=none,tapper-exit-only,tapper-kprobe,tapper-fexit,tapper-tracepoint
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    bench.runs=*) runs=${arg#bench.runs=} ;;
    bench.iters=*) iters=${arg#bench.iters=} ;;
    bench.conditions=*) conditions=${arg#bench.conditions=} ;;
  esac
done

echo "@@bench started kernel=$(uname -r)"
if tapper-bench overhead --env vm --runs "$runs" --iters "$iters" --conditions "$conditions" \
  --tapper /bin/tapper --out /tmp/overhead.json </dev/null; then
  echo "@@bench result-begin"
  cat /tmp/overhead.json
  echo "@@bench result-end"
else
  echo "@@bench failed exit=$?"
  dmesg | tail -n 30
fi
echo "@@bench done"
sync
poweroff -f
