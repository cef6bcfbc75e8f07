"""Window risk model: a logistic regression on window aggregates, trained offline on a cohort's
batch-reference windows and applied by the Spark job to every window it closes.

Why a linear model written out as arithmetic: the job must score each window as it closes,
inside the windows query, without a Python UDF per row (a UDF would cost a serialisation round
trip per micro-batch and its own latency), and the batch reference must reproduce every alert
exactly (reference.validation compares alert ids). A logistic regression's logit is a sum of
products; :meth:`WindowRiskModel.logit_column` (Spark) and :meth:`WindowRiskModel.logit_values`
(numpy) evaluate the same IEEE double operations in the same order, so both engines produce the
same logit bit for bit, and the alert compares the logit (not a probability, which would pass
through two different ``exp`` implementations) with the threshold's logit.

Training (:func:`fit`) works on windows of a cohort the experiments never replay (config
``risk_model.cohort``), with labels from the generator's ground truth: a window is positive when
its patient deteriorates and the window ends at most ``horizon_min`` minutes before onset (or
after it). Patients, never windows, are split into a fitting and a threshold-choosing part, so
no patient's windows inform both. Missing values are imputed with the fitting windows' means,
which after centring contributes nothing to the logit.

Not for: PhysioNet's hourly sepsis model (vitalstream.models.sepsis) or the RQ4 comparison
(vitalstream.models.rq4).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import (
    json_file,
    json_object,
    parquet_input,
    require_keys,
    writable_file,
)
from vitalstream.core.riskspec import (
    DEFAULT_FEATURES,
    WindowRiskModel,
    feature_values,
    source_column,
)
from vitalstream.core.settings import RiskModelSettings

# --------------------------------------------------------------------------- training


def labelled_windows(
    windows: pd.DataFrame, labels: pd.DataFrame, horizon_min: float
) -> pd.DataFrame:
    """``windows`` with ``label``: the patient deteriorates and the window ends at most
    ``horizon_min`` before onset (or after it)."""
    from vitalstream.measure.accuracy import onset_by_patient

    onset = onset_by_patient(labels)
    patient_onset = pd.to_datetime(windows["patient_id"].astype(str).map(onset), utc=True)
    end = pd.to_datetime(windows["window_end"], utc=True)
    horizon = pd.Timedelta(minutes=float(horizon_min))
    out = windows.copy()
    out["label"] = (patient_onset.notna() & (end >= patient_onset - horizon)).to_numpy()
    return out


def split_patients(
    patients: Sequence[str], holdout_fraction: float, seed: int
) -> tuple[set[str], set[str]]:
    """Fitting and holdout patients (a seeded permutation; at least one of each)."""
    ordered = sorted(set(patients))
    rng = np.random.default_rng(seed)
    shuffled = [ordered[i] for i in rng.permutation(len(ordered))]
    holdout = max(1, min(len(shuffled) - 1, round(holdout_fraction * len(shuffled))))
    return set(shuffled[holdout:]), set(shuffled[:holdout])


def best_f1_threshold(labels: np.ndarray, probability: np.ndarray) -> tuple[float, float]:
    """The probability cut (alert at ≥ cut) with the best window-level F1, and that F1."""
    order = np.argsort(-probability, kind="stable")
    p, y = probability[order], labels[order].astype(bool)
    true_pos = np.cumsum(y)
    predicted = np.arange(1, len(y) + 1)
    f1 = 2 * true_pos / (predicted + y.sum())
    # Only the last row of a run of equal probabilities is a cut one can set.
    last = np.r_[p[1:] != p[:-1], True]
    best = int(np.argmax(np.where(last, f1, -1.0)))
    cut = float(np.clip(p[best], 1e-6, 1 - 1e-6))
    return cut, float(f1[best])


def fit(
    table: pd.DataFrame,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    name: str = "risk_model",
    severity: str = "medium",
    regularisation_c: float = 1.0,
    holdout_fraction: float = 0.3,
    seed: int = 0,
) -> WindowRiskModel:
    """Fit on the fitting patients' windows, choose the threshold on the holdout patients'."""
    from sklearn.linear_model import LogisticRegression

    missing = [f for f in features if source_column(f) not in table.columns]
    if missing:
        raise ValueError(f"windows have no column(s) for the risk model's {missing}")
    fitting, holdout = split_patients(table["patient_id"].astype(str), holdout_fraction, seed)
    in_fit = table["patient_id"].astype(str).isin(fitting).to_numpy()
    raw = pd.DataFrame({f: feature_values(table, f) for f in features}, index=table.index)
    labels = table["label"].astype(bool).to_numpy()
    if labels[in_fit].all() or not labels[in_fit].any():
        raise ValueError("the fitting windows need both positive and negative labels")
    centre = np.nanmean(raw.to_numpy()[in_fit], axis=0)
    scale = np.nanstd(raw.to_numpy()[in_fit], axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    centre = np.where(np.isfinite(centre), centre, 0.0)
    standard = (np.where(np.isnan(raw.to_numpy()), centre, raw.to_numpy()) - centre) / scale
    model = LogisticRegression(C=regularisation_c, class_weight="balanced", max_iter=1000)
    model.fit(standard[in_fit], labels[in_fit])
    draft = WindowRiskModel(
        name=name,
        severity=severity,
        features=tuple(features),
        centre=tuple(float(v) for v in centre),
        scale=tuple(float(v) for v in scale),
        weights=tuple(float(v) for v in model.coef_[0]),
        intercept=float(model.intercept_[0]),
        threshold=0.5,
    )
    held = table.loc[~in_fit]
    cut, f1 = best_f1_threshold(labels[~in_fit], draft.probability(held))
    training = {
        "windows": len(table),
        "positive_windows": int(labels.sum()),
        "fitting_patients": len(fitting),
        "holdout_patients": len(holdout),
        "holdout_fraction": holdout_fraction,
        "holdout_window_f1": round(f1, 4),
        "regularisation_c": regularisation_c,
        "seed": seed,
    }
    return WindowRiskModel(**{**asdict(draft), "threshold": cut, "training": training})


def fit_from_settings(table: pd.DataFrame, settings: RiskModelSettings) -> WindowRiskModel:
    """``fit`` with the ``risk_model`` settings of the config (the deployed model's)."""
    return fit(
        table,
        features=settings.features,
        name=settings.name,
        severity=settings.severity,
        regularisation_c=settings.regularisation_c,
        holdout_fraction=settings.holdout_fraction,
        seed=settings.seed,
    )


# --------------------------------------------------------------------------- the paper

# How the paper names a window column's kind (suffix) and the columns that are no vital's.
_KINDS = (("mean", "means"), ("min", "minima"), ("max", "maxima"), ("sd", "standard deviations"),
          ("n", "reading counts"), ("present", "presence indicators"))  # fmt: skip
_NAMED = {"news2_total": "the NEWS2 total", "qsofa": "qSOFA", "sirs": "SIRS", "mews": "MEWS"}


def describe_features(features: Sequence[str]) -> str:
    """The model's window columns in words, for the paper: "means (7 vitals), minima (7),
    ... and the NEWS2 total". Generated from the model file, so the text follows the config."""
    from vitalstream.core.schema import VITAL_NAMES

    counts: dict[str, int] = {}
    others: list[str] = []
    for feature in features:
        vital, _, kind = feature.rpartition("_")
        if vital in VITAL_NAMES and kind in dict(_KINDS):
            counts[kind] = counts.get(kind, 0) + 1
        else:
            others.append(_NAMED.get(feature, feature.replace("_", " ")))
    present = [(kind, label) for kind, label in _KINDS if kind in counts]
    parts = [
        f"{label} ({counts[kind]}{'' if i else ' vital' + 's' * (counts[kind] != 1)})"
        for i, (kind, label) in enumerate(present)
    ]
    parts += others
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def paper_values(
    model: Mapping[str, Any],
    accuracy: Mapping[str, Any],
    metrics: Mapping[str, Any],
    *,
    group: str,
    sources: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """Macro values (the notebooks' format) on the model in the stream: its training, its
    alerts' accuracy in one scored run (accuracy group ``group``) and their commit latency in
    the headline run. A value the runs did not produce is None (``n/a`` in the text)."""
    scored = accuracy.get("groups", {}).get(group, {})
    name = model.get("name", "")
    latency = metrics.get("window_alert_latency_ms_by_rule", {}).get(name, {})
    training = model.get("training", {})

    def value(raw: Any, decimals: int, source: str) -> dict[str, Any]:
        return {"value": raw, "decimals": decimals, "source": sources[source]}

    return {
        "RiskTrainWindows": value(training.get("windows"), 0, "model"),
        "RiskTrainPatients": value(
            training.get("fitting_patients", 0) + training.get("holdout_patients", 0), 0, "model"
        ),
        "RiskHoldoutFOne": value(training.get("holdout_window_f1"), 2, "model"),
        "RiskHoldoutPercent": value(
            None if "holdout_fraction" not in training else 100 * training["holdout_fraction"],
            0,
            "model",
        ),
        "RiskThreshold": value(model.get("threshold"), 2, "model"),
        "RiskFeatures": value(len(model.get("features", [])), 0, "model"),
        "RiskFeatureList": value(describe_features(model.get("features", [])), None, "model"),
        "RiskStreamPrecision": value(scored.get("precision"), 2, "accuracy"),
        "RiskStreamRecall": value(scored.get("recall"), 2, "accuracy"),
        "RiskStreamFOne": value(scored.get("f1"), 2, "accuracy"),
        "RiskStreamDelay": value(scored.get("delay_median_min"), 1, "accuracy"),
        "RiskStreamFalseAlarms": value(scored.get("false_alarms_per_patient_day"), 1, "accuracy"),
        "RiskLatencyPfifty": value(latency.get("p50"), 0, "metrics"),
        "RiskLatencyPninetynine": value(latency.get("p99"), 0, "metrics"),
        "RiskLatencyCount": value(latency.get("count"), 0, "metrics"),
    }


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    values = subparsers.add_parser(
        "risk-values", help="macro values on the window risk model in the stream (paper)"
    )
    values.add_argument("--model", type=json_file, required=True)
    values.add_argument("--accuracy", type=json_file, required=True, help="a scored run's accuracy")
    values.add_argument(
        "--metrics", type=json_file, required=True, help="the headline run's metrics"
    )
    values.add_argument("--group", default="risk", help="the accuracy group of its alerts")
    values.add_argument("--out", type=writable_file, required=True)
    values.set_defaults(func=_cli_values)
    parser = subparsers.add_parser(
        "train-window-risk",
        help="fit the window risk model the Spark job applies (on a cohort's reference windows)",
    )
    parser.add_argument("--events", type=parquet_input, required=True, help="cohort events.parquet")
    parser.add_argument("--labels", type=parquet_input, required=True, help="cohort labels.parquet")
    parser.add_argument(
        "--config-json",
        type=json_object,
        required=True,
        help="diagnostics and risk_model: JSON, or @FILE",
    )
    parser.add_argument("--out", type=writable_file, required=True, help="model.json to write")
    parser.set_defaults(func=_cli_train)


def _cli_train(args: argparse.Namespace) -> int:
    from vitalstream.core.diagnostics import DiagnosticsSpec
    from vitalstream.reference.batch import compute

    config = args.config_json
    require_keys("--config-json", config, ("diagnostics", "risk_model"))
    settings = RiskModelSettings.from_config(config["risk_model"])
    diagnostics = {k: v for k, v in config["diagnostics"].items() if k != "risk_model"}
    windows = compute(
        pd.read_parquet(args.events),
        DiagnosticsSpec.from_config(diagnostics),
        float(settings.window_s),
    )["windows"]
    table = labelled_windows(windows, pd.read_parquet(args.labels), settings.horizon_min)
    model = fit_from_settings(table, settings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(model.to_json())
    print(json.dumps({"threshold": model.threshold, **model.training}))
    return 0


def _cli_values(args: argparse.Namespace) -> int:
    sources = {
        "model": f"{args.model}",
        "accuracy": f"{args.accuracy}: groups.{args.group}",
        "metrics": f"{args.metrics}: window_alert_latency_ms_by_rule",
    }
    result = paper_values(
        json.loads(args.model.read_text()),
        json.loads(args.accuracy.read_text()),
        json.loads(args.metrics.read_text()),
        group=args.group,
        sources=sources,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0
