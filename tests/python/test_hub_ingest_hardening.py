"""The hub's ingest under hostile reporters and subscribers: oversized identity fields, pod
labels, out-of-range errnos and NUL bytes are refused naming the field (the same answer on
SQLite and PostgreSQL) and store nothing; a slow subscriber of large events costs a bounded
amount of memory; many subscribers with many container-id prefixes do not stall ingest
(real hub, grpcio; loopback only, every loop bounded)."""

import re
import threading
import time

import grpc
import pytest

from google.protobuf.timestamp_pb2 import Timestamp


def event(event_pb2, seq, **fields):
    return event_pb2.Event(seq=seq, errno=fields.pop("errno", 24), errno_name="EMFILE",
                           comm=fields.pop("comm", "t"), ts=Timestamp(seconds=1), **fields)


def report(stub, hub_pb2, node, batches, instance="i1", timeout=60):
    """A Hello, then each batch of events on one Report stream: (acks, error or None)."""
    def requests():
        yield hub_pb2.ReportRequest(hello=hub_pb2.Hello(node=node, instance_id=instance))
        for events in batches:
            yield hub_pb2.ReportRequest(events=hub_pb2.EventBatch(events=events))

    acks = []
    try:
        for resp in stub.Report(requests(), timeout=timeout):
            acks.append(resp.ack.acked_seq)
    except grpc.RpcError as err:
        return acks, err
    return acks, None


def refused(stub, hub_pb2, node, bad):
    """Reports one bad event; returns the INVALID_ARGUMENT's details."""
    acks, err = report(stub, hub_pb2, node, [[bad]])
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, (acks, err)
    assert acks == [0], acks
    return err.details()


def total_events(stub, hub_pb2):
    return stub.GetStats(hub_pb2.GetStatsRequest(), timeout=30).total_events


def test_oversized_identity_fields_and_labels_are_refused_naming_the_field(hub_factory, stubs):
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    hub = hub_factory()
    mib = 1 << 20
    cases = [
        ({"cgroup_path": "/k" * (mib // 2)},
         "events[0].cgroup_path: 1048576 bytes exceed the limit of 4096"),
        ({"container": event_pb2.Container(image="i" * 600)},
         "events[0].container.image: 600 bytes exceed the limit of 512"),
        ({"container": event_pb2.Container(id="3f2a" * 64)},
         "events[0].container.id: 256 bytes exceed the limit of 128"),
        ({"pod": event_pb2.Pod(name="p" * 254)},
         "events[0].pod.name: 254 bytes exceed the limit of 253"),
        ({"pod": event_pb2.Pod(labels={f"k{i}": "v" for i in range(65)})},
         "events[0].pod.labels: 65 labels exceed the limit of 64"),
        ({"pod": event_pb2.Pod(labels={"k" * 400: "v"})},
         "events[0].pod.labels: key \"" + "k" * 32 + "\": 400 bytes exceed the limit of 317"),
        ({"pod": event_pb2.Pod(labels={"app": "v" * mib})},
         "events[0].pod.labels: 1048576 bytes exceed the limit of 256"),
        ({"source": "s" * 129}, "events[0].source: 129 bytes exceed the limit of 128"),
    ]
    with grpc.insecure_channel(hub.addr, options=[
            ("grpc.max_send_message_length", 8 * mib)]) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        for fields, expected in cases:
            assert refused(stub, hub_pb2, "identity", event(event_pb2, 1, **fields)) == expected
        assert total_events(stub, hub_pb2) == 0, "nothing of a refused batch is stored"
        # The same identity within its limits is stored, whole.
        good = event(event_pb2, 1, cgroup_path="/k" * 2048,
                     container=event_pb2.Container(image="i" * 512, id="3f2a" * 16),
                     pod=event_pb2.Pod(name="p" * 253,
                                       labels={f"k{i:02}": "v" * 256 for i in range(64)}))
        acks, err = report(stub, hub_pb2, "identity", [[good]])
        assert err is None and acks == [0, 1], (acks, err)
        [item] = list(stub.Subscribe(hub_pb2.SubscribeRequest(since_hub_seq=0), timeout=30))
        assert item.event.cgroup_path == good.cgroup_path
        assert dict(item.event.pod.labels) == dict(good.pod.labels)


def test_errno_outside_what_the_kernel_returns_is_refused(hub_factory, stubs):
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    hub = hub_factory()
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        for errno in (0, 4096, 200_000, -24):
            details = refused(stub, hub_pb2, "errno", event(event_pb2, 1, errno=errno))
            assert details == f"events[0].errno: must be from 1 to 4095, got {errno}", details
        assert total_events(stub, hub_pb2) == 0
        acks, err = report(stub, hub_pb2, "errno", [[event(event_pb2, 1, errno=4095)]])
        assert err is None and acks == [0, 1], (acks, err)


NUL_CASES = [
    ("comm", {"comm": "we\0b"}, 2),
    ("pod.name", {"pod": ("Pod", {"name": "web\0-7d9f"})}, 3),
    ("cgroup_path", {"cgroup_path": "/kubepods/\0x"}, 10),
    ("container.image", {"container": ("Container", {"image": "img:1\0"})}, 5),
]


def nul_answers(stub, hub_pb2, event_pb2):
    """The hub's answer to an event with a NUL in each of the fields of NUL_CASES."""
    answers = {}
    for field, fields, _ in NUL_CASES:
        built = {k: getattr(event_pb2, v[0])(**v[1]) if isinstance(v, tuple) else v
                 for k, v in fields.items()}
        answers[field] = refused(stub, hub_pb2, "nul", event(event_pb2, 1, **built))
    assert total_events(stub, hub_pb2) == 0, "nothing of a refused batch is stored"
    return answers


def test_nul_bytes_get_the_same_clear_answer_on_sqlite_and_postgresql(
        hub_factory, pg_database, stubs, tmp_path):
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    _, url = pg_database
    answers = []
    for db in (str(tmp_path / "hub.db"), url):
        hub = hub_factory("--db", db)
        with grpc.insecure_channel(hub.addr) as ch:
            answers.append(nul_answers(hub_pb2_grpc.HubStub(ch), hub_pb2, event_pb2))
    sqlite, postgres = answers
    assert sqlite == postgres
    for field, _, at in NUL_CASES:
        assert sqlite[field] == (f"events[0].{field}: holds a NUL byte at byte {at}; "
                                 "send text without NUL bytes"), sqlite[field]


def test_a_failed_postgresql_commit_is_logged_with_its_engine_and_cause(
        hub_factory, pg_database, stubs):
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    server, url = pg_database
    hub = hub_factory("--db", url)
    # The database refuses every commit that stored an event, as a full disk would.
    server.psql("""
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$;
        CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON events
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();
    """, db=url.rsplit("/", 1)[1])
    with grpc.insecure_channel(hub.addr) as ch:
        stub = hub_pb2_grpc.HubStub(ch)
        acks, err = report(stub, hub_pb2, "full", [[event(event_pb2, 1)]])
    assert err is not None and err.code() == grpc.StatusCode.INTERNAL, (acks, err)
    assert "internal store error (ref " in err.details() and "extend" not in err.details()
    log = hub.log.read_text(errors="replace")
    line = next((l for l in log.splitlines() if "internal store error" in l), None)
    assert line is not None, log[-3000:]
    assert ("group commit failed: postgres: db error: ERROR: could not extend file: "
            "No space left on device") in line, line
    assert "sqlite" not in log, log[-3000:]


def vm_rss_kib(pid):
    status = open(f"/proc/{pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def test_a_slow_subscriber_of_large_events_costs_bounded_memory(hub_factory, stubs, tmp_path):
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    # An item count that alone would hold everything sent; the byte budget must not.
    hub = hub_factory("--db", str(tmp_path / "hub.db"), "--subscriber-queue", "1000000",
                      "--subscriber-queue-bytes", str(8 << 20),
                      "--subscriber-stall-timeout", "10m")
    # A subscriber that stops reading, with a small flow-control window (no BDP probing), so
    # the hub really holds what it does not take.
    slow_ch = grpc.insecure_channel(hub.addr, options=[("grpc.http2.bdp_probe", 0)])
    with grpc.insecure_channel(hub.addr) as ch, slow_ch:
        stub = hub_pb2_grpc.HubStub(ch)
        slow = hub_pb2_grpc.HubStub(slow_ch).Subscribe(hub_pb2.SubscribeRequest(follow=True),
                                                        timeout=600)
        slow.initial_metadata()
        before = vm_rss_kib(hub.proc.pid)
        # Events about as large as the limits allow (48 KiB each), 270 MiB in all.
        labels = {f"example.com/key-{i:02}" + "k" * 280: "v" * 256 for i in range(64)}
        big = dict(cgroup_path="/c" * 2048, exe="/e" * 2048, cmdline="a" * 4096,
                   pod=event_pb2.Pod(name="p" * 253, labels=labels))
        per_batch, batches = 16, 360
        acks, err = report(stub, hub_pb2, "big", (
            [event(event_pb2, b * per_batch + i + 1, **big) for i in range(per_batch)]
            for b in range(batches)), timeout=600)
        sent = per_batch * batches
        assert err is None and acks[-1] == sent, (acks[-5:], err)
        grown_mib = (vm_rss_kib(hub.proc.pid) - before) / 1024
        sent_mib = sent * event(event_pb2, 1, **big).ByteSize() / (1 << 20)
        assert sent_mib > 200
        # Without a byte budget the queue alone would hold all of it.
        assert grown_mib < 100, f"the hub grew by {grown_mib:.0f} MiB for {sent_mib:.0f} MiB sent"

        # The slow subscriber gets what fit in its queue and lagged notices for the rest:
        # every event is either delivered or counted in a notice.
        delivered, skipped = 0, 0
        give_up = threading.Timer(60, slow.cancel)
        give_up.start()
        try:
            for item in slow:
                kind = item.WhichOneof("item")
                if kind == "event":
                    delivered += 1
                elif kind == "lagged":
                    skipped += item.lagged.skipped
                if delivered + skipped >= sent:
                    break
        except grpc.RpcError as err:
            pytest.fail(f"the stream ended at {delivered} delivered, {skipped} skipped: {err}")
        finally:
            give_up.cancel()
        assert skipped > 0 and delivered + skipped == sent, (delivered, skipped)
        slow.cancel()


def test_many_subscribers_with_many_container_id_prefixes_do_not_stall_ingest(hub_factory,
                                                                              stubs):
    hub_pb2, hub_pb2_grpc, event_pb2 = stubs
    hub = hub_factory()
    subscribers, prefixes = 400, 1024

    def prefix_list(s):
        return [f"{s:04x}{p:04x}" for p in range(prefixes)]

    # 100 streams on each of four connections (of at most 128 each).
    channels = [grpc.insecure_channel(hub.addr, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(4)]
    calls = []
    try:
        for s in range(subscribers):
            stub = hub_pb2_grpc.HubStub(channels[s % len(channels)])
            call = stub.Subscribe(hub_pb2.SubscribeRequest(container_id=prefix_list(s),
                                                           follow=True), timeout=600)
            calls.append(call)
        for call in calls:
            call.initial_metadata()
        # Subscriber 7's prefixes start the ids of every third event; nobody else's do.
        matching = calls[7]
        received = []

        def read():
            try:
                received.extend(item.event.seq for item in matching)
            except grpc.RpcError:
                pass  # cancelled at the end

        threading.Thread(target=read, daemon=True).start()

        def container_id(seq):
            owner = 7 if seq % 3 == 0 else subscribers + seq
            return f"{owner:04x}{seq % prefixes:04x}" + "0" * 56

        n, per_batch = 3000, 100
        with grpc.insecure_channel(hub.addr) as ch:
            stub = hub_pb2_grpc.HubStub(ch)
            started = time.monotonic()
            acks, err = report(stub, hub_pb2, "prefixes", (
                [event(event_pb2, seq, container=event_pb2.Container(id=container_id(seq)))
                 for seq in range(b * per_batch + 1, (b + 1) * per_batch + 1)]
                for b in range(n // per_batch)), timeout=300)
            assert err is None and acks[-1] == n, (acks[-5:], err)
            assert time.monotonic() - started < 240, "ingest did not hang"
        want = [seq for seq in range(1, n + 1) if seq % 3 == 0]
        deadline = time.monotonic() + 60
        while len(received) < len(want) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert received[:len(want)] == want, (len(received), received[:5])
    finally:
        for call in calls:
            call.cancel()
        for ch in channels:
            threading.Thread(target=ch.close, daemon=True).start()
