"""Diagnostic accuracy of a run's alerts against the cohort's ground truth (RQ2, window ablation).

The synthetic cohort labels each deteriorating patient with an onset time (true time; the
deterioration ramps in over ``ramp_minutes`` and lasts to the end of the stay); the other
patients are stable. Against that, for a group of rules (``accuracy.groups`` in config):

* an alert's time is the moment its evidence was complete: a window alert's window end, a
  reading alert's reading time;
* an alert is *true* if it belongs to a deteriorating patient and its time is at or after onset,
  otherwise a *false alarm*;
* **precision**: true alerts / alerts, counting emitted alerts only (suppressed repeats are not
  shown to anyone, vitalstream.core.diagnostics);
* **recall** (event-level sensitivity): deteriorating patients with at least one alert at or
  after onset / deteriorating patients; **F1** combines this recall with the alert precision,
  the usual pairing in early-warning evaluation (alarm-level PPV, event-level sensitivity);
* **detection delay**: first alert at or after onset minus onset, per detected patient
  (suppressed alerts count here: their evidence existed at that time);
* **false alarms per patient-day**: false emitted alerts / the monitored time in which a false
  alarm was possible (a stable patient's whole stay, a deteriorating one's stay before onset);
* **agreement with full data** (edge-reduced runs): the alert ids of the run against a
  baseline run on all readings — Jaccard index and the share of the baseline's alerts
  reproduced. Alert ids are (patient, rule, window start or reading time), so window alerts of
  the same windows compare exactly.

Device clocks are skewed by a few hundred ms (vitalstream.data.cohort); onsets are not corrected for
it, which moves a delay by less than one reading.

Not for: running anything (experiments.run) or the risk model (vitalstream.models.sepsis).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import (
    existing_dir,
    json_argument,
    parquet_input,
    writable_file,
)
from vitalstream.measure import metrics

DAY_S = 86_400.0


def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def onset_by_patient(labels: pd.DataFrame) -> pd.Series:
    """Onset time (UTC) per patient id, NaT for a patient who does not deteriorate: what makes
    an alert true here and a window positive for the risk model (vitalstream.models.riskmodel)."""
    onset = _utc(labels["onset_time"]).where(labels["deteriorates"].astype(bool))
    return onset.set_axis(pd.Index(labels["patient_id"].astype(str).to_numpy()))


def alert_times(alerts: pd.DataFrame) -> pd.Series:
    """When each alert's evidence was complete: window end, or the reading's time."""
    return _utc(alerts["window_end"]).where(alerts["kind"] == "window", _utc(alerts["time"]))


def monitored_spans(events: pd.DataFrame) -> pd.DataFrame:
    """First and last reading of each patient (index patient_id; columns first, last)."""
    times = _utc(events["event_time"])
    frame = pd.DataFrame({"patient_id": events["patient_id"].astype(str), "t": times})
    return frame.groupby("patient_id")["t"].agg(first="min", last="max")


def select_group(alerts: pd.DataFrame, rules: Sequence[str]) -> pd.DataFrame:
    """Alerts of the group's rules (an empty list means every rule)."""
    return alerts if not rules else alerts.loc[alerts["rule"].isin(list(rules))]


def _quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None


def score_group(
    alerts: pd.DataFrame, labels: pd.DataFrame, spans: pd.DataFrame
) -> dict[str, float | int | None]:
    """The scores of one group's alerts (module docstring)."""
    onset = onset_by_patient(labels)
    patients = onset.index.intersection(spans.index)
    onset, spans = onset.loc[patients], spans.loc[patients]
    frame = pd.DataFrame(
        {
            "patient_id": alerts["patient_id"].astype(str).to_numpy(),
            "t": alert_times(alerts).to_numpy(),
            "emitted": ~alerts["suppressed"].astype(bool).to_numpy(),
        }
    )
    frame = frame.loc[frame["patient_id"].isin(patients)]
    frame["onset"] = frame["patient_id"].map(onset).to_numpy()
    frame["true"] = frame["onset"].notna() & (frame["t"] >= frame["onset"])
    emitted = frame.loc[frame["emitted"]]
    true_alerts = int(emitted["true"].sum())
    false_alerts = int(len(emitted) - true_alerts)
    first_true = frame.loc[frame["true"]].groupby("patient_id")["t"].min()
    delays_min = (
        ((_utc(first_true) - onset.loc[first_true.index]).dt.total_seconds() / 60).to_numpy()
        if len(first_true)
        else np.array([])
    )
    deteriorating = int(onset.notna().sum())
    detected = len(first_true)
    # Time a false alarm was possible: the whole stay, or the stay up to onset.
    at_risk_end = onset.where(onset.notna(), spans["last"]).clip(upper=spans["last"])
    at_risk_s = (at_risk_end - spans["first"]).dt.total_seconds().clip(lower=0).sum()
    precision = true_alerts / len(emitted) if len(emitted) else None
    recall = detected / deteriorating if deteriorating else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    return {
        "alerts_emitted": len(emitted),
        "alerts_raw": len(frame),
        "true_alerts": true_alerts,
        "false_alerts": false_alerts,
        "deteriorating": deteriorating,
        "detected": detected,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "delay_median_min": _quantile(delays_min, 0.5),
        "delay_p90_min": _quantile(delays_min, 0.9),
        "at_risk_patient_days": float(at_risk_s / DAY_S),
        "false_alarms_per_patient_day": (false_alerts / (at_risk_s / DAY_S))
        if at_risk_s > 0
        else None,
    }


def agreement(alerts: pd.DataFrame, baseline: pd.DataFrame) -> dict[str, float | int | None]:
    """Alert ids of a run against a baseline run on all readings (both raw, with repeats)."""
    got, want = set(alerts["alert_id"]), set(baseline["alert_id"])
    union = got | want
    return {
        "alerts": len(got),
        "baseline_alerts": len(want),
        "shared": len(got & want),
        "jaccard": len(got & want) / len(union) if union else None,
        "baseline_reproduced": len(got & want) / len(want) if want else None,
    }


def score_run(
    alerts: pd.DataFrame,
    labels: pd.DataFrame,
    spans: pd.DataFrame,
    groups: Mapping[str, Sequence[str]],
    baseline: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """accuracy.json of one run: every group's scores, and agreement per group if a baseline
    is given."""
    result: dict[str, Any] = {
        "patients": len(spans),
        "deteriorating": int(labels["deteriorates"].astype(bool).sum()),
        "groups": {},
    }
    for name, rules in groups.items():
        mine = select_group(alerts, rules)
        entry = score_group(mine, labels, spans)
        if baseline is not None:
            entry["agreement"] = agreement(mine, select_group(baseline, rules))
        result["groups"][name] = entry
    return result


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("accuracy", help="score a run's alerts against ground truth")
    parser.add_argument("--run-dir", type=existing_dir, required=True)
    parser.add_argument(
        "--events", type=parquet_input, required=True, help="events the run replayed"
    )
    parser.add_argument(
        "--labels", type=parquet_input, required=True, help="the cohort's labels.parquet"
    )
    parser.add_argument(
        "--groups",
        type=json_argument,
        required=True,
        help="rule groups {name: [rules]}: JSON, or @FILE",
    )
    parser.add_argument("--baseline-run-dir", type=existing_dir, default=None)
    parser.add_argument("--out", type=writable_file, required=True, help="accuracy.json")
    parser.set_defaults(func=_cli_accuracy)


def _cli_accuracy(args: argparse.Namespace) -> int:
    alerts = metrics.read_parquet_dir(args.run_dir / "alerts")
    baseline = (
        metrics.read_parquet_dir(args.baseline_run_dir / "alerts")
        if args.baseline_run_dir
        else None
    )
    spans = monitored_spans(pd.read_parquet(args.events, columns=["patient_id", "event_time"]))
    result = score_run(alerts, pd.read_parquet(args.labels), spans, args.groups, baseline)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result))
    return 0
