"""A paced failure generator for the dashboard part: prints its pid, waits for a line on
stdin (at end of input it exits), then makes `rate` failing `socket(AF_INET, 12345,
BASE + i)` calls per second (EINVAL; the protocol argument carries the call's index) for
`secs` seconds, as the command name `webbench-gen` (so a tapper can ship only these).
Prints one JSON line: the calls, their span, and with --times the wall time (ns since the
epoch) right after each call."""

import argparse
import ctypes
import errno
import json
import os
import socket
import sys
import time

COMM = b"webbench-gen"
PR_SET_NAME = 15
TYPE = 12345
# Protocol numbers above any IPPROTO name, so a row's protocol cell is the bare index.
BASE = 1_000_000


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=float, required=True, help="failures per second")
    ap.add_argument("--secs", type=float, required=True)
    ap.add_argument("--times", action="store_true", help="print each call's wall time")
    a = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, COMM, 0, 0, 0)
    print(os.getpid(), flush=True)
    if not sys.stdin.readline():
        return  # the caller went away before the start
    total = round(a.rate * a.secs)
    times = []
    start = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * a.rate) + 1)
        while sent < due:
            # libc's socket(), one system call each (Python's socket module retries some
            # failures without SOCK_CLOEXEC, a second failure).
            fd = libc.socket(socket.AF_INET, TYPE, BASE + sent)
            if fd >= 0 or ctypes.get_errno() != errno.EINVAL:
                sys.exit(f"socket() with an invalid type returned {fd}, errno "
                         f"{ctypes.get_errno()}; expected EINVAL")
            if a.times:
                times.append(time.time_ns())
            sent += 1
        ahead = sent / a.rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(min(ahead, 0.005))
    elapsed = time.monotonic() - start
    print(json.dumps({"calls": sent, "elapsed_secs": elapsed, "times_ns": times}))


if __name__ == "__main__":
    main()
