#!/usr/bin/env bash
# Profiles a release tapper shipping failures to an in-memory hub: `perf record` (DWARF call
# graphs) on the tapper while `tapper-bench generate` makes RATE failing socket() calls a
# second, then prints the top frames (self time) and the tapper's CPU over the run. Run as root.
#
# Usage: scripts/profile-tapper.sh [--rate N] [--secs S] [--bin DIR] [--out FILE]
#   --rate N    failures per second (default 1000)
#   --secs S    seconds recorded (default 10)
#   --bin DIR   where tapper, hub and tapper-bench are (default target/release)
#   --out FILE  the perf.data file (default target/profile/tapper-RATE.data)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=1000 SECS=10 BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release OUT=
usage="usage: scripts/profile-tapper.sh [--rate N] [--secs S] [--bin DIR] [--out FILE]"
while [ $# -gt 0 ]; do
  case $1 in
    --rate) RATE=${2:?--rate needs failures per second}; shift ;;
    --secs) SECS=${2:?--secs needs seconds}; shift ;;
    --bin) BIN=${2:?--bin needs the directory of tapper, hub and tapper-bench}; shift ;;
    --out) OUT=${2:?--out needs a file name}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
die() { printf 'profile-tapper: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (the tapper loads eBPF programs)"
command -v perf >/dev/null || die "perf is missing: scripts/setup.sh --test installs linux-perf"
for b in tapper hub tapper-bench; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: cargo build --release -p tapper -p hub -p tapper-bench"
done
OUT=${OUT:-$ROOT/target/profile/tapper-$RATE.data}
mkdir -p "$(dirname "$OUT")"
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits for the JSON ready line on stderr file $1 and prints the value of key $2 in it.
ready() {
  local i
  for i in $(seq 200); do
    grep -q '"ready"' "$1" 2>/dev/null && break
    sleep 0.05
  done
  python3 -c 'import json,sys
for line in open(sys.argv[1]):
    if "\"ready\"" in line: print(json.loads(line)["ready"][sys.argv[2]]); break
else: sys.exit("no ready line in " + sys.argv[1])' "$1" "$2"
}

"$BIN/hub" --listen 127.0.0.1:0 --db :memory: --retention-rows 1000000 2>"$WORK/hub.err" &
PIDS+=($!)
HUB=$(ready "$WORK/hub.err" listen) || die "the hub did not start: $(tail -3 "$WORK/hub.err")"
"$BIN/tapper" --probe tracepoint --output none --rate-limit 0 --hub "http://$HUB" \
  --node-name profile 2>"$WORK/tapper.err" &
TAPPER=$!
PIDS=("$TAPPER" "${PIDS[@]}")
ready "$WORK/tapper.err" pid >/dev/null || die "the tapper did not start: $(tail -3 "$WORK/tapper.err")"
sleep 0.5

ticks() { awk '{print $14 + $15}' "/proc/$TAPPER/stat"; }
# Voluntary context switches of all its threads: how often it slept and was woken.
switches() { cat /proc/"$TAPPER"/task/*/status | awk '/^voluntary_ctxt_switches/ {n += $2} END {print n}'; }
before=$(ticks) sw_before=$(switches)
perf record --call-graph dwarf,16384 -F 2000 -p "$TAPPER" -o "$OUT" -- sleep "$SECS" \
  2>"$WORK/perf.err" &
PERF=$!
"$BIN/tapper-bench" generate --rate "$RATE" --duration "$SECS" >/dev/null
wait "$PERF" || die "perf record failed: $(tail -3 "$WORK/perf.err")"
after=$(ticks) sw_after=$(switches)
cpu=$(python3 -c "import os,sys; print(f'{(int(sys.argv[2])-int(sys.argv[1]))/os.sysconf(\"SC_CLK_TCK\")/float(sys.argv[3])*100:.2f}')" \
  "$before" "$after" "$SECS")
echo "tapper CPU while profiled: $cpu % of a core at $RATE failures/s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "wake-ups: $(( (sw_after - sw_before) / SECS ))/s"
echo "profile: $OUT"
perf report -i "$OUT" --no-children --sort symbol --stdio -g none --percent-limit 1.5 2>/dev/null |
  grep -v '^#' | grep -v '^$' | head -30
