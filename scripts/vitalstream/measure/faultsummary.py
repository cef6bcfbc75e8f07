"""The fault kinds of experiment ``faults`` and the order the paper reports them in.

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
