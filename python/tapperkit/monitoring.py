"""The real Prometheus and Alertmanager (Debian's `prometheus` and `prometheus-alertmanager`),
started on 127.0.0.1 in a temp dir and stopped by pid, small clients for their HTTP APIs, and
a bounded wait."""

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse

from .net import free_port, get_json, http_get


def wait_for(predicate, what, timeout=30, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class Server:
    """A child server; `stop` ends it by its pid (SIGTERM, then SIGKILL)."""

    def __init__(self, name, args, log, ready_url):
        self.name, self.args, self.log, self.ready_url = name, args, log, ready_url
        self.proc = None

    def start(self, timeout=60):
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(self.args, stdout=f, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.log.read_text(errors='replace')[-3000:]}")
            try:
                http_get(self.ready_url, timeout=1)
                return True
            except (urllib.error.URLError, ConnectionError, OSError):
                return False
        wait_for(ready, f"{self.name} to be ready", timeout)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def binary(name):
    path = shutil.which(name)
    if not path:
        raise FileNotFoundError(f"{name} is not installed: run scripts/setup.sh --test (Debian "
                                "packages prometheus and prometheus-alertmanager)")
    return path


class Prometheus(Server):
    def __init__(self, tmp, targets, rule_files=(), interval="1s"):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(r) for r in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [addr]}]}
                for job, addr in targets.items()
            ],
        }
        (tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        super().__init__("prometheus", [
            binary("prometheus"), f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ], tmp / "prometheus.log", f"{self.url}/-/ready")

    def api(self, path, **params):
        reply = get_json(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        assert reply["status"] == "success", reply
        return reply["data"]

    def query(self, expr):
        """{frozenset(labels): value} of an instant query."""
        return {
            frozenset((k, v) for k, v in r["metric"].items()): float(r["value"][1])
            for r in self.api("query", query=expr)["result"]
        }

    def last_scrape(self, job):
        """The time (unix seconds) Prometheus last scraped the job's target, once healthy."""
        for target in self.api("targets")["activeTargets"]:
            if target["labels"]["job"] == job and target["health"] == "up":
                from datetime import datetime
                return datetime.fromisoformat(target["lastScrape"][:26].rstrip("Z")
                                              + "+00:00").timestamp()
        return None


    def wait_scraped_after(self, job, t):
        """Waits until a scrape of `job` that started after `t` is stored: the target's
        lastScrape is a start time, so that scrape is done once a later one started."""
        first = wait_for(lambda: (self.last_scrape(job) or 0) > t and self.last_scrape(job),
                         f"a scrape of {job} after the workload")
        wait_for(lambda: (self.last_scrape(job) or 0) > first, f"the next scrape of {job}")


class Alertmanager(Server):
    def __init__(self, tmp, port):
        self.url = f"http://127.0.0.1:{port}"
        config = {"route": {"receiver": "nobody", "group_wait": "1s"},
                  "receivers": [{"name": "nobody"}]}
        (tmp / "alertmanager.yml").write_text(json.dumps(config))
        super().__init__("alertmanager", [
            binary("prometheus-alertmanager"), f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ], tmp / "alertmanager.log", f"{self.url}/-/ready")

    def alerts(self, alertname):
        """The active alerts named `alertname` (Alertmanager's /api/v2/alerts)."""
        return [a for a in get_json(f"{self.url}/api/v2/alerts")
                if a["labels"].get("alertname") == alertname]
