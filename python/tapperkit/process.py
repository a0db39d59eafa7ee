"""A child process of the project (the hub, the tapper): started with its stderr in a log
file, ready once it printed its one-line JSON ready signal (`{"ready":{...}}`), stopped by
its pid (SIGTERM, then its exit status checked)."""

import json
import signal
import subprocess
import time


class NotReady(RuntimeError):
    """The process exited, or printed no ready line in time; the message has its log."""


class Failed(RuntimeError):
    """The process did not stop cleanly; the message has its log."""


def ready_fields(log):
    """The fields of the ready line (`{"ready":{...}}`) the hub or the tapper printed on
    stderr into the file `log`, or None while there is none."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"ready":'):
            return json.loads(line)["ready"]
    return None


class Child:
    """A started process: `proc` (the Popen), its `log` file and its `ready` fields."""

    def __init__(self, name, proc, log):
        self.name, self.proc, self.log = name, proc, log
        self.ready = None

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout):
        """Waits up to `timeout` seconds for the ready line; returns its fields."""
        deadline = time.monotonic() + timeout
        while (ready := ready_fields(self.log)) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {self.proc.returncode}" if self.proc.poll() is not None
                       else f"printed no ready line within {timeout}s")
                self.kill()
                raise NotReady(f"{self.name} did not start ({why}); log:\n{self.log_text()}")
            time.sleep(0.02)
        self.ready = ready
        return ready

    def kill(self):
        """SIGKILL (a crash); waits until it is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self, timeout=15, check=True):
        """SIGTERM by pid; waits up to `timeout` seconds (then SIGKILL, and Failed). With
        `check`, an exit status other than 0 is Failed too. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed(f"{self.name} did not exit within {timeout}s of SIGTERM; "
                         f"log:\n{self.log_text()}") from None
        if check and code != 0:
            raise Failed(f"{self.name} exited with {code}; log:\n{self.log_text()}")
        return code


def start(args, log, name=None, stdout=subprocess.DEVNULL, env=None, timeout=60):
    """Starts `args` (stderr into the file `log`, stdout to `stdout`) and waits up to
    `timeout` seconds for its ready line; returns the Child, its `ready` fields set."""
    with open(log, "wb") as f:
        proc = subprocess.Popen(args, stdout=stdout, stderr=f, env=env)
    child = Child(name or str(args[0]), proc, log)
    child.wait_ready(timeout)
    return child
