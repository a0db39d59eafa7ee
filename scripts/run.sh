#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build, start a hub and a tapper
# on this machine, and watch every failed socket() call live through the hub.
# Ctrl-C stops all three; the tapper prints its final counters. Extra arguments go to the
# tapper (e.g. --probe tracepoint, --errno EMFILE).
#   HUB_LISTEN  where the hub listens (default 127.0.0.1:50051; port 0 picks a free one)
#   HUB_DB      the hub's SQLite file (default target/run/hub.db)
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (the tapper loads eBPF programs): prefix sudo if you are not root" >&2; exit 1; }
bash scripts/setup.sh
. scripts/lib/rust-path.sh
echo "[run] building (release)" >&2
cargo build --release --quiet -p tapper -p hub -p hub-client

bin=${CARGO_TARGET_DIR:-target}/release
state=${CARGO_TARGET_DIR:-target}/run
mkdir -p "$state"
: >"$state/hub.log"
: >"$state/tapper.log"

pids=()
# The hub and the tapper run in their own sessions, so Ctrl-C reaches only this script and
# the watch; they are stopped here in reverse order, so the tapper flushes to a live hub.
cleanup() {
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -INT "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "[run] tapper's last words:" >&2
  tail -n 12 "$state/tapper.log" >&2
}
trap cleanup EXIT INT TERM

setsid "$bin/hub" --listen "${HUB_LISTEN:-127.0.0.1:50051}" --db "${HUB_DB:-$state/hub.db}" \
  2>"$state/hub.log" &
pids+=($!)
addr=""
for _ in $(seq 200); do
  # The hub's ready line: {"ready":{"listen":"ADDR"}} on stderr.
  addr=$(sed -n 's/^{"ready":{"listen":"\([^"]*\)"}}$/\1/p' "$state/hub.log" | head -n 1)
  [ -n "$addr" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$state/hub.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$addr" ] || { echo "[run] the hub did not start:" >&2; cat "$state/hub.log" >&2; exit 1; }
echo "[run] hub on $addr (log: $state/hub.log)" >&2

setsid "$bin/tapper" --output none --stats-interval 30s --hub "http://$addr" "$@" \
  2>"$state/tapper.log" &
pids+=($!)
for _ in $(seq 600); do
  grep -q '^{"ready":' "$state/tapper.log" && break
  kill -0 "${pids[1]}" 2>/dev/null || { cat "$state/tapper.log" >&2; exit 1; }
  sleep 0.05
done
echo "[run] tapper attached (log: $state/tapper.log); watching failures live, Ctrl-C to stop" >&2
echo "[run] dashboard: http://$addr/ (open it in a browser; the live table follows here too)" >&2
echo "[run] try: python3 -c 'import socket; socket.socket(9999, 1)'   or   grpcurl -plaintext $addr tapper.v1.Hub/Subscribe" >&2

"$bin/hub-client" --hub "http://$addr" watch
