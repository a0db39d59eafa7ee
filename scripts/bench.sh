#!/usr/bin/env bash
# Benchmarks: builds the tapper, the hub and tapper-bench, measures every figure of the
# benchmark issue side by side and regenerates BENCHMARKS.md. Run as root.
#
# Usage: scripts/bench.sh [--smoke] [--part 1|8|9|10]
#   --smoke   tiny sizes, one run, no speed assertions; checks that every part still works
#             and writes its report under the target dir instead of BENCHMARKS.md.
#   --part 1  run only part 1 (syscall overhead, host and VM) and replace only its section
#             of the existing report; --part 8 likewise for part 8 (PostgreSQL replicas).
#   --part 9  run only part 9 (the cost of --stacks) and replace or append its section.
#   --part 10 run only part 10 (early warnings: successful-call cost, warnings on and off)
#             and replace (or append) only its section.
# Environment: CARGO_TARGET_DIR (default target); BENCH_SKIP_VM=1 skips the VM part;
#   BENCH_OUT (default BENCHMARKS.md for a full run); BENCH_BIN_DIR: prebuilt static
#   tapper, tapper-bench (and hub) for both the host and the VM, instead of building.
#   BENCH_TRANSPORTS (default plaintext,tls) for parts 2-4.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# The Python drivers import the shared harness (python/tapperkit).
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
MODE=full
PART=all
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) MODE=smoke ;;
    --part) PART=${2:?--part needs a part number}; shift ;;
    *) echo "usage: scripts/bench.sh [--smoke] [--part 1|8|9|10]" >&2; exit 2 ;;
  esac
  shift
done
case $PART in all | 1 | 8 | 9 | 10) ;; *) echo "bench.sh: --part $PART: only parts 1, 8, 9 and 10 run alone" >&2; exit 2 ;; esac
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TARGET_DIR=$TARGET_DIR
RESULTS=$TARGET_DIR/bench/$MODE

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (the benchmarks load eBPF programs)"

if [ $MODE = full ]; then
  RUNS=5 OH_ITERS=500000 VM_ITERS=20000 COST_SECS=10 COST_RATES=0,1000,100000
  E2E_RATES=50000,100000,150000,200000,300000,400000 E2E_SECS=3 LAT_RATE=1000 LAT_SECS=5
  FANIN=10x1000,100x1000 FANIN_SECS=5
  ATTACK=(--events 200000 --churn 20000 --stored 500000 --ack-window 10 --stuck 1000
    --stall-timeout 1 --silent 2000 --handshake-timeout 2)
  METRICS=(--runs 5 --bursts 100 --nodes 1000 --scrapes 200)
  REPLICAS=(--runs 2 --configs 20x250,20x500,20x1000,20x2000 --duration 5 --replicas 1,2,3)
  STORM="--runs 3 --procs 2 --secs 10"
  ROUND2=(--rounds 3)
  OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
else
  RUNS=1 OH_ITERS=2000 VM_ITERS=500 COST_SECS=1 COST_RATES=1000
  E2E_RATES=20000 E2E_SECS=1 LAT_RATE=500 LAT_SECS=1 FANIN=5x200 FANIN_SECS=1
  # The small queue and short stall timeout let the few stuck subscribers be dropped.
  ATTACK=(--events 20000 --churn 200 --stored 4000 --ack-window 1 --stuck 20
    --stall-timeout 0.2 --subscriber-queue 256 --silent 50 --handshake-timeout 1)
  METRICS=(--runs 1 --bursts 5 --nodes 10 --scrapes 10)
  REPLICAS=(--runs 1 --configs 4x100 --duration 1 --replicas 1,2)
  STORM="--runs 1 --procs 2 --secs 1"
  ROUND2=(--smoke)
  OUT=${BENCH_OUT:-$RESULTS/BENCHMARKS.md}
fi

# A full run measures optimized builds; the smoke run reuses the test suite's debug build.
if [ $MODE = full ]; then
  PROFILE_ARGS=(--release) BIN=$TARGET_DIR/release
else
  PROFILE_ARGS=() BIN=$TARGET_DIR/debug
fi
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  # Prebuilt static binaries (scripts/bench-vm.sh's); the VM part uses them too.
  BIN=$BENCH_BIN_DIR
  log "using prebuilt binaries from $BIN"
else
  log "building (${PROFILE_ARGS[*]:-debug}, target dir $TARGET_DIR)"
  PACKAGES=(-p tapper -p tapper-bench)
  [ "$PART" = 1 ] || PACKAGES+=(-p hub)
  cargo build "${PROFILE_ARGS[@]}" --quiet "${PACKAGES[@]}"
fi
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

loadavg() { cut -d' ' -f1-3 /proc/loadavg | sed 's/ / \/ /g'; }
LOAD_START=$(loadavg)
START=$SECONDS
skip() { echo "$2" >"$RESULTS/skipped-$1.txt"; log "skipped $1: $2"; }

# ---- 8. hub replicas on PostgreSQL (a server of its own, started and stopped here) -------
part8() {
  local pgbin=/usr/lib/postgresql/15/bin dir port pw pid status=0
  if [ ! -x "$pgbin/initdb" ] || [ ! -x "$BIN/hub" ]; then
    skip replicas "PostgreSQL 15 (scripts/setup.sh installs it) or the hub binary is missing."
    return
  fi
  dir=$(mktemp -d /tmp/bench-pg.XXXXXX)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pw=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  echo "$pw" >"$dir/pw"
  chown -R postgres: "$dir"
  # initdb refuses root: the server runs as the postgres user, in its own directory.
  setpriv --reuid postgres --regid postgres --clear-groups "$pgbin/initdb" -D "$dir/data" \
    -U hub --no-locale -E UTF8 --auth=scram-sha-256 --pwfile="$dir/pw" >/dev/null
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nmax_connections = 300\n" \
    "$port" "$dir" >>"$dir/data/postgresql.conf"
  setpriv --reuid postgres --regid postgres --clear-groups "$pgbin/pg_ctl" -D "$dir/data" \
    -l "$dir/server.log" -w start >/dev/null
  pid=$(head -1 "$dir/data/postmaster.pid")
  log "part 8: hub replicas on PostgreSQL 15 (port $port) beside SQLite (${REPLICAS[*]})"
  "$BIN/tapper-bench" replicas "${REPLICAS[@]}" --hub "$BIN/hub" \
    --pg-url "postgres://hub:$pw@127.0.0.1:$port/postgres" --out "$RESULTS/replicas.json" ||
    status=$?
  kill -INT "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -rf "$dir"
  [ $status = 0 ] || die "part 8 failed"
}

if [ "$PART" = 8 ]; then
  part8
  [ $MODE = smoke ] && cp "$ROOT/BENCHMARKS.md" "$OUT"
  "$BIN/tapper-bench" report --results "$RESULTS" --out "$OUT" --part 8
  log "done in $((SECONDS - START))s ($MODE, part 8 only); report: $OUT"
  exit 0
fi

# ---- 9. stacks: exit-only with and without --stacks, side by side -------------------------
part9() {
  log "part 9: the cost of --stacks per failing call"
  "$BIN/tapper-bench" overhead --runs $RUNS --iters $OH_ITERS \
    --conditions none,tapper-exit-only,tapper-exit-only-stacks \
    --tapper "$BIN/tapper" --out "$RESULTS/stacks-host.json"
}
if [ "$PART" = 9 ]; then
  part9
  # A smoke run refreshes a copy of the committed report.
  [ $MODE = smoke ] && cp "$ROOT/BENCHMARKS.md" "$OUT"
  "$BIN/tapper-bench" report --results "$RESULTS" --out "$OUT" --part 9
  log "done in $((SECONDS - START))s ($MODE, part 9 only); report: $OUT"
  exit 0
fi

# ---- 10. early warnings: successful-call cost, warnings off / on / floor 0 ----------------
part10() {
  log "part 10: exit-only with warnings off, on and with the floor at 0"
  "$BIN/tapper-bench" overhead --runs $RUNS --iters $OH_ITERS \
    --conditions none,tapper-exit-only-warnings-off,tapper-exit-only,tapper-exit-only-warn-floor0 \
    --tapper "$BIN/tapper" --out "$RESULTS/warnings.json"
}
if [ "$PART" = 10 ]; then
  part10
  [ $MODE = smoke ] && cp "$ROOT/BENCHMARKS.md" "$OUT"
  "$BIN/tapper-bench" report --results "$RESULTS" --out "$OUT" --part 10
  log "done in $((SECONDS - START))s ($MODE, part 10 only); report: $OUT"
  exit 0
fi

# ---- 1. syscall overhead: host (no probes / tapper modes / bpftrace) ----------------------
conds=none,tapper-exit-only,tapper-tracepoint
if command -v bpftrace >/dev/null; then conds+=,bpftrace,bpftrace-printf,bpftrace-correlated; fi
[ -e /sys/bus/event_source/devices/kprobe ] && conds+=,tapper-kprobe
log "part 1 on the host: $conds"
"$BIN/tapper-bench" overhead --runs $RUNS --iters $OH_ITERS --conditions "$conds" \
  --tapper "$BIN/tapper" --out "$RESULTS/overhead-host.json"

# ---- 1. syscall overhead in a VM with kprobes (no probes / tapper kprobe / tracepoint) ----
if [ "${BENCH_SKIP_VM:-0}" = 1 ]; then
  skip overhead-vm "skipped on request (BENCH_SKIP_VM=1)."
elif ! command -v qemu-system-x86_64 >/dev/null; then
  skip overhead-vm "qemu-system-x86_64 is not installed (scripts/setup.sh installs it)."
else
  log "part 1 in a VM"
  BENCH_VM_RUNS=$RUNS BENCH_VM_ITERS=$VM_ITERS bash scripts/bench-vm.sh "$RESULTS/overhead-vm.json" ||
    die "the VM part failed"
fi

if [ "$PART" = 1 ]; then
  # A smoke run refreshes a copy of the committed report.
  [ $MODE = smoke ] && cp "$ROOT/BENCHMARKS.md" "$OUT"
  "$BIN/tapper-bench" report --results "$RESULTS" --out "$OUT" --part 1
  log "done in $((SECONDS - START))s ($MODE, part 1 only); report: $OUT"
  exit 0
fi

# ---- 2-4. hub parts, plaintext and TLS side by side ---------------------------------------
HAS_HUB=0
"$BIN/tapper" --help | grep -q -- '--hub' && [ -x "$BIN/hub" ] && HAS_HUB=1
TRANSPORTS=${BENCH_TRANSPORTS:-plaintext,tls}
TLS_ARGS=()
# A CA and a hub certificate for 127.0.0.1, made fresh for this run.
make_pki() {
  local dir=$RESULTS/pki
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=tapper-bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=hub \
      -keyout "$dir/hub.key" -out "$dir/hub.csr" 2>/dev/null &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' \
      >"$dir/hub.ext" &&
    openssl x509 -req -in "$dir/hub.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -days 2 -extfile "$dir/hub.ext" -out "$dir/hub.pem" 2>/dev/null ||
    die "making the TLS certificates with openssl failed (scripts/setup.sh installs openssl)"
  TLS_ARGS=(--tls-ca "$dir/ca.pem" --tls-cert "$dir/hub.pem" --tls-key "$dir/hub.key")
}
if [ $HAS_HUB = 1 ] && [[ ,$TRANSPORTS, == *,tls,* ]]; then make_pki; fi
# Parts 2, 3 and 5 measure the pipeline: every failure an event (the rate limit off). Each is
# also measured with a kernel wake-up per event, the behaviour before bounded wake-ups.
NO_LIMIT="--rate-limit 0"
WAKE_EVERY="--rate-limit 0 --ring-wakeup-interval 0"
if [ $HAS_HUB = 1 ]; then
  log "parts 2 and 3: tapper -> hub -> subscriber at $E2E_RATES failures/s; latency at $LAT_RATE/s ($TRANSPORTS), and with a kernel wake-up per event (plaintext)"
  for r in $(seq $RUNS); do
    # Interleaved run by run: bounded wake-ups (the default), then one per event.
    "$BIN/tapper-bench" e2e --runs 1 --rates $E2E_RATES --duration $E2E_SECS \
      --latency-rate $LAT_RATE --latency-duration $LAT_SECS --tapper-args="$NO_LIMIT" \
      --tapper "$BIN/tapper" --hub "$BIN/hub" --transports "$TRANSPORTS" "${TLS_ARGS[@]}" \
      --out "$RESULTS/e2e-$r.json"
    "$BIN/tapper-bench" e2e --runs 1 --rates $E2E_RATES --duration $E2E_SECS \
      --latency-rate $LAT_RATE --latency-duration $LAT_SECS --tapper-args="$WAKE_EVERY" \
      --tapper "$BIN/tapper" --hub "$BIN/hub" --transports plaintext \
      --out "$RESULTS/e2e-wake-every-event-$r.json"
  done
  for v in e2e e2e-wake-every-event; do
    python3 bench/python/merge_runs.py --out "$RESULTS/$v.json" "$RESULTS/$v"-[0-9]*.json
  done
  log "part 4: hub fan-in $FANIN ($TRANSPORTS)"
  "$BIN/tapper-bench" fanin --runs $RUNS --configs $FANIN --duration $FANIN_SECS \
    --hub "$BIN/hub" --transports "$TRANSPORTS" "${TLS_ARGS[@]}" --out "$RESULTS/fanin.json"
else
  for part in throughput latency fanin; do
    skip $part "this build has no \`tapper --hub\` or no hub binary."
  done
fi

# ---- 5. tapper cost ----------------------------------------------------------------------
log "part 5: tapper cost at $COST_RATES failures/s"
"$BIN/tapper-bench" cost --runs $RUNS --duration $COST_SECS --rates $COST_RATES \
  --tapper "$BIN/tapper" --output json --variant "local JSON output to /dev/null" \
  --tapper-args="$NO_LIMIT" --out "$RESULTS/cost-local.json"
if [ $HAS_HUB = 1 ]; then
  # One in-memory hub for the whole variant; each measurement starts a fresh tapper.
  "$BIN/hub" --listen 127.0.0.1:0 --db :memory: --retention-rows 1000000 \
    2>"$RESULTS/hub-cost.log" &
  HUB_PID=$!
  trap 'kill $HUB_PID 2>/dev/null || true' EXIT
  # The hub's ready line: {"ready":{"listen":"ADDR"}} on stderr.
  for _ in $(seq 100); do grep -q '^{"ready":' "$RESULTS/hub-cost.log" && break; sleep 0.1; done
  HUB_ADDR=$(sed -n 's/^{"ready":{"listen":"\([^"]*\)"}}$/\1/p' "$RESULTS/hub-cost.log" | head -n1)
  [ -n "$HUB_ADDR" ] || die "the hub for part 5 did not start: $(cat "$RESULTS/hub-cost.log")"
  for r in $(seq $RUNS); do
    # Interleaved run by run: bounded wake-ups (the default), then one per event.
    "$BIN/tapper-bench" cost --runs 1 --duration $COST_SECS --rates $COST_RATES \
      --tapper "$BIN/tapper" --output none \
      --tapper-args="--hub http://$HUB_ADDR --node-name bench $NO_LIMIT" \
      --variant "shipping to a hub, no local output" --out "$RESULTS/cost-hub-$r.json"
    "$BIN/tapper-bench" cost --runs 1 --duration $COST_SECS --rates $COST_RATES \
      --tapper "$BIN/tapper" --output none \
      --tapper-args="--hub http://$HUB_ADDR --node-name bench $WAKE_EVERY" \
      --variant "shipping to a hub, a kernel wake-up per event" \
      --out "$RESULTS/cost-hub-wake-every-event-$r.json"
  done
  for v in cost-hub cost-hub-wake-every-event; do
    python3 bench/python/merge_runs.py --out "$RESULTS/$v.json" "$RESULTS/$v"-[0-9]*.json
  done
  kill $HUB_PID 2>/dev/null || true
  wait $HUB_PID 2>/dev/null || true
  trap - EXIT
fi

# ---- 6. under attack ---------------------------------------------------------------------
if [ -x "$BIN/hub" ]; then
  log "part 6: the hub under attack (${ATTACK[*]})"
  "$BIN/tapper-bench" attack --runs $RUNS "${ATTACK[@]}" --hub "$BIN/hub" \
    --out "$RESULTS/attack.json"
  # The second attack round (a subsection of part 6, spliced in after the report). Two
  # builds side by side: bench/python/attack_round2.py run --before DIR --after DIR.
  log "part 6: the second attack round (${ROUND2[*]})"
  python3 bench/python/attack_round2.py run --bin-dir "$BIN" "${ROUND2[@]}" \
    --out "$RESULTS/attack-round2.json"
else
  skip attack "this build has no hub binary."
fi

# ---- 7. metrics and alerts ---------------------------------------------------------------
# A Markdown section of its own (bench/python/metrics_alerts.py), appended after the report.
if ! command -v prometheus-alertmanager >/dev/null; then
  echo "## 7. Metrics and alerts" >"$RESULTS/metrics-alerts.md"
  echo "Skipped: prometheus-alertmanager is not installed (scripts/setup.sh installs it)." \
    >>"$RESULTS/metrics-alerts.md"
else
  log "part 7: failure -> alert in Alertmanager, and /metrics scrape time (${METRICS[*]})"
  python3 bench/python/metrics_alerts.py --bin "$BIN" "${METRICS[@]}" \
    --out "$RESULTS/metrics-alerts.md"
fi

part8
part9
part10
# ---- 11. error storm ----------------------------------------------------------------------
if [ -x "$BIN/hub" ]; then
  log "part 11: an error storm ($STORM)"
  python3 bench/python/storm.py --bin "$BIN" $STORM --out "$RESULTS/storm.md"
else
  echo "## 11. Error storm" >"$RESULTS/storm.md"
  echo "Skipped: this build has no hub binary." >>"$RESULTS/storm.md"
fi
python3 bench/python/wakeups.py --results "$RESULTS" --out "$RESULTS/wakeups.md"

# ---- report ------------------------------------------------------------------------------
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
"$BIN/tapper-bench" report --results "$RESULTS" --out "$OUT"
if [ -f "$RESULTS/attack-round2.json" ]; then
  python3 bench/python/attack_round2.py render --results "$RESULTS/attack-round2.json" \
    --splice "$OUT"
fi
"$BIN/tapper-bench" report --results "$RESULTS" --out "$RESULTS/replicas.md" --part 8
rm -f "$RESULTS/stacks.md" "$RESULTS/warnings.md"
"$BIN/tapper-bench" report --results "$RESULTS" --out "$RESULTS/stacks.md" --part 9
"$BIN/tapper-bench" report --results "$RESULTS" --out "$RESULTS/warnings.md" --part 10
for section in metrics-alerts replicas stacks warnings storm wakeups; do
  printf '\n' >>"$OUT" && cat "$RESULTS/$section.md" >>"$OUT"
done
log "done in $((SECONDS - START))s ($MODE); report: $OUT"
