"""Evaluation of hourly risk predictions, with bootstrap confidence intervals over patients.

One table of patient-hours (:class:`Hours`) and, per model or rule, a risk per hour and a 0/1
alert per hour (:class:`Scorer`). :func:`evaluate` gives, for each scorer:

* ``auroc`` and ``auprc`` of the risk against the hour's label (AUPRC is average precision,
  scikit-learn's step-wise definition; ties in the risk are one threshold);
* ``precision_at_k``: at every clock hour the ``k`` patients with the highest risk among those
  present are flagged (all of them when fewer than ``k`` are present); the precision is the
  share of flagged hours that are labelled positive, over all clock hours. Ties at the k-th
  place are resolved as a uniformly random choice would be on average (each tied hour counts
  with the fraction of the free places it would get), so an integer score such as NEWS2 gets
  no arbitrary advantage from the row order;
* ``precision``, ``recall``, ``f1`` and ``alert_rate`` (alerted hours / hours) of the alerts;
* ``brier`` (mean squared error of the risk as a probability) for scorers whose risk is a
  probability, NaN for rule scores;
* ``utility``: the PhysioNet 2019 normalised utility of the alerts (vitalstream.models.utility).

Confidence intervals resample *patients* with replacement (all hours of a drawn patient come
with it, as often as it is drawn), seeded, and take the 2.5 and 97.5 percentiles. Every metric
is computed from weighted sums, so a replicate is a set of patient weights, not a copied
table. The top-K selection of each clock hour is the one of the observed data (a drawn patient
keeps its flagged hours); re-ranking duplicated patients within an hour has no clinical meaning.

:func:`reliability` gives the reliability curve: equal-count bins of the predicted probability
(low-prevalence risks crowd into the lowest equal-width bin), with the mean prediction and the
observed share of positive hours in each.

Not for: fitting models (models.rq4) or the utility's definition (vitalstream.models.utility).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vitalstream.models import utility

METRICS = (
    "auroc",
    "auprc",
    "precision_at_k",
    "precision",
    "recall",
    "f1",
    "alert_rate",
    "brier",
    "utility",
)


@dataclass(frozen=True)
class Hours:
    """The evaluation population: one row per patient-hour, sorted by patient and stay hour.

    ``patient`` holds codes 0..n_patients-1, ``clock_h`` the hour the row falls in on the shared
    clock (the top-K groups), ``label`` 0/1, ``starts`` the first row of each patient.
    """

    patient: np.ndarray
    clock_h: np.ndarray
    label: np.ndarray
    starts: np.ndarray

    @property
    def n_patients(self) -> int:
        return len(self.starts)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        patient: str = "patient_id",
        stay_hour: str = "ICULOS",
        clock_h: str = "clock_h",
        label: str = "label",
    ) -> Hours:
        """From a table that is already sorted by ``patient`` then ``stay_hour``."""
        ids = frame[patient].to_numpy()
        hours = frame[stay_hour].to_numpy()
        new = np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, dtype=bool)
        # Each patient one contiguous run of rows, stay hours rising within it.
        if new.sum() != pd.Series(ids).nunique() or (~new[1:] & (hours[1:] <= hours[:-1])).any():
            raise ValueError(f"rows must be sorted by {patient} then {stay_hour}")
        codes = np.cumsum(new) - 1
        labels = frame[label].to_numpy()
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"{label}: labels must be 0 or 1")
        return cls(codes, frame[clock_h].to_numpy(), labels.astype(np.int8), np.flatnonzero(new))


@dataclass(frozen=True)
class Scorer:
    """One model's or rule's output per hour (in the row order of :class:`Hours`)."""

    name: str
    risk: np.ndarray
    alert: np.ndarray
    is_probability: bool


# --------------------------------------------------------------------------- weighted metrics


def risk_levels(risk: np.ndarray) -> np.ndarray:
    """Each row's rank among the distinct risk values (0 = lowest): ties share a level."""
    return np.unique(np.asarray(risk, dtype=float), return_inverse=True)[1].ravel()


def _per_level(levels: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple:
    n = int(levels.max()) + 1 if len(levels) else 0
    pos = np.bincount(levels, weights=weights * labels, minlength=n)
    neg = np.bincount(levels, weights=weights * (1 - labels), minlength=n)
    return pos, neg


def auroc(levels: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Weighted area under the ROC curve (ties count one half)."""
    pos, neg = _per_level(levels, labels, weights)
    total = pos.sum() * neg.sum()
    if total == 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / total)


def auprc(levels: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Weighted average precision: sum over thresholds of Δrecall × precision."""
    pos, neg = _per_level(levels, labels, weights)
    if pos.sum() == 0:
        return float("nan")
    tp = np.cumsum(pos[::-1])
    fp = np.cumsum(neg[::-1])
    flagged = tp + fp
    precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
    return float((pos[::-1] / pos.sum() * precision).sum())


def top_k_share(risk: np.ndarray, clock_h: np.ndarray, k: int) -> np.ndarray:
    """The share of each hour that the top-``k`` policy flags (1, 0, or a fraction at a tie)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    frame = pd.DataFrame({"clock_h": clock_h, "risk": np.asarray(risk, dtype=float)})
    ranked = frame.groupby("clock_h", sort=False)["risk"]
    greater = ranked.rank(method="min", ascending=False).to_numpy() - 1
    equal = ranked.rank(method="max", ascending=False).to_numpy() - greater
    return np.clip((k - greater) / equal, 0.0, 1.0)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class _Prepared:
    """What a scorer's metrics need, computed once before the bootstrap."""

    scorer: Scorer
    levels: np.ndarray
    flagged: np.ndarray
    utility_observed: np.ndarray  # per patient


@dataclass(frozen=True)
class _LabelSums:
    """Per-patient utility of the optimal predictor and of never alarming."""

    optimal: np.ndarray
    no_alarm: np.ndarray


def _patient_utility(hours: Hours, predictions: np.ndarray) -> np.ndarray:
    ends = np.r_[hours.starts[1:], len(hours.label)]
    return np.array(
        [
            utility.hourly_utility(hours.label[a:b], predictions[a:b]).sum()
            for a, b in zip(hours.starts, ends, strict=True)
        ]
    )


def _label_sums(hours: Hours) -> _LabelSums:
    ends = np.r_[hours.starts[1:], len(hours.label)]
    stays = [hours.label[a:b] for a, b in zip(hours.starts, ends, strict=True)]
    optimal = [utility.hourly_utility(s, utility.optimal_predictions(s)).sum() for s in stays]
    no_alarm = [utility.hourly_utility(s, np.zeros(len(s), dtype=int)).sum() for s in stays]
    return _LabelSums(np.asarray(optimal), np.asarray(no_alarm))


def _prepare(hours: Hours, scorer: Scorer, k: int) -> _Prepared:
    if len(scorer.risk) != len(hours.label) or len(scorer.alert) != len(hours.label):
        raise ValueError(f"{scorer.name}: one risk and one alert per hour are needed")
    if not np.isfinite(np.asarray(scorer.risk, dtype=float)).all():
        raise ValueError(f"{scorer.name}: every hour needs a finite risk")
    alert = np.asarray(scorer.alert).astype(int)
    return _Prepared(
        scorer,
        risk_levels(scorer.risk),
        top_k_share(scorer.risk, hours.clock_h, k),
        _patient_utility(hours, alert),
    )


def _metrics(
    hours: Hours,
    prepared: _Prepared,
    sums: _LabelSums,
    patient_weights: np.ndarray,
) -> dict[str, float]:
    w = patient_weights[hours.patient]
    y = hours.label
    alert = np.asarray(prepared.scorer.alert).astype(float)
    tp = float((w * y * alert).sum())
    fp = float((w * (1 - y) * alert).sum())
    fn = float((w * y * (1 - alert)).sum())
    flagged = w * prepared.flagged
    out = {
        "auroc": auroc(prepared.levels, y, w),
        "auprc": auprc(prepared.levels, y, w),
        "precision_at_k": _ratio(float((flagged * y).sum()), float(flagged.sum())),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "alert_rate": _ratio(float((w * alert).sum()), float(w.sum())),
        "brier": float("nan"),
        "utility": _ratio(
            float(patient_weights @ (prepared.utility_observed - sums.no_alarm)),
            float(patient_weights @ (sums.optimal - sums.no_alarm)),
        ),
    }
    if prepared.scorer.is_probability:
        risk = np.asarray(prepared.scorer.risk, dtype=float)
        out["brier"] = _ratio(float((w * (risk - y) ** 2).sum()), float(w.sum()))
    return out


def evaluate(
    hours: Hours,
    scorers: Sequence[Scorer],
    k: int,
    replicates: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{scorer: {metric: {"value", "ci_low", "ci_high"}}}``; see the module docstring.

    Every scorer sees the same patient draws (paired replicates), so their intervals describe
    the same resampled populations.
    """
    sums = _label_sums(hours)
    prepared = [_prepare(hours, s, k) for s in scorers]
    ones = np.ones(hours.n_patients)
    points = {p.scorer.name: _metrics(hours, p, sums, ones) for p in prepared}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[dict[str, float]]] = {p.scorer.name: [] for p in prepared}
    for r in range(replicates):
        weights = np.bincount(
            rng.integers(0, hours.n_patients, hours.n_patients), minlength=hours.n_patients
        ).astype(float)
        for p in prepared:
            draws[p.scorer.name].append(_metrics(hours, p, sums, weights))
        if progress is not None and (r + 1) % max(1, replicates // 10) == 0:
            progress(f"bootstrap {r + 1}/{replicates}")
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name, point in points.items():
        replicated = pd.DataFrame(draws[name], columns=list(METRICS))
        result[name] = {}
        for metric in METRICS:
            values = replicated[metric].dropna().to_numpy()
            low, high = np.percentile(values, [2.5, 97.5]) if len(values) else (np.nan, np.nan)
            result[name][metric] = {
                "value": point[metric],
                "ci_low": float(low),
                "ci_high": float(high),
            }
    return result


# --------------------------------------------------------------------------- curves


def reliability(probability: np.ndarray, labels: np.ndarray, bins: int) -> pd.DataFrame:
    """Equal-count bins of the predicted probability: mean prediction, observed share, hours."""
    probability = np.asarray(probability, dtype=float)
    order = np.argsort(probability, kind="stable")
    chunks = np.array_split(order, bins)
    rows = [
        {
            "bin": i,
            "mean_predicted": float(probability[c].mean()),
            "observed": float(np.asarray(labels)[c].mean()),
            "hours": len(c),
        }
        for i, c in enumerate(chunks)
        if len(c)
    ]
    return pd.DataFrame(rows)


def roc_pr_points(risk: np.ndarray, labels: np.ndarray, points: int = 200) -> pd.DataFrame:
    """ROC and PR curves at up to ``points`` thresholds (quantiles of the risk), for figures.

    Columns: threshold, fpr, tpr (= recall), precision.
    """
    risk = np.asarray(risk, dtype=float)
    labels = np.asarray(labels)
    levels = risk_levels(risk)
    pos, neg = _per_level(levels, labels, np.ones(len(labels)))
    distinct = np.unique(risk)
    tp = np.cumsum(pos[::-1])
    fp = np.cumsum(neg[::-1])
    keep = np.unique(np.linspace(0, len(tp) - 1, min(points, len(tp))).round().astype(int))
    flagged = tp + fp
    return pd.DataFrame(
        {
            "threshold": distinct[::-1][keep],
            "fpr": np.r_[fp / max(fp[-1], 1)][keep],
            "tpr": np.r_[tp / max(tp[-1], 1)][keep],
            "precision": np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)[keep],
        }
    )


def summary_rows(
    result: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> list[dict[str, float | str]]:
    """The evaluation flattened: one row per scorer, ``<metric>``, ``<metric>_low/_high``."""
    rows = []
    for name, metrics in result.items():
        row: dict[str, float | str] = {"model": name}
        for metric, entry in metrics.items():
            row[metric] = entry["value"]
            row[f"{metric}_low"] = entry["ci_low"]
            row[f"{metric}_high"] = entry["ci_high"]
        rows.append(row)
    return rows
