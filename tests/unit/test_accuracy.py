"""Alert accuracy against ground truth, on hand-computed cases."""

from __future__ import annotations

import pandas as pd
import pytest
from vitalstream.measure import accuracy

T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds, "s")


def alert(patient, rule, end_s, kind="window", suppressed=False):
    start = end_s - 60 if kind == "window" else end_s
    return {
        "alert_id": f"{patient}|{rule}|{start}",
        "patient_id": patient,
        "kind": kind,
        "rule": rule,
        "time": at(start),
        "window_start": at(start),
        "window_end": at(end_s),
        "suppressed": suppressed,
    }


@pytest.fixture
def labels():
    # P1 deteriorates 10 min into a 1-h stay; P2 and P3 are stable; P4 deteriorates at 30 min.
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3", "P4"],
            "deteriorates": [True, False, False, True],
            "onset_time": [at(600), pd.NaT, pd.NaT, at(1800)],
        }
    )


@pytest.fixture
def spans():
    return pd.DataFrame(
        {"first": [at(0)] * 4, "last": [at(3600)] * 4},
        index=pd.Index(["P1", "P2", "P3", "P4"], name="patient_id"),
    )


def test_scores_of_a_hand_computed_case(labels, spans):
    alerts = pd.DataFrame(
        [
            alert("P1", "news2_medium", 300),  # before onset: false alarm
            alert("P1", "news2_medium", 720, suppressed=True),  # first evidence after onset
            alert("P1", "news2_medium", 1200),  # true
            alert("P2", "news2_medium", 1500),  # stable patient: false alarm
            alert("P1", "critical_desaturation", 900, kind="reading"),  # true
        ]
    )
    got = accuracy.score_group(alerts, labels, spans)
    # Emitted: 4 (one suppressed); true: 2 (P1 at 1200 s and the reading at 900 s).
    assert got["alerts_emitted"] == 4 and got["alerts_raw"] == 5
    assert got["true_alerts"] == 2 and got["false_alerts"] == 2
    assert got["precision"] == pytest.approx(0.5)
    # Detected: P1 only, of P1 and P4; its first evidence after onset is the suppressed one.
    assert got["recall"] == pytest.approx(0.5)
    assert got["f1"] == pytest.approx(0.5)
    assert got["delay_median_min"] == pytest.approx(2.0)
    # At risk: P1 10 min, P2 and P3 60 min each, P4 30 min = 160 min.
    assert got["at_risk_patient_days"] == pytest.approx(160 / 1440)
    assert got["false_alarms_per_patient_day"] == pytest.approx(2 / (160 / 1440))


def test_no_alerts_means_no_precision_and_zero_recall(labels, spans):
    empty = pd.DataFrame([alert("P1", "x", 0)]).iloc[:0]
    got = accuracy.score_group(empty, labels, spans)
    assert got["precision"] is None and got["recall"] == 0.0 and got["f1"] is None
    assert got["false_alarms_per_patient_day"] == 0.0 and got["delay_median_min"] is None


def test_groups_select_their_rules_and_compare_with_a_baseline(labels, spans):
    full = pd.DataFrame(
        [
            alert("P1", "news2_medium", 1200),
            alert("P1", "tachycardia", 1200),
            alert("P2", "tachycardia", 60),
        ]
    )
    reduced = full.iloc[[0, 1]]
    result = accuracy.score_run(
        reduced, labels, spans, {"any": [], "news2": ["news2_medium"]}, baseline=full
    )
    assert result["groups"]["news2"]["alerts_emitted"] == 1
    assert result["groups"]["any"]["agreement"]["jaccard"] == pytest.approx(2 / 3)
    assert result["groups"]["news2"]["agreement"]["baseline_reproduced"] == 1.0


def test_window_alerts_are_timed_at_their_window_end_and_readings_at_their_time():
    alerts = pd.DataFrame([alert("P1", "a", 120), alert("P1", "b", 90, kind="reading")])
    assert accuracy.alert_times(alerts).tolist() == [at(120), at(90)]
