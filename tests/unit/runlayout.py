"""A run directory as the stream job's sinks write it, for the tests of the readers of one
(the HTML dashboard and the Tableau extract): ``alerts/query=<q>/batch_id=<n>/``,
``windows/batch_id=<n>/``, timestamps in microseconds, NEWS2 as int32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_run_dir(run: Path, patients: int, minutes: int, batches: int = 3) -> int:
    """A run directory laid out as the stream job's sinks write it (``alerts/query=<q>/
    batch_id=<n>/``, ``windows/batch_id=<n>/``, µs timestamps, NEWS2 as int32): ``patients``
    stays of ``minutes`` one-minute windows with noisy vitals and some missing SpO2, an alert
    every 7th minute and one more an hour after each stay's last window (an hour with alerts
    only), most of them suppressed. Returns the number of windows."""
    rng = np.random.default_rng(11)
    offsets = np.tile(np.arange(minutes), patients)
    start = pd.Timestamp("2026-01-01T09:17", tz="UTC") + pd.to_timedelta(offsets, unit="min")
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
    return n


def write_part(frame: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "part-0.parquet", coerce_timestamps="us", index=False)
