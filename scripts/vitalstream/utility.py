"""The PhysioNet/CinC 2019 normalised utility score, implemented from its published definition.

Reyna et al., "Early prediction of sepsis from clinical data: the PhysioNet/Computing in
Cardiology Challenge 2019", Crit Care Med 48(2), 2020 (see ../shared/docs/reference-facts.md).
Per patient-hour t, relative to the onset t_sepsis, with dt_early = -12, dt_optimal = -6 and
dt_late = +3 hours:

* septic patient, alarm: rises linearly from 0 at t_sepsis-12 to +1 at t_sepsis-6, falls to 0
  at t_sepsis+3; before t_sepsis-12 an alarm costs -0.05 (a false alarm);
* septic patient, no alarm: 0 up to t_sepsis-6, then falls linearly to -2 at t_sepsis+3;
* non-septic patient: -0.05 per alarm, 0 otherwise;
* hours after t_sepsis+3 are not scored.

The challenge data label a septic patient's hours positive from t_sepsis-6 on, so t_sepsis is
the first positive hour plus 6. The score is normalised over all patients as
(U_model - U_no_alarm) / (U_optimal - U_no_alarm): the optimal predictor alarms on every hour
from t_sepsis-12 to t_sepsis+3 (clipped to the stay), so it scores 1 and never alarming 0.

Hours are the rows of a patient in order (the data's ICULOS steps), as in the challenge's own
scorer; predictions must be 0/1.

Not for: training or applying a model (vitalstream.sepsis, to come) or the alert rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

DT_EARLY = -12
DT_OPTIMAL = -6
DT_LATE = 3
MAX_U_TP = 1.0
MIN_U_FN = -2.0
U_FP = -0.05
U_TN = 0.0


def onset_index(labels: np.ndarray) -> int | None:
    """Row of t_sepsis: the first positive label minus dt_optimal; None for a non-septic stay."""
    positive = np.flatnonzero(np.asarray(labels) > 0)
    return int(positive[0]) - DT_OPTIMAL if positive.size else None


def hourly_utility(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Utility of each hour of one stay (0 for hours that are not scored)."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ")
    if not np.isin(predictions, (0, 1)).all():
        raise ValueError("predictions must be 0 or 1")
    onset = onset_index(labels)
    alarm = predictions == 1
    if onset is None:
        return np.where(alarm, U_FP, U_TN).astype(float)
    dt = np.arange(len(labels)) - onset
    # Alarm: up from 0 at dt_early to max at dt_optimal (never below a false alarm), then
    # down to 0 at dt_late.
    rising = MAX_U_TP * (dt - DT_EARLY) / (DT_OPTIMAL - DT_EARLY)
    falling = MAX_U_TP * (DT_LATE - dt) / (DT_LATE - DT_OPTIMAL)
    tp = np.where(dt <= DT_OPTIMAL, np.maximum(rising, U_FP), falling)
    # No alarm: nothing lost before dt_optimal, then down to min_u_fn at dt_late.
    fn = np.where(dt <= DT_OPTIMAL, 0.0, MIN_U_FN * (dt - DT_OPTIMAL) / (DT_LATE - DT_OPTIMAL))
    utility = np.where(alarm, tp, fn)
    return np.where(dt <= DT_LATE, utility, 0.0)


def optimal_predictions(labels: np.ndarray) -> np.ndarray:
    """The best predictor: alarm from t_sepsis-12 to t_sepsis+3 of a septic stay, else never."""
    best = np.zeros(len(labels), dtype=int)
    onset = onset_index(labels)
    if onset is not None:
        best[max(0, onset + DT_EARLY) : min(onset + DT_LATE + 1, len(labels))] = 1
    return best


@dataclass(frozen=True)
class UtilityScore:
    """The normalised utility and its three sums."""

    normalised: float
    observed: float
    optimal: float
    no_alarm: float


def normalised_utility(stays: Iterable[tuple[np.ndarray, np.ndarray]]) -> UtilityScore:
    """Normalised utility over ``(labels, predictions)`` of every stay."""
    observed = optimal = no_alarm = 0.0
    for labels, predictions in stays:
        labels = np.asarray(labels)
        observed += float(hourly_utility(labels, predictions).sum())
        optimal += float(hourly_utility(labels, optimal_predictions(labels)).sum())
        no_alarm += float(hourly_utility(labels, np.zeros(len(labels), dtype=int)).sum())
    span = optimal - no_alarm
    if span == 0:
        raise ValueError("no stay can be scored: the optimal and the no-alarm utility are equal")
    return UtilityScore((observed - no_alarm) / span, observed, optimal, no_alarm)


def score_frame(
    frame: pd.DataFrame,
    patient: str = "patient_id",
    hour: str = "iculos",
    label: str = "label",
    prediction: str = "prediction",
) -> UtilityScore:
    """Normalised utility of a table with one row per patient-hour."""
    ordered = frame.sort_values([patient, hour], kind="stable")
    return normalised_utility(
        (group[label].to_numpy(), group[prediction].to_numpy())
        for _, group in ordered.groupby(patient, sort=False)
    )
