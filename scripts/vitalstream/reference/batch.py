"""The batch reference: the streaming job's windows, scores and alerts, recomputed with pandas.

It applies the same definitions (config ``diagnostics``; vitalstream.core.scores; the event schema's
validation) to a complete events file, with an implementation of its own: vectorised window
assignment and group-by instead of Spark's stateful aggregation, pandas group shifts for the
change rules, a numpy recursion for the EWMA detector and a group-wise scan for suppression.
Agreement between the two is the paper's evidence that the streaming job computes what it
claims (tests/integration/test_parity.py; the validation experiment of the workflow).

It sees every event, so it describes what the stream would produce with an infinite watermark;
with late data, the streaming windows that received all their events must still equal it. Like
the stream it keeps one reading per (patient, device, event time) and counts the repeats
(``duplicates``; also ``windows.attrs["duplicates"]``, which survives windows.parquet, so the
validation can tell late repeats from late readings).

Not for: anything streaming, or timing (it has no send stamps; latency columns are 0).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import parquet_input, positive_float, writable_dir
from vitalstream.core.config import add_config_arguments
from vitalstream.core.diagnostics import (
    ChangeRule,
    DiagnosticsSpec,
    EwmaDetector,
    ThresholdRule,
    alert_id,
)
from vitalstream.core.schema import (
    CONSCIOUSNESS_LEVELS,
    VITAL_NAMES,
    charted_scale,
    validate_events,
)
from vitalstream.core.settings import MessageChecks
from vitalstream.stream.spec import ALERT_COLUMNS as STREAM_ALERT_COLUMNS
from vitalstream.stream.spec import DUPLICATE_KEY

# The stream's alert columns without its wall-clock stamps (the reference has no send times).
ALERT_COLUMNS = tuple(
    c for c in STREAM_ALERT_COLUMNS if c not in ("last_event_time", "last_send_wall_ns")
)
UTC_NS = "datetime64[ns, UTC]"


def _epoch_ms(times: pd.Series) -> np.ndarray:
    return pd.to_datetime(times, utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()


def assign_windows(events: pd.DataFrame, window_s: float, slide_s: float | None) -> pd.DataFrame:
    """One row per (event, window containing it): windows [s, s + size) with s a multiple of
    the slide (epoch-aligned, as Spark's ``window``); tumbling when ``slide_s`` is None."""
    size_ms = round(window_s * 1000)
    slide_ms = round((slide_s or window_s) * 1000)
    t = _epoch_ms(events["event_time"])
    last_start = t - np.mod(t, slide_ms)
    copies = math.ceil(size_ms / slide_ms)
    index = np.repeat(np.arange(len(events)), copies)
    starts = np.repeat(last_start, copies) - np.tile(np.arange(copies), len(events)) * slide_ms
    keep = starts + size_ms > np.repeat(t, copies)
    out = events.iloc[index[keep]].reset_index(drop=True)
    out["window_start_ms"] = starts[keep]
    out["window_end_ms"] = starts[keep] + size_ms
    return out


def window_table(events: pd.DataFrame, window_s: float, slide_s: float | None) -> pd.DataFrame:
    """Per patient and window: count, and count/mean/min/max/sd of every vital, any oxygen, the
    worst consciousness level, the last event time — the columns of the streaming windows."""
    rows = assign_windows(events, window_s, slide_s)
    rank = {level: i for i, level in enumerate(CONSCIOUSNESS_LEVELS)}
    rows["consciousness_rank"] = rows["consciousness"].map(rank).astype("float64")
    rows["o2_float"] = rows["o2_supplemental"].astype("float64")
    aggregations: dict[str, tuple[str, str]] = {"n": ("patient_id", "size")}
    for vital in VITAL_NAMES:
        # Exact integer sums of charted units, divided once: the same double as Spark's
        # (vitalstream.stream.job.window_aggregates).
        scale = float(charted_scale(vital))
        rows[f"_{vital}_charted"] = np.floor(rows[vital].astype("float64") * scale + 0.5)
        aggregations |= {
            f"{vital}_n": (vital, "count"),
            f"_{vital}_sum": (f"_{vital}_charted", "sum"),
            f"{vital}_min": (vital, "min"),
            f"{vital}_max": (vital, "max"),
            f"{vital}_sd": (vital, "std"),
        }
    aggregations |= {
        "o2_max": ("o2_float", "max"),
        "consciousness_rank": ("consciousness_rank", "max"),
        "last_event_time": ("event_time", "max"),
    }
    keys = ["patient_id", "window_start_ms", "window_end_ms"]
    table = rows.groupby(keys, sort=True).agg(**aggregations).reset_index()
    for vital in VITAL_NAMES:
        count = table[f"{vital}_n"].astype("float64")
        mean = table.pop(f"_{vital}_sum") / (count * float(charted_scale(vital)))
        table.insert(
            table.columns.get_loc(f"{vital}_n") + 1, f"{vital}_mean", mean.where(count > 0)
        )
    table["o2_any"] = pd.array(
        np.where(table["o2_max"].isna(), None, table["o2_max"] == 1), dtype="boolean"
    )
    levels = np.array(CONSCIOUSNESS_LEVELS, dtype=object)
    worst = table["consciousness_rank"]
    table["consciousness_worst"] = pd.array(
        [levels[int(r)] if not math.isnan(r) else None for r in worst], dtype="string"
    )
    table.insert(1, "window_start", pd.to_datetime(table["window_start_ms"], unit="ms", utc=True))
    table.insert(2, "window_end", pd.to_datetime(table["window_end_ms"], unit="ms", utc=True))
    return table.drop(columns=["o2_max", "consciousness_rank"])


def _alerts(
    rows: pd.DataFrame,
    kind: str,
    rule: str,
    severity: str,
    column: str,
    value: Any,
    threshold: float,
    time_col: str,
) -> pd.DataFrame:
    times = pd.to_datetime(rows[time_col], utc=True).astype(UTC_NS)
    starts = rows["window_start"] if kind == "window" else rows["event_time"]
    ends = rows["window_end"] if kind == "window" else rows["event_time"]
    frame = pd.DataFrame(
        {
            "patient_id": rows["patient_id"].astype(str).to_numpy(),
            "kind": kind,
            "rule": rule,
            "severity": severity,
            "column": column,
            "value": np.asarray(value, dtype="float64"),
            "threshold": float(threshold),
            "time": times.to_numpy(),
            "window_start": pd.to_datetime(starts, utc=True).astype(UTC_NS).to_numpy(),
            "window_end": pd.to_datetime(ends, utc=True).astype(UTC_NS).to_numpy(),
            "suppressed": False,
        }
    )
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    ms = _epoch_ms(frame["time"])
    frame.insert(
        0,
        "alert_id",
        [alert_id(p, rule, int(t)) for p, t in zip(frame["patient_id"], ms, strict=True)],
    )
    return frame


def threshold_alerts(
    rows: pd.DataFrame, rules: Iterable[ThresholdRule], kind: str, time_col: str
) -> list[pd.DataFrame]:
    parts = []
    for rule in rules:
        hit = rows.loc[np.asarray(rule.holds(rows[rule.column]), dtype=bool)]
        if len(hit):
            parts.append(
                _alerts(
                    hit,
                    kind,
                    rule.name,
                    rule.severity,
                    rule.column,
                    hit[rule.column],
                    rule.threshold,
                    time_col,
                )
            )
    return parts


def change_alerts(windows: pd.DataFrame, rule: ChangeRule, window_ms: int) -> pd.DataFrame:
    """Consecutive windows of a patient (vectorised group shift)."""
    ordered = windows.sort_values(["patient_id", "window_start_ms"])
    grouped = ordered.groupby("patient_id", sort=False)
    before = grouped[rule.column].shift(1)
    gap = ordered["window_end_ms"] - grouped["window_end_ms"].shift(1)
    change = ordered[rule.column] - before
    hit = (gap <= rule.max_gap_windows * window_ms) & (change.abs() >= rule.min_abs_change)
    hit = hit.fillna(False).astype(bool)
    return _alerts(
        ordered.loc[hit],
        "window",
        rule.name,
        rule.severity,
        rule.column,
        change[hit],
        rule.min_abs_change,
        "window_start",
    )


def ewma_alerts(windows: pd.DataFrame, detector: EwmaDetector) -> pd.DataFrame:
    """EWMA z-scores per patient: mean and variance by West's recursion, scored before update."""
    ordered = windows.sort_values(["patient_id", "window_start_ms"])
    z_all = np.full(len(ordered), np.nan)
    values = ordered[detector.column].to_numpy(dtype="float64")
    a = detector.alpha
    for _, idx in ordered.groupby("patient_id", sort=False).indices.items():
        mean = var = 0.0
        seen = 0
        for i in idx:
            x = values[i]
            if np.isnan(x):
                continue
            if seen >= detector.warmup_windows:
                z_all[i] = (x - mean) / max(np.sqrt(var), detector.min_sd)
            if seen == 0:
                mean, var = x, 0.0
            else:
                d = x - mean
                mean, var = mean + a * d, (1 - a) * (var + a * d * d)
            seen += 1
    hit = np.abs(z_all) >= detector.z_threshold
    return _alerts(
        ordered.loc[hit],
        "window",
        detector.name,
        detector.severity,
        detector.column,
        z_all[hit],
        detector.z_threshold,
        "window_start",
    )


def suppress(alerts: pd.DataFrame, suppression_s: float) -> pd.DataFrame:
    """Mark alerts within ``suppression_s`` of the last emitted one of the same patient and
    rule (in time order) as suppressed."""
    if alerts.empty or suppression_s <= 0:
        return alerts
    alerts = alerts.sort_values(["patient_id", "rule", "time"], kind="stable")
    times = _epoch_ms(alerts["time"])
    flags = np.zeros(len(alerts), dtype=bool)
    limit = suppression_s * 1000
    for idx in alerts.groupby(["patient_id", "rule"], sort=False).indices.values():
        last = None
        for i in idx:
            if last is not None and times[i] - last < limit:
                flags[i] = True
            else:
                last = times[i]
    return alerts.assign(suppressed=flags)


def drop_duplicates(valid: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The first reading of each (patient, device, event time) and how many repeats were
    dropped: what the stream's windows query keeps (vitalstream.stream.windows). A repeat is
    an exact copy (a resend), so which one is kept does not change a window."""
    repeated = valid.duplicated(list(DUPLICATE_KEY), keep="first").to_numpy()
    return valid.loc[~repeated], int(repeated.sum())


def compute(
    events: pd.DataFrame,
    spec: DiagnosticsSpec,
    window_s: float,
    slide_s: float | None = None,
    checks: MessageChecks | None = None,
) -> dict[str, Any]:
    """Windows (with scores) and alerts of a complete events table, its quarantined rows and
    the number of duplicate readings dropped. ``checks``: the stream's message checks (None:
    their defaults); of them, the patient id's length applies to a file."""
    checks = checks if checks is not None else MessageChecks()
    validated, quarantined = validate_events(events, checks.patient_id_max_length)
    valid, duplicates = drop_duplicates(validated)
    windows = window_table(valid, window_s, slide_s)
    if spec.scores:
        from vitalstream.core.scores import score_frame, score_spec_from_config

        windows = score_frame(windows, score_spec_from_config(spec.scores))
    if spec.risk_model is not None:
        from vitalstream.core.riskspec import LOGIT_COLUMN

        windows[LOGIT_COLUMN] = spec.risk_model.logit_values(windows)
    window_ms = round(window_s * 1000)
    window_parts = threshold_alerts(windows, spec.window_rules, "window", "window_start")
    window_parts += [change_alerts(windows, r, window_ms) for r in spec.change_rules]
    window_parts += [ewma_alerts(windows, d) for d in spec.anomaly]
    reading_parts = threshold_alerts(valid, spec.reading_rules, "reading", "event_time")
    alerts = [
        suppress(_concat(parts), spec.suppression_s) for parts in (window_parts, reading_parts)
    ]
    windows = windows.drop(columns=["window_start_ms", "window_end_ms"])
    windows.attrs["duplicates"] = duplicates
    return {
        "windows": windows,
        "alerts": _concat(alerts)
        .sort_values(["time", "patient_id", "rule"])
        .reset_index(drop=True),
        "quarantined": quarantined,
        "duplicates": duplicates,
    }


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in ALERT_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(ALERT_COLUMNS)]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reference", help="batch reference: the job's windows, scores and alerts with pandas"
    )
    parser.add_argument("--events", type=parquet_input, required=True, help="events.parquet")
    parser.add_argument("--out", type=writable_dir, required=True, help="output directory")
    add_config_arguments(parser, required=False)
    parser.add_argument(
        "--run",
        help="<experiment>/<condition>/rep<k>: window and slide from "
        "that condition (else --window-s/--slide-s)",
    )
    parser.add_argument("--window-s", type=positive_float, default=60.0)
    parser.add_argument("--slide-s", type=positive_float, default=None)
    parser.set_defaults(func=_cli_reference)


def _cli_reference(args: argparse.Namespace) -> int:
    from vitalstream.core.config import RunId, config_from_args
    from vitalstream.core.runsettings import condition_settings

    config = config_from_args(args)
    window_s, slide_s = args.window_s, args.slide_s
    if args.run:
        condition = condition_settings(config, RunId.parse(args.run))
        window_s, slide_s = condition.window_s, condition.slide_s
    result = compute(
        pd.read_parquet(args.events),
        DiagnosticsSpec.from_config(config["diagnostics"]),
        window_s,
        slide_s,
        MessageChecks.from_config(config.get("checks", {})),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result["windows"].to_parquet(args.out / "windows.parquet", index=False)
    result["alerts"].to_parquet(args.out / "alerts.parquet", index=False)
    summary = {
        "windows": len(result["windows"]),
        "alerts": len(result["alerts"]),
        "quarantined": len(result["quarantined"]),
        "duplicates": result["duplicates"],
        "out": str(args.out),
    }
    print(json.dumps(summary))
    return 0
