"""`--config FILE` (TOML, keys named after the long flags) and `--print-config` of the real
tapper and hub: the file sets flags, the command line overrides them, an unknown key or a
wrong type stops the binary at once with one line naming the key and the file, and the
printed configuration reads back to itself."""

import subprocess
import tomllib

import pytest

from tapperkit.process import start
from tapperkit.tapper import start_tapper

# EAFNOSUPPORT (an unknown family) and EINVAL (an unknown type), in the order given.
FAIL = """import socket, sys
calls = {"EAFNOSUPPORT": (9999, socket.SOCK_STREAM), "EINVAL": (socket.AF_INET, 12345)}
for name in sys.argv[1:]:
    try:
        socket.socket(*calls[name])
    except OSError:
        pass
"""


def fail(*errnos):
    """Runs a process whose socket() calls fail with `errnos`, in order; returns its pid."""
    proc = subprocess.Popen(["/usr/bin/python3", "-c", FAIL, *errnos])
    assert proc.wait(timeout=30) == 0
    return proc.pid


def run(binary, *args):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          timeout=30)


def start_hub(hub_bin, tmp_path, *args, name="hub"):
    return start([str(hub_bin), *map(str, args)], tmp_path / f"{name}.log", name=name,
                 timeout=20)


def test_the_tapper_takes_its_filters_from_the_file_and_a_flag_overrides_them(tapper_bin,
                                                                             tmp_path):
    config = tmp_path / "tapper.toml"
    config.write_text('errno = ["EINVAL"]\ncomm = ["python3"]\n')
    (tmp_path / "file").mkdir()
    tapper = start_tapper(tapper_bin, tmp_path / "file", "--config", config)
    try:
        pid = fail("EAFNOSUPPORT", "EINVAL")
        events = tapper.wait_event(pid)
        assert {e["errno_name"] for e in events} == {"EINVAL"}, events
    finally:
        tapper.stop()
    (tmp_path / "flag").mkdir()
    tapper = start_tapper(tapper_bin, tmp_path / "flag", "--config", config,
                          "--errno", "EAFNOSUPPORT")
    try:
        pid = fail("EINVAL", "EAFNOSUPPORT")
        events = tapper.wait_event(pid)
        assert {e["errno_name"] for e in events} == {"EAFNOSUPPORT"}, events
    finally:
        tapper.stop()


def test_the_hub_listens_where_the_file_says_unless_a_flag_says_otherwise(hub_bin, tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text('listen = "127.0.0.2:0"\ndb = ":memory:"\n'
                      'metrics-listen = "127.0.0.1:0"\n')
    hub = start_hub(hub_bin, tmp_path, "--config", config)
    try:
        assert hub.ready["listen"].startswith("127.0.0.2:"), hub.ready
        assert hub.ready["metrics"].startswith("127.0.0.1:"), hub.ready
    finally:
        hub.stop()
    hub = start_hub(hub_bin, tmp_path, "--listen", "127.0.0.3:0", "--config", config,
                    name="hub-flag")
    try:
        assert hub.ready["listen"].startswith("127.0.0.3:"), hub.ready
        assert "metrics" in hub.ready, "the file's other keys still apply"
    finally:
        hub.stop()


@pytest.mark.parametrize("binary", ["tapper", "hub"])
@pytest.mark.parametrize("text, message", [
    ('metrics-listen = "127.0.0.1:0"\nmetrics-lisen = "127.0.0.1:0"\n',
     'unknown key "metrics-lisen": did you mean "metrics-listen"? keys are the long flags of '
     '--help, without the dashes'),
    ("{switch} = 1\n", 'key "{switch}" takes true or false, not an integer'),
    ('metrics-listen = ["127.0.0.1:0"]\n', 'key "metrics-listen" takes a string or a number, '
                                           'not a list'),
    ("metrics-max-connections = \"lots\"\n", "key \"metrics-max-connections\": invalid value "
                                             "'lots' for '--metrics-max-connections <N>'"),
    ("metrics-listen = 9464\n", "key \"metrics-listen\": invalid value '9464'"),
    ('metrics-listen = "127.0.0.1:0"\nmetrics-listen = "127.0.0.1:1"\n', ":2: not TOML"),
])
def test_a_bad_file_stops_the_binary_with_one_line_naming_key_and_file(
        binary, text, message, request, tmp_path):
    exe = request.getfixturevalue(f"{binary}_bin")
    config = tmp_path / f"{binary}.toml"
    switch = {"hub": "no-web", "tapper": "stacks"}[binary]
    config.write_text(text.format(switch=switch))
    out = run(exe, "--config", config)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"{binary}: error: --config {config}"), lines[0]
    assert message.format(switch=switch) in lines[0], lines[0]
    assert out.stdout == ""


def test_a_bad_file_stops_the_hub_before_it_opens_its_store(hub_bin, tmp_path):
    config = tmp_path / "hub.toml"
    db = tmp_path / "hub.db"
    config.write_text(f'listen = "127.0.0.1:0"\ndb = "{db}"\nretention-age = "soon"\n')
    out = run(hub_bin, "--config", config)
    assert out.returncode == 2
    assert out.stderr.startswith(f"hub: error: --config {config}: key \"retention-age\": "
                                 f"invalid value 'soon' for '--retention-age "), out.stderr
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert not db.exists(), "nothing starts"
    out = run(hub_bin, "--config", tmp_path / "missing.toml")
    assert out.returncode == 2
    assert out.stderr.startswith(f"hub: error: --config {tmp_path}/missing.toml: cannot read it")


@pytest.mark.parametrize("binary, args", [
    ("hub", ["--listen", "127.0.0.1:7070", "--tls-cert", "hub.pem", "--tls-key", "hub.key",
             "--alertmanager", "http://127.0.0.1:9093", "--alertmanager",
             "http://127.0.0.1:9094", "--alert-rules", "rules.toml", "--retention-age", "7d",
             "--insecure", "-vv"]),
    ("tapper", ["--hub", "https://a:1,https://b:2", "--tls-ca", "ca.pem", "--errno",
                "EMFILE,97", "--comm", "nginx", "--stacks", "--warn-nofile-ratio", "0.5",
                "--output", "json", "--node-name", "node-a"]),
])
def test_print_config_round_trips(binary, args, request, tmp_path):
    exe = request.getfixturevalue(f"{binary}_bin")
    first = run(exe, *args, "--print-config")
    assert first.returncode == 0, first.stderr
    printed = tomllib.loads(first.stdout)
    assert printed["verbose" if binary == "hub" else "output"] == (2 if binary == "hub"
                                                                  else "json")
    if binary == "hub":
        assert printed["alertmanager"] == ["http://127.0.0.1:9093", "http://127.0.0.1:9094"]
        assert printed["insecure"] is True and printed["listen"] == "127.0.0.1:7070"
        assert "# db = " in first.stdout, "a default is shown, commented out"
    else:
        assert printed["hub"] == ["https://a:1", "https://b:2"]
        assert printed["errno"] == ["EMFILE", 97] and printed["stacks"] is True
        assert printed["warn-nofile-ratio"] == 0.5
    config = tmp_path / "printed.toml"
    config.write_text(first.stdout)
    again = run(exe, "--config", config, "--print-config")
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
