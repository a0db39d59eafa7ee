"""The tapper against a local user who tries to exhaust it (issue 27, items 3, 11 and 17):
the real tapper (real eBPF, run as root) while nobody (`setpriv`) floods its /metrics port
or warns it to death, and a token file that never ends."""

import os
import re
import socket
import subprocess
import time
import urllib.request

from tapperkit.tapper import PYTHON, start_as_nobody, start_tapper

# Holds N idle connections to HOST:PORT, prints its pid, then fails socket() once per
# line it reads and says so.
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


def fail_once(workload):
    workload.stdin.write("go\n")
    workload.stdin.flush()
    assert workload.stdout.readline().strip() == "failed"


def soft_nofile(pid):
    limits = open(f"/proc/{pid}/limits").read()
    return int(re.search(r"Max open files\s+(\d+)", limits).group(1))


def scrape(addr, within=20.0):
    """GET /metrics until it answers 200 (slots held by idle connections free up as their
    header timeout closes them); returns the text."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as reply:
                return reply.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_1100_idle_metrics_connections_from_nobody_blind_and_stop_nothing(tapper_bin, tmp_path):
    # Soft limit 1024: the tapper raises it to the hard one (1100), which alone would not
    # hold 1,100 connections; the connection cap does.
    # Counters every second: a counter read that failed used to stop the tapper.
    tapper = start_tapper(tapper_bin, tmp_path, "--metrics-listen", "127.0.0.1:0",
                          "--stats-interval", "1s", "--counters", "json",
                          prefix=["prlimit", "--nofile=1024:1100"])
    assert soft_nofile(tapper.proc.pid) == 1100
    host, port = tapper.ready["metrics"].rsplit(":", 1)
    attacker, pid = start_as_nobody(IDLE_CONNECTIONS, host, port, "1100",
                                    prefix=["prlimit", "--nofile=2048"])
    pid = int(pid)
    try:
        fail_once(attacker)
        first = tapper.wait_event(pid)[0]
        assert "python3" in first["cmdline"], first
        # The tapper used to die about 4 s into the flood, on its next counter read.
        time.sleep(6)
        assert tapper.proc.poll() is None, tapper.log_text()
        fail_once(attacker)
        second = tapper.wait_event(pid, count=2)[1]
        assert "python3" in second["cmdline"], second
        assert second["ppid"] is not None, second
        # The idle connections were closed by the header timeout: a scrape gets a slot.
        assert "tapper_socket_calls_total" in scrape(tapper.ready["metrics"])
    finally:
        attacker.kill()
        attacker.wait()
    assert "metrics: connection limit reached" in tapper.log_text()
    assert tapper.log_text().count('"counters":"interval"') >= 6, tapper.log_text()
    assert "Too many open files" not in tapper.log_text()
    tapper.stop()


# Raises its soft limit to LIMIT, fills its table to 82 % with dup()s of stdin (no new
# open files), prints its pid, then makes a successful socket() every 10 ms above the warn
# ratio (each one a nofile warning, once per --warn-interval) until stdin closes.
NEAR_THE_LIMIT = """
import os, resource, select, socket, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
held = [os.dup(0) for _ in range(int(limit * 0.82))]
print(os.getpid(), flush=True)
while not select.select([sys.stdin], [], [], 0.01)[0]:
    socket.socket().close()
"""

# Fails socket() once per line it reads, and says so.
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


def test_a_warnings_flood_from_nobody_never_holds_back_other_events(tapper_bin, tmp_path):
    tapper = start_tapper(tapper_bin, tmp_path, "--warn-interval", "100ms")
    flood = [start_as_nobody(NEAR_THE_LIMIT, "8192") for _ in range(40)]
    flood_pids = {int(pid) for _, pid in flood}
    bystander, bystander_pid = start_as_nobody(FAIL_ON_LINE)
    try:
        # Each flood process warns ten times a second, with 6,700 descriptors to count.
        for i in range(8):
            time.sleep(1)
            fail_once(bystander)
            tapper.wait_event(int(bystander_pid), count=i + 1, within=10)
        assert tapper.warnings(flood_pids), "the flood reached the tapper"
    finally:
        for proc, _ in [*flood, (bystander, None)]:
            proc.stdin.close()
        for proc, _ in [*flood, (bystander, None)]:
            proc.wait(timeout=30)
    tapper.stop()


def test_a_token_file_that_never_ends_is_a_one_line_error_at_start(tapper_bin, tmp_path):
    fifo = tmp_path / "token.fifo"
    os.mkfifo(fifo)
    for token_file, kind in [("/dev/zero", "a character device"), (fifo, "a FIFO")]:
        started = time.monotonic()
        out = subprocess.run(
            [str(tapper_bin), "--probe", "tracepoint", "--output", "none",
             "--hub", "http://127.0.0.1:1", "--token-file", str(token_file)],
            capture_output=True, text=True, timeout=120)
        assert out.returncode != 0, out.stderr
        errors = [line for line in out.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1, out.stderr
        assert f"--token-file {token_file}: is {kind}, not a regular file" in errors[0], errors
        assert time.monotonic() - started < 60, "the read ended at once"
    big = tmp_path / "token.big"
    big.write_bytes(b"x" * (64 * 1024 + 1))
    out = subprocess.run(
        [str(tapper_bin), "--probe", "tracepoint", "--output", "none",
         "--hub", "http://127.0.0.1:1", "--token-file", str(big)],
        capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert f"--token-file {big}: is larger than 65536 bytes" in out.stderr, out.stderr
