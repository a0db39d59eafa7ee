"""The real tapper as a child process for the hardening tests: started as root (optionally
under a prefix such as `prlimit`), ready once it printed its ready line, JSON events on
stdout; and unprivileged workloads run as nobody with `setpriv`."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import _binary, ready_fields

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
# The system interpreter: nobody cannot run a per-user one.
PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="session")
def tapper_bin():
    if os.geteuid() != 0:
        pytest.fail("the tapper tests load eBPF: run them as root", pytrace=False)
    return _binary("TAPPER_BIN", "tapper")


class Tapper:
    def __init__(self, proc, out, log, ready):
        self.proc, self.out, self.log, self.ready = proc, out, log, ready

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
            if time.monotonic() > deadline:
                pytest.fail(f"no event of pid {pid} within {within}s; log:\n{self.log_text()}",
                            pytrace=False)
            time.sleep(0.05)

    def log_text(self):
        return self.log.read_text(errors="replace")

    def stop(self, timeout=60):
        """SIGTERM; the tapper must exit 0 and print its final counters."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=timeout) == 0, self.log_text()
        assert '"counters":"final"' in self.log_text(), self.log_text()


def start_tapper(tapper_bin, tmp_path, *args, prefix=()):
    """The tracepoint tapper with JSON output and `args`, under `prefix`."""
    out, log = tmp_path / "tapper.out", tmp_path / "tapper.log"
    with open(out, "wb") as o, open(log, "wb") as e:
        proc = subprocess.Popen(
            [*prefix, str(tapper_bin), "--probe", "tracepoint", "--output", "json", *args],
            stdout=o, stderr=e)
    deadline = time.monotonic() + 60
    while (ready := ready_fields(log)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"tapper did not attach; log:\n{log.read_text(errors='replace')}",
                        pytrace=False)
        time.sleep(0.05)
    return Tapper(proc, out, log, ready)


def start_as_nobody(code, *args, prefix=()):
    """Starts Python `code` as nobody (under `prefix`, e.g. prlimit); returns the process
    and the first line it printed (its pid, by convention)."""
    proc = subprocess.Popen([*prefix, *NOBODY, PYTHON, "-c", code, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline().strip()
    assert first, f"the workload printed nothing (exit {proc.poll()})"
    return proc, first
