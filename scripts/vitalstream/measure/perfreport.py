"""Summaries of the performance experiments for the RQ1 and RQ5 notebooks: one row per run,
medians with their range over repetitions, and the tuned-vs-blueprint ratio table.

Medians over repetitions and ratios measured in the same group run are what the paper reports:
on two shared cores a single run's number is noise-prone, a ratio of two conditions measured
side by side much less so. The interval shown is the full range (min–max) of the repetitions:
with three repetitions any percentile interval would be that range anyway.

Not for: computing a run's metrics (vitalstream.experiments.perf) or drawing (the notebooks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Flattened metrics.json keys → column names of the run table.
RUN_COLUMNS: dict[str, str] = {
    "sustainable_rate": "sustainable_rate",
    "spark_rate": "spark_rate",
    "peak_processing_rate": "peak_rate",
    "producer_rate": "producer_rate",
    "events_produced": "messages",
    "kafka_messages": "kafka_messages",
    "critical_alert_latency_ms.p50": "critical_p50_ms",
    "critical_alert_latency_ms.p99": "critical_p99_ms",
    "critical_alert_latency_ms.count": "critical_n",
    "window_processing_latency_ms.p50": "window_p50_ms",
    "window_processing_latency_ms.p99": "window_p99_ms",
    "window_processing_latency_ms.count": "window_n",
    "event_to_alert_ms.p50": "event_alert_p50_ms",
    "event_to_alert_ms.p99": "event_alert_p99_ms",
    "batch_duration_ms.p50": "batch_p50_ms",
    "batch_duration_ms.p99": "batch_p99_ms",
    "readings_batch_duration_ms.p50": "readings_batch_p50_ms",
    "state_rows_max": "state_rows_max",
    "state_bytes_max": "state_bytes_max",
    "lag_max": "lag_max",
    "resources.jvm.cpu_mean_pct": "jvm_cpu_pct",
    "resources.jvm.rss_max_mib": "jvm_rss_mib",
    "resources.producer.cpu_mean_pct": "producer_cpu_pct",
    "resources.broker.cpu_mean_pct": "broker_cpu_pct",
    # The raw consumer ceiling of the run's own repetition round (experiment ``ceiling``).
    "ceiling_msgs_per_s": "ceiling",
    "ceiling_ratio": "ceiling_ratio",
    # A search run (experiments.perfsearch): its probes and the bracket around the limit.
    "rate_search.probe_count": "probes",
    "rate_search.bracket": "bracket",
    "condition.kafka_partitions": "partitions",
    "condition.load.patients": "patients",
    "condition.trigger_ms": "trigger_ms",
    "ramp_aborted": "ramp_aborted",
    "drained": "drained",
}


def _get(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def run_table(root: Path | str, experiment: str) -> pd.DataFrame:
    """One row per run of ``experiment`` under ``root`` (results/runs), from its metrics.json."""
    rows = []
    for path in sorted(Path(root, experiment).glob("*/rep*/metrics.json")):
        data = json.loads(path.read_text())
        row: dict[str, Any] = {"condition": path.parent.parent.name}
        row["rep"] = int(path.parent.name.removeprefix("rep"))
        row |= {column: _get(data, key) for key, column in RUN_COLUMNS.items()}
        row["first_step_rate"] = data["steps"][0]["target_rate"] if data["steps"] else None
        # Rows Spark consumed during the (first) step per second: RQ1's throughput.
        row["step_spark_rate"] = data["steps"][0]["spark_rate"] if data["steps"] else None
        # Why a step did not hold: what the producer offered, how stale the oldest unprocessed
        # reading was at the step's end, and the bound it was held to.
        first = data["steps"][0] if data["steps"] else {}
        row["first_step_achieved_rate"] = first.get("achieved_rate")
        row["first_step_staleness_s"] = first.get("staleness_end_s")
        row["lag_bound_s"] = first.get("lag_bound_s")
        row["first_step_producer_ok"] = first.get("producer_ok")
        for q in ("p50", "p99"):
            row[f"first_step_critical_{q}_ms"] = (
                data["steps"][0]["reading_alert_latency_ms"][q] if data["steps"] else None
            )
        row["steps_sustained"] = sum(bool(s["sustained"]) for s in data["steps"])
        row |= probe_at_limit(data)
        rows.append(row)
    frame = pd.DataFrame(rows)
    # A latency with no sample is None in metrics.json: NaN here, so it stays a number column.
    flags = {"condition", "rep", "ramp_aborted", "drained", "bracket"}
    for column in frame.columns.difference(list(flags)):
        frame[column] = pd.to_numeric(frame[column].astype(object).where(frame[column].notna()))
    return frame


def probe_at_limit(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """A search run's probe at its sustainable rate: its micro-batch durations (median and sd,
    the variance a probe's length is judged against) and its staleness; None for a ramp."""
    search = metrics.get("rate_search") or {}
    chosen = [p for p in search.get("probes", []) if p.get("probe") == search.get("latency_probe")]
    probe = chosen[0] if chosen else {}
    keys = {
        "batch_duration_median_ms": "probe_batch_p50_ms",
        "batch_duration_sd_ms": "probe_batch_sd_ms",
        "staleness_median_s": "probe_staleness_p50_s",
        "staleness_slope": "probe_staleness_slope",
    }
    return {column: probe.get(key) for key, column in keys.items()}


def step_table(root: Path | str, experiment: str) -> pd.DataFrame:
    """One row per ramp step of every run: target, achieved, backlog, whether it held."""
    rows = []
    for path in sorted(Path(root, experiment).glob("*/rep*/metrics.json")):
        data = json.loads(path.read_text())
        for step in data["steps"]:
            rows.append(
                {
                    "condition": path.parent.parent.name,
                    "rep": int(path.parent.name.removeprefix("rep")),
                    "target_rate": step["target_rate"],
                    "achieved_rate": step["achieved_rate"],
                    "spark_rate": step["spark_rate"],
                    "staleness_end_s": step["staleness_end_s"],
                    "sustained": step["sustained"],
                    "producer_ok": step["producer_ok"],
                    "critical_p99_ms": step["reading_alert_latency_ms"]["p99"],
                }
            )
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Median, min and max of each column over repetitions, per group (NaN-aware)."""
    grouped = frame.groupby(list(by), sort=False)[list(columns)]
    parts = {
        "median": grouped.median(numeric_only=True),
        "min": grouped.min(numeric_only=True),
        "max": grouped.max(numeric_only=True),
    }
    out = pd.concat(parts, axis=1)
    out.columns = [f"{col}_{stat}" for stat, col in out.columns]
    out["reps"] = frame.groupby(list(by), sort=False).size()
    return out.reset_index()


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None:
        return None
    if not np.isfinite(numerator) or not np.isfinite(denominator) or denominator == 0:
        return None
    return float(numerator) / float(denominator)


def paired_ratios(
    frame: pd.DataFrame, numerator: str, denominator: str, column: str
) -> list[float]:
    """Per repetition, ``column`` of condition ``numerator`` over that of ``denominator`` (the
    two measured in the same round of the same group run)."""
    pivot = frame.pivot_table(index="rep", columns="condition", values=column, aggfunc="first")
    if numerator not in pivot or denominator not in pivot:
        return []
    values = [ratio(a, b) for a, b in zip(pivot[numerator], pivot[denominator], strict=True)]
    return [v for v in values if v is not None]


def paired_summary(
    frame: pd.DataFrame, numerator: str, denominator: str, column: str
) -> tuple[float | None, float | None, float | None]:
    """The median, min and max of :func:`paired_ratios` (all None without a pair): the form
    of every ratio a performance table prints."""
    values = paired_ratios(frame, numerator, denominator, column)
    if not values:
        return None, None, None
    return float(np.median(values)), min(values), max(values)


def macro_value(value: Any, decimals: int, source: str) -> dict[str, Any]:
    """One entry of a notebook's ``*_values.json`` (vitalstream.paper.macros reads them)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return {"value": "n/a", "decimals": None, "source": source}
    return {"value": float(value), "decimals": decimals, "source": source}


# Settings that say how a run is driven, not how the job is configured: not a link's change.
RUN_KEYS = ("abort_on_backlog", "cohort", "load")


def flat_settings(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A condition's settings as dotted keys, nested blocks flattened (``consumer.
    fetch_max_wait_ms``); a Spark setting is its own key (``spark.sql.shuffle.partitions``,
    not under ``spark_conf``), which says what it is."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if key == "spark_conf" and isinstance(value, Mapping):
            flat |= dict(value)
        elif isinstance(value, Mapping):
            flat |= flat_settings(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def setting_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What one condition changes from another, as ``key: old to new`` in key order (``none``
    for a setting one of them lacks), leaving out how the runs are driven (RUN_KEYS)."""
    old, new = flat_settings(before), flat_settings(after)
    driven = tuple(f"{key}." for key in RUN_KEYS)
    keys = sorted(
        k for k in old.keys() | new.keys() if k not in RUN_KEYS and not k.startswith(driven)
    )

    def text(value: Any) -> str:
        return "none" if value is None else json.dumps(value)

    return [
        f"{key}: {text(old.get(key))} to {text(new.get(key))}"
        for key in keys
        if old.get(key) != new.get(key)
    ]


def chain_links(
    frame: pd.DataFrame, settings: Mapping[str, Mapping[str, Any]], chain: Sequence[str],
    column: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """The ``chain`` of conditions that ran (``frame``: run_table), each with what it changes
    from the link before (``settings``: each condition's settings) and, per repetition of the
    same group run, ``column`` of the link before over its own (above one: this link is
    lower), as median and range. The first link has no change and no ratio."""
    present = [name for name in chain if name in set(frame["condition"])]
    links = []
    for index, name in enumerate(present):
        previous = present[index - 1] if index else None
        gain = paired_summary(frame, previous, name, column) if previous else (None, None, None)
        changes = setting_changes(settings[previous], settings[name]) if previous else []
        links.append(
            {
                "condition": name,
                "changes": changes,
                "ratio": gain[0],
                "ratio_min": gain[1],
                "ratio_max": gain[2],
            }
        )
    return links
