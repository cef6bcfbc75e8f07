"""Run metrics: counts, throughput and latency computed from a run's own output files.

Everything here is recomputed from what the run wrote (producer report, sink commit log,
window/alert/dead-letter Parquet, Spark progress reports), never from in-memory state, so
the numbers can be re-derived and checked by anyone holding the run directory.

Latency follows Karimov et al. (ICDE 2018): a window's result is as late as its last event, so a
window alert's latency is the sink's commit time minus the send stamp of the window's last
reading. Percentiles use numpy's default (linear) interpolation.

Not for: running anything, or formatting numbers for the paper (vitalstream.paper.macros).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.sinks.search import read_search_commits

PERCENTILES = (50, 90, 99)


def read_parquet_dir(path: Path, query: str | None = None) -> pd.DataFrame:
    """All Parquet files under ``path`` (empty frame when there are none yet).

    Hive-style directory keys (``query=…``, ``batch_id=…``) become columns; ``query`` is set
    to the given name where the layout has no such level (windows/, deadletter/).
    """
    if not path.exists() or not any(path.rglob("*.parquet")):
        return pd.DataFrame()
    frame = pd.read_parquet(path)
    if "batch_id" in frame:
        frame["batch_id"] = frame["batch_id"].astype("int64")
    if "query" in frame:
        frame["query"] = frame["query"].astype(str)
    elif query is not None:
        frame["query"] = query
    return frame


def read_commits(path: Path) -> pd.DataFrame:
    """Sink commit log; a batch replayed after a restart keeps its last commit."""
    if not path.exists():
        return pd.DataFrame(columns=["query", "batch_id", "commit_wall_ns"])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    if "query" not in frame:
        frame["query"] = "windows"
    return frame.drop_duplicates(["query", "batch_id"], keep="last")


def latency_summary(latency_ms: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    """P50/P90/P99/max and count of a latency sample in ms (None when empty)."""
    values = np.asarray(latency_ms, dtype=float)
    summary: dict[str, float | int | None] = {"count": int(values.size)}
    for q in PERCENTILES:
        summary[f"p{q}"] = float(np.percentile(values, q)) if values.size else None
    summary["max"] = float(values.max()) if values.size else None
    return summary


def commit_latency_ms(rows: pd.DataFrame, commits: pd.DataFrame) -> np.ndarray:
    """Per row: the commit time of its batch minus the send stamp of its last reading (ms)."""
    if rows.empty:
        return np.array([], dtype=float)
    keys = ["query", "batch_id"] if "query" in rows else ["batch_id"]
    joined = rows.merge(commits[[*keys, "commit_wall_ns"]], on=keys, how="left")
    if joined["commit_wall_ns"].isna().any():
        raise ValueError("rows written by a batch without a commit record (incomplete run?)")
    return (
        joined["commit_wall_ns"].to_numpy("int64") - joined["last_send_wall_ns"].to_numpy("int64")
    ) / 1e6


def _progress_rows(progress: Mapping[str, list[dict[str, Any]]], query: str) -> list[dict]:
    return list(progress.get(query, []))


def spark_throughput(progress: Sequence[Mapping[str, Any]]) -> dict[str, float | int]:
    """Rows read by Spark and the rate over the span of the batches that read any."""
    busy = [p for p in progress if p.get("numInputRows", 0) > 0]
    rows = int(sum(p["numInputRows"] for p in busy))
    if not busy:
        return {"rows": 0, "rows_per_s": 0.0, "busy_batches": 0}
    start = pd.Timestamp(busy[0]["timestamp"])
    last = busy[-1]
    end = pd.Timestamp(last["timestamp"]) + pd.Timedelta(
        milliseconds=last["durationMs"]["triggerExecution"]
    )
    span_s = max((end - start).total_seconds(), 1e-9)
    return {"rows": rows, "rows_per_s": rows / span_s, "busy_batches": len(busy)}


def dropped_by_watermark(progress: Sequence[Mapping[str, Any]]) -> int:
    return int(
        sum(
            op.get("numRowsDroppedByWatermark", 0)
            for p in progress
            for op in p.get("stateOperators", [])
        )
    )


# The custom metric of Spark's dropDuplicatesWithinWatermark operator (dedupeWithinWatermark in
# a progress report's stateOperators; checked against Spark 4.2's progress JSON).
DROPPED_DUPLICATES_METRIC = "numDroppedDuplicateRows"


def dropped_duplicates(progress: Sequence[Mapping[str, Any]]) -> int:
    """Readings the windows query dropped as repeats of one it had already counted
    (vitalstream.stream.windows.watermarked_readings), over all micro-batches."""
    return int(
        sum(
            (op.get("customMetrics") or {}).get(DROPPED_DUPLICATES_METRIC, 0)
            for p in progress
            for op in p.get("stateOperators", [])
        )
    )


def state_peak(progress: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The largest state a query held: rows and memory summed over its stateful operators,
    maximum over micro-batches (what a longer watermark costs)."""
    rows = [sum(op.get("numRowsTotal", 0) for op in p.get("stateOperators", [])) for p in progress]
    memory = [
        sum(op.get("memoryUsedBytes", 0) for op in p.get("stateOperators", [])) for p in progress
    ]
    return {
        "state_rows_max": max(rows, default=0),
        "state_memory_bytes_max": max(memory, default=0),
    }


def progress_watermark_ms(progress: Mapping[str, Any]) -> int:
    """The watermark a progress report's batch ran with, in ms since the epoch (0: none)."""
    from datetime import datetime

    stamp = (progress.get("eventTime") or {}).get("watermark")
    if not stamp:
        return 0
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def event_time_delay_s(
    alerts: pd.DataFrame, progress: Sequence[Mapping[str, Any]], watermark_s: float
) -> np.ndarray:
    """Each window alert's delay in event time: how far the stream had got (the largest event
    time read before the batch that wrote the alert, i.e. that batch's watermark plus the
    watermark delay) past the window's end. Unlike wall-clock latency it does not depend on the
    replay's speed-up or on how fast the machine is, only on the watermark and the event time
    a micro-batch spans (RQ3). Alerts written after the stream passed its last window's end
    (closed by the end-of-replay heartbeat) are left out."""
    if alerts.empty or "batch_id" not in alerts:
        return np.array([])
    marks = {}
    for p in progress:
        mark_ms = progress_watermark_ms(p)
        if mark_ms and "addBatch" in (p.get("durationMs") or {}):
            marks[int(p["batchId"])] = pd.Timestamp(mark_ms, unit="ms", tz="UTC")
    rows = alerts.loc[alerts["kind"] == "window"]
    mark = rows["batch_id"].map(lambda b: marks.get(int(b)))
    rows, mark = rows.loc[mark.notna()], mark.dropna()
    if rows.empty:
        return np.array([])
    stream_time = pd.to_datetime(mark, utc=True) + pd.Timedelta(seconds=watermark_s)
    end = pd.to_datetime(rows["window_end"], utc=True)
    # Windows the end-of-replay heartbeat closed waited for it, not for data: left out.
    flowing = (stream_time <= end.max()).to_numpy()
    return (stream_time.to_numpy() - end.to_numpy())[flowing] / np.timedelta64(1, "s")


def _alert_counts(alerts: pd.DataFrame) -> dict[str, Any]:
    if alerts.empty:
        return {"alerts": 0, "alerts_emitted": 0, "alerts_by_rule": {}, "alert_patients": 0}
    emitted = alerts.loc[~alerts["suppressed"].astype(bool)]
    by_rule = alerts.groupby("rule")["suppressed"].agg(["size", "sum"])
    return {
        "alerts": len(alerts),
        "alerts_emitted": len(emitted),
        "alerts_by_rule": {
            str(rule): {"raw": int(row["size"]), "emitted": int(row["size"] - row["sum"])}
            for rule, row in by_rule.iterrows()
        },
        "alert_patients": int(alerts["patient_id"].nunique()),
    }


def run_metrics(run_dir: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """metrics.json of one run, from the files in ``run_dir``."""
    producer = json.loads((run_dir / "producer.json").read_text())
    progress = json.loads((run_dir / "progress.json").read_text())
    commits = read_commits(run_dir / "commits.jsonl")
    windows = read_parquet_dir(run_dir / "windows", query="windows")
    alerts = read_parquet_dir(run_dir / "alerts")
    deadletter = read_parquet_dir(run_dir / "deadletter", query="readings")
    # The windows query reads every message; a run without it (real-time mode) has only the
    # readings query, which does too.
    spark = spark_throughput(
        _progress_rows(progress, "windows") or _progress_rows(progress, "readings")
    )
    quarantined = len(deadletter)
    events_processed = spark["rows"] - quarantined - producer["heartbeats"]
    duplicates = dropped_duplicates(_progress_rows(progress, "windows"))
    reasons = deadletter["reason"].value_counts().to_dict() if quarantined else {}
    span_h = 0.0
    if not windows.empty:
        span = windows["window_end"].max() - windows["window_start"].min()
        span_h = span.total_seconds() / 3600
    window_alerts = alerts[alerts["kind"] == "window"] if len(alerts) else alerts
    reading_alerts = alerts[alerts["kind"] == "reading"] if len(alerts) else alerts
    return {
        "condition": dict(params),
        "patients": int(windows["patient_id"].nunique()) if not windows.empty else 0,
        "event_time_span_h": span_h,
        "events_produced": int(producer["messages"]),
        "events_processed": int(events_processed),
        "events_in_windows": int(windows["n"].sum()) if not windows.empty else 0,
        # Every processed reading is in one window, dropped as a duplicate or dropped as late.
        "dropped_duplicates": duplicates,
        # Readings the job read but neither counted in an emitted window nor dropped as a
        # duplicate: behind the watermark. (Spark's own numRowsDroppedByWatermark, summed over
        # the stateful operators, is kept as dropped_state_rows.) Exact for tumbling windows only.
        "dropped_by_watermark": (
            int(events_processed - duplicates - windows["n"].sum()) if not windows.empty else 0
        )
        if not params.get("slide_s")
        else None,
        "dropped_state_rows": dropped_by_watermark(_progress_rows(progress, "windows")),
        "quarantined": quarantined,
        "quarantine_reasons": {str(k): int(v) for k, v in reasons.items()},
        "windows": len(windows),
        **_alert_counts(alerts),
        "producer_rate": float(producer["achieved_rate"]),
        "producer_seconds": float(producer["seconds"]),
        "producer_bytes": int(producer["bytes"]),
        # librdkafka's tx_bytes over the replay's producers (one per edge gateway).
        "producer_wire_bytes": int(producer.get("wire_bytes", 0)),
        "producers": int(producer.get("producers", 1)),
        **state_peak(_progress_rows(progress, "windows")),
        "spark_rate": float(spark["rows_per_s"]),
        "spark_busy_batches": int(spark["busy_batches"]),
        "batches": len(progress.get("windows", [])),
        "alert_latency_ms": latency_summary(commit_latency_ms(window_alerts, commits)),
        "reading_alert_latency_ms": latency_summary(commit_latency_ms(reading_alerts, commits)),
        # Per window rule (the risk model's alerts among them): the same commit latency.
        "window_alert_latency_ms_by_rule": {
            str(rule): latency_summary(commit_latency_ms(rows, commits))
            for rule, rows in (window_alerts.groupby("rule") if len(window_alerts) else [])
        },
        "window_latency_ms": latency_summary(commit_latency_ms(windows, commits)),
        "alert_delay_event_s": latency_summary(
            event_time_delay_s(
                alerts, _progress_rows(progress, "windows"), float(params["watermark_s"])
            )
        ),
        # Runs that index their alerts (sinks.search_index): event → visible in the index.
        "search": search_metrics(run_dir, alerts),
    }


def search_metrics(run_dir: Path, alerts: pd.DataFrame) -> dict[str, Any] | None:
    """metrics.json's ``search`` entry: documents indexed and refused, and per window alert
    the event → visible-in-index latency (the batch's visible time minus the send stamp of
    the window's last reading), the same definition as the Parquet sink's alert latency."""
    commits = read_search_commits(run_dir / "search_commits.jsonl")
    if commits.empty:
        return None
    window_alerts = alerts[alerts["kind"] == "window"] if len(alerts) else alerts
    # Batches whose alerts all became visible (a refused alert has no visible time).
    visible = commits.dropna(subset=["visible_wall_ns"]).rename(
        columns={"visible_wall_ns": "commit_wall_ns"}
    )
    if len(window_alerts):
        keys = visible[["query", "batch_id"]].astype({"batch_id": "int64"})
        window_alerts = window_alerts.merge(keys, on=["query", "batch_id"])
    return {
        "alerts_indexed": int(commits["alerts"].sum()),
        "windows_indexed": int(commits["windows"].sum()),
        "duplicates": int(commits["duplicates"].sum()),
        "errors": int(commits["errors"].sum()),
        "batches_without_visible_time": int(len(commits) - len(visible)),
        "visible_latency_ms": latency_summary(
            commit_latency_ms(window_alerts, visible.astype({"commit_wall_ns": "int64"}))
        ),
    }
