#!/bin/busybox sh
# hub-check of the kernel-matrix VM (busybox sh, packed as /bin/kernel-matrix-hub-check.sh): starts the hub (in memory)
# and the tapper shipping to it, provokes known failures with socket-workload, and checks
# with hub-client that each arrived with its node, command, probe, errno and family.
# Prints "hub-check: PASS" and exits 0, or says what was wrong and exits 1.

HUB=http://127.0.0.1:50051
NODE=kmatrix-node

fail() {
  echo "hub-check: FAIL: $*"
  for f in /tmp/hub.log /tmp/tapper.log /tmp/events.json; do
    echo "---- $f"
    tail -n 20 "$f" 2>/dev/null
  done
  exit 1
}

# wait_ready LOG SECONDS: until LOG has a JSON ready line.
wait_ready() {
  i=0
  while ! grep -q '"ready"' "$1" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt "$(($2 * 2))" ] && return 1
    sleep 0.5
  done
}

hub --listen 127.0.0.1:50051 --db :memory: 2>/tmp/hub.log &
pids=$!
trap 'kill $pids 2>/dev/null' EXIT
wait_ready /tmp/hub.log 60 || fail "the hub wrote no ready line in 60 s"
tapper --hub "$HUB" --node-name "$NODE" >/dev/null 2>/tmp/tapper.log &
pids="$pids $!"
wait_ready /tmp/tapper.log 120 || fail "the tapper wrote no ready line in 120 s"
probe=$(sed -n 's/.*"ready":{[^}]*"probe":"\([a-z-]*\)".*/\1/p' /tmp/tapper.log | head -n1)
[ -n "$probe" ] || fail "no probe mode in the tapper's ready line"

socket-workload --threads 1 --fail EAFNOSUPPORT=3 --fail EINVAL=2 >/tmp/manifest.json ||
  fail "socket-workload failed"
timeout 120 hub-client --hub "$HUB" watch --since-seq 0 --kind event --comm 'socket-workload' \
  --count 5 --json >/tmp/events.json || fail "hub-client watch did not get 5 events in 120 s"

for expect in EAFNOSUPPORT=3 EINVAL=2; do
  errno=${expect%=*} want=${expect#*=}
  n=$(grep -F "\"errno_name\":\"$errno\"" /tmp/events.json | grep -F "\"node\":\"$NODE\"" |
    grep -F '"comm":"socket-workload"' | grep -F "\"probe\":\"$probe\"" | grep -c '"family_name":"')
  [ "$n" = "$want" ] ||
    fail "$n of $want $errno events came with node $NODE, comm socket-workload, probe $probe and a family"
done
echo "hub-check: PASS probe=$probe (5 events from the tapper through the hub to hub-client)"
