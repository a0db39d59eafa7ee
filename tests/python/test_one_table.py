"""One table (issue 26, item 6): the real tapper (real eBPF, as root) prints its table of
real failing socket() calls of an unprivileged process, and `hub-client watch` on a
terminal prints the same rows from the real hub: the same columns, one line per event
within 120 columns, aligned for EPROTONOSUPPORT, the limits for EMFILE."""

from test_tapper_hardening import (read_through_a_terminal, run_as_nobody, start_tapper,
                                   stop_tapper)

NODE = "table-node"
COMM = "one-table"
NOFILE = 32
# As nobody, with its own command name: four failures with four errnos, then its pid.
WORKLOAD = f"""
import os, resource, socket
with open("/proc/self/comm", "w") as f:
    f.write({COMM!r})
for args in [(9999, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_STREAM, 253),
             (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)]:
    try:
        socket.socket(*args)
    except OSError:
        pass
resource.setrlimit(resource.RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))
held = []
try:
    while True:
        held.append(socket.socket())
except OSError:
    pass
print(os.getpid())
"""
HEADER = ["TIME", "NODE", "POD/CONTAINER", "COMM", "PID", "UID", "ERRNO", "SOCKET", "CAUSE"]


def rows_of(text, pid):
    """The header and the rows of `pid` in a table's text."""
    lines = text.replace("\r\n", "\n").splitlines()
    header = next(line for line in lines if line.startswith("TIME "))
    return header, [line for line in lines if f" {pid} " in line]


def cells_of(header, row):
    """A row's cells by column; only CAUSE (cause and limits) has a space in this test."""
    return dict(zip(HEADER, row.split(maxsplit=len(HEADER) - 1)))


def test_the_tapper_and_hub_client_print_the_same_one_line_rows(
        tapper_bin, hub, hub_client_bin, tmp_path):
    tapper, out, log = start_tapper(tapper_bin, hub, tmp_path, "--output", "table",
                                    "--comm", COMM, "--node-name", NODE)
    pid = run_as_nobody(WORKLOAD)
    stop_tapper(tapper, log)
    tapper_header, tapper_rows = rows_of(out.read_text(), pid)

    watch = read_through_a_terminal([str(hub_client_bin), "--hub", hub.url, "watch",
                                     "--node", NODE, "--since-seq", "0", "--no-follow"])
    watch_header, watch_rows = rows_of(watch.decode(), pid)

    assert tapper_header.split() == HEADER and watch_header == tapper_header
    assert len(tapper_rows) == 4, out.read_text()
    assert watch_rows == tapper_rows, watch.decode()

    by_errno = {}
    for row in tapper_rows:
        assert len(row) <= 120, row
        cells = cells_of(tapper_header, row)
        # No column of unknowns, every column in its place.
        assert "?" not in cells.values(), row
        assert cells["NODE"] == NODE and cells["COMM"] == COMM, row
        assert cells["POD/CONTAINER"] == "-" and cells["PID"] == str(pid), row
        assert cells["UID"] == "65534", row
        for column in ("ERRNO", "SOCKET", "CAUSE"):
            at = tapper_header.index(column)
            assert row[at - 1] == " " and row[at:].startswith(cells[column]), (column, row)
        by_errno[cells["ERRNO"]] = cells
    assert set(by_errno) == {"EAFNOSUPPORT", "EPROTONOSUPPORT", "EPERM", "EMFILE"}, by_errno

    assert by_errno["EAFNOSUPPORT"]["SOCKET"] == "9999/STREAM/0"
    assert by_errno["EAFNOSUPPORT"]["CAUSE"] == "family_unsupported"
    assert by_errno["EPROTONOSUPPORT"]["SOCKET"] == "INET6/STREAM/253"
    assert by_errno["EPROTONOSUPPORT"]["CAUSE"] == "protocol_unsupported"
    assert by_errno["EPERM"]["SOCKET"] == "INET/RAW/ICMP"
    assert by_errno["EPERM"]["CAUSE"] == "capability"
    assert by_errno["EMFILE"]["SOCKET"] == "INET/STREAM/IP"
    cause, limits = by_errno["EMFILE"]["CAUSE"].split()
    open_fds, soft = limits.split("/")
    assert cause == "rlimit_nofile" and soft == str(NOFILE), by_errno["EMFILE"]
    assert int(open_fds) >= NOFILE - 1, by_errno["EMFILE"]
