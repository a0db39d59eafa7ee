"""`hub-client replay`: a reporter (the one the tapper uses) that feeds a hub synthetic
events and prints a JSON summary line."""

import json
import subprocess


def replay_args(hub_client_bin, url, node, n, *extra):
    """The command line of a replay of `n` synthetic events as `node` into `url`."""
    return [str(hub_client_bin), "replay", "--hub", url, "--node", node,
            "--synthetic", str(n), *extra]


def run_replay(hub_client_bin, hub, node, n, *extra):
    """Feeds n synthetic events as `node` into `hub` and waits for the hub's acks;
    returns the JSON summary."""
    out = subprocess.run(replay_args(hub_client_bin, hub.url, node, n, *extra),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"replay failed: {out.stderr}"
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["flushed"] and summary["sent"] == n, summary
    return summary
