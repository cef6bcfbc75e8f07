"""The HTML dashboard without a browser: one self-contained file with the right embedded data.

tests/integration/test_dashboard_browser.py renders the same page in headless Chromium.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from runlayout import write_run_dir
from vitalstream.__main__ import main
from vitalstream.serving import dashboard

SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def frames(emitted_by_patient: dict[str, int], suppressed: int = 1):
    """Each patient gets ``n`` emitted and ``suppressed`` suppressed alerts and 30 windows."""
    alerts, windows = [], []
    for p, (patient, n) in enumerate(emitted_by_patient.items()):
        for k in range(n + suppressed):
            t = ts("2026-01-01T10:00") + pd.Timedelta(minutes=3 * k + p, seconds=7)
            alerts.append(
                {
                    "alert_id": f"{patient}-{k}",
                    "patient_id": patient,
                    "kind": "reading",
                    "rule": "critical_tachycardia" if k % 2 else "news2_high",
                    "severity": "high" if k % 2 else "medium",
                    "column": "hr" if k % 2 else "news2_total",
                    "value": 151.0 if k % 2 else 7.0,
                    "threshold": 150.0,
                    "time": t,
                    "suppressed": k >= n,
                    "run": "r",
                }
            )
        for m in range(30):
            start = ts("2026-01-01T10:00") + pd.Timedelta(minutes=m)
            windows.append(
                {
                    "window_start": start,
                    "window_end": start + pd.Timedelta(minutes=1),
                    "patient_id": patient,
                    "hr_mean": 80.0 + m + p,
                    "spo2_mean": 97.0 - m / 10,
                    "sbp_mean": 120.0,
                    "rr_mean": 16.0,
                    "temp_mean": 37.0,
                    "news2_total": m % 5,
                }
            )
    return pd.DataFrame(alerts), pd.DataFrame(windows)


def embedded(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="vs-data">(.*?)</script>', page, re.S)
    assert match, "no embedded data"
    return json.loads(match.group(1))


def test_the_page_loads_nothing_from_outside(tmp_path):
    path = tmp_path / "d.html"
    dashboard.write_dashboard(*frames({"P1": 3, "P2": 1}), path, title="t")
    page = path.read_text()
    assert re.findall(r"https?://[^\s\"'<>)]+", page) == [SVG_NAMESPACE]
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\(", page)
    assert page.count("<svg") == 2 and "<select" in page
    assert 'data-marks="0"' in page  # set by the renderer once it has drawn


def test_patients_are_those_with_most_emitted_alerts(tmp_path):
    alerts, windows = frames({"P1": 1, "P2": 5, "P3": 3, "P4": 0}, suppressed=9)
    summary = dashboard.write_dashboard(alerts, windows, tmp_path / "d.html", title="t", patients=3)
    assert summary["patients"] == ["P2", "P3", "P1"]
    data = embedded((tmp_path / "d.html").read_text())
    assert [p["id"] for p in data["patients"]] == ["P2", "P3", "P1"]
    p2 = data["patients"][0]
    assert (p2["emitted"], p2["alerts"]) == (5, 14)
    assert len(p2["windows"]["t"]) == 30 and len(p2["markers"]["t"]) == 14
    assert sum(p2["markers"]["suppressed"]) == 9
    rules = data["labels"]["rule"]
    assert {rules[i] for i in p2["markers"]["rule"]} == {"critical_tachycardia", "news2_high"}


def test_timeline_counts_every_alert_once_in_one_minute_bins(tmp_path):
    alerts, windows = frames({"P1": 4, "P2": 2}, suppressed=2)
    summary = dashboard.write_dashboard(alerts, windows, tmp_path / "d.html", title="t")
    timeline = embedded((tmp_path / "d.html").read_text())["timeline"]
    assert summary["bin_minutes"] == timeline["bin_minutes"] == 1
    assert timeline["severities"] == ["high", "medium"]
    assert sum(sum(c) for c in timeline["counts"].values()) == len(alerts)
    assert sum(sum(c) for c in timeline["emitted"].values()) == 6
    assert timeline["start_ms"] == int(ts("2026-01-01T10:00").timestamp() * 1000)


@pytest.mark.parametrize(
    ("span", "width"),
    [("0min", 1), ("239min", 1), ("12h", 5), ("2D", 15), ("60D", 720), ("400D", 1440)],
)
def test_bins_widen_when_the_run_is_long(span, width):
    assert dashboard.choose_bin_minutes(pd.Timedelta(span)) == width


def test_title_and_data_cannot_break_out_of_the_page(tmp_path):
    alerts, windows = frames({"P1": 2})
    alerts["rule"] = "</script><script>alert(1)</script>"
    path = tmp_path / "d.html"
    dashboard.write_dashboard(alerts, windows, path, title="<b>run</b> & co")
    page = path.read_text()
    assert "<title>&lt;b&gt;run&lt;/b&gt; &amp; co</title>" in page
    assert page.count("</script>") == 2  # the data block and the renderer, nothing injected
    assert embedded(page)["labels"]["rule"] == ["</script><script>alert(1)</script>"]


def test_empty_frames_still_give_a_page(tmp_path):
    summary = dashboard.write_dashboard(
        pd.DataFrame(), pd.DataFrame(), tmp_path / "e.html", title="e"
    )
    assert summary["patients"] == [] and summary["bins"] == 0
    assert embedded((tmp_path / "e.html").read_text())["patients"] == []


def test_cli_writes_the_page(tmp_path, capsys):
    alerts, windows = frames({"P1": 2, "P2": 1})
    alerts.to_parquet(tmp_path / "a.parquet")
    windows.to_parquet(tmp_path / "w.parquet")
    out = tmp_path / "out" / "d.html"
    argv = ["dashboard", "--alerts", str(tmp_path / "a.parquet"), "--windows"]
    argv += [str(tmp_path / "w.parquet"), "--out", str(out), "--title", "T"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["patients"] == ["P1", "P2"]
    assert "<h1>T</h1>" in out.read_text()


def test_a_long_run_directory_gives_a_small_page(tmp_path, capsys):
    windows = write_run_dir(tmp_path / "run", patients=12, minutes=dashboard.MAX_POINTS + 400)
    out = tmp_path / "d.html"
    assert main(["dashboard", "--run-dir", str(tmp_path / "run"), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == windows and len(summary["patients"]) == 6
    assert summary["bytes"] == len(out.read_bytes()) < 1_000_000
    shown = embedded(out.read_text())["patients"]
    assert [len(p["windows"]["t"]) for p in shown] == [dashboard.MAX_POINTS] * 6
