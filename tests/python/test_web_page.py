"""The hub's dashboard in a real headless Chromium (Debian's chromium and chromedriver,
driven by selenium) against a real hub, fed by `hub-client replay` and, where the page must
show a real failure, by the real tapper: live rows, URL filters, pause and resume, history
then live, the row cap, the detail pane with a user stack, login with tokens, and escaping.
Each test saves screenshots of what it looked at in its tmp dir."""

import json
import os
import re
import subprocess
import time
from urllib.parse import urlencode

import pytest

from tapperkit.browser import MissingBrowser, chromium
from tapperkit.process import ready_fields
from tapperkit.replay import replay_args
from test_stacks import FUNCTIONS, stack_workload  # noqa: F401 (a fixture)
from test_tapper_to_hub import wait_for

READ_TOKEN, REPORT_TOKEN = "web-read-token-0123456789", "web-report-token-0123456789"

# The rows the list has in the DOM (only the visible ones, newest first), cell by cell.
ROWS_JS = """
return [...document.querySelectorAll('#viewport .item:not([hidden])')].map((r) => {
  const text = (cls) => r.querySelector(cls).textContent;
  return {time: text('.time'), node: text('.node'), namespace: text('.ns'), pod: text('.pod'),
          container: text('.ctr'), comm: text('.comm'), pid: text('.pid'),
          errno: text('.errno')};
});
"""


class Page:
    """One browser tab on the hub's page; screenshots go to `shots`."""

    def __init__(self, driver, shots):
        self.driver, self.shots = driver, shots

    def open(self, hub, **query):
        self.driver.get(f"{hub.url}/" + (f"?{urlencode(query)}" if query else ""))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def by_id(self, element_id):
        return self.driver.find_element("id", element_id)

    def status(self):
        return self.js("return document.body.dataset.stream || ''")

    def wait_live(self):
        wait_for(lambda: self.status() == "live", "the page's live stream")

    def counts(self):
        """(N, M) of "N of M shown" (its text even while the app is still hidden, just after
        a login, where selenium's `.text` would be empty)."""
        text = self.js("return document.getElementById('shown').textContent")
        match = re.fullmatch(r"(\d+) of (\d+) shown", text)
        assert match, text
        return int(match[1]), int(match[2])

    def wait_counts(self, shown, received, what):
        wait_for(lambda: self.counts() == (shown, received), what)

    def rows(self):
        return self.js(ROWS_JS)

    def shot(self, name):
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))


@pytest.fixture
def page(tmp_path):
    """A headless Chromium tab; fails (never skips) when the browser is not installed."""
    try:
        driver = chromium()
    except MissingBrowser as err:
        pytest.fail(str(err), pytrace=False)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        yield Page(driver, shots)
    finally:
        driver.quit()


def event_line(**fields):
    """One event in the tapper's --output json schema, `fields` overriding the defaults."""
    event = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S.123000000Z", time.gmtime()), "pid": 4000,
             "tid": 4000, "ppid": 1, "uid": 0, "gid": 0, "comm": "app", "exe": "/usr/bin/app",
             "cmdline": "app --serve", "cgroup_id": 7, "family": 2, "family_name": "AF_INET",
             "type": 1, "type_name": "SOCK_STREAM", "protocol": 0,
             "protocol_name": "IPPROTO_IP", "errno": 24, "errno_name": "EMFILE",
             "message": "Too many open files", "duration_ns": 900, "probe": "tracepoint",
             "source": "syscall", "cgroup_path": None, "container": None, "pod": None,
             "quota": None, "suppressed": 0}
    event.update(fields)
    return json.dumps(event)


def replay_file(hub_client_bin, hub, tmp_path, node, lines, *extra):
    """Replays JSON lines as `node` and waits for the hub's acks."""
    path = tmp_path / f"{node}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = subprocess.run([str(hub_client_bin), "replay", "--hub", hub.url, "--node", node,
                          "--file", str(path), *extra], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def background_replay(hub_client_bin, hub, node, n, interval_ms):
    return subprocess.Popen(replay_args(hub_client_bin, hub.url, node, n, "--interval-ms",
                                        str(interval_ms)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


ERRNOS = [(24, "EMFILE", "Too many open files"), (22, "EINVAL", "Invalid argument"),
          (97, "EAFNOSUPPORT", "Address family not supported by protocol")]


def fleet_events():
    """Events that differ in every filtered field, by node: {node: [event dict, ...]}."""
    fleet = {}
    for n, node in enumerate(["web-a", "web-b"]):
        events = []
        for i in range(12 + 6 * n):
            namespace = ["shop", "bank"][i % 2]
            errno, name, message = ERRNOS[(i // 2) % 3]
            events.append({
                "pid": 2000 + i % 5, "comm": ["nginx", "curl", "java"][i % 3], "errno": errno,
                "errno_name": name, "message": message,
                "container": {"id": None, "runtime": None, "name": ["app", "sidecar"][i // 2 % 2],
                              "image": None},
                "pod": {"uid": None, "namespace": namespace, "name": f"{namespace}-{i % 3}",
                        "labels": {"app": namespace}},
            })
        fleet[node] = events
    return fleet


def matches(node, e, name, value):
    return {"node": node == value, "namespace": e["pod"]["namespace"] == value,
            "pod": e["pod"]["name"] == value, "container": e["container"]["name"] == value,
            "comm": e["comm"] == value, "pid": str(e["pid"]) == value,
            "errno": e["errno_name"] == value, "kind": value == "event"}[name]


def test_each_url_filter_shows_what_it_should_and_hides_the_rest(
        hub, hub_client_bin, page, tmp_path):
    fleet = fleet_events()
    for node, events in fleet.items():
        replay_file(hub_client_bin, hub, tmp_path, node, [event_line(**e) for e in events])
    everything = [(node, e) for node, events in fleet.items() for e in events]
    page.open(hub)
    page.wait_counts(len(everything), len(everything), "every replayed event")
    page.shot("live-unfiltered")
    # The newest row's detail: its pod and labels, and what its errno means.
    page.driver.find_element("css selector", "#viewport .item:not([hidden]) .time").click()
    newest = fleet["web-b"][-1]
    wait_for(lambda: newest["pod"]["name"] in page.by_id("detail").text, "the detail pane")
    detail = page.by_id("detail").text
    assert f"app\n{newest['pod']['namespace']}" in detail, detail
    assert newest["errno_name"] in detail and "usually caused by" in detail
    page.shot("live-detail")

    cases = [("node", "web-b"), ("namespace", "bank"), ("pod", "shop-1"),
             ("container", "sidecar"), ("comm", "curl"), ("pid", "2003"),
             ("errno", "EAFNOSUPPORT"), ("kind", "event"), ("kind", "nofile")]
    for name, value in cases:
        expected = [(node, e) for node, e in everything if matches(node, e, name, value)]
        page.open(hub, **{name: value})
        page.wait_counts(len(expected), len(expected), f"the rows of {name}={value}")
        rows = page.rows()
        assert len(rows) == len(expected), (name, value, rows)
        column = {"kind": None}.get(name, name)
        if column and expected:
            assert {r[column] for r in rows} == {value}, (name, value, rows)
        page.shot(f"filter-{name}-{value}")
    assert page.counts() == (0, 0)  # kind=nofile: these are events only

    # Click-to-filter: a namespace cell adds namespace=... to the URL and filters by it.
    page.open(hub, node="web-a")
    page.wait_counts(12, 12, "web-a's events")
    page.driver.find_element("css selector", "#viewport .item:not([hidden]) .ns").click()
    wait_for(lambda: "namespace=" in page.driver.current_url, "the clicked filter in the URL")
    clicked = page.driver.current_url.split("namespace=")[1].split("&")[0]
    expected = [e for e in fleet["web-a"] if e["pod"]["namespace"] == clicked]
    page.wait_counts(len(expected), len(expected), "the clicked namespace's rows")
    assert {r["namespace"] for r in page.rows()} == {clicked}
    # The URL is the view: opened afresh, it shows the same rows.
    url = page.driver.current_url
    page.driver.get(url)
    page.wait_counts(len(expected), len(expected), "the same view from its link")
    page.shot("filter-clicked")

    page.by_id("tab-overview").click()
    wait_for(lambda: "web-a" in page.by_id("top-node").text, "the overview's top nodes")
    assert "EMFILE" in page.by_id("top-errno").text
    assert "replay" in page.by_id("tappers").text  # the replay announces probe mode "replay"
    # The chart: web-a's failures stacked by errno, each errno in the legend.
    wait_for(lambda: page.js("return document.querySelectorAll('#chart rect').length") > 0,
             "the chart's bars")
    for _, name, _ in ERRNOS:
        assert name in page.by_id("legend").text
    page.shot("overview")


def test_history_then_live_has_no_gap_and_no_duplicate(hub, hub_client_bin, page, replay):
    replay("seam", 400)
    # More arrive while the page loads its history and opens its stream.
    live = background_replay(hub_client_bin, hub, "seam", 600, 3)
    try:
        page.open(hub, node="seam")
        out, err = live.communicate(timeout=120)
        assert live.returncode == 0, err
    finally:
        live.kill()
    page.wait_counts(1000, 1000, "every event of the history and the live stream once")
    rows = page.rows()
    assert all(r["node"] == "seam" for r in rows)
    page.shot("history-then-live")


def test_the_row_cap_says_how_many_are_shown_of_how_many(hub, replay, page):
    replay("capped", 250)
    page.open(hub, node="capped", cap=100)
    page.wait_counts(100, 250, "100 of 250 shown")
    # A virtualized list: only the visible rows are in the DOM.
    in_dom = page.js("return document.querySelectorAll('#viewport .item').length")
    assert 0 < in_dom < 100
    page.shot("cap")


def test_items_the_hub_skipped_for_a_slow_page_are_counted_as_lagged(hub_factory, replay_to,
                                                                     page):
    # A queue of one item per subscriber: a burst outruns any reader, and the hub skips.
    hub = hub_factory("--subscriber-queue", "1")
    page.open(hub, node="burst")
    page.wait_live()
    n = 5000
    replay_to(hub, "burst", n)

    def lagged():
        return int(re.fullmatch(r"lagged (\d+)", page.by_id("lagged").text)[1])

    # Every item is either counted as received or as lagged: never a silent drop. Rows are
    # drawn a frame after they are counted, so "shown" may trail "received" for a moment.
    wait_for(lambda: page.counts()[1] + lagged() == n, "received + lagged = every item")
    wait_for(lambda: page.counts()[0] == page.counts()[1], "every received item shown")
    shown, received = page.counts()
    assert lagged() > 0 and shown == received < n, (shown, received, lagged())
    page.shot("lagged")


def test_pause_holds_the_rows_still_and_resume_catches_up(hub, hub_client_bin, page):
    feed = background_replay(hub_client_bin, hub, "paused", 300, 20)
    try:
        page.open(hub, node="paused")
        wait_for(lambda: page.counts()[0] >= 20, "some live rows")
        page.by_id("pause").click()  # frames drawn from now on draw nothing
        held_rows, (held_shown, held_received) = page.rows(), page.counts()
        wait_for(lambda: page.counts()[1] >= held_received + 30, "events arriving while paused")
        assert page.rows() == held_rows
        assert page.counts()[0] == held_shown
        assert "waiting" in page.by_id("buffered").text
        page.shot("paused")
        out, err = feed.communicate(timeout=120)
        assert feed.returncode == 0, err
    finally:
        feed.kill()
    page.wait_counts(held_shown, 300, "every event counted while paused")
    page.by_id("pause").click()
    page.wait_counts(300, 300, "the rows caught up after resume")
    assert page.rows() != held_rows
    page.shot("resumed")


def test_tokens_nothing_before_login_and_everything_after(hub_factory, hub_client_bin, page,
                                                          tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"report {REPORT_TOKEN}\nread {READ_TOKEN}\n")
    hub = hub_factory("--tokens", str(tokens), "--reload-interval", "100ms")
    report = tmp_path / "report.token"
    report.write_text(f"{REPORT_TOKEN}\n")
    replay_file(hub_client_bin, hub, tmp_path, "secret-node",
                [event_line(comm="secret") for _ in range(5)], "--token-file", str(report))

    page.open(hub)
    wait_for(lambda: page.by_id("login").is_displayed(), "the login form")
    assert not page.by_id("app").is_displayed()
    assert "secret" not in page.driver.page_source
    page.shot("login")

    page.by_id("login-token").send_keys(REPORT_TOKEN)  # report tokens cannot read
    page.driver.find_element("css selector", "#login-form button").click()
    wait_for(lambda: page.by_id("login-error").text != "", "the refusal")
    assert not page.by_id("app").is_displayed()

    page.by_id("login-token").clear()
    page.by_id("login-token").send_keys(READ_TOKEN)
    page.driver.find_element("css selector", "#login-form button").click()
    page.wait_counts(5, 5, "the events after login")
    assert {r["comm"] for r in page.rows()} == {"secret"}
    cookie = page.driver.get_cookie("tapper_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    page.shot("after-login")

    page.by_id("logout").click()
    wait_for(lambda: page.by_id("login").is_displayed(), "the login form after logout")
    page.driver.refresh()
    wait_for(lambda: page.by_id("login").is_displayed(), "still logged out after a reload")
    assert "secret" not in page.driver.page_source

    # A session ends with its token: revoked on the hub's reload, the page asks again.
    page.by_id("login-token").send_keys(READ_TOKEN)
    page.driver.find_element("css selector", "#login-form button").click()
    page.wait_counts(5, 5, "the events after a second login")
    (tmp_path / "tokens.new").write_text(f"report {REPORT_TOKEN}\n")
    os.replace(tmp_path / "tokens.new", tokens)  # the hub never reads half a file
    wait_for(lambda: page.by_id("login").is_displayed(), "the login form after revocation")
    page.shot("revoked")


def test_script_and_terminal_escapes_in_events_stay_inert(hub, hub_client_bin, page, tmp_path):
    attack = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"
    line = event_line(
        comm="<b>x</b>", cmdline=f"run {attack} \x1b[31mred\x1b]0;title\x07",
        pod={"uid": None, "namespace": "evil", "name": "evil-pod",
             "labels": {"note": "<script>alert(1)</script>", "term": "\x1b[2J"}},
        container={"id": None, "runtime": None, "name": "evil", "image": None},
        diagnosis={"cause": "lsm", "text": f"evidence {attack}"})
    replay_file(hub_client_bin, hub, tmp_path, "xss", [line])
    page.open(hub, node="xss")
    page.wait_counts(1, 1, "the crafted event")
    assert page.rows()[0]["comm"] == "<b>x</b>"
    page.driver.find_element("css selector", "#viewport .item:not([hidden]) .time").click()
    wait_for(lambda: "evil-pod" in page.by_id("detail").text, "the detail pane")
    detail = page.by_id("detail").text
    assert "<script>document.title='pwned'</script>" in detail
    assert "<script>alert(1)</script>" in detail
    assert f"evidence {attack}" in detail
    time.sleep(0.5)
    assert page.driver.title != "pwned"
    assert page.js("return document.querySelectorAll('#detail script, #detail img, "
                   "#viewport script, #viewport img, #viewport b').length") == 0
    page.shot("xss-detail")


def test_a_real_failure_appears_live_with_its_pid_errno_and_stack(
        hub, tapper_bin, stack_workload, page, tmp_path):  # noqa: F811 (the fixture)
    log = tmp_path / "tapper.log"
    with open(log, "wb") as f:
        tapper = subprocess.Popen(
            [str(tapper_bin), "--probe", "exit-only", "--stacks", "--output", "none",
             "--hub", hub.url, "--node-name", "browser-node"],
            stdout=subprocess.DEVNULL, stderr=f)
    try:
        wait_for(lambda: ready_fields(log) or tapper.poll() is not None, "the tapper to attach",
                 timeout=60)
        assert tapper.poll() is None, log.read_text()
        page.open(hub, node="browser-node", comm="python3")
        page.wait_live()

        # A failure of this test's own child, live: an unknown address family.
        child = subprocess.run(
            ["/usr/bin/python3", "-c", "import os, socket\nprint(os.getpid(), flush=True)\n"
             "try:\n    socket.socket(9999, socket.SOCK_STREAM)\nexcept OSError:\n    pass"],
            capture_output=True, text=True, check=True)
        pid = child.stdout.strip()
        wait_for(lambda: any(r["pid"] == pid and r["errno"] == "EAFNOSUPPORT"
                             for r in page.rows()), f"pid {pid}'s EAFNOSUPPORT row", timeout=60)
        page.shot("live-real-failure")

        # A frame-pointer workload's EMFILE failures, with the user stack in the detail pane.
        # It waits on stdin (alive, so its stack is read) until its rows are on the page.
        workload = subprocess.Popen([str(stack_workload), "3", "pause"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        page.open(hub, node="browser-node", errno="EMFILE", comm="stack-workload")
        wait_for(lambda: page.counts()[0] >= 3, "the workload's EMFILE rows", timeout=60)
        workload.stdin.close()
        assert workload.wait(timeout=30) == 0
        page.driver.find_element("css selector", "#viewport .item:not([hidden]) .time").click()
        wait_for(lambda: "User stack" in page.by_id("detail").text, "the stack in the detail")
        detail = page.by_id("detail").text
        for name in FUNCTIONS:
            assert name in detail, detail
        assert "Too many open files" in detail or "EMFILE" in detail
        assert "usually caused by" in detail
        # The tapper's diagnosis, above the errno's help: the limit the workload set.
        assert "rlimit_nofile" in detail, detail
        assert "of RLIMIT_NOFILE 16 (hard 16)" in detail, detail
        assert detail.index("rlimit_nofile") < detail.index("usually caused by"), detail
        page.shot("detail-stack")
    finally:
        tapper.terminate()
        tapper.wait(timeout=30)


def test_the_page_works_under_a_base_path(hub_factory, replay_to, page):
    hub = hub_factory("--web-base-path", "/tapper")
    replay_to(hub, "prefixed", 7)
    page.driver.get(f"{hub.url}/tapper?node=prefixed")  # redirected to /tapper/
    page.wait_counts(7, 7, "the events under /tapper/")
    assert page.driver.current_url.startswith(f"{hub.url}/tapper/")
    page.by_id("tab-overview").click()
    wait_for(lambda: "prefixed" in page.by_id("top-node").text, "the overview under /tapper/")
    page.shot("base-path")


# The right edges of the table and of each header and row cell, and whether a cell's text
# is cut (wider than the cell).
CLIPPING_JS = """
const table = document.querySelector('.table').getBoundingClientRect();
const cells = [...document.querySelectorAll('.row.head > span, #viewport .item:not([hidden]) > span')];
return {table: table.right,
        cells: cells.map((c) => ({cls: c.className, text: c.textContent,
                                  right: c.getBoundingClientRect().right,
                                  cut: c.scrollWidth > c.clientWidth}))};
"""


def test_at_1366_px_no_column_is_clipped_and_no_pod_is_an_empty_cell(hub, hub_client_bin,
                                                                      tmp_path):
    try:
        driver = chromium(window="1366,768")
    except MissingBrowser as err:
        pytest.fail(str(err), pytrace=False)
    page = Page(driver, tmp_path)
    try:
        replay_file(hub_client_bin, hub, tmp_path, "laptop", [
            event_line(errno=93, errno_name="EPROTONOSUPPORT", suppressed=123456,
                       message="Protocol not supported")])
        page.open(hub)
        wait_for(lambda: page.rows(), "the replayed event on the page")
        page.shot("1366px")
        layout = page.js(CLIPPING_JS)
        suppressed = [c for c in layout["cells"] if "suppressed" in c["cls"] or
                      c["text"] == "suppressed"]
        assert [c["text"] for c in suppressed] == ["suppressed", "123456"], layout
        for cell in suppressed:
            assert cell["right"] <= layout["table"] + 0.5 and not cell["cut"], layout
        # Outside any pod or container, the cells are empty (no dash).
        row = page.rows()[0]
        assert (row["namespace"], row["pod"], row["container"]) == ("", "", ""), row
        where = page.js("return document.querySelector('#viewport .item .where').textContent")
        assert where == "", where

        page.by_id("tab-overview").click()
        wait_for(lambda: page.js("return document.querySelectorAll('#top-pod td').length") >= 2,
                 "the top pods")
        cells = page.js("return [...document.querySelectorAll('#top-pod td')]"
                        ".map((td) => td.textContent)")
        # One event standing for 1 + 123456 failures, in no pod.
        assert cells == ["", "123457"], cells
        page.shot("overview-1366px")
    finally:
        driver.quit()
