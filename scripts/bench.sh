#!/usr/bin/env bash
# Benchmarks: builds the tapper, the hub, hub-client and tapper-bench, runs the driver of every part
# (bench/parts.tsv lists the parts, their numbers and their drivers), each writing JSON, then
# fills BENCHMARKS.md's marked sections from that JSON (bench/python/report.py). Run as root.
#
# Usage: scripts/bench.sh [--smoke] [--part ID[,ID...]]
#   --smoke    tiny sizes, one run, no speed assertions; checks that every part still works
#              and writes its report into a copy of BENCHMARKS.md under the target dir.
#   --part ID  run only the drivers of these parts (part numbers of bench/parts.tsv, e.g. 1,
#              8, 9 or 10, or a comma-separated list such as 2,4,5) and refill only the
#              sections their results feed.
# Environment: CARGO_TARGET_DIR (default target); BENCH_SKIP_VM=1 skips the VM half of the
#   syscall overhead; BENCH_OUT (default BENCHMARKS.md for a full run); BENCH_BIN_DIR:
#   prebuilt static tapper, tapper-bench (and hub) for both the host and the VM, instead of
#   building. BENCH_TRANSPORTS (default plaintext,tls) for the end-to-end and fan-in drivers.
#   BENCH_RUNS: runs per measurement (default 5 for a full run, 1 for --smoke).
#   BENCH_BASELINE_DIR: release binaries (tapper, hub, tapper-bench) of the build before a
#   change (a COMMIT file there names it in the report); the overhead, end-to-end, cost,
#   fan-in and replicas drivers then run them too, alternating round by round with this
#   build, and the report sets the two side by side.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# The Python drivers import the shared harness (python/tapperkit).
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
PARTS=bench/parts.tsv
MODE=full
PART=all
usage="usage: scripts/bench.sh [--smoke] [--part ID[,ID...]]"
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) MODE=smoke ;;
    --part) PART=${2:?--part needs a part number (see bench/parts.tsv)}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# The drivers to run, in the table's order, each once (several parts can share one).
if [ "$PART" = all ]; then
  mapfile -t DRIVERS < <(awk -F'\t' '!/^#/ && NF && $3 != "-" && !seen[$3]++ {print $3}' $PARTS)
else
  DRIVERS=()
  for id in ${PART//,/ }; do
    driver=$(awk -F'\t' -v id="$id" '!/^#/ && $1 == id && $3 != "-" {print $3}' $PARTS)
    [ -n "$driver" ] || die "--part $id: not a measured part; the parts are: $(
      awk -F'\t' '!/^#/ && NF && $3 != "-" {printf "%s ", $1}' $PARTS)(bench/parts.tsv)"
    # Parts that share a driver (2 and 3) run it once.
    [[ " ${DRIVERS[*]} " == *" $driver "* ]] || DRIVERS+=("$driver")
  done
fi
[ "$(id -u)" = 0 ] || die "run as root (the benchmarks load eBPF programs)"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR
RESULTS=$TARGET_DIR/bench/$MODE
if [ $MODE = full ]; then
  RUNS=${BENCH_RUNS:-5} OH_ITERS=500000 VM_ITERS=20000 COST_SECS=10 COST_RATES=0,10,100,1000,10000,50000,100000
  E2E_RATES=50000,100000,150000,200000,300000,400000 E2E_SECS=3 LAT_RATE=1000 LAT_SECS=5
  FANIN=10x1000,100x1000,1000x1000 FANIN_SECS=5
  ATTACK=(--events 200000 --churn 20000 --stored 500000 --ack-window 10 --stuck 1000
    --stall-timeout 1 --silent 2000 --handshake-timeout 2)
  METRICS=(--runs 5 --bursts 100 --nodes 1000 --scrapes 200)
  REPLICAS=(--runs 2 --configs 20x750,20x1500,20x2500 --duration 5 --replicas 1,2)
  STORM=(--runs 3 --procs 2 --secs 10)
  ROUND2=(--rounds 3)
  WEB=(--runs 3 --latency-secs 10 --busy-secs 60 --profile-secs 5 --cpu-rate 1000 --cpu-secs 10)
  OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
else
  RUNS=${BENCH_RUNS:-1} OH_ITERS=2000 VM_ITERS=500 COST_SECS=1 COST_RATES=1000
  E2E_RATES=20000 E2E_SECS=1 LAT_RATE=500 LAT_SECS=1 FANIN=5x200 FANIN_SECS=1
  # The small queue and short stall timeout let the few stuck subscribers be dropped.
  ATTACK=(--events 20000 --churn 200 --stored 4000 --ack-window 1 --stuck 20
    --stall-timeout 0.2 --subscriber-queue 256 --silent 50 --handshake-timeout 1)
  METRICS=(--runs 1 --bursts 5 --nodes 10 --scrapes 10)
  REPLICAS=(--runs 1 --configs 4x100 --duration 1 --replicas 1,2)
  STORM=(--runs 1 --procs 2 --secs 1)
  ROUND2=(--smoke)
  WEB=(--runs 1 --latency-secs 1 --busy-rate 1000 --busy-secs 3 --profile-secs 1 --cpu-rate 200
    --cpu-secs 1 --streams 2)
  OUT=${BENCH_OUT:-$RESULTS/BENCHMARKS.md}
fi

# A full run measures optimized builds; the smoke run reuses the test suite's debug build.
if [ $MODE = full ]; then PROFILE_ARGS=(--release) BIN=$TARGET_DIR/release
else PROFILE_ARGS=() BIN=$TARGET_DIR/debug; fi
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  # Prebuilt static binaries (scripts/bench-vm.sh's); the VM half uses them too.
  BIN=$BENCH_BIN_DIR
  log "using prebuilt binaries from $BIN"
else
  log "building (${PROFILE_ARGS[*]:-debug}, target dir $TARGET_DIR)"
  cargo build "${PROFILE_ARGS[@]}" --quiet -p tapper -p tapper-bench -p hub -p hub-client
fi
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

loadavg() { cut -d' ' -f1-3 /proc/loadavg | sed 's/ / \/ /g'; }
LOAD_START=$(loadavg)
START=$SECONDS
# Why a driver (or the VM half of the overhead driver) measured nothing; the report shows it.
skip() { echo "$2" >"$RESULTS/skipped-$1.txt"; log "skipped $1: $2"; }
HAS_HUB=0
[ -x "$BIN/hub" ] && "$BIN/tapper" --help | grep -q -- '--hub' && HAS_HUB=1
need_hub() {
  [ $HAS_HUB = 1 ] && return 0
  skip "$1" "this build has no \`tapper --hub\` or no hub binary."
  return 1
}
bench() { "$BIN/tapper-bench" "$@"; }
BASE=${BENCH_BASELINE_DIR:-}
if [ -n "$BASE" ]; then
  for b in tapper hub tapper-bench; do
    [ -x "$BASE/$b" ] || die "BENCH_BASELINE_DIR=$BASE has no executable $b (it needs tapper, hub and tapper-bench of the build before)"
  done
fi
# The build before (BENCH_BASELINE_DIR), run by its own tapper-bench.
baseline() { "$BASE/tapper-bench" "$@"; }
# One result of every run's single-run results (run interleaved with another variant).
merge() { python3 bench/python/merge_runs.py --out "$RESULTS/$1.json" "$RESULTS/$1"-[0-9]*.json; }
# The end-to-end and cost drivers measure the pipeline: every failure an event (the rate
# limit off), with the default batching (CPU first) and with latency first: a kernel wake-up
# per event, each sent at once.
NO_LIMIT="--rate-limit 0"
LATENCY_FIRST="--rate-limit 0 --ring-wakeup-interval 0 --hub-max-sends-per-second 0 --hub-max-linger 0"
TRANSPORTS=${BENCH_TRANSPORTS:-plaintext,tls}

# A CA and a hub certificate for 127.0.0.1, made fresh for the run, when TLS is measured.
TLS_ARGS=()
tls_args() {
  local dir=$RESULTS/pki
  [[ ,$TRANSPORTS, == *,tls,* ]] || return 0
  [ -f "$dir/hub.pem" ] || {
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj /CN=tapper-bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=hub \
        -keyout "$dir/hub.key" -out "$dir/hub.csr" 2>/dev/null &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' \
        >"$dir/hub.ext" &&
      openssl x509 -req -in "$dir/hub.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/hub.ext" -out "$dir/hub.pem" 2>/dev/null ||
      die "making the TLS certificates with openssl failed (scripts/setup.sh --test installs openssl)"
  }
  TLS_ARGS=(--tls-ca "$dir/ca.pem" --tls-cert "$dir/hub.pem" --tls-key "$dir/hub.key")
}

# ---- the drivers, one per name in bench/parts.tsv's driver column -------------------------
driver_overhead() {
  local conds=none,tapper-exit-only,tapper-tracepoint
  if command -v bpftrace >/dev/null; then conds+=,bpftrace,bpftrace-printf,bpftrace-correlated; fi
  [ -e /sys/bus/event_source/devices/kprobe ] && conds+=,tapper-kprobe
  local baseline=()
  if [ -n "$BASE" ]; then
    conds+=,baseline-exit-only,baseline-tracepoint
    baseline=(--baseline-tapper "$BASE/tapper")
    # What the baseline is, for the report: its COMMIT file's first line, if it has one.
    head -n1 "$BASE/COMMIT" 2>/dev/null >"$RESULTS/baseline.txt" || echo "another build" >"$RESULTS/baseline.txt"
  fi
  log "syscall overhead on the host: $conds"
  bench overhead --runs $RUNS --iters $OH_ITERS --conditions "$conds" --tapper "$BIN/tapper" \
    "${baseline[@]}" --out "$RESULTS/overhead-host.json"
  if [ "${BENCH_SKIP_VM:-0}" = 1 ]; then
    skip overhead-vm "skipped on request (BENCH_SKIP_VM=1)."
    skip overhead-vm-oldest "skipped on request (BENCH_SKIP_VM=1)."
    skip overhead-vm-arm64 "skipped on request (BENCH_SKIP_VM=1)."
  elif ! command -v qemu-system-x86_64 >/dev/null; then
    skip overhead-vm "qemu-system-x86_64 is not installed (scripts/setup.sh --test installs it)."
    skip overhead-vm-oldest "qemu-system-x86_64 is not installed (scripts/setup.sh --test installs it)."
    skip overhead-vm-arm64 "qemu-system-x86_64 is not installed (scripts/setup.sh --test installs it)."
  else
    log "syscall overhead in a VM"
    BENCH_VM_RUNS=$RUNS BENCH_VM_ITERS=$VM_ITERS bash scripts/bench-vm.sh "$RESULTS/overhead-vm.json" ||
      die "the VM half of the syscall overhead failed"
    # The oldest kernel the matrix boots (the first in scripts/kernels.txt: 5.10), which
    # runs the builds without BPF atomics and reads registers from the task's stack.
    log "syscall overhead in a VM on the oldest kernel"
    BENCH_VM_KERNEL=$(awk '!/^#/ && NF && $1 != "host" {print $1; exit}' scripts/kernels.txt) \
      BENCH_VM_RUNS=$RUNS BENCH_VM_ITERS=$VM_ITERS bash scripts/bench-vm.sh "$RESULTS/overhead-vm-oldest.json" ||
      die "the VM half of the syscall overhead failed on the oldest kernel"
    # The last arm64 kernel of scripts/kernels.txt under qemu-system-aarch64, with the
    # aarch64 tapper and tapper-bench (bench-vm.sh builds them).
    if ! command -v qemu-system-aarch64 >/dev/null; then
      skip overhead-vm-arm64 "qemu-system-aarch64 is not installed (scripts/setup.sh --test installs it)."
    else
      log "syscall overhead in an arm64 VM"
      BENCH_VM_KERNEL=$(awk '!/^#/ && NF && $1 ~ /-arm64$/ {k=$1} END {print k}' scripts/kernels.txt) \
        BENCH_VM_RUNS=$RUNS BENCH_VM_ITERS=$VM_ITERS bash scripts/bench-vm.sh "$RESULTS/overhead-vm-arm64.json" ||
        die "the VM half of the syscall overhead failed on arm64"
    fi
  fi
}

driver_e2e() {
  need_hub e2e || return 0
  tls_args
  log "tapper -> hub -> subscriber at $E2E_RATES failures/s; latency at $LAT_RATE/s ($TRANSPORTS), and with latency first (plaintext)"
  local ours=(--tapper "$BIN/tapper" --hub "$BIN/hub")
  local r common=(--runs 1 --rates $E2E_RATES --duration $E2E_SECS --latency-rate $LAT_RATE
    --latency-duration $LAT_SECS)
  for r in $(seq $RUNS); do
    # Interleaved run by run: the default batching, then latency first.
    bench e2e "${common[@]}" "${ours[@]}" --tapper-args="$NO_LIMIT" --transports "$TRANSPORTS" \
      "${TLS_ARGS[@]}" --out "$RESULTS/e2e-$r.json"
    bench e2e "${common[@]}" "${ours[@]}" --tapper-args="$LATENCY_FIRST" --transports plaintext \
      --out "$RESULTS/e2e-latency-first-$r.json"
    [ -z "$BASE" ] || baseline e2e "${common[@]}" --tapper "$BASE/tapper" --hub "$BASE/hub" \
      --tapper-args="$NO_LIMIT" --transports plaintext --out "$RESULTS/e2e-baseline-$r.json"
  done
  merge e2e && merge e2e-latency-first
  [ -z "$BASE" ] || merge e2e-baseline
}

driver_fanin() {
  need_hub fanin || return 0
  tls_args
  local baseline=()
  [ -n "$BASE" ] && baseline=(--baseline-hub "$BASE/hub")
  log "hub fan-in $FANIN ($TRANSPORTS)${BASE:+, alternating with the hub of $BASE}"
  bench fanin --runs $RUNS --configs $FANIN --duration $FANIN_SECS --hub "$BIN/hub" \
    "${baseline[@]}" --transports "$TRANSPORTS" "${TLS_ARGS[@]}" --out "$RESULTS/fanin.json"
}

driver_cost() {
  log "tapper cost at $COST_RATES failures/s"
  local r common=(--duration $COST_SECS --rates $COST_RATES)
  bench cost --runs $RUNS "${common[@]}" --tapper "$BIN/tapper" --output json --tapper-args="$NO_LIMIT" \
    --variant "local JSON output to /dev/null" --out "$RESULTS/cost-local.json"
  [ $HAS_HUB = 1 ] || return 0
  for r in $(seq $RUNS); do
    # Interleaved run by run: the default batching, then latency first; each
    # invocation ships to a fresh in-memory hub, each measurement from a fresh tapper.
    bench cost --runs 1 "${common[@]}" --tapper "$BIN/tapper" --output none --hub "$BIN/hub" \
      --tapper-args="$NO_LIMIT" \
      --variant "shipping to a hub, no local output" --out "$RESULTS/cost-hub-$r.json"
    bench cost --runs 1 "${common[@]}" --tapper "$BIN/tapper" --output none --hub "$BIN/hub" \
      --tapper-args="$LATENCY_FIRST" \
      --variant "shipping to a hub, latency first (a wake-up per event, each sent at once)" \
      --out "$RESULTS/cost-hub-latency-first-$r.json"
    [ -z "$BASE" ] || baseline cost --runs 1 "${common[@]}" --tapper "$BASE/tapper" --output none \
      --hub "$BASE/hub" --tapper-args="$NO_LIMIT" \
      --variant "the build before (BENCH_BASELINE_DIR), shipping to a hub, no local output" \
      --out "$RESULTS/cost-hub-baseline-$r.json"
  done
  merge cost-hub && merge cost-hub-latency-first
  [ -z "$BASE" ] || merge cost-hub-baseline
}

driver_attack() {
  need_hub attack || return 0
  log "the hub under attack (${ATTACK[*]})"
  bench attack --runs $RUNS "${ATTACK[@]}" --hub "$BIN/hub" --out "$RESULTS/attack.json"
}

driver_round2() {
  # Two builds side by side: bench/python/attack_round2.py run --before DIR --after DIR.
  need_hub round2 || return 0
  log "the second attack round (${ROUND2[*]})"
  python3 bench/python/attack_round2.py run --bin-dir "$BIN" "${ROUND2[@]}" \
    --out "$RESULTS/attack-round2.json"
}

driver_metrics() {
  command -v prometheus-alertmanager >/dev/null || {
    skip metrics "prometheus-alertmanager is not installed (scripts/setup.sh --test installs it)."
    return 0
  }
  log "failure -> alert in Alertmanager, and /metrics scrape time (${METRICS[*]})"
  python3 bench/python/metrics_alerts.py --bin "$BIN" "${METRICS[@]}" --out "$RESULTS/metrics.json"
}

# Hub replicas on PostgreSQL: the driver starts a throwaway server of its own.
driver_replicas() {
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || [ ! -x "$BIN/hub" ]; then
    skip replicas "PostgreSQL (scripts/setup.sh --test installs it) or the hub binary is missing."
    return 0
  fi
  local baseline=()
  [ -n "$BASE" ] && baseline=(--baseline-hub "$BASE/hub")
  log "hub replicas on PostgreSQL beside SQLite (${REPLICAS[*]} ${baseline[*]})"
  bench replicas "${REPLICAS[@]}" "${baseline[@]}" --hub "$BIN/hub" --out "$RESULTS/replicas.json"
}

# The stacks and early-warnings parts: the overhead driver with their own conditions.
overhead_conditions() {
  bench overhead --runs $RUNS --iters $OH_ITERS --tapper "$BIN/tapper" --out "$RESULTS/$1.json" \
    --conditions "$2"
}
driver_stacks() {
  log "the cost of --stacks per failing call"
  overhead_conditions stacks none,tapper-exit-only,tapper-exit-only-stacks
}
driver_warnings() {
  log "exit-only with warnings off, on and with the floor at 0"
  overhead_conditions warnings \
    none,tapper-exit-only-warnings-off,tapper-exit-only,tapper-exit-only-warn-floor0
}

driver_storm() {
  need_hub storm || return 0
  log "an error storm (${STORM[*]})"
  python3 bench/python/storm.py --bin "$BIN" "${STORM[@]}" --out "$RESULTS/storm.json"
}

# The dashboard in headless Chromium (scripts/setup.sh installs chromium and selenium).
driver_web() {
  need_hub web || return 0
  local missing
  if ! missing=$(python3 -c 'from tapperkit.browser import chromium; chromium().quit()' 2>&1); then
    skip web "the browser did not start: ${missing##*$'\n'}"
    return 0
  fi
  log "the dashboard (${WEB[*]})"
  python3 bench/python/web_page.py --bin "$BIN" "${WEB[@]}" --out "$RESULTS/web.json"
}

for driver in "${DRIVERS[@]}"; do "driver_$driver"; done

# ---- report: the machine section on a whole run, then every section with results --------
if [ "$PART" = all ]; then
  cat >"$RESULTS/meta.json" <<JSON
{
  "mode": "$MODE",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)",
  "load_start": "$LOAD_START",
  "load_end": "$(loadavg)",
  "seconds": $((SECONDS - START))
}
JSON
fi
# A smoke run refreshes a copy of the committed report.
[ $MODE = smoke ] && [ ! -e "$OUT" ] && cp "$ROOT/BENCHMARKS.md" "$OUT"
python3 bench/python/report.py --results "$RESULTS" --out "$OUT"
log "done in $((SECONDS - START))s ($MODE, parts: $PART); report: $OUT"
