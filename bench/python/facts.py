"""Which function gives each section (a key of bench/parts.tsv) its template's values; each
returns None when the results directory has nothing for its section."""

import facts_attack
import facts_hub
import facts_probes
import facts_web

SECTIONS = {
    "machine": facts_probes.machine_section,
    "overhead": facts_probes.overhead,
    "stacks": facts_probes.stacks,
    "warnings": facts_probes.warnings,
    "throughput": facts_hub.throughput,
    "latency": facts_hub.latency,
    "fanin": facts_hub.fanin,
    "tls": facts_hub.tls,
    "cost": facts_hub.cost,
    "wakeups": facts_hub.wakeups,
    "baseline": facts_hub.baseline,
    "replicas": facts_hub.replicas,
    "attack": facts_attack.attack,
    "round2": facts_attack.round2,
    "storm": facts_attack.storm,
    "metrics": facts_attack.metrics,
    "web": facts_web.web,
}


def of(key, results):
    if key not in SECTIONS:
        raise SystemExit(f"report: bench/parts.tsv names section `{key}`, which "
                         "bench/python/facts.py does not know; add its function there")
    return SECTIONS[key](results)
