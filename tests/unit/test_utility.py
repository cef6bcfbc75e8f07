"""The PhysioNet 2019 utility against hand-computed cases.

The septic stay below has 20 hours; its labels turn positive at hour 10, so t_sepsis is hour 16
and hour h lies dt = h - 16 hours from onset (-16 … +3, all scored). By the definition:

* an alarm scores (dt + 12) / 6 up to dt = -6 (at least -0.05), then (3 - dt) / 9;
* a missed hour scores 0 up to dt = -6, then -2 (dt + 6) / 9;
* so never alarming scores -2 (1 + … + 9) / 9 = -10, and the optimal alarms (hours 4 … 19)
  score (0 + 1 + … + 6) / 6 + (8 + 7 + … + 0) / 9 = 3.5 + 4 = 7.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from vitalstream.models import utility

LABELS = np.array([0] * 10 + [1] * 10)  # t_sepsis = hour 16


def alarms(*hours: int, length: int = 20) -> np.ndarray:
    predictions = np.zeros(length, dtype=int)
    predictions[list(hours)] = 1
    return predictions


def total(predictions, labels=LABELS) -> float:
    return float(utility.hourly_utility(labels, predictions).sum())


def test_onset_is_the_first_positive_hour_plus_six():
    assert utility.onset_index(LABELS) == 16
    assert utility.onset_index(np.zeros(5)) is None


def test_never_alarming_on_a_septic_stay_costs_ten():
    assert total(alarms()) == pytest.approx(-10.0)


def test_optimal_alarms_score_seven_and_a_half():
    assert utility.optimal_predictions(LABELS).tolist() == [0] * 4 + [1] * 16
    assert total(utility.optimal_predictions(LABELS)) == pytest.approx(7.5)


def test_an_early_alarm_is_a_false_alarm_and_the_miss_still_counts():
    assert total(alarms(0)) == pytest.approx(-10.05)  # dt = -16
    assert total(alarms(4)) == pytest.approx(-10.0)  # dt = -12: worth exactly 0


def test_an_alarm_at_the_optimal_hour_earns_one():
    assert total(alarms(10)) == pytest.approx(1 - 10)  # dt = -6


def test_a_late_alarm_only_saves_the_missed_hour():
    # dt = +1: alarm (3 - 1) / 9 instead of the miss -2 (1 + 6) / 9.
    assert total(alarms(17)) == pytest.approx(-10 + 2 / 9 + 14 / 9)
    # dt = +3: the alarm is worth 0, and it no longer costs -2.
    assert total(alarms(19)) == pytest.approx(-8.0)


def test_hours_after_onset_plus_three_are_not_scored():
    labels = np.array([0] * 10 + [1] * 15)  # 25 hours: hours 20 … 24 are dt = +4 … +8
    assert total(alarms(20, 21, 24, length=25), labels) == pytest.approx(-10.0)
    assert total(alarms(length=25), labels) == pytest.approx(-10.0)


def test_false_alarms_on_a_non_septic_stay_cost_five_hundredths_each():
    assert total(alarms(1, 3, length=6), np.zeros(6)) == pytest.approx(-0.1)


def test_the_optimal_window_is_clipped_to_the_stay():
    labels = np.array([0] * 3 + [1] * 5)  # t_sepsis = hour 9, past the end of the stay
    assert utility.optimal_predictions(labels).tolist() == [1] * 8


def test_normalisation_scores_optimal_one_and_silence_zero():
    stays = [(LABELS, utility.optimal_predictions(LABELS)), (np.zeros(6), np.zeros(6, int))]
    assert utility.normalised_utility(stays).normalised == pytest.approx(1.0)
    silent = [(LABELS, alarms()), (np.zeros(6), np.zeros(6, int))]
    assert utility.normalised_utility(silent).normalised == pytest.approx(0.0)
    # Optimal on the septic stay, two false alarms on the other: (7.4 + 10) / (7.5 + 10).
    noisy = [(LABELS, utility.optimal_predictions(LABELS)), (np.zeros(6), alarms(1, 3, length=6))]
    score = utility.normalised_utility(noisy)
    assert (score.observed, score.optimal, score.no_alarm) == pytest.approx((7.4, 7.5, -10))
    assert score.normalised == pytest.approx(17.4 / 17.5)


def test_a_frame_is_scored_per_patient_in_hour_order():
    frame = pd.DataFrame(
        {
            "patient_id": ["a"] * 20 + ["b"] * 6,
            "iculos": list(range(20, 0, -1)) + list(range(1, 7)),  # a's rows reversed
            "label": LABELS[::-1].tolist() + [0] * 6,
            "prediction": utility.optimal_predictions(LABELS)[::-1].tolist() + [0] * 6,
        }
    )
    assert utility.score_frame(frame).normalised == pytest.approx(1.0)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="0 or 1"):
        utility.hourly_utility(LABELS, np.full(20, 0.7))
    with pytest.raises(ValueError, match="differ"):
        utility.hourly_utility(LABELS, np.zeros(3, int))
    with pytest.raises(ValueError, match="no stay can be scored"):
        utility.normalised_utility([(np.zeros(4), np.zeros(4, int))])


def test_the_example_in_the_challenge_scorer_documentation():
    # evaluate_sepsis_score.py's docstring: labels [0,0,0,0,1,1], predictions [0,0,1,1,1,1]
    # → 3.388888888888889 (4/6 + 5/6 + 1 + 8/9).
    labels, predictions = np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1, 1])
    assert total(predictions, labels) == pytest.approx(3.388888888888889)


def test_the_vectorised_hour_utilities_equal_the_per_stay_definition():
    rng = np.random.default_rng(7)
    rows = []
    for patient in range(60):
        length = int(rng.integers(1, 40))
        onset = int(rng.integers(0, length)) if rng.random() < 0.4 else None
        labels = (
            np.zeros(length, int) if onset is None else (np.arange(length) >= onset).astype(int)
        )
        for hour in range(length):
            rows.append((f"p{patient:02d}", hour + 1, labels[hour], int(rng.random() < 0.3)))
    frame = pd.DataFrame(rows, columns=["patient_id", "iculos", "label", "prediction"])
    shuffled = frame.sample(frac=1.0, random_state=3)  # any row order
    loop = utility.normalised_utility(
        (g["label"].to_numpy(), g["prediction"].to_numpy())
        for _, g in frame.groupby("patient_id", sort=True)
    )
    fast = utility.score_frame(shuffled)
    assert fast.normalised == pytest.approx(loop.normalised, abs=1e-12)
    assert fast.optimal == pytest.approx(loop.optimal) and fast.no_alarm == pytest.approx(
        loop.no_alarm
    )
    hours = utility.hour_utilities(shuffled)
    assert hours.score(np.zeros(len(shuffled), int)).normalised == pytest.approx(0.0)
    with pytest.raises(ValueError):
        hours.score(np.zeros(3, int))
