"""The tapper under a local user, before and after a change, side by side (BENCHMARKS.md
part 6): nobody holds 1,100 idle connections to the tapper's /metrics under an open-files
limit of 1,024 (do its events keep their command line, does it keep running?), and nobody's
processes sit at 82 % of a large descriptor limit making successful socket() calls (how
late are a bystander's failure events, how busy is the tapper?). Rounds alternate the two
binaries. Prints a Markdown section.

Run as root (the tapper loads eBPF): python3 bench/python/tapper_attacks.py
    --before OLD/tapper --after NEW/tapper [--rounds 3]"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/python3",
          "-c"]

IDLE_CONNECTIONS = """
import os, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = [socket.create_connection((host, port)) for _ in range(n)]
print(os.getpid(), flush=True)
for _ in sys.stdin:
    try:
        socket.socket(9999, socket.SOCK_STREAM)
    except OSError:
        pass
    print("failed", flush=True)
"""

NEAR_THE_LIMIT = """
import os, resource, select, socket, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
held = [os.dup(0) for _ in range(int(limit * 0.82))]
print(os.getpid(), flush=True)
while not select.select([sys.stdin], [], [], 0.01)[0]:
    socket.socket().close()
"""

FAIL_ON_LINE = """
import os, socket, sys
print(os.getpid(), flush=True)
for _ in sys.stdin:
    try:
        socket.socket(9999, socket.SOCK_STREAM)
    except OSError:
        pass
    print("failed", flush=True)
"""


class Tapper:
    def __init__(self, binary, workdir, *args, prefix=()):
        self.out, self.log = workdir / "tapper.out", workdir / "tapper.log"
        with open(self.out, "wb") as o, open(self.log, "wb") as e:
            self.proc = subprocess.Popen([*prefix, binary, "--probe", "tracepoint", "--output",
                                          "json", *args], stdout=o, stderr=e)
        deadline = time.monotonic() + 60
        while (ready := self.ready()) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{binary} did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.05)
        self.metrics = ready.get("metrics")

    def ready(self):
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith('{"ready":'):
                return json.loads(line)["ready"]
        return None

    def events(self, pid):
        lines = self.out.read_text(errors="replace").split("\n")[:-1]
        return [e for e in map(json.loads, lines) if e.get("pid") == pid and "warning" not in e]

    def warnings(self):
        lines = self.out.read_text(errors="replace").split("\n")[:-1]
        return sum(1 for line in lines if line.startswith('{"warning"'))

    def cpu_secs(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def as_nobody(code, *args, prefix=()):
    proc = subprocess.Popen([*prefix, *NOBODY, code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def fail_once(proc):
    proc.stdin.write("go\n")
    proc.stdin.flush()
    proc.stdout.readline()


def unix_secs(ts):
    whole, frac = ts.rstrip("Z").split(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + frac)


def idle_connections(binary, workdir):
    """1,100 idle connections to /metrics; two failures 8 s apart."""
    tapper = Tapper(binary, workdir, "--metrics-listen", "127.0.0.1:0", "--stats-interval", "1s",
                    prefix=["prlimit", "--nofile=1024:1024"])
    host, port = tapper.metrics.rsplit(":", 1)
    attacker, pid = as_nobody(IDLE_CONNECTIONS, host, port, "1100",
                              prefix=["prlimit", "--nofile=2048"])
    try:
        fail_once(attacker)
        time.sleep(8)
        alive = tapper.proc.poll() is None
        if alive:
            fail_once(attacker)
        time.sleep(1)
        events = tapper.events(pid)
    finally:
        attacker.kill()
        attacker.wait()
        tapper.stop()
    return {"events": len(events), "with_cmdline": sum(1 for e in events if e.get("cmdline")),
            "alive_after_8s": alive}


def warnings_flood(binary, workdir, procs, limit, secs):
    """`procs` processes at 82 % of `limit` warn once a second each; a bystander fails
    every 100 ms. Its events' delay (first line on stdout minus the call) and the tapper's
    CPU."""
    tapper = Tapper(binary, workdir, "--warn-interval", "1s", "--comm", "python3")
    flood = [as_nobody(NEAR_THE_LIMIT, str(limit)) for _ in range(procs)]
    bystander, pid = as_nobody(FAIL_ON_LINE)
    time.sleep(2)
    cpu0, wall0 = tapper.cpu_secs(), time.monotonic()
    arrived, seen, sent = {}, 0, 0

    def poll():
        nonlocal seen
        events = tapper.events(pid)
        now = time.time()
        for e in events[seen:]:
            arrived[e["ts"]] = now
        seen = len(events)

    end = time.monotonic() + secs
    while time.monotonic() < end:
        fail_once(bystander)
        sent += 1
        until = time.monotonic() + 0.1
        while time.monotonic() < until:
            poll()
            time.sleep(0.005)
    deadline = time.monotonic() + 60
    while seen < sent and time.monotonic() < deadline:
        poll()
        time.sleep(0.005)
    cpu = 100 * (tapper.cpu_secs() - cpu0) / (time.monotonic() - wall0)
    warnings = tapper.warnings()
    for proc, _ in [*flood, (bystander, 0)]:
        proc.stdin.close()
        proc.wait()
    tapper.stop()
    delays = sorted((at - unix_secs(ts)) * 1000 for ts, at in arrived.items())
    return {"sent": sent, "arrived": len(delays),
            "p50_ms": delays[len(delays) // 2] if delays else None,
            "p99_ms": delays[min(len(delays) - 1, int(0.99 * len(delays)))] if delays else None,
            "cpu_pct": cpu, "warnings": warnings}


def median(runs, key):
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return "—"
    return f"{statistics.median(values):.1f} ({min(values):.1f} – {max(values):.1f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=100)
    parser.add_argument("--limit", type=int, default=16384)
    parser.add_argument("--secs", type=float, default=15)
    args = parser.parse_args()
    results = {"before": ([], []), "after": ([], [])}
    for r in range(args.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for which in order:
            binary = getattr(args, which)
            with tempfile.TemporaryDirectory() as d:
                results[which][0].append(idle_connections(binary, Path(d)))
            with tempfile.TemporaryDirectory() as d:
                results[which][1].append(
                    warnings_flood(binary, Path(d), args.procs, args.limit, args.secs))
    print("| tapper | events with cmdline (sum) | alive 8 s into the flood |")
    print("| --- | --- | --- |")
    for which, (idle, _) in results.items():
        print(f"| {which} | {sum(r['with_cmdline'] for r in idle)} of "
              f"{sum(r['events'] for r in idle)} | "
              f"{sum(r['alive_after_8s'] for r in idle)} of {len(idle)} |")
    print()
    print("| tapper | bystander events (sum) | delay p50 ms | delay p99 ms | tapper CPU % "
          "| nofile warnings written (sum) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for which, (_, flood) in results.items():
        print(f"| {which} | {sum(r['arrived'] for r in flood)} of {sum(r['sent'] for r in flood)}"
              f" | {median(flood, 'p50_ms')} | {median(flood, 'p99_ms')} | "
              f"{median(flood, 'cpu_pct')} | {sum(r['warnings'] for r in flood)} |")


if __name__ == "__main__":
    main()
