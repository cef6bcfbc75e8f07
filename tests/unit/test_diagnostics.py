"""Rule definitions and alert rows (the pandas side of the Spark sink)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from vitalstream.diagnostics import WindowRule, alert_id, rules_from_config
from vitalstream.streaming import ALERT_COLUMNS, alerts_from_windows

RULES = tuple(
    rules_from_config(
        [
            {"name": "tachycardia", "vital": "hr", "op": ">", "threshold": 120, "severity": "high"},
            {"name": "hypoxaemia", "vital": "spo2", "op": "<", "threshold": 92, "severity": "high"},
        ]
    )
)


def test_rules_hold_strictly_and_never_on_nan():
    tachy = RULES[0]
    assert tachy.holds(np.array([120.0, 120.5, np.nan])).tolist() == [False, True, False]
    assert RULES[1].holds(91.99) and not RULES[1].holds(92.0)


def test_unknown_vital_or_operator_is_rejected():
    with pytest.raises(ValueError, match="vital"):
        WindowRule("x", "pulse", ">", 1, "low")
    with pytest.raises(ValueError, match="operator"):
        WindowRule("x", "hr", "=>", 1, "low")


def test_alert_id_is_deterministic_and_distinguishes_inputs():
    assert alert_id("P1", "tachycardia", 60_000) == alert_id("P1", "tachycardia", 60_000)
    assert alert_id("P1", "tachycardia", 60_000) != alert_id("P1", "tachycardia", 120_000)
    assert len(alert_id("P1", "hypoxaemia", 0)) == 16


def test_alerts_from_windows_one_row_per_fired_rule():
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
    alerts = alerts_from_windows(windows, RULES)
    assert list(alerts.columns) == list(ALERT_COLUMNS)
    assert sorted(alerts["rule"]) == ["hypoxaemia", "tachycardia"]
    assert set(alerts["patient_id"]) == {"P1"}
    row = alerts.set_index("rule").loc["tachycardia"]
    assert row["value"] == 130.0 and row["threshold"] == 120.0
    assert row["alert_id"] == alert_id("P1", "tachycardia", 0)


def test_no_fired_rules_gives_an_empty_frame_with_the_columns():
    windows = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "window_start": [pd.Timestamp(0, tz="UTC")],
            "window_end": [pd.Timestamp(0, tz="UTC")],
            "last_event_time": [pd.Timestamp(0, tz="UTC")],
            "last_send_wall_ns": [1],
            "hr_mean": [80.0],
            "spo2_mean": [97.0],
            "fired_rules": [[]],
        }
    )
    assert list(alerts_from_windows(windows, RULES).columns) == list(ALERT_COLUMNS)
