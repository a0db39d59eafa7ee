"""Round-two attacks on the tapper (issue items 1, 3 and 11), each against a fresh tapper
writing JSON events to a file: a FIFO in place of a deleted executable under `--stacks`,
idle connections to `--metrics-listen`, and a flood of nofile warnings. Each is measured by
the delay of *probe* failures: this driver's own `socket(9999, SOCK_STREAM, N)` calls, N a
marker, timed from the call to the event's line in the tapper's output."""

import json
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tapperkit.process import start
from tapperkit.tapper import NOBODY, PYTHON

from common import nearest

PROBE_FAMILY = 9999
HERE = Path(__file__).resolve().parent


class Tapper:
    """A tapper writing JSON events to a file; a thread timestamps the probe events as their
    lines arrive."""

    def __init__(self, bins, workdir, *args, prefix=()):
        self.out = workdir / "tapper.out"
        with open(self.out, "wb") as out:
            self.child = start([*prefix, str(bins / "tapper"), "--output", "json", *args],
                               workdir / "tapper.log", stdout=out)
        self.proc, self.metrics = self.child.proc, self.child.ready.get("metrics")
        self.arrivals = {}
        self._done = threading.Event()
        self._tail = threading.Thread(target=self._follow, daemon=True)
        self._tail.start()

    def _follow(self):
        needle = f'"pid":{os.getpid()},'.encode()
        with open(self.out, "rb") as f:
            pending = b""
            while not self._done.is_set():
                pending += f.readline()
                if not pending.endswith(b"\n"):
                    time.sleep(0.0005)
                    continue
                line, pending = pending, b""
                if needle in line:
                    event = json.loads(line)
                    if event.get("family") == PROBE_FAMILY:
                        self.arrivals[event["protocol"]] = (time.monotonic(), event)

    def cpu_secs(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fds(self):
        """Its open descriptors, None once it has exited."""
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except FileNotFoundError:
            return None

    def close(self):
        self._done.set()
        if self.proc.poll() is None:
            self.child.stop(check=False)


class Prober:
    """Fails socket() with a fresh marker as its protocol and remembers when."""

    def __init__(self, tapper):
        self.tapper = tapper
        self.sent = {}

    def fire(self):
        marker = len(self.sent) + 1
        self.sent[marker] = time.monotonic()
        try:
            socket.socket(PROBE_FAMILY, socket.SOCK_STREAM, marker).close()
        except OSError:
            pass
        return marker

    def every(self, interval, secs, until=lambda: False):
        """Fires a probe every `interval` for `secs` (or until `until()`); the markers."""
        markers, end = [], time.monotonic() + secs
        while time.monotonic() < end and not until():
            markers.append(self.fire())
            time.sleep(interval)
        return markers

    def delays(self, markers, wait):
        """Seconds from call to event for each marker, None for those that did not arrive
        within `wait` seconds after the last call."""
        end = time.monotonic() + wait
        while time.monotonic() < end and not all(m in self.tapper.arrivals for m in markers):
            time.sleep(0.01)
        arrived = self.tapper.arrivals
        return [arrived[m][0] - self.sent[m] if m in arrived else None for m in markers]


def percentiles_ms(delays):
    """p50 and p99 in ms of the delays that arrived, and how many did."""
    got = [d * 1000 for d in delays if d is not None]
    return {"p50_ms": nearest(got, 0.5), "p99_ms": nearest(got, 0.99), "arrived": len(got),
            "probes": len(delays)}


class IdleConns:
    """The idle-connection attacker (idle_conns.py) as nobody: `count` connections from
    `source` to `addr`, held `hold` seconds (`h2`: answering HTTP/2 pings)."""

    def __init__(self, addr, count, hold, source, h2=False):
        host, port = addr.rsplit(":", 1)
        self.proc = subprocess.Popen(
            ["prlimit", f"--nofile={count + 256}", *NOBODY, PYTHON, "-c",
             (HERE / "idle_conns.py").read_text(), host, port, str(count), str(hold),
             "--source", source, *(["--h2"] if h2 else [])], stdout=subprocess.PIPE, text=True)
        try:
            self.opened = json.loads(self.proc.stdout.readline())["opened"]
        except BaseException:
            kill(self.proc)
            raise

    def open_at_end(self):
        """Waits for the end of the hold; the connections still open then."""
        return json.loads(self.proc.stdout.readline() or '{"open_at_end": null}')["open_at_end"]


def kill(proc):
    """Kills `proc` (a Popen, or None) and waits for it."""
    if proc and proc.poll() is None:
        proc.kill()
    if proc:
        proc.wait()


FIFO_EXE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
/* Replaces its own executable with a FIFO, fails socket(), then lives on for argv[1] s. */
int main(int argc, char **argv) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0 || argc < 2) return 1;
    self[n] = 0;
    if (unlink(self) || mkfifo(self, 0666)) { perror(self); return 1; }
    socket(9999, SOCK_STREAM, 0);
    puts("failed");
    fflush(stdout);
    sleep(atoi(argv[1]));
    unlink(self);
    return 0;
}
"""


def fifo_exe(bins, workdir, sizes):
    """Item 1: as nobody, a static program (frame pointers on, so its own code is on the
    stack) replaces its executable with a FIFO and fails socket() under `tapper --stacks`.
    Figures: the delay of the probes that follow, and whether SIGTERM stops the tapper."""
    attack_dir = workdir / "fifo"
    attack_dir.mkdir()
    os.chown(attack_dir, 65534, 65534)
    exe = attack_dir / "fifo-exe"
    (workdir / "fifo-exe.c").write_text(FIFO_EXE)
    subprocess.run(["gcc", "-O0", "-static", "-fno-omit-frame-pointer", "-o", str(exe),
                    str(workdir / "fifo-exe.c")], check=True)
    os.chown(exe, 65534, 65534)
    timeout = sizes["hang_timeout"]
    tapper = Tapper(bins, workdir, "--stacks")
    attacker = None
    try:
        prober = Prober(tapper)
        baseline = prober.delays(prober.every(0.1, 1), wait=10)
        attacker = subprocess.Popen([*NOBODY, str(exe), str(int(timeout) + 30)],
                                    stdout=subprocess.PIPE, text=True)
        if attacker.stdout.readline().strip() != "failed":
            raise RuntimeError(f"the FIFO program did not get to socket(): exit "
                               f"{attacker.wait()}")
        # Probes until four have arrived, or for the hang timeout.
        markers = prober.every(0.25, timeout, until=lambda: len(
            [m for m in tapper.arrivals if m > len(baseline)]) >= 4)
        delays = prober.delays(markers, wait=1)
        first = delays[0]
        t0 = time.monotonic()
        tapper.proc.send_signal(signal.SIGTERM)
        try:
            tapper.proc.wait(timeout=sizes["stop_timeout"])
            stopped_after = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            stopped_after = None
            tapper.proc.kill()
            tapper.proc.wait()
        return {
            "timeout_s": timeout,
            "baseline": percentiles_ms(baseline),
            "first_delay_s": first,
            "max_delay_s": max((d for d in delays if d is not None), default=None),
            "probes": len(delays),
            "probes_arrived": sum(d is not None for d in delays),
            "sigterm_stopped_s": stopped_after,
            "stop_timeout_s": sizes["stop_timeout"],
        }
    finally:
        tapper.close()
        kill(attacker)


def metrics_fds(bins, workdir, sizes):
    """Item 3: the tapper under a soft descriptor limit of 1024 (hard limit unchanged) with
    `--metrics-listen` and its counters read every second (as when shipping to a hub);
    nobody holds idle connections to it. Figures: the probes' events with a cmdline, and
    whether the tapper still runs at the end."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    conns, hold = sizes["metrics_conns"], sizes["metrics_hold"]
    tapper = Tapper(bins, workdir, "--metrics-listen", "127.0.0.1:0", "--stats-interval", "1s",
                    prefix=("prlimit", f"--nofile=1024:{hard}"))
    attacker = None
    try:
        prober = Prober(tapper)
        prober.delays(prober.every(0.1, 0.5), wait=10)
        attacker = IdleConns(tapper.metrics, conns, hold, "127.0.0.1")
        fds_peak = tapper.fds()
        markers, exited_at, t0 = [], None, time.monotonic()
        while time.monotonic() - t0 < hold:
            markers.append(prober.fire())
            if exited_at is None and tapper.proc.poll() is not None:
                exited_at = time.monotonic() - t0
            time.sleep(0.2)
        open_at_end = attacker.open_at_end()
        delays = prober.delays(markers, wait=5)
        alive = tapper.proc.poll() is None
        events = [tapper.arrivals[m][1] for m in markers if m in tapper.arrivals]
        return {
            "connections": conns,
            "hold_s": hold,
            "opened": attacker.opened,
            "open_at_end": open_at_end,
            "tapper_fds_after_open": fds_peak,
            "probes": len(markers),
            "probes_arrived": sum(d is not None for d in delays),
            "with_cmdline": sum(bool(e.get("cmdline")) for e in events),
            "alive_at_end": alive,
            "exit_code": tapper.proc.returncode,
            "exited_after_s": exited_at,
        }
    finally:
        tapper.close()
        kill(attacker and attacker.proc)


WARNINGS_FLOOD = r"""
import os, socket, sys, time
procs, ratio, secs = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
limit = os.sysconf("SC_OPEN_MAX")
r, w = os.pipe()
base = os.open("/dev/null", os.O_RDONLY)
for _ in range(procs):
    if os.fork() == 0:
        os.close(r)
        # Descriptors up to the ratio: the next socket() returns one at it.
        for fd in range(3, int(limit * ratio)):
            if fd not in (w, base):
                os.dup2(base, fd)
        os.write(w, b".")
        end = time.monotonic() + secs
        while time.monotonic() < end:
            socket.socket().close()
            time.sleep(0.01)
        os._exit(0)
os.close(w)
got = 0
while got < procs:
    got += len(os.read(r, procs))
print("ready", flush=True)
for _ in range(procs):
    os.wait()
"""


def warnings_flood(bins, workdir, sizes):
    """Item 11: nobody's processes, each with its descriptors at 82 % of its limit, call
    socket() every 10 ms (successful calls: the tapper warns about each process). Figures:
    the tapper's CPU and the probes' delay during the flood, against a quiet baseline on the
    same tapper."""
    procs, limit, secs = sizes["flood_procs"], sizes["flood_limit"], sizes["flood_secs"]
    tapper = Tapper(bins, workdir)
    flood = None
    try:
        prober = Prober(tapper)
        cpu0, t0 = tapper.cpu_secs(), time.monotonic()
        baseline = prober.delays(prober.every(0.05, sizes["baseline_secs"]), wait=10)
        baseline_cpu = (tapper.cpu_secs() - cpu0) / (time.monotonic() - t0) * 100
        flood = subprocess.Popen(
            ["prlimit", f"--nofile={limit}:{limit}", *NOBODY, PYTHON, "-c", WARNINGS_FLOOD,
             str(procs), "0.82", str(secs)], stdout=subprocess.PIPE, text=True)
        flood.stdout.readline()
        cpu0, t0 = tapper.cpu_secs(), time.monotonic()
        markers = prober.every(0.05, secs)
        cpu = (tapper.cpu_secs() - cpu0) / (time.monotonic() - t0) * 100
        flood.wait(timeout=secs + 60)
        delays = prober.delays(markers, wait=sizes["flood_grace"])
        warnings = sum(1 for line in tapper.out.open("rb") if line.startswith(b'{"warning"'))
        return {
            "procs": procs, "limit": limit, "ratio": 0.82, "secs": secs,
            "baseline": percentiles_ms(baseline), "baseline_cpu_percent": baseline_cpu,
            "flood": percentiles_ms(delays), "cpu_percent": cpu, "warnings": warnings,
            "grace_s": sizes["flood_grace"],
        }
    finally:
        tapper.close()
        kill(flood)
