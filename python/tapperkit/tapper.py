"""The real tapper as a child process: started as root (optionally under a prefix such as
`prlimit`), ready once it printed its ready line, JSON events on stdout, stopped by pid with
its final counters checked; and unprivileged workloads run as nobody with `setpriv`."""

import json
import subprocess
import time

from .process import start

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
# The system interpreter: nobody cannot run a per-user one.
PYTHON = "/usr/bin/python3"


class Tapper:
    """A started tapper: its `child` process (`proc`, `log`, `ready`) and its stdout file
    `out`."""

    def __init__(self, child, out):
        self.child, self.out = child, out
        self.proc, self.log, self.ready = child.proc, child.log, child.ready

    def events(self, pid=None):
        """The JSON events (and warnings) printed so far, of `pid` if given."""
        lines = self.out.read_text().split("\n")[:-1] if self.out.exists() else []
        items = [json.loads(line) for line in lines]
        return [i for i in items if pid is None or i.get("pid") == pid]

    def warnings(self, pids):
        return [i["warning"] for i in self.events() if "warning" in i
                and i["warning"].get("pid") in pids]

    def wait_event(self, pid, count=1, within=10.0):
        """Waits until `count` events of `pid` are out; returns them."""
        deadline = time.monotonic() + within
        while True:
            mine = [e for e in self.events(pid) if "warning" not in e]
            if len(mine) >= count:
                return mine
            assert self.proc.poll() is None, f"the tapper exited; log:\n{self.log_text()}"
            assert time.monotonic() < deadline, \
                f"no event of pid {pid} within {within}s; log:\n{self.log_text()}"
            time.sleep(0.05)

    def log_text(self):
        return self.child.log_text()

    def stop(self, timeout=60):
        """SIGTERM; the tapper must exit 0 and print its final counters."""
        self.child.stop(timeout)
        assert '"counters":"final"' in self.log_text(), self.log_text()


def start_tapper(tapper_bin, tmp_path, *args, prefix=(), probe="tracepoint"):
    """The tapper with JSON output and `args`, under `prefix`; its stdout in
    tmp_path/tapper.out, its stderr in tmp_path/tapper.log."""
    out, log = tmp_path / "tapper.out", tmp_path / "tapper.log"
    with open(out, "wb") as o:
        child = start([*prefix, str(tapper_bin), "--probe", probe, "--output", "json", *args],
                      log, name="tapper", stdout=o)
    return Tapper(child, out)


def start_as_nobody(code, *args, prefix=()):
    """Starts Python `code` as nobody (under `prefix`, e.g. prlimit); returns the process
    and the first line it printed (its pid, by convention)."""
    proc = subprocess.Popen([*prefix, *NOBODY, PYTHON, "-c", code, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline().strip()
    assert first, f"the workload printed nothing (exit {proc.poll()})"
    return proc, first
