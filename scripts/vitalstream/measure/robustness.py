"""Summaries of the robustness experiments for their notebooks: edge gateways (RQ2), late data
against the watermark (RQ3) and the window ablation, as one tidy row per run.

Each run directory holds what the workflow wrote for it (metrics.json; accuracy.json from
measure.accuracy; validation.json from vitalstream.reference.validation; a gateway report under
results/gateways/); these functions only read and reshape those small files, so the notebooks
stay short and the reshaping is unit-tested.

Not for: computing any of the measures (the modules above) or plotting (the notebooks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HOUR_S = 3600.0


def load_runs(root: Path | str, experiment: str, files: tuple[str, ...]) -> dict[str, dict]:
    """``{condition: {file stem: content}}`` of the first repetition of each condition that
    has all ``files`` (a run still missing one is left out, not half-read)."""
    runs: dict[str, dict] = {}
    for rep in sorted(Path(root, experiment).glob("*/rep1")):
        paths = {name: rep / name for name in files}
        if all(p.exists() for p in paths.values()):
            runs[rep.parent.name] = {
                Path(name).stem: json.loads(p.read_text()) for name, p in paths.items()
            }
    return runs


def _group(accuracy: Mapping[str, Any], group: str) -> dict[str, Any]:
    return dict(accuracy.get("groups", {}).get(group, {}))


def gateway_rows(
    runs: Mapping[str, Mapping[str, Any]],
    gateways: Mapping[str, Mapping[str, Any]],
    group: str,
    baseline: str = "raw",
) -> pd.DataFrame:
    """RQ2: one row per gateway condition: messages and bytes on the wire per device-hour
    (and their reduction against the baseline), with the accuracy of ``group``'s alerts."""
    rows = []
    for name, run in runs.items():
        m, spec = run["metrics"], gateways.get(name, {}).get("spec", {})
        report = gateways.get(name, {})
        devices = report.get("devices") or m["patients"]
        device_hours = devices * m["event_time_span_h"] if m["event_time_span_h"] else np.nan
        acc = _group(run["accuracy"], group)
        agreement = acc.get("agreement") or {}
        rows.append(
            {
                "condition": name,
                "mode": spec.get("mode", "forward"),
                "setting": spec.get("seconds") or spec.get("every") or 0,
                "messages": m["events_produced"],
                "messages_per_device_hour": m["events_produced"] / device_hours,
                "wire_bytes": m.get("producer_wire_bytes", 0),
                "wire_bytes_per_device_hour": m.get("producer_wire_bytes", 0) / device_hours,
                "payload_bytes_per_device_hour": m["producer_bytes"] / device_hours,
                "precision": acc.get("precision"),
                "recall": acc.get("recall"),
                "f1": acc.get("f1"),
                "delay_median_min": acc.get("delay_median_min"),
                "false_alarms_per_patient_day": acc.get("false_alarms_per_patient_day"),
                "jaccard": agreement.get("jaccard"),
                "baseline_reproduced": agreement.get("baseline_reproduced"),
                "quarantined": m["quarantined"],
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = {"forward": 0, "coalesce": 1, "sample": 2}
    frame = frame.sort_values(
        ["mode", "setting"], key=lambda c: c.map(order) if c.name == "mode" else c
    ).reset_index(drop=True)
    if baseline in set(frame["condition"]):
        base = frame.set_index("condition").loc[baseline]
        frame["wire_reduction"] = base["wire_bytes_per_device_hour"] / frame[
            "wire_bytes_per_device_hour"
        ].replace(0, np.nan)
        base_f1 = np.nan if base["f1"] is None else float(base["f1"])
        frame["f1_change"] = pd.to_numeric(frame["f1"], errors="coerce") - base_f1
    return frame


DELAY_MODELS = {
    "none": "none",
    "exponential": "exponential",
    "pareto": "heavy-tailed (Lomax)",
}


def lateness_rows(runs: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """RQ3: one row per (delay model, watermark): completeness against the batch reference,
    windows missing, error of window values, state held and window-alert latency. The delay
    model is read from each run's provenance (its cohort's parameters)."""
    rows = []
    for name, run in runs.items():
        m, v, condition = run["metrics"], run["validation"], run["condition"]
        cohort = run["provenance"]["cohort"]
        model = cohort.get("network_delay", "none")
        mean_s = cohort.get("network_delay_mean_ms", 0) / 1000
        late = m["condition"]
        errors = v.get("value_error", {})
        rows.append(
            {
                "condition": name,
                "cohort": condition["cohort"],
                "delay_model": DELAY_MODELS.get(model, model),
                "delay_mean_s": mean_s if model != "none" else 0.0,
                "very_late_fraction": cohort.get("very_late_fraction", 0.0),
                "watermark_s": late["watermark_s"],
                "completeness": v["completeness"],
                "events_reference": v["events_reference"],
                "events_missing": v["events_missing"],
                "dropped_by_watermark": v["dropped_by_watermark"],
                "missing_equals_dropped": v["missing_equals_dropped"],
                "windows_reference": v["windows_reference"],
                "windows_missing": v["windows_missing"],
                "windows_incomplete": v["windows_incomplete"],
                "hr_mean_mae": errors.get("hr_mean", {}).get("mae"),
                "news2_mae": errors.get("news2_total", {}).get("mae"),
                "news2_windows_differing": errors.get("news2_total", {}).get("windows_differing"),
                "state_rows_max": m.get("state_rows_max"),
                "state_memory_mb_max": (m.get("state_memory_bytes_max") or 0) / 2**20,
                "alert_delay_p50_min": _minutes(m.get("alert_delay_event_s", {}).get("p50")),
                "alert_delay_p99_min": _minutes(m.get("alert_delay_event_s", {}).get("p99")),
                # Event time one micro-batch of the windows query spans, on average.
                "batch_span_s": m["event_time_span_h"] * HOUR_S / m["batches"]
                if m.get("batches")
                else None,
                "speedup": late["speedup"],
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["delay_mean_s", "cohort", "watermark_s"]).reset_index(drop=True)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def ablation_rows(runs: Mapping[str, Mapping[str, Any]], groups: list[str]) -> pd.DataFrame:
    """Window ablation: one row per (window length, rule group): detection delay against false
    alarms per patient-day."""
    rows = []
    for name, run in runs.items():
        window_s = run["metrics"]["condition"]["window_s"]
        for group in groups:
            acc = _group(run["accuracy"], group)
            rows.append(
                {
                    "condition": name,
                    "window_s": window_s,
                    "group": group,
                    "delay_median_min": acc.get("delay_median_min"),
                    "delay_p90_min": acc.get("delay_p90_min"),
                    "false_alarms_per_patient_day": acc.get("false_alarms_per_patient_day"),
                    "precision": acc.get("precision"),
                    "recall": acc.get("recall"),
                    "f1": acc.get("f1"),
                    "alerts_emitted": acc.get("alerts_emitted"),
                    "alert_latency_p50_s": _seconds(run["metrics"]["alert_latency_ms"].get("p50")),
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["group", "window_s"]).reset_index(drop=True)


_DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def macro_key(text: str) -> str:
    """A LaTeX-safe macro name part from a condition name (letters only): ``late_exp10_w30``
    → ``LateExpOneZeroWThreeZero``; digits are spelled, other characters split words."""
    out, upper = [], True
    for ch in str(text):
        if ch.isdigit():
            out.append(_DIGITS[int(ch)])
            upper = True
        elif ch.isalpha():
            out.append(ch.upper() if upper else ch)
            upper = False
        else:
            upper = True
    return "".join(out)
