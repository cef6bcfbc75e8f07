"""Small series extracted from a run's sink directories, for the notebooks and the archive.

A run's ``windows/``, ``alerts/`` and ``events/`` directories hold one row per window, alert or
reading (tens of MB); a figure needs one number per row. ``run-series`` writes that number
beside the run's metrics, so that the notebooks (and a rebuild from a results archive) read a
small file instead of the sinks:

* ``commit_latency`` → ``commit_latency.parquet``: per critical-reading alert, window alert and
  window, the time from the send of its (last) reading to the commit of its batch (ms), the
  distributions of the headline run's latency figure;
* ``append_delays`` → ``append_delays.parquet``: per reading of a fault run, its send wall time
  (ns) and the seconds from its send to the broker's append (LogAppendTime), the fault figure.

Not for: the run's summary numbers (vitalstream.measure.metrics writes metrics.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import existing_dir, writable_file
from vitalstream.measure import metrics

# Series of commit_latency.parquet, in the order the figure draws them.
LATENCY_SERIES = ("critical reading alerts", "window alerts", "all windows")


def commit_latency(run_dir: Path) -> pd.DataFrame:
    """One row per alert or window of the run: ``series`` and ``latency_ms``."""
    commits = metrics.read_commits(run_dir / "commits.jsonl")
    alerts = metrics.read_parquet_dir(run_dir / "alerts")
    windows = metrics.read_parquet_dir(run_dir / "windows", query="windows")
    window_alerts = alerts[alerts["kind"] == "window"] if len(alerts) else alerts
    reading_alerts = alerts[alerts["kind"] == "reading"] if len(alerts) else alerts
    samples = dict(
        zip(
            LATENCY_SERIES,
            (
                metrics.commit_latency_ms(reading_alerts, commits),
                metrics.commit_latency_ms(window_alerts, commits),
                metrics.commit_latency_ms(windows, commits),
            ),
            strict=True,
        )
    )
    return pd.concat(
        [
            pd.DataFrame({"series": name, "latency_ms": np.asarray(values, dtype="float64")})
            for name, values in samples.items()
        ],
        ignore_index=True,
    )


def append_delay_arrays(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Send wall time (ns) of each reading, and seconds from its send to its append by the
    broker (the topic's LogAppendTime)."""
    events = metrics.read_parquet_dir(run_dir / "events")
    if events.empty:
        return np.array([], dtype="int64"), np.array([])
    # Spark hands timestamps over in microseconds: convert to ns before taking integers.
    appended = (
        pd.to_datetime(events["kafka_time"], utc=True).astype("datetime64[ns, UTC]").astype("int64")
    )
    sent = events["send_wall_ns"].astype("int64")
    return sent.to_numpy(), ((appended - sent) / 1e9).to_numpy()


def append_delays(run_dir: Path) -> pd.DataFrame:
    """One row per reading of a fault run: ``sent_wall_ns`` and ``append_delay_s``."""
    sent, delay = append_delay_arrays(run_dir)
    return pd.DataFrame(
        {"sent_wall_ns": np.asarray(sent, dtype="int64"), "append_delay_s": np.asarray(delay)}
    )


# The file each series is written to is <name>.parquet in the run directory.
SERIES = {"commit_latency": commit_latency, "append_delays": append_delays}


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run-series", help="extract a small series from a run's sinks (for notebooks)"
    )
    parser.add_argument("series", choices=sorted(SERIES))
    parser.add_argument("--run-dir", type=existing_dir, required=True)
    parser.add_argument("--out", type=writable_file, required=True, help="a .parquet file")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    frame = SERIES[args.series](args.run_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.out, index=False)
    print(json.dumps({"out": str(args.out), "rows": len(frame)}))
    return 0
