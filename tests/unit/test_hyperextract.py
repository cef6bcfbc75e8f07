"""The Tableau extract: what Hyper stores and aggregates equals the pandas reference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tableauhyperapi", reason="tableauhyperapi is in requirements.txt")

from runlayout import write_run_dir
from vitalstream.__main__ import main
from vitalstream.serving import hyperextract


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def alert(alert_id: str, patient: str, time: str, *, suppressed: bool = False, **extra):
    row = {
        "alert_id": alert_id,
        "patient_id": patient,
        "kind": "reading",
        "rule": "critical_tachycardia",
        "severity": "high",
        "column": "hr",
        "value": 155.0,
        "threshold": 150.0,
        "time": ts(time),
        "window_start": ts(time),
        "window_end": ts(time),
        "last_event_time": ts(time),
        "last_send_wall_ns": 1,
        "suppressed": suppressed,
        "run": "skeleton/base/rep1",  # exporter columns are ignored
        "indexed_at": ts("2026-02-01T00:00:00"),
    }
    return row | extra


def window(patient: str, start: str, hr: float, news2: int, spo2: float = 97.0):
    return {
        "window_start": ts(start),
        "window_end": ts(start) + pd.Timedelta(minutes=1),
        "patient_id": patient,
        "hr_mean": hr,
        "spo2_mean": spo2,
        "sbp_mean": 120.0,
        "rr_mean": 16.0,
        "temp_mean": 37.0,
        "news2_total": news2,
        "hr_n": 60,
        "qsofa": 0,
    }


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """P1 has windows in hours 10 and 11 but alerts in hour 10 only; P2 has windows only;
    P3 has alerts only (no windows at all)."""
    alerts = pd.DataFrame(
        [
            alert("a1", "P1", "2026-01-01T10:05:00"),
            alert("a2", "P1", "2026-01-01T10:59:59.5", suppressed=True),
            alert("a3", "P1", "2026-01-01T10:30:00", rule="news2_high", kind="window",
                  severity="medium", column="news2_total", value=7.0, threshold=np.nan),
            alert("a4", "P3", "2026-01-01T11:00:00"),
            alert("a5", "P3", "2026-01-01T12:15:00", suppressed=True),
        ]
    )  # fmt: skip
    windows = pd.DataFrame(
        [
            window("P1", "2026-01-01T10:00:00", 100.0, 3),
            window("P1", "2026-01-01T10:01:00", 110.0, 5, spo2=np.nan),
            window("P1", "2026-01-01T11:00:00", 90.0, 1),
            window("P2", "2026-01-01T10:30:00", 70.0, 0),
        ]
    )
    return alerts, windows


def test_reference_counts_hours_with_windows_or_alerts(frames):
    hourly = hyperextract.hourly_aggregates(*frames).set_index(["patient_id", "hour"])
    p1_10 = hourly.loc[("P1", ts("2026-01-01T10:00"))]
    assert (p1_10["windows"], p1_10["alerts"], p1_10["emitted_alerts"]) == (2, 3, 2)
    assert p1_10["hr_mean"] == 105.0 and p1_10["spo2_mean"] == 97.0  # NaN skipped
    assert p1_10["news2_max"] == 5
    p1_11 = hourly.loc[("P1", ts("2026-01-01T11:00"))]
    assert (p1_11["windows"], p1_11["alerts"], p1_11["emitted_alerts"]) == (1, 0, 0)
    p3 = hourly.loc["P3"]
    assert list(p3["windows"]) == [0, 0] and list(p3["alerts"]) == [1, 1]
    assert list(p3["emitted_alerts"]) == [1, 0]
    assert p3["hr_mean"].isna().all() and p3["news2_max"].isna().all()
    assert len(hourly) == 5


def test_round_trip_equals_the_pandas_reference(frames, tmp_path):
    alerts, windows = frames
    path = tmp_path / "run.hyper"
    logs = tmp_path / "logs"
    counts = hyperextract.write_extract(alerts, windows, path, log_dir=logs)
    assert counts == {"alerts": 5, "hourly": 5}
    assert hyperextract.read_counts(path, log_dir=logs) == counts
    assert (logs / "hyperd.log").exists()

    hourly = hyperextract.read_table(path, "hourly", log_dir=logs)
    pd.testing.assert_frame_equal(hourly, hyperextract.hourly_aggregates(alerts, windows))

    stored = hyperextract.read_table(path, "Extract.alerts", log_dir=logs)
    assert list(stored.columns) == list(hyperextract.ALERT_COLUMNS)
    assert str(stored["time"].dtype) == "datetime64[ns, UTC]"
    expected = alerts.sort_values(["time", "alert_id"]).reset_index(drop=True)
    expected = expected[list(hyperextract.ALERT_COLUMNS)]
    pd.testing.assert_frame_equal(stored, expected)


def test_hyperd_writes_no_log_into_the_working_directory(frames, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(hyperextract.tempfile, "tempdir", None)  # re-read TMPDIR
    hyperextract.write_extract(*frames, tmp_path / "out" / "x.hyper")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tmp"]
    assert (tmp_path / "tmp" / "vitalstream-hyperd" / "hyperd.log").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.hyper"]


def test_empty_frames_give_empty_tables(tmp_path):
    counts = hyperextract.write_extract(pd.DataFrame(), pd.DataFrame(), tmp_path / "e.hyper")
    assert counts == {"alerts": 0, "hourly": 0}
    assert hyperextract.read_table(tmp_path / "e.hyper", "alerts").empty


def test_a_frame_with_rows_but_missing_columns_is_refused(frames, tmp_path):
    alerts, windows = frames
    with pytest.raises(ValueError, match="hr_mean"):
        hyperextract.write_extract(alerts, windows.drop(columns="hr_mean"), tmp_path / "x.hyper")


def test_cli_from_files_and_from_a_run_directory(frames, tmp_path, capsys):
    alerts, windows = frames
    alerts.to_parquet(tmp_path / "alerts.parquet")
    windows.to_parquet(tmp_path / "windows.parquet")
    out, summary = tmp_path / "x.hyper", tmp_path / "x.json"
    args = ["--alerts", str(tmp_path / "alerts.parquet"), "--windows"]
    args += [str(tmp_path / "windows.parquet"), "--out", str(out), "--summary", str(summary)]
    assert main(["hyper-extract", *args, "--log-dir", str(tmp_path / "logs")]) == 0
    assert json.loads(summary.read_text())["rows"] == {"alerts": 5, "hourly": 5}

    run = tmp_path / "run"
    for name, frame, sub in (("alerts", alerts, "query=readings/"), ("windows", windows, "")):
        part = run / name / f"{sub}batch_id=0"
        part.mkdir(parents=True)
        frame.drop(columns=["run", "indexed_at"], errors="ignore").to_parquet(
            part / "part-0.parquet"
        )
    capsys.readouterr()
    argv = ["hyper-extract", "--run-dir", str(run), "--out", str(tmp_path / "r.hyper")]
    assert main([*argv, "--log-dir", str(tmp_path / "logs")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == {"alerts": 5, "hourly": 5}


def test_round_trip_of_a_run_directory(tmp_path):
    write_run_dir(tmp_path / "run", patients=40, minutes=300)
    alerts, windows = hyperextract.read_run_dir(tmp_path / "run")
    assert set(alerts["query"]) == {"readings", "windows"} and len(windows) == 40 * 300
    path = tmp_path / "run.hyper"
    counts = hyperextract.write_extract(alerts, windows, path, log_dir=tmp_path)
    reference = hyperextract.hourly_aggregates(alerts, windows)
    assert counts == {"alerts": len(alerts), "hourly": len(reference)}
    hourly = hyperextract.read_table(path, "hourly", log_dir=tmp_path)
    pd.testing.assert_frame_equal(hourly, reference, check_exact=False, rtol=1e-12)
    assert hourly["windows"].sum() == len(windows)
    assert hourly["emitted_alerts"].sum() == int((~alerts["suppressed"]).sum())
    alerts_only = hourly[hourly["windows"] == 0]
    assert len(alerts_only) == 40 and alerts_only["hr_mean"].isna().all()
    stored = hyperextract.read_table(path, "alerts", log_dir=tmp_path)
    assert sorted(stored["alert_id"]) == sorted(alerts["alert_id"])
