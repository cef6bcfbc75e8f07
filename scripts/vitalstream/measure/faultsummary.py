"""The fault kinds of experiment ``faults``, the order the paper reports them in, and what the
runs' audits of the alerts topic and the search index say (lost, duplicated) per fault.

Defined here, in the measure stage, so that the notebook summarising the fault runs reads them
without importing the runner (vitalstream.experiments.faults), which starts brokers, clusters
and Spark jobs; the runner imports them from here.

Not for: running a fault or checking its guarantee (vitalstream.experiments.faults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The job's crash first, then the broker's, then a node of a cluster: from the fault a
# checkpoint recovers to the one replication has to survive.
FAULT_KINDS = ("spark_kill", "broker_restart", "broker_kill")


def in_fault_order(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Run names sorted by their ``kind`` in :data:`FAULT_KINDS`, so that the table's rows keep
    the order of the text whatever the condition names; an unknown kind fails by name."""
    for name, run in runs.items():
        if run["kind"] not in FAULT_KINDS:
            raise ValueError(f"run {name!r}: unknown fault kind {run['kind']!r} ({FAULT_KINDS})")
    return sorted(runs, key=lambda name: FAULT_KINDS.index(runs[name]["kind"]))


# The alerts' at-least-once sinks each fault run audits by id (experiments.faultaudit): the
# Kafka topic of emitted alerts and the search index. Lost must be 0; repeats are counted.
ALERT_SINKS = ("topic", "index")
# Macro name stem of each fault kind (FaultSparkTopicLost, FaultKillIndexDuplicates, ...).
MACRO_STEMS = {
    "spark_kill": "FaultSpark",
    "broker_restart": "FaultRestart",
    "broker_kill": "FaultKill",
}


def sink_audit(run: Mapping[str, Any], sink: str) -> Mapping[str, Any] | None:
    """One sink's audit of a run's metrics.json (None: a run from before the audit, or a run
    that did not index its alerts)."""
    return (run.get("sinks") or {}).get(sink)


def sink_counts(run: Mapping[str, Any], sink: str) -> dict[str, int | None]:
    """Expected, lost and duplicated alerts of one sink (None each where it was not audited)."""
    audit = sink_audit(run, sink) or {}
    return {key: audit.get(key) for key in ("expected", "lost", "duplicates")}


def sink_macro_values(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per fault kind and sink: ``<Stem><Sink>Expected``, ``...Lost``, ``...Duplicates`` (raw
    numbers or None), and ``FaultSinksLost``, the alerts lost by any sink of any fault."""
    values: dict[str, Any] = {}
    lost_total: int | None = 0
    by_kind = {run["kind"]: run for run in runs.values()}
    for kind, stem in MACRO_STEMS.items():
        for sink in ALERT_SINKS:
            counts = sink_counts(by_kind.get(kind, {}), sink)
            for key, value in counts.items():
                values[f"{stem}{sink.capitalize()}{key.capitalize()}"] = value
            if counts["lost"] is None:
                lost_total = None
            elif lost_total is not None:
                lost_total += int(counts["lost"])
    values["FaultSinksLost"] = lost_total
    return values
