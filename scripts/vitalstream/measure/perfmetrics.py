"""Metrics of a performance run: consumer lag over time, per-step throughput and latency, and the
sustainable-throughput criterion.

Definitions (stated once here; the paper quotes them):

* **Lag** at wall time t: messages the generator had sent by t minus the offsets covered by the
  query's last micro-batch completed by t (the slower of the two queries counts). It is the
  backlog the job still has to read and process, in messages; divided by the input rate it is in
  seconds of input.
* **Critical-alert latency** (a): sink commit of the batch that wrote the alert minus the send
  stamp of the critical reading.
* **Window-alert processing latency** (b): commit minus the moment the window could first be
  closed: when the generator sent the first reading whose event time passed the window's end
  plus the watermark (from the generator's timeline). It excludes the watermark wait by design.
* **Event → alert** (c, the blueprint's measure): commit minus the send stamp of the window's
  last reading; it includes the watermark wait (Karimov et al. 2018's event-time latency).
* **Staleness** after wall time t: the age of the oldest reading the job has not yet
  processed, measured at each query's first micro-batch completion at or after t (the larger
  over the queries): that completion's time minus the send time of the first reading its
  offsets do not cover. It is the backlog in time rather than messages, so it does not depend
  on the rate of the step that follows.
* **Sustainable throughput** (after Karimov et al. 2018): the highest step of a rate ramp such
  that it and every lower step *held*: the generator achieved at least ``min_producer_ratio`` of
  the target rate, and the staleness after the step's end was at most ``max_lag_s`` plus one
  trigger interval. A job that keeps up has a staleness of about one micro-batch; one that
  does not falls further behind with every batch. The bound is a latency bound (Karimov et
  al.'s "without ever-increasing latency"): a configuration whose micro-batches alone take
  longer than the bound holds no rate. It must be short against a step: a job that processes
  at a rate mu falls behind by (1 - mu/lambda) seconds per second of a step at rate lambda, so
  over a step of T seconds the criterion passes lambda up to mu (1 + bound/T) at most. With the
  ramp doubling per step the estimate is at most one step too high, and the paper says so.
  This after-step criterion stays the one of the doubling-ramp conditions: their 3-s steps are
  too short for a slope.
* **A fixed-rate step holds** (the probes of a rate search, vitalstream.experiments.perfsearch):
  the generator achieved at least ``min_producer_ratio`` of the rate, and over the step after
  ``settle_s`` the staleness series (the staleness at every micro-batch completion, the larger
  over the queries) has a Theil–Sen slope (the median of the pairwise slopes) of at most
  ``max_growth`` seconds of staleness per second, and a median of at most ``probe_max_lag_s``
  (default ``max_lag_s``) plus one trigger interval. Medians, not the last value: one slow
  batch (a GC pause, a large window flush) moves one point of the series and neither median,
  while a job that falls behind grows its staleness at (1 - mu/lambda) s/s at every
  completion. With fewer than ``MIN_SLOPE_POINTS`` completions the slope is not defined and
  the level alone decides.

Not for: running anything (vitalstream.experiments.perf) or formatting (vitalstream.paper.macros).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.measure.metrics import latency_summary

# Fewer staleness points than this leave the slope undefined (None): the level decides.
MIN_SLOPE_POINTS = 3


@dataclass(frozen=True)
class SustainCriterion:
    """When a step of the ramp counts as sustained (config ``sustain`` block)."""

    max_lag_s: float = 2.0
    min_producer_ratio: float = 0.95
    # Run control, not part of the criterion: stop the ramp once the backlog is this many
    # times the bound (the step has failed; more load only lengthens the drain), and wait at
    # most drain_s for the job to catch up after the load ends.
    abort_factor: float = 3.0
    drain_s: float = 30.0
    # The fixed-rate criterion of a search's probes (module docstring): the part of the step
    # left out while the first micro-batches run (query planning, the first windows), the
    # highest Theil-Sen slope of the staleness (s per s) that still holds, and the abort
    # factor of a probe, higher than the ramp's so that one slow batch cannot stop it.
    settle_s: float = 3.0
    max_growth: float = 0.05
    probe_abort_factor: float = 5.0
    # The probe's level bound on the median staleness (None: max_lag_s). A job that keeps up
    # has a staleness of one to two micro-batches at each completion (the oldest unread
    # reading arrived just after the batch in flight fixed its offsets), so the level bound
    # guards against a job stably far behind, while the slope decides whether it keeps up.
    probe_max_lag_s: float | None = None

    @property
    def probe_lag_s(self) -> float:
        return self.max_lag_s if self.probe_max_lag_s is None else self.probe_max_lag_s

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> SustainCriterion:
        return cls(**dict(values or {}))


def offsets_sum(progress: Mapping[str, Any]) -> int | None:
    """Sum over partitions of the offsets a micro-batch read up to (None when unknown)."""
    sources = progress.get("sources") or []
    if not sources:
        return None
    offsets = sources[0].get("endOffset")
    if isinstance(offsets, str):
        offsets = json.loads(offsets)
    if not offsets:
        return None
    return int(sum(int(v) for topic in offsets.values() for v in topic.values()))


def batch_table(progress: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per micro-batch: completion wall time (ns), duration, rows, offsets covered,
    state rows and state memory."""
    rows = []
    for p in progress:
        duration = int(p.get("durationMs", {}).get("triggerExecution", 0))
        start_ns = pd.Timestamp(p["timestamp"]).value
        state = p.get("stateOperators") or []
        rows.append(
            {
                "batch_id": int(p["batchId"]),
                "start_wall_ns": start_ns,
                "end_wall_ns": start_ns + duration * 1_000_000,
                "duration_ms": duration,
                "rows": int(p.get("numInputRows", 0)),
                "offsets": offsets_sum(p),
                "state_rows": int(sum(op.get("numRowsTotal", 0) for op in state)),
                "state_bytes": int(sum(op.get("memoryUsedBytes", 0) for op in state)),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "batch_id",
            "start_wall_ns",
            "end_wall_ns",
            "duration_ms",
            "rows",
            "offsets",
            "state_rows",
            "state_bytes",
        ],
    )
    frame["offsets"] = frame["offsets"].ffill().fillna(0).astype("int64")
    return frame.sort_values("end_wall_ns").reset_index(drop=True)


def sent_by(timeline: np.ndarray, wall_ns: np.ndarray | float) -> np.ndarray:
    """Messages the generator had sent by ``wall_ns`` (linear between timeline samples)."""
    return np.interp(wall_ns, timeline[:, 0], timeline[:, 1])


def consumed_by(batches: pd.DataFrame, wall_ns: np.ndarray | float) -> np.ndarray:
    """Offsets covered by the last batch completed by ``wall_ns`` (0 before the first)."""
    times = np.atleast_1d(np.asarray(wall_ns, dtype="int64"))
    if batches.empty:
        return np.zeros(times.shape)
    idx = np.searchsorted(batches["end_wall_ns"].to_numpy(), times, side="right") - 1
    offsets = batches["offsets"].to_numpy()
    return np.where(idx >= 0, offsets[np.clip(idx, 0, None)], 0).astype(float)


def lag_at(
    timeline: np.ndarray, queries: Mapping[str, pd.DataFrame], wall_ns: np.ndarray | float
) -> np.ndarray:
    """Backlog in messages at ``wall_ns``: sent minus consumed by the slowest query."""
    sent = sent_by(timeline, wall_ns)
    consumed = np.min([consumed_by(b, wall_ns) for b in queries.values()], axis=0)
    return np.maximum(sent - consumed, 0.0)


def closable_wall_ns(timeline: np.ndarray, event_ms: np.ndarray) -> np.ndarray:
    """When the generator first sent a reading with event time ≥ ``event_ms`` (linear between
    timeline samples; NaN when it never did)."""
    newest = timeline[:, 2]
    result = np.interp(event_ms, newest, timeline[:, 0])
    return np.where(np.asarray(event_ms) <= newest[-1], result, np.nan)


def backlog_after(
    timeline: np.ndarray, queries: Mapping[str, pd.DataFrame], wall_ns: float
) -> float:
    """Backlog just after each query's first micro-batch completed at or after ``wall_ns``
    (the larger over the queries): what arrived while that batch ran and was not yet read.

    Measured at a batch completion, the trough of the backlog's saw-tooth, so the value does
    not depend on where in a batch the step happened to end. A query with no later batch (the
    run ended) is measured at ``wall_ns`` itself.
    """
    worst = 0.0
    for batches in queries.values():
        ends = batches["end_wall_ns"].to_numpy() if len(batches) else np.array([])
        later = ends[ends >= wall_ns]
        at = float(later[0]) if later.size else float(wall_ns)
        sent = float(sent_by(timeline, at))
        worst = max(worst, sent - float(consumed_by(batches, at)[0]))
    return max(worst, 0.0)


def send_wall_ns(timeline: np.ndarray, count: float) -> float:
    """When the generator sent its ``count``-th message (linear between timeline samples;
    the timeline's last sample when it never sent that many)."""
    sent, wall = timeline[:, 1], timeline[:, 0]
    # np.interp needs increasing x: keep the first sample of every plateau.
    keep = np.concatenate(([True], np.diff(sent) > 0))
    return float(np.interp(count, sent[keep], wall[keep]))


def staleness_after(
    timeline: np.ndarray, queries: Mapping[str, pd.DataFrame], wall_ns: float
) -> float:
    """Seconds: age of the oldest reading not yet processed, at each query's first micro-batch
    completion at or after ``wall_ns`` (the larger over the queries; at ``wall_ns`` itself for
    a query with no later batch). 0 when the query has read everything sent by then."""
    worst = 0.0
    for batches in queries.values():
        ends = batches["end_wall_ns"].to_numpy() if len(batches) else np.array([])
        later = ends[ends >= wall_ns]
        at = float(later[0]) if later.size else float(wall_ns)
        consumed = float(consumed_by(batches, at)[0])
        if consumed >= float(sent_by(timeline, at)):
            continue
        # The oldest unprocessed reading is message number consumed + 1.
        worst = max(worst, (at - send_wall_ns(timeline, consumed + 1)) / 1e9)
    return worst


def step_of(steps: Sequence[Mapping[str, Any]], wall_ns: np.ndarray) -> np.ndarray:
    """Index of the ramp step each wall time falls in (-1 outside every step)."""
    starts = np.array([s["start_wall_ns"] for s in steps], dtype="int64")
    ends = np.array([s["end_wall_ns"] for s in steps], dtype="int64")
    idx = np.searchsorted(starts, wall_ns, side="right") - 1
    inside = (idx >= 0) & (wall_ns < ends[np.clip(idx, 0, None)])
    return np.where(inside, idx, -1)


def step_results(
    report: Mapping[str, Any],
    queries: Mapping[str, pd.DataFrame],
    reading_latency: pd.DataFrame,
    window_latency: pd.DataFrame,
    criterion: SustainCriterion,
    trigger_ms: int,
) -> list[dict[str, Any]]:
    """Per ramp step: rates, backlog and staleness after its end, Spark's rate, latencies, and
    whether it held.

    ``reading_latency`` / ``window_latency``: columns ``at_wall_ns`` (send, or closable time)
    and ``latency_ms``.
    """
    timeline = np.asarray(report["timeline"], dtype=float)
    steps = report["steps"]
    results = []
    bound_s = criterion.max_lag_s + trigger_ms / 1000
    for i, step in enumerate(steps):
        start, end = step["start_wall_ns"], step["end_wall_ns"]
        target = float(step["target_rate"])
        lag_end = backlog_after(timeline, queries, end)
        staleness = staleness_after(timeline, queries, end)
        consumed = [
            float(consumed_by(b, end)[0] - consumed_by(b, start)[0]) for b in queries.values()
        ]
        seconds = max((end - start) / 1e9, 1e-9)
        producer_ok = step["achieved_rate"] >= criterion.min_producer_ratio * target
        lag_ok = staleness <= bound_s
        in_step = {
            name: frame.loc[step_of(steps, frame["at_wall_ns"].to_numpy("int64")) == i]
            for name, frame in (("reading", reading_latency), ("window", window_latency))
        }
        results.append(
            {
                "step": i,
                "target_rate": target,
                "achieved_rate": float(step["achieved_rate"]),
                "seconds": seconds,
                "producer_ok": bool(producer_ok),
                "lag_end": lag_end,
                "staleness_end_s": staleness,
                "lag_bound_s": bound_s,
                "spark_rate": min(consumed) / seconds,
                "sustained": bool(producer_ok and lag_ok),
                "reading_alert_latency_ms": latency_summary(in_step["reading"]["latency_ms"]),
                "window_processing_latency_ms": latency_summary(in_step["window"]["latency_ms"]),
            }
        )
    return results


def theil_sen_slope(times_s: np.ndarray, values: np.ndarray) -> float | None:
    """The median of the slopes between every pair of points with distinct times (Theil-Sen):
    a trend that a few outliers (slow batches) cannot move. None with fewer than
    ``MIN_SLOPE_POINTS`` points."""
    t = np.asarray(times_s, dtype=float)
    y = np.asarray(values, dtype=float)
    if t.size < MIN_SLOPE_POINTS:
        return None
    i, j = np.triu_indices(t.size, k=1)
    dt = t[j] - t[i]
    keep = dt != 0
    if not keep.any():
        return None
    return float(np.median((y[j] - y[i])[keep] / dt[keep]))


def staleness_series(
    timeline: np.ndarray, queries: Mapping[str, pd.DataFrame], start_ns: float, end_ns: float
) -> pd.DataFrame:
    """Staleness (``staleness_after``) at every micro-batch completion of any query in
    [``start_ns``, ``end_ns``], and at the first completion at or after ``end_ns`` (the
    after-step value): columns ``wall_ns`` and ``staleness_s``."""
    ends = [b["end_wall_ns"].to_numpy("int64") for b in queries.values() if len(b)]
    every = np.unique(np.concatenate(ends)) if ends else np.array([], dtype="int64")
    inside = every[(every >= start_ns) & (every <= end_ns)]
    later = every[every >= end_ns]
    times = np.unique(np.append(inside, later[:1]))
    values = [staleness_after(timeline, queries, float(t)) for t in times]
    return pd.DataFrame({"wall_ns": times.astype("int64"), "staleness_s": values})


def _batch_durations(batches: pd.DataFrame, start_ns: float, end_ns: float) -> np.ndarray:
    done = batches["end_wall_ns"].between(start_ns, end_ns) & (batches["rows"] > 0)
    return batches.loc[done, "duration_ms"].to_numpy(float)


def fixed_step_result(
    report: Mapping[str, Any],
    queries: Mapping[str, pd.DataFrame],
    criterion: SustainCriterion,
    trigger_ms: int,
) -> dict[str, Any]:
    """Whether the run's single fixed-rate step held (module docstring), with the numbers
    that decided it and the micro-batch durations over the step (median and sd, ms, of the
    windows query, the slower one), against which the paper justifies the step's length."""
    timeline = np.asarray(report["timeline"], dtype=float)
    step = report["steps"][0]
    start, end = float(step["start_wall_ns"]), float(step["end_wall_ns"])
    settled = min(start + criterion.settle_s * 1e9, end)
    series = staleness_series(timeline, queries, settled, end)
    stale = series["staleness_s"].to_numpy(float)
    slope = theil_sen_slope((series["wall_ns"].to_numpy(float) - settled) / 1e9, stale)
    median = float(np.median(stale)) if stale.size else None
    bound_s = criterion.probe_lag_s + trigger_ms / 1000
    target = float(step["target_rate"])
    ratio = float(step["achieved_rate"]) / target if target > 0 else 0.0
    producer_ok = ratio >= criterion.min_producer_ratio
    growth_ok = slope is None or slope <= criterion.max_growth
    level_ok = median is not None and median <= bound_s
    durations = _batch_durations(queries.get("windows", queries["readings"]), settled, end)
    return {
        "rate": target,
        "achieved_rate": float(step["achieved_rate"]),
        "producer_ratio": ratio,
        "producer_ok": bool(producer_ok),
        "staleness_slope": slope,
        "staleness_median_s": median,
        "staleness_p99_s": float(np.percentile(stale, 99)) if stale.size else None,
        "staleness_points": int(stale.size),
        "lag_bound_s": bound_s,
        "growth_ok": bool(growth_ok),
        "level_ok": bool(level_ok),
        "held": bool(producer_ok and growth_ok and level_ok),
        "settle_s": criterion.settle_s,
        "batch_duration_median_ms": float(np.median(durations)) if durations.size else None,
        "batch_duration_sd_ms": float(np.std(durations, ddof=1)) if durations.size > 1 else None,
        "batches": int(durations.size),
    }


def sustainable_rate(steps: Sequence[Mapping[str, Any]]) -> float:
    """Highest target rate of the sustained prefix of the ramp (0 when the first step failed)."""
    best = 0.0
    for step in steps:
        if not step["sustained"]:
            break
        best = float(step["target_rate"])
    return best


def lag_series(
    report: Mapping[str, Any], queries: Mapping[str, pd.DataFrame], every_s: float = 0.5
) -> pd.DataFrame:
    """Backlog over the run, sampled every ``every_s`` from the first send (for the figures)."""
    timeline = np.asarray(report["timeline"], dtype=float)
    last_end = max(
        [float(timeline[-1, 0])]
        + [float(b["end_wall_ns"].max()) for b in queries.values() if len(b)]
    )
    times = np.append(np.arange(timeline[0, 0], last_end, every_s * 1e9), last_end)
    return pd.DataFrame(
        {
            "t_s": (times - timeline[0, 0]) / 1e9,
            "lag": lag_at(timeline, queries, times),
            "sent": sent_by(timeline, times),
        }
    )
