"""The HTML dashboard rendered by headless Chromium: the renderer runs, draws every chart, and
the screenshot is a picture, not a blank page. `make browser` installs Chromium."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from headless import dom, marks, rendered, run_browser
from vitalstream.serving import dashboard

pytestmark = pytest.mark.integration

HIGH_RED = np.array([0xD6, 0x27, 0x28]) / 255  # SEVERITY_COLORS["high"]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dashboard of three patients: P2 has most emitted alerts, P3 has alerts but no windows."""
    start = pd.Timestamp("2026-01-01T10:00", tz="UTC")
    alerts = pd.DataFrame(
        {
            "alert_id": [f"a{i}" for i in range(12)],
            "patient_id": ["P1"] * 3 + ["P2"] * 7 + ["P3"] * 2,
            "kind": "reading",
            "rule": ["critical_tachycardia", "hypoxaemia", "news2_high"] * 4,
            "severity": ["high", "high", "medium"] * 4,
            "column": ["hr", "spo2", "news2_total"] * 4,
            "value": [155.0, 88.0, 7.0] * 4,
            "threshold": [150.0, 90.0, 7.0] * 4,
            "time": [start + pd.Timedelta(minutes=5 * i + 1) for i in range(12)],
            "suppressed": [False, True, False] * 4,
        }
    )
    windows = pd.DataFrame(
        {
            "window_start": [start + pd.Timedelta(minutes=m) for m in range(60)] * 2,
            "patient_id": ["P1"] * 60 + ["P2"] * 60,
            "hr_mean": [90.0 + (m % 20) for m in range(120)],
            "spo2_mean": [97.0 - (m % 7) / 2 for m in range(120)],
            "sbp_mean": 120.0,
            "rr_mean": 16.0,
            "temp_mean": 37.0,
            "news2_total": [m % 6 for m in range(120)],
        }
    )
    path = tmp_path_factory.mktemp("dashboard") / "dashboard.html"
    summary = dashboard.write_dashboard(alerts, windows, path, title="Integration dashboard")
    assert summary["patients"] == ["P2", "P1", "P3"]
    return path


def test_every_chart_renders_with_marks(page, tmp_path):
    html = dom(page, tmp_path / "profile")
    assert rendered(html), html[-2000:]
    assert "data-error" not in html
    drawn = marks(html)
    assert set(drawn) == {"chart-timeline", "chart-patient"}
    assert drawn["chart-timeline"] == 12  # one bar segment per alert (one per minute bin)
    assert drawn["chart-patient"] == 60 + 60 + 7  # HR and SpO2 vertices of P2, its 7 alerts
    assert html.count("<circle") >= 7


def test_a_patient_without_windows_draws_its_alert_markers(page, tmp_path):
    html = dom(page, tmp_path / "profile", "#patient=P3")
    assert rendered(html)
    assert marks(html)["chart-patient"] == 2
    assert "no windows" in html


def test_screenshot_is_not_blank(page, tmp_path):
    png = tmp_path / "dashboard.png"
    run_browser(
        tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,1400", page.as_uri()
    )
    image = matplotlib.image.imread(png)[..., :3]
    assert image.shape[:2] == (1400, 1200)
    assert image.std() > 0.05, "the screenshot is (nearly) one colour"
    red = np.abs(image - HIGH_RED).max(axis=-1) < 0.06
    assert red.sum() > 200, "no high-severity bars or markers in the screenshot"
