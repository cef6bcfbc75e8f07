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

Not for: training or applying a model (vitalstream.models.sepsis) or the alert rules.
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


def _alarm_and_silent(dt: np.ndarray, septic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each hour's utility with an alarm and without one, from its offset ``dt`` to t_sepsis
    (ignored where ``septic`` is false). The one place the published curve is written down."""
    # Alarm: up from 0 at dt_early to max at dt_optimal (never below a false alarm), then
    # down to 0 at dt_late. No alarm: nothing lost before dt_optimal, then down to min_u_fn.
    rising = MAX_U_TP * (dt - DT_EARLY) / (DT_OPTIMAL - DT_EARLY)
    falling = MAX_U_TP * (DT_LATE - dt) / (DT_LATE - DT_OPTIMAL)
    alarm = np.where(dt <= DT_OPTIMAL, np.maximum(rising, U_FP), falling)
    silent = np.where(dt <= DT_OPTIMAL, 0.0, MIN_U_FN * (dt - DT_OPTIMAL) / (DT_LATE - DT_OPTIMAL))
    scored = dt <= DT_LATE
    alarm = np.where(septic, np.where(scored, alarm, 0.0), U_FP)
    silent = np.where(septic, np.where(scored, silent, 0.0), U_TN)
    return alarm.astype(float), silent.astype(float)


def hourly_utility(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Utility of each hour of one stay (0 for hours that are not scored)."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ")
    if not np.isin(predictions, (0, 1)).all():
        raise ValueError("predictions must be 0 or 1")
    onset = onset_index(labels)
    dt = np.arange(len(labels), dtype=float) - (onset if onset is not None else 0)
    alarm, silent = _alarm_and_silent(dt, np.full(len(labels), onset is not None))
    return np.where(predictions == 1, alarm, silent)


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


@dataclass(frozen=True)
class HourUtilities:
    """Every hour's utility with an alarm and without one, and the sums of the optimal and the
    never-alarming predictor, for one table of patient-hours.

    Why: the utility of any 0/1 predictions is then one vectorised sum, so choosing an alarm
    threshold among many candidates costs a pass over the rows per candidate instead of a
    Python loop over the stays (minutes on set A). :func:`hourly_utility` stays the per-stay
    reference definition; the two agree (unit test).
    """

    alarm: np.ndarray  # per row of the table given, in its order
    silent: np.ndarray
    optimal: float
    no_alarm: float

    def score(self, predictions: np.ndarray) -> UtilityScore:
        """The normalised utility of ``predictions`` (0/1, in the table's row order)."""
        predictions = np.asarray(predictions)
        if predictions.shape != self.alarm.shape:
            raise ValueError(f"{predictions.shape} predictions for {self.alarm.shape} hours")
        if not np.isin(predictions, (0, 1)).all():
            raise ValueError("predictions must be 0 or 1")
        span = self.optimal - self.no_alarm
        if span == 0:
            raise ValueError(
                "no stay can be scored: the optimal and the no-alarm utility are equal"
            )
        observed = float(np.where(predictions == 1, self.alarm, self.silent).sum())
        return UtilityScore(
            (observed - self.no_alarm) / span, observed, self.optimal, self.no_alarm
        )


def hour_utilities(
    frame: pd.DataFrame, patient: str = "patient_id", hour: str = "iculos", label: str = "label"
) -> HourUtilities:
    """:class:`HourUtilities` of a table with one row per patient-hour (any row order; a
    stay's hours are its rows in ``hour`` order, as in :func:`score_frame`)."""
    order = frame.reset_index(drop=True).sort_values([patient, hour], kind="stable").index
    order = order.to_numpy()
    if not len(order):
        raise ValueError("no patient-hours to score")
    patients = frame[patient].to_numpy()[order]
    new_stay = np.r_[True, patients[1:] != patients[:-1]]
    stay = np.cumsum(new_stay) - 1
    position = np.arange(len(order)) - np.flatnonzero(new_stay)[stay]
    positive = np.asarray(frame[label].to_numpy()[order], dtype=float) > 0
    first = np.full(int(new_stay.sum()), np.inf)
    np.minimum.at(first, stay[positive], position[positive])
    septic = np.isfinite(first)[stay]
    dt = position - np.where(septic, first[stay] - DT_OPTIMAL, 0.0)
    alarm, silent = _alarm_and_silent(dt, septic)
    best = septic & (dt >= DT_EARLY) & (dt <= DT_LATE)
    # Back to the table's own row order, so predictions are passed as the table holds them.
    in_order = {name: np.empty(len(order)) for name in ("alarm", "silent")}
    in_order["alarm"][order], in_order["silent"][order] = alarm, silent
    return HourUtilities(
        alarm=in_order["alarm"],
        silent=in_order["silent"],
        optimal=float(np.where(best, alarm, silent).sum()),
        no_alarm=float(silent.sum()),
    )


def score_frame(
    frame: pd.DataFrame,
    patient: str = "patient_id",
    hour: str = "iculos",
    label: str = "label",
    prediction: str = "prediction",
) -> UtilityScore:
    """Normalised utility of a table with one row per patient-hour."""
    return hour_utilities(frame, patient, hour, label).score(frame[prediction].to_numpy())
