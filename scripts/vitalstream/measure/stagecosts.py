"""Where a micro-batch's time goes: the arithmetic behind the breakdown
(vitalstream.experiments.breakdown measures, notebooks/perf_breakdown.ipynb draws and writes
macros).

Two kinds of measurement meet here. The streaming job reports, per micro-batch, Spark's phases
(``durationMs``), its state operators and the sink's own phases (``stage_ms`` of
``commits.jsonl``, vitalstream.sinks.batch). Spark runs a batch's whole plan inside the sink's
collect, so the streaming job alone cannot say what fetching, parsing or aggregating cost; a
batch query over the same offsets times cumulative plan prefixes instead, and a stage's cost is
the difference of successive medians. A noisy difference can come out negative: it is clipped
at zero and the stage is named in ``clipped``, never hidden.

Pure functions over plain data (no Spark, no Kafka), so that the notebook's environment can
import them and unit tests can check them.

Not for: running anything (vitalstream.experiments.breakdown) or drawing (the notebook).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vitalstream.core.values import macro_value

# Cumulative prefixes of the windows query's plan, timed in batch mode, in plan order.
SPARK_STAGES = ("fetch", "parse", "validate", "aggregate", "score", "collect")
# Spark's phases of a micro-batch (StreamingQueryProgress.durationMs).
DURATION_KEYS = (
    "latestOffset",
    "getBatch",
    "queryPlanning",
    "addBatch",
    "walCommit",
    "commitOffsets",
    "triggerExecution",
)
# The state operators' metrics, summed over a batch's operators.
STATE_KEYS = ("allUpdatesTimeMs", "allRemovalsTimeMs", "commitTimeMs", "numRowsTotal")
# The figure's segments of one micro-batch, in time order, and their labels (plain words:
# the largest one's label reaches the text as a macro).
SEGMENT_LABELS = {
    "planning": "query planning",
    "offsets": "offsets and logs",
    "fetch": "Kafka fetch",
    "parse": "JSON parse",
    "validate": "validation",
    "aggregate": "aggregation",
    "score": "scores and rules",
    "collect": "collect to driver",
    "rules": "sequential rules",
    "write": "Parquet writes",
    "deliver": "topic, index, commit",
    "call": "foreachBatch call",
    "other": "other",
}
# The driver's share of a batch: collection to the driver, its rules and its writes.
DRIVER_SEGMENTS = ("collect", "rules", "write")


def warm_median(values: Sequence[float]) -> float | None:
    """The median after the first (warm-up) value; None with fewer than two values."""
    rest = [float(v) for v in values[1:] if v is not None]
    return float(np.median(rest)) if rest else None


def stage_costs(
    cumulative_ms: Mapping[str, float], order: Sequence[str] = SPARK_STAGES
) -> tuple[dict[str, float], list[str]]:
    """Each stage's cost from the medians of cumulative prefixes (``order``): the difference
    from the previous prefix, clipped at zero; also the stages that were clipped."""
    costs: dict[str, float] = {}
    clipped: list[str] = []
    previous = 0.0
    for stage in order:
        difference = float(cumulative_ms[stage]) - previous
        if difference < 0:
            clipped.append(stage)
        costs[stage] = max(difference, 0.0)
        previous = float(cumulative_ms[stage])
    return costs, clipped


def data_batches(progress: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A query's progress reports of batches that read data, in batch order (Spark's
    no-data batches, which only move the watermark, are left out)."""
    rows = [p for p in progress if int(p.get("numInputRows") or 0) > 0]
    return sorted(rows, key=lambda p: int(p["batchId"]))


def _state_sums(report: Mapping[str, Any]) -> dict[str, float]:
    operators = report.get("stateOperators") or []
    return {key: float(sum(op.get(key) or 0 for op in operators)) for key in STATE_KEYS}


def streaming_medians(
    progress: Sequence[Mapping[str, Any]], commits: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """One query's medians over its data batches after the first: Spark's phases, the state
    operators' metrics and the sink's ``stage_ms`` (commit records of the same batches)."""
    batches = data_batches(progress)
    stages = {int(c["batch_id"]): c.get("stage_ms") or {} for c in commits}
    duration = {
        key: warm_median([float((b.get("durationMs") or {}).get(key, 0)) for b in batches])
        for key in DURATION_KEYS
    }
    state = {key: warm_median([_state_sums(b)[key] for b in batches]) for key in STATE_KEYS}
    names = sorted({name for b in batches for name in stages.get(int(b["batchId"]), {})})
    sink = {
        name: warm_median([stages.get(int(b["batchId"]), {}).get(name, 0.0) for b in batches])
        for name in names
    }
    return {
        "batches": len(batches),
        "batch_ids": [int(b["batchId"]) for b in batches],
        "input_rows": [int(b["numInputRows"]) for b in batches],
        "duration_ms": duration,
        "state": state,
        "stage_ms": sink,
    }


def segments(level: Mapping[str, Any], query: str = "windows") -> dict[str, float]:
    """One micro-batch of ``query`` at a level, in ms per figure segment (SEGMENT_LABELS).

    The total is the streaming batch's median ``triggerExecution``. Spark's share of it, the
    sink's ``collect`` (Spark runs the plan there), is split over the plan's stages in the
    proportions the batch-mode prefixes measured; the driver's phases are the streaming
    sink's own; ``call`` is the rest of ``addBatch`` (Spark calling the Python function with
    the batch), ``other`` what no phase accounts for; both clipped at zero.
    """
    stream = level["streaming"][query]
    duration, sink = stream["duration_ms"], stream["stage_ms"]
    split = level["stages"]["costs_ms"]
    spark_ms = float(sink.get("collect") or 0.0)
    planned = sum(float(split[s]) for s in SPARK_STAGES)
    scale = spark_ms / planned if planned > 0 else 0.0
    parts = {
        "planning": float(duration["queryPlanning"] or 0.0),
        "offsets": sum(
            float(duration[k] or 0.0)
            for k in ("latestOffset", "getBatch", "walCommit", "commitOffsets")
        ),
        **{stage: float(split[stage]) * scale for stage in SPARK_STAGES},
        "rules": float(sink.get("rules") or 0.0),
        "write": float(sink.get("write") or 0.0),
        "deliver": sum(float(sink.get(k) or 0.0) for k in ("publish", "index", "commit")),
    }
    in_sink = sum(float(v or 0.0) for v in sink.values())
    parts["call"] = max(float(duration["addBatch"] or 0.0) - in_sink, 0.0)
    total = float(duration["triggerExecution"] or 0.0)
    parts["other"] = max(total - sum(parts.values()), 0.0)
    return parts


def level_summary(parts: Mapping[str, float]) -> dict[str, Any]:
    """What the text says of one level: the total, the largest segment and its share,
    planning's share and the driver's (collect, rules, writes), shares in percent."""
    total = float(sum(parts.values()))
    largest = max(parts, key=lambda k: parts[k]) if parts else None

    def share(names: Sequence[str]) -> float | None:
        return 100 * sum(parts.get(n, 0.0) for n in names) / total if total > 0 else None

    return {
        "total_ms": total,
        "largest": largest,
        "largest_label": SEGMENT_LABELS.get(largest, largest) if largest else None,
        "largest_percent": share([largest]) if largest else None,
        "planning_percent": share(["planning"]),
        "driver_percent": share(DRIVER_SEGMENTS),
    }


def extreme_levels(result: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The lowest and the highest level of a breakdown (``Low``, ``High``): the two the
    figure and the text compare."""
    levels = sorted(result["levels"], key=lambda level: int(level["messages"]))
    return {"Low": levels[0], "High": levels[-1]}


def breakdown_values(result: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The text's macros of a breakdown (vitalstream.paper.macros reads them): per level
    (``Low``, ``High``) its messages per batch, the total per batch in seconds, the largest
    segment with its share, planning's share and the driver's (percent); then the batches,
    repeats and patients behind them."""
    values: dict[str, dict[str, Any]] = {}
    for name, level in extreme_levels(result).items():
        summary = level_summary(segments(level))
        prefix = f"Breakdown{name}"
        total = summary["total_ms"]
        values |= {
            f"{prefix}Messages": macro_value(level["messages"], 0, source),
            f"{prefix}TotalSeconds": macro_value(total / 1000 if total else None, 2, source),
            f"{prefix}LargestStage": macro_value(summary["largest_label"], None, source),
            f"{prefix}LargestPercent": macro_value(summary["largest_percent"], 0, source),
            f"{prefix}PlanningPercent": macro_value(summary["planning_percent"], 0, source),
            f"{prefix}DriverPercent": macro_value(summary["driver_percent"], 0, source),
        }
    values |= {
        "BreakdownBatches": macro_value(result["batches"], 0, source),
        "BreakdownRepeats": macro_value(result["repeats"], 0, source),
        "BreakdownPatients": macro_value(result.get("patients"), 0, source),
    }
    return values
