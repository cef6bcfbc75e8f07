"""Fewer window statistics (the breakdown's ``window_stats`` lever) with real Spark: a window
keeps its counts and the statistics asked for, in the job's column order, with the same values
as the full window; the job's default is every statistic."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vitalstream.core.schema import VITAL_NAMES
from vitalstream.core.settings import MessageChecks
from vitalstream.stream.parse import parse_messages
from vitalstream.stream.spec import WINDOW_STATS, JobSpec
from vitalstream.stream.windows import window_columns

pytestmark = pytest.mark.integration
TS_MS = 1_765_000_000_000
RAW_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, "
    "timestamp timestamp, timestampType int"
)


def _window(spark, stats):
    """One patient's five parsed readings aggregated as the job aggregates a window (batch:
    the watermark's deduplication is a streaming operator)."""
    readings = [
        {"kind": "vital", "patient_id": "P1", "device_id": "D1", "consciousness": "A",
         "event_time_ms": TS_MS + 1000 * i, "send_wall_ns": 10**18, "hr": 80.0 + i,
         "spo2": 96.0, "sbp": 120.0, "dbp": 80.0, "map": 93.0, "rr": 16.0 + i, "temp": 37.0,
         "o2_supplemental": False}
        for i in range(5)
    ]  # fmt: skip
    stamp = datetime.fromtimestamp(TS_MS / 1000, tz=UTC)
    rows = [(None, json.dumps(r).encode(), "t", 0, i, stamp, 0) for i, r in enumerate(readings)]
    parsed = parse_messages(spark.createDataFrame(rows, RAW_SCHEMA), MessageChecks())
    return parsed.groupBy("patient_id").agg(*window_columns(stats)).toPandas()


def test_a_window_keeps_the_counts_and_the_statistics_asked_for(spark, tmp_path: Path):
    assert JobSpec("127.0.0.1:9", "t", tmp_path, 60, 10).window_stats == WINDOW_STATS
    full = _window(spark, WINDOW_STATS)
    lean = _window(spark, ("max", "mean"))
    kept = [f"{vital}_{stat}" for vital in VITAL_NAMES for stat in ("n", "mean", "max")]
    assert [c for c in lean.columns if c.split("_")[0] in VITAL_NAMES] == kept
    assert {f"{v}_{s}" for v in VITAL_NAMES for s in WINDOW_STATS} <= set(full.columns)
    assert lean[kept].equals(full[kept])
    assert full.loc[0, "hr_mean"] == 82.0 and full.loc[0, "hr_n"] == 5
