"""The real hub as a child process: `hub --listen ADDR --db DB FLAGS...`, ready once its
ready line names the address it bound, stopped by pid."""

import os

from .process import start


class Hub:
    """A started hub: `addr` (HOST:PORT it serves gRPC on), `url`, `metrics` (the
    --metrics-listen address, if any), and the `child` process (`proc`, `log`)."""

    def __init__(self, child, scheme):
        self.child, self.scheme = child, scheme
        self.addr = child.ready["listen"]
        self.killed = False

    @property
    def proc(self):
        return self.child.proc

    @property
    def log(self):
        return self.child.log

    @property
    def url(self):
        return f"{self.scheme}://{self.addr}"

    @property
    def metrics(self):
        return self.child.ready.get("metrics")

    def kill(self):
        """SIGKILLs the hub (a crash); `stop` then expects no clean exit from it."""
        self.killed = True
        self.child.kill()

    def stop(self, timeout=10):
        """SIGTERM; the hub must exit 0 within `timeout` seconds (unless it was killed)."""
        if not self.killed:
            self.child.stop(timeout)


def start_hub(hub_bin, log, *flags, prefix=(), listen="127.0.0.1:0", timeout=20):
    """Starts the hub with `flags` (in memory unless they name a --db), logging at info into
    `log`, under `prefix` (e.g. ("prlimit", "--nofile=40")), on `listen`; returns it once
    ready. `https://` when the flags name a --tls-cert."""
    db = [] if "--db" in flags else ["--db", ":memory:"]
    child = start([*prefix, str(hub_bin), "--listen", listen, *db, *flags], log, name="hub",
                  env={**os.environ, "RUST_LOG": "info"}, timeout=timeout)
    return Hub(child, "https" if "--tls-cert" in flags else "http")
