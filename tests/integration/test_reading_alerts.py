"""The readings sink with real Spark: a duplicated reading (same patient, device and event time)
fires its critical alert once, within a batch, in a later batch and after a restart, so that
suppression sees each alert once; the repeats are counted in the commit record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.runsettings import Settings
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.parse import parse_messages
from vitalstream.stream.spec import JobSpec

pytestmark = pytest.mark.integration
T0_MS = 1_767_254_400_000  # 2026-01-01 08:00 UTC
RAW_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, "
    "timestamp timestamp, timestampType int"
)


def _record(offset: int, event_ms: int, spo2: float) -> tuple:
    """One Kafka record of a reading of patient P1 from device D1."""
    value = {
        "kind": "vital",
        "patient_id": "P1",
        "device_id": "D1",
        "consciousness": "A",
        "event_time_ms": event_ms,
        "send_wall_ns": 10**18 + offset,
        "hr": 80.0,
        "spo2": spo2,
        "sbp": 120.0,
        "dbp": 80.0,
        "map": 93.0,
        "rr": 16.0,
        "temp": 37.0,
        "o2_supplemental": False,
    }
    stamp = datetime.fromtimestamp(event_ms / 1000, tz=UTC)
    return (None, json.dumps(value).encode(), "readings", 0, offset, stamp, 1)


def _write(spark, sinks: Sinks, batch_id: int, records: list[tuple]) -> None:
    raw = spark.createDataFrame(records, RAW_SCHEMA)
    sinks.write_readings(parse_messages(raw, sinks.spec.checks), batch_id)


def _spec(out: Path) -> JobSpec:
    settings = Settings.from_config(vsconfig.load_config())
    return JobSpec(
        bootstrap_servers="127.0.0.1:9",  # no alerts topic, no index
        topic="readings",
        out_dir=out,
        window_s=60,
        watermark_s=120,
        diagnostics=settings.diagnostics,
    )


def _alerts(out: Path, batch_id: int) -> pd.DataFrame:
    return pd.read_parquet(out / "alerts" / "query=readings" / f"batch_id={batch_id}")


def _commits(out: Path) -> dict[int, dict]:
    lines = (out / "commits.jsonl").read_text().splitlines()
    return {r["batch_id"]: r for r in map(json.loads, lines)}


def test_a_duplicated_reading_alerts_once_and_suppression_sees_it_once(spark, tmp_path: Path):
    sinks = _spec(tmp_path)
    first = Sinks(sinks)
    # A desaturated reading, its duplicate, and a second one a minute later (a repeat of the
    # rule within the suppression interval: kept, marked suppressed).
    _write(spark, first, 0, [_record(0, T0_MS, 80), _record(1, T0_MS, 80),
                             _record(2, T0_MS + 60_000, 80)])  # fmt: skip
    alerts = _alerts(tmp_path, 0)
    assert alerts["alert_id"].is_unique and len(alerts) == 2
    assert alerts.sort_values("time")["suppressed"].tolist() == [False, True]
    assert _commits(tmp_path)[0]["duplicate_alerts"] == 1

    # The duplicate again in a later batch, and once more after a restart of the job.
    late = [_record(3, T0_MS, 80), _record(4, T0_MS + 120_000, 70)]
    _write(spark, first, 1, late)
    assert len(_alerts(tmp_path, 1)) == 1
    assert _commits(tmp_path)[1]["duplicate_alerts"] == 1
    restarted = Sinks(sinks)
    _write(spark, restarted, 1, late)  # batch 1 replayed by the restarted job: same output
    replayed = _alerts(tmp_path, 1)
    assert len(replayed) == 1 and replayed["time"].iloc[0].value // 10**6 == T0_MS + 120_000
    assert _commits(tmp_path)[1]["duplicate_alerts"] == 1
