"""The Tableau extract: what Hyper stores and aggregates equals the pandas reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tableauhyperapi", reason="tableauhyperapi is in requirements.txt")

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


def write_run_dir(run: Path, patients: int, minutes: int, batches: int = 3) -> None:
    """A run directory laid out as the stream job's sinks write it (``alerts/query=<q>/
    batch_id=<n>/``, ``windows/batch_id=<n>/``, µs timestamps, NEWS2 as int32): ``patients``
    stays of ``minutes`` one-minute windows with noisy vitals and some missing SpO2, an alert
    every 7th minute and one more an hour after each stay's last window (an hour with alerts
    only)."""
    rng = np.random.default_rng(11)
    offsets = np.tile(np.arange(minutes), patients)
    start = ts("2026-01-01T09:17") + pd.to_timedelta(offsets, unit="min")
    n = len(offsets)
    windows = pd.DataFrame(
        {
            "window_start": start,
            "window_end": start + pd.Timedelta(minutes=1),
            "patient_id": np.repeat([f"P{p:03d}" for p in range(patients)], minutes),
            "hr_mean": rng.normal(85, 12, n),
            "spo2_mean": np.where(rng.random(n) < 0.05, np.nan, rng.normal(96, 2, n)),
            "sbp_mean": rng.normal(120, 15, n),
            "rr_mean": rng.normal(16, 3, n),
            "temp_mean": rng.normal(37, 0.4, n),
            "news2_total": rng.integers(0, 9, n).astype("int32"),
        }
    )
    alerted = offsets % 7 == 0
    late = (offsets == minutes - 1).nonzero()[0]
    rows = windows.iloc[np.concatenate([alerted.nonzero()[0], late])].reset_index(drop=True)
    is_late = rows.index >= len(rows) - len(late)
    times = rows["window_end"] + pd.to_timedelta(np.where(is_late, 60, 0), unit="min")
    kind = np.where(rows.index % 2, "reading", "window")
    alerts = pd.DataFrame(
        {
            "alert_id": [f"a{i}" for i in range(len(rows))],
            "patient_id": rows["patient_id"],
            "kind": kind,
            "rule": np.where(kind == "reading", "critical_tachycardia", "news2_high"),
            "severity": np.where(kind == "reading", "high", "medium"),
            "column": np.where(kind == "reading", "hr", "news2_total"),
            "value": rows["hr_mean"],
            "threshold": np.where(kind == "reading", 150.0, np.nan),
            "time": times,
            "suppressed": rng.random(len(rows)) < 0.7,
        }
    )
    window_batch = offsets * batches // minutes
    alert_batch = np.concatenate([window_batch[alerted], np.full(len(late), batches - 1)])
    for b in range(batches):
        write_part(windows[window_batch == b], run / "windows" / f"batch_id={b}")
        for name, query in (("reading", "readings"), ("window", "windows")):
            part = alerts[(alert_batch == b) & (kind == name)]
            write_part(part, run / "alerts" / f"query={query}" / f"batch_id={b}")


def write_part(frame: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "part-0.parquet", coerce_timestamps="us", index=False)


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
