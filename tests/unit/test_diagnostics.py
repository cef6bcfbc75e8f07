"""Rule definitions, the sequential rules' state, and alert rows (pandas side of the sink)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from vitalstream.core.diagnostics import (
    ChangeRule,
    DiagnosticsSpec,
    EwmaDetector,
    PatientState,
    ThresholdRule,
    alert_id,
    rules_from_config,
    sequential_alerts,
    suppressed,
)
from vitalstream.reference import batch as reference
from vitalstream.stream.alerts import threshold_alerts
from vitalstream.stream.spec import ALERT_COLUMNS

RULES = tuple(
    rules_from_config(
        [
            {
                "name": "tachycardia",
                "column": "hr_mean",
                "op": ">",
                "threshold": 120,
                "severity": "high",
            },
            {
                "name": "hypoxaemia",
                "column": "spo2_mean",
                "op": "<",
                "threshold": 92,
                "severity": "high",
            },
        ]
    )
)


def test_rules_hold_strictly_and_never_on_nan():
    tachy = RULES[0]
    assert tachy.holds(np.array([120.0, 120.5, np.nan])).tolist() == [False, True, False]
    assert RULES[1].holds(91.99) and not RULES[1].holds(92.0)


def test_boolean_columns_compare_as_numbers():
    rule = ThresholdRule("single3", "news2_single3", "==", 1, "medium")
    assert rule.holds(pd.Series([True, False])).tolist() == [True, False]


def test_unknown_operator_or_severity_is_rejected():
    with pytest.raises(ValueError, match="operator"):
        ThresholdRule("x", "hr_mean", "=>", 1, "low")
    with pytest.raises(ValueError, match="severity"):
        ThresholdRule("x", "hr_mean", ">", 1, "urgent")


def test_unknown_diagnostics_key_is_rejected():
    with pytest.raises(ValueError, match="window_rule"):
        DiagnosticsSpec.from_config({"window_rule": []})


def test_alert_id_is_deterministic_and_distinguishes_inputs():
    assert alert_id("P1", "tachycardia", 60_000) == alert_id("P1", "tachycardia", 60_000)
    assert alert_id("P1", "tachycardia", 60_000) != alert_id("P1", "tachycardia", 120_000)
    assert len(alert_id("P1", "hypoxaemia", 0)) == 16


def test_threshold_alerts_one_row_per_fired_rule():
    start = pd.to_datetime([0, 60_000], unit="ms", utc=True)
    windows = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "window_start": start,
            "window_end": start + pd.Timedelta(seconds=60),
            "last_event_time": start,
            "last_send_wall_ns": [1, 2],
            "hr_mean": [130.0, 80.0],
            "spo2_mean": [90.0, 97.0],
            "fired_rules": [["tachycardia", "hypoxaemia"], []],
        }
    )
    alerts = threshold_alerts(windows, RULES, "window")
    assert list(alerts.columns) == list(ALERT_COLUMNS)
    assert sorted(alerts["rule"]) == ["hypoxaemia", "tachycardia"]
    row = alerts.set_index("rule").loc["tachycardia"]
    assert row["value"] == 130.0 and row["threshold"] == 120.0
    assert row["alert_id"] == alert_id("P1", "tachycardia", 0)


def test_no_fired_rules_gives_an_empty_frame_with_the_columns():
    windows = pd.DataFrame(
        {"patient_id": ["P1"], "fired_rules": [[]], "hr_mean": [80.0], "spo2_mean": [97.0]}
    )
    assert list(threshold_alerts(windows, RULES, "window").columns) == list(ALERT_COLUMNS)


SPEC = DiagnosticsSpec(
    change_rules=(ChangeRule("hr_jump", "hr_mean", 25.0, "medium", max_gap_windows=1),),
    anomaly=(
        EwmaDetector(
            "hr_ewma", "hr_mean", alpha=0.5, z_threshold=3.0, warmup_windows=3, severity="low"
        ),
    ),
)


def run_sequence(values, ends_ms, spec=SPEC):
    state, fired = PatientState(), []
    for value, end in zip(values, ends_ms, strict=True):
        fired.append(
            [r[0] for r in sequential_alerts(state, end, 60_000, {"hr_mean": value}, spec)]
        )
    return fired


def test_change_rule_fires_on_a_jump_between_consecutive_windows_only():
    fired = run_sequence([80, 82, 110, 80], [60_000, 120_000, 180_000, 300_000])
    assert ["hr_jump" in f for f in fired] == [False, False, True, False]  # gap of 2 windows


def test_ewma_fires_after_warm_up_on_an_outlier():
    fired = run_sequence([80, 80, 80, 80, 140], [60_000 * i for i in range(1, 6)])
    assert ["hr_ewma" in f for f in fired] == [False, False, False, False, True]


def test_sink_state_and_reference_agree_on_sequential_rules():
    rng = np.random.default_rng(4)
    hr = np.r_[80 + rng.normal(0, 2, 30), 130, 80 + rng.normal(0, 2, 10)]
    ends = np.arange(1, len(hr) + 1) * 60_000
    streamed = [i for i, f in enumerate(run_sequence(hr, ends)) for _ in f]
    windows = pd.DataFrame(
        {
            "patient_id": "P1",
            "window_start_ms": ends - 60_000,
            "window_end_ms": ends,
            "window_start": pd.to_datetime(ends - 60_000, unit="ms", utc=True),
            "window_end": pd.to_datetime(ends, unit="ms", utc=True),
            "hr_mean": hr,
        }
    )
    ref = pd.concat(
        [
            reference.change_alerts(windows, SPEC.change_rules[0], 60_000),
            reference.ewma_alerts(windows, SPEC.anomaly[0]),
        ]
    )
    starts_ms = (ref["window_start"].astype("int64") // 1_000_000).to_numpy()
    assert sorted(streamed) == sorted((starts_ms // 60_000).tolist())


def test_suppression_keeps_the_first_and_marks_repeats_within_the_interval():
    state = PatientState()
    times = [0, 60_000, 299_000, 300_000, 400_000]
    flags = [suppressed(state, "tachycardia", t, 300) for t in times]
    assert flags == [False, True, True, False, True]
    frame = pd.DataFrame(
        {
            "patient_id": "P1",
            "rule": "tachycardia",
            "time": pd.to_datetime(times, unit="ms", utc=True),
        }
    )
    assert reference.suppress(frame, 300)["suppressed"].tolist() == flags
