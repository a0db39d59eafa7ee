"""Deployment files checked offline: the Kubernetes manifests against the API schemas
(kubernetes-validate, strict) and against what the tapper and the hub need (their config
files read by the real binaries), their metrics ports against the Prometheus scrape
config, the hub's NetworkPolicy and ServiceMonitor, the systemd units with `systemd-analyze verify` and their
config files, and the hub's health-only port the probes use."""

import json
import re
import shutil
import subprocess
import tomllib
from types import SimpleNamespace

import grpc
import pytest
import yaml

from tapperkit.binaries import ROOT, binary
from test_grpcurl import grpcurl_run

KUBE = ROOT / "deploy" / "kubernetes"
MONITORING = KUBE / "monitoring"
SCRAPE = ROOT / "deploy" / "prometheus" / "scrape.yml"
SYSTEMD = ROOT / "deploy" / "systemd"
CONFIG = ROOT / "deploy" / "config"


@pytest.fixture(scope="session")
def tapper_bin():
    return binary("TAPPER_BIN", "tapper")


def validate(*paths):
    exe = shutil.which("kubernetes-validate")
    if exe is None:
        pytest.fail("kubernetes-validate is missing: pip install kubernetes-validate "
                    "(scripts/setup.sh --test)", pytrace=False)
    return subprocess.run([exe, "--strict", *map(str, paths)], capture_output=True,
                          text=True, timeout=120)


def manifests(*dirs):
    docs = {}
    for path in sorted(p for d in (dirs or [KUBE]) for p in d.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def flags_of(args):
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def effective(binary, args, config_maps, tmp_path):
    """The flags a container's `args` give the real binary, its --config file taken from the
    ConfigMap mounted there: `--print-config`'s keys that are set, and their values."""
    args = [a for a in args if "$(" not in a]
    config = next(a.split("=", 1)[1] for a in args if a.startswith("--config="))
    mount, name = config.rsplit("/", 1)
    local = tmp_path / name
    local.write_text(config_maps[mount][name])
    args = [f"--config={local}" if a.startswith("--config=") else a for a in args]
    out = subprocess.run([str(binary), *args, "--print-config"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return tomllib.loads(out.stdout)


def mounted_config_maps(pod, container, docs):
    """The data of each ConfigMap the container mounts, by mount path."""
    maps = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    return {m["mountPath"]: docs[("ConfigMap", maps[m["name"]])]["data"]
            for m in container["volumeMounts"] if m["name"] in maps}


def help_flags(binary):
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))


def test_manifests_pass_the_schemas_and_a_broken_one_does_not(tmp_path):
    out = validate(*sorted(KUBE.glob("*.yaml")))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == 7, out.stdout
    # The validator does catch mistakes: a misspelt field and a wrong type.
    broken = tmp_path / "broken.yaml"
    broken.write_text((KUBE / "tapper.yaml").read_text()
                      .replace("hostPID: true", "hostPid: true"))
    assert validate(broken).returncode != 0
    broken.write_text((KUBE / "hub.yaml").read_text().replace("replicas: 1", "replicas: one"))
    assert validate(broken).returncode != 0


def test_tapper_daemonset_has_what_the_tapper_needs(tapper_bin, tmp_path):
    docs = manifests()
    ds = docs[("DaemonSet", "tapper")]
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == {"BPF", "PERFMON", "SYS_PTRACE"}
    assert not sc.get("privileged", False)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    for path in ["/sys/kernel/tracing", "/sys/fs/bpf", "/sys/kernel/btf", "/sys/fs/cgroup",
                 "/run/containerd"]:
        assert host[mounts[path]] == path, path
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert "--node-name=$(NODE_NAME)" in c["args"]
    assert flags_of(c["args"]) <= help_flags(tapper_bin), c["args"]
    # The ConfigMap's file is one the tapper takes, and names the mounted hub CA and token.
    config = effective(tapper_bin, c["args"], mounted_config_maps(pod, c, docs), tmp_path)
    assert config["hub"] == ["https://tapper-hub.tapper-system.svc:50051"], config
    assert config["output"] == "json"
    for key in ["tls-ca", "token-file"]:
        assert any(config[key].startswith(m + "/") for m in mounts), (key, config[key])


def test_hub_statefulset_service_and_probes(hub_bin, tmp_path):
    docs = manifests()
    sts = docs[("StatefulSet", "tapper-hub")]
    svc = docs[("Service", "tapper-hub")]
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert flags_of(c["args"]) <= help_flags(hub_bin), c["args"]
    config = effective(hub_bin, c["args"], mounted_config_maps(pod, c, docs), tmp_path)
    args = {f"--{key}": value for key, value in config.items()}
    # TLS and tokens on the served port; the probes use the health-only port.
    assert {"--tls-cert", "--tls-key", "--tokens"} <= args.keys()
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    for key in ["--tls-cert", "--tls-key", "--tokens"]:
        assert any(args[key].startswith(m + "/") for m in mounts), (key, args[key])
    health_port = int(args["--health-listen"].rsplit(":", 1)[1])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["grpc"]["port"] == health_port, probe
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    data = next(m for m in c["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    assert args["--db"].startswith(data["mountPath"] + "/")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["grpc"] == int(args["--listen"].rsplit(":", 1)[1])
    assert svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "grpc"
    tapper = docs[("ConfigMap", "tapper-config")]["data"]["tapper.toml"]
    (hub_url,) = tomllib.loads(tapper)["hub"]
    name, namespace = svc["metadata"]["name"], svc["metadata"]["namespace"]
    assert hub_url == f"https://{name}.{namespace}.svc:{svc['spec']['ports'][0]['port']}"


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def container_ports(pod):
    (c,) = pod["containers"]
    return {p["name"]: p for p in c.get("ports", [])}


def scrape_ports():
    """The port of every target of each job in scrape.yml."""
    jobs = yaml.safe_load(SCRAPE.read_text())["scrape_configs"]
    return {j["job_name"]: {port_of(t) for sc in j["static_configs"] for t in sc["targets"]}
            for j in jobs}


def test_metrics_ports_agree_with_the_scrape_config(tapper_bin, hub_bin, tmp_path):
    docs = manifests()
    scraped = scrape_ports()
    for workload, binary, job in [(("DaemonSet", "tapper"), tapper_bin, "tapper"),
                                  (("StatefulSet", "tapper-hub"), hub_bin, "hub")]:
        pod = docs[workload]["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        config = effective(binary, c["args"], mounted_config_maps(pod, c, docs), tmp_path)
        assert config["metrics-listen"].startswith("0.0.0.0:"), config
        port = port_of(config["metrics-listen"])
        assert scraped[job] == {port}, (job, scraped[job], port)
        assert container_ports(pod)["metrics"]["containerPort"] == port
    # Prometheus scrapes the tapper at each node's address: the port is the node's too.
    tapper_pod = docs[("DaemonSet", "tapper")]["spec"]["template"]["spec"]
    metrics = container_ports(tapper_pod)["metrics"]
    assert metrics["hostPort"] == metrics["containerPort"]
    svc = {p["name"]: p for p in docs[("Service", "tapper-hub")]["spec"]["ports"]}
    assert svc["metrics"]["targetPort"] == "metrics" and svc["metrics"]["port"] in scraped["hub"]


def test_network_policy_admits_the_tappers_and_prometheus_to_the_hub_alone():
    docs = manifests()
    policy = docs[("NetworkPolicy", "tapper-hub")]
    sts = docs[("StatefulSet", "tapper-hub")]
    hub_pod = sts["spec"]["template"]
    tapper_pod = docs[("DaemonSet", "tapper")]["spec"]["template"]
    spec = policy["spec"]
    namespace = policy["metadata"]["namespace"]
    assert spec["podSelector"]["matchLabels"].items() <= hub_pod["metadata"]["labels"].items()
    assert not (spec["podSelector"]["matchLabels"].items()
                <= tapper_pod["metadata"]["labels"].items()), "it must not select the tappers"
    assert spec["policyTypes"] == ["Ingress"]
    hub_ports = container_ports(hub_pod["spec"])
    allowed = {}
    for rule in spec["ingress"]:
        for port in rule["ports"]:
            assert port["port"] in hub_ports, port  # a named port of the hub's container
            allowed[port["port"]] = rule["from"]
    assert set(allowed) == {"grpc", "metrics"}, "the health port needs no rule: the node's"
    # The tappers (pods of the hub's namespace, whatever their labels) reach gRPC.
    (grpc_from,) = allowed["grpc"]
    assert namespace == docs[("DaemonSet", "tapper")]["metadata"]["namespace"]
    selector = grpc_from["podSelector"].get("matchLabels", {})
    assert "namespaceSelector" not in grpc_from
    assert selector.items() <= tapper_pod["metadata"]["labels"].items()
    (metrics_from,) = allowed["metrics"]
    assert metrics_from["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}


def test_service_monitor_scrapes_the_hubs_metrics_port():
    out = validate(*sorted(MONITORING.glob("*.yaml")))
    # No schema ships for the Prometheus Operator's kinds; the file must parse and say so.
    assert out.returncode == 0 and "Couldn't find schema for kind ServiceMonitor" in out.stdout, \
        out.stdout + out.stderr
    docs = manifests(KUBE, MONITORING)
    sm = docs[("ServiceMonitor", "tapper-hub")]
    svc = docs[("Service", "tapper-hub")]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"]["matchNames"] == [svc["metadata"]["namespace"]]
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    # No other Service of the manifests carries the selected labels.
    services = [d for (kind, _), d in docs.items() if kind == "Service"]
    assert [s for s in services if sm["spec"]["selector"]["matchLabels"].items()
            <= s["metadata"]["labels"].items()] == [svc]


def test_health_listen_serves_health_alone_and_without_a_token(hub_factory, grpcurl,
                                                               tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("read s3cret-read-token\n")
    hub = hub_factory("--tokens", str(tokens), "--health-listen", "127.0.0.1:0")
    ready = None
    for line in hub.log.read_text().splitlines():
        if line.startswith('{"ready":'):
            ready = json.loads(line)["ready"]
    health = SimpleNamespace(addr=ready["health_listen"])
    assert health.addr != hub.addr
    out = subprocess.run(
        [str(grpcurl), "-plaintext", "-import-path", str(ROOT / "proto"), "-proto",
         "tapper/v1/hub.proto", "-d", "{}", health.addr, "tapper.v1.Hub/ListTappers"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Unimplemented" in out.stderr, out.stdout + out.stderr
    out = grpcurl_run(grpcurl, health, "list")
    assert out.returncode != 0, "no reflection on the health-only port"
    # grpc.health.v1.Health/Check, no service name: the answer is status SERVING (1).
    with grpc.insecure_channel(health.addr) as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=bytes, response_deserializer=bytes)
        assert check(b"", timeout=10) == b"\x08\x01"
    # The served port still wants a token for everything but health.
    out = grpcurl_run(grpcurl, hub, "tapper.v1.Hub/ListTappers", data={})
    assert out.returncode != 0 and "Unauthenticated" in out.stderr, out.stderr


def systemd_root(tmp_path, hub_bin, tapper_bin):
    """A root with the system's units, the built binaries where the units expect them,
    and the project's units installed."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system",
                    symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(hub_bin, root / "usr/bin/hub")
    shutil.copy(tapper_bin, root / "usr/bin/tapper")
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in SYSTEMD.glob("*.service"):
        shutil.copy(unit, units / unit.name)
    return root, units


def verify(root, units):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (scripts/setup.sh --test)",
                    pytrace=False)
    return subprocess.run(
        [exe, "verify", "--man=no", f"--root={root}",
         *sorted(str(u) for u in units.glob("*.service"))],
        capture_output=True, text=True, timeout=120)


def test_systemd_units_verify_and_run_real_flags(tmp_path, hub_bin, tapper_bin):
    root, units = systemd_root(tmp_path, hub_bin, tapper_bin)
    assert {u.name for u in units.iterdir()} == {"tapper-hub.service", "tapper.service"}
    out = verify(root, units)
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr
    for unit, binary, config in [("tapper-hub.service", hub_bin, "hub.toml"),
                                 ("tapper.service", tapper_bin, "tapper.toml")]:
        text = (units / unit).read_text()
        exec_start = next(l for l in text.splitlines() if l.startswith("ExecStart="))
        assert exec_start.split()[1:] == ["--config", f"/etc/tapper/{config}"], exec_start
        # The default config (the packages' /etc/tapper/) is one the binary takes.
        out = subprocess.run([str(binary), "--config", str(CONFIG / config), "--print-config"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert tomllib.loads(out.stdout) == tomllib.loads((CONFIG / config).read_text())
    # verify does catch a broken unit: a dependency that does not exist.
    tapper = units / "tapper.service"
    tapper.write_text(tapper.read_text().replace("Requires=sys-kernel-tracing.mount",
                                                 "Requires=no-such-thing.mount"))
    out = verify(root, units)
    assert out.returncode != 0 and "no-such-thing.mount" in out.stderr, out.stderr
