"""Device messages as devices send them, through the job's parse with real Spark: the blueprint's
message is a reading stamped from its Kafka record, aliases in other units convert as
vitalstream.core.devices does in Python, a message in neither shape is dead-lettered with its
reason, canonical messages parse as before, and a desaturated blueprint reading fires the
critical rule through the readings sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.devices import EVENT_TIME_FIELD, Alias, DeviceFormat
from vitalstream.core.runsettings import Settings
from vitalstream.core.settings import MessageChecks
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.parse import detailed_reason, parse_messages
from vitalstream.stream.spec import EVENT_OUTPUT_COLUMNS, JobSpec

pytestmark = pytest.mark.integration
TS_MS = 1_765_000_000_000  # 2025-12-06 05:46:40 UTC
KAFKA_MS = TS_MS + 250  # the record reached Kafka a quarter second after the reading
BLUEPRINT = {"patient_id": "p1", "ts": TS_MS, "hr": 88, "spo2": 97, "sbp": 121}
RAW_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, "
    "timestamp timestamp, timestampType int"
)
CANONICAL = {
    "kind": "vital",
    "patient_id": "P2",
    "device_id": "D2",
    "consciousness": "A",
    "event_time_ms": TS_MS,
    "send_wall_ns": 10**18,
    "hr": 80.0,
    "spo2": 96.0,
    "sbp": 120.0,
    "dbp": 80.0,
    "map": 93.0,
    "rr": 16.0,
    "temp": 37.0,
    "o2_supplemental": False,
}


def _raw(spark, messages: list[Any], kafka_ms: int = KAFKA_MS):
    """Kafka records of ``messages`` (a dict as JSON, bytes as they are)."""
    stamp = datetime.fromtimestamp(kafka_ms / 1000, tz=UTC)
    rows = [
        (None, m if isinstance(m, bytes) else json.dumps(m).encode(), "vitals", 0, i, stamp, 0)
        for i, m in enumerate(messages)
    ]
    return spark.createDataFrame(rows, RAW_SCHEMA)


def _parse(spark, messages: list[Any], devices: DeviceFormat | None = None) -> pd.DataFrame:
    """The parsed messages in order, with the dead letter's detailed reasons."""
    parsed = detailed_reason(parse_messages(_raw(spark, messages), MessageChecks(), devices))
    return parsed.drop("_parsed").toPandas().sort_values("offset").reset_index(drop=True)


def test_the_blueprint_message_is_a_reading_stamped_by_its_kafka_record(spark):
    row = _parse(spark, [BLUEPRINT]).iloc[0]
    assert row["reason"] is None
    assert row["event_time_ms"] == TS_MS
    assert row["event_time"] == pd.Timestamp(TS_MS, unit="ms")
    assert row["send_wall_ns"] == KAFKA_MS * 1_000_000
    assert (row["patient_id"], row["hr"], row["spo2"], row["sbp"]) == ("p1", 88.0, 97.0, 121.0)
    assert row[["device_id", "dbp", "map", "rr", "temp"]].isna().all()


def test_aliases_in_other_units_convert_as_the_python_conversions_do(spark):
    aliases = (
        Alias("ts", EVENT_TIME_FIELD, "s"),
        Alias("t_ns", EVENT_TIME_FIELD, "ns"),
        Alias("heart_rate", "hr", "bpm"),
        Alias("temp_f", "temp", "fahrenheit"),
    )
    devices = DeviceFormat(aliases)
    seconds = {"patient_id": "p1", "ts": TS_MS / 1000 + 0.123, "spo2": 97, "temp_f": 98.6}
    nanos = {"patient_id": "p1", "t_ns": TS_MS * 1_000_000 + 999_999, "heart_rate": 91}
    both = dict(seconds, t_ns=0)  # the first alias present wins
    huge = {"patient_id": "p1", "ts": 1e300, "hr": 80}
    rows = _parse(spark, [seconds, nanos, both, huge], devices)
    assert rows["reason"].tolist()[:3] == [None, None, None]
    assert rows["event_time_ms"].tolist()[:3] == [TS_MS + 123, TS_MS, TS_MS + 123]
    assert rows["event_time_ms"][0] == aliases[0].to_canonical(seconds["ts"])
    assert rows["temp"][0] == aliases[3].to_canonical(98.6)
    assert rows["hr"][1] == 91.0
    assert rows["send_wall_ns"].tolist()[:3] == [KAFKA_MS * 1_000_000] * 3
    assert rows["reason"][3] == "out_of_range:event_time"  # no batch failure on the way


CANONICAL_NO_STAMP = {"patient_id": "p1", "event_time_ms": TS_MS, "hr": 88}


def test_a_message_in_neither_shape_goes_to_the_dead_letter_with_its_reason(spark):
    messages = {
        "no time at all": ({"patient_id": "p1", "hr": 88}, "missing:event_time_ms"),
        # Canonical in shape (its own event time): a send stamp is still required.
        "canonical, no stamp": (CANONICAL_NO_STAMP, "missing:send_wall_ns"),
        "bad alias type": (dict(BLUEPRINT, ts="soon"), "bad_type:ts"),
        "no patient": (dict(BLUEPRINT, patient_id=None), "missing:patient_id"),
        "no vitals": ({"patient_id": "p1", "ts": TS_MS}, "missing:all_vitals"),
        "empty": ({}, "malformed_json"),
        "unknown fields only": ({"when": TS_MS, "pulse": 88}, "malformed_json"),
        "far ahead": (dict(BLUEPRINT, ts=KAFKA_MS + 86_400_000), "out_of_range:event_time"),
        "impossible": (dict(BLUEPRINT, spo2=140), "out_of_range:spo2"),
    }
    rows = _parse(spark, [m for m, _ in messages.values()])
    got = dict(zip(messages, rows["reason"], strict=True))
    assert got == {name: reason for name, (_, reason) in messages.items()}
    assert rows["event_time"].isna().all()


def test_canonical_messages_parse_as_without_device_aliases(spark):
    messages = [
        CANONICAL,
        dict(CANONICAL, ts=TS_MS + 5_000),  # an extra ts: the canonical event time wins
        {k: v for k, v in CANONICAL.items() if k != "send_wall_ns"},
        dict(CANONICAL, hr="fast"),
        b"not json",
    ]
    columns = ["reason", *EVENT_OUTPUT_COLUMNS, "event_time_ms", "kafka_time"]
    with_aliases = _parse(spark, messages)[columns]
    canonical_only = _parse(spark, messages, DeviceFormat(aliases=()))[columns]
    pd.testing.assert_frame_equal(with_aliases, canonical_only)
    assert with_aliases["reason"].tolist() == [
        None,
        None,
        "missing:send_wall_ns",
        "bad_type:hr",
        "malformed_json",
    ]
    assert with_aliases["event_time_ms"][1] == TS_MS
    assert with_aliases["send_wall_ns"][1] == 10**18


def test_a_desaturated_blueprint_reading_fires_the_critical_rule(spark, tmp_path: Path):
    settings = Settings.from_config(vsconfig.load_config())
    spec = JobSpec(
        bootstrap_servers="127.0.0.1:9",  # no alerts topic, no index
        topic="vitals",
        out_dir=tmp_path,
        window_s=60,
        watermark_s=120,
        diagnostics=settings.diagnostics,
        devices=settings.devices,
    )
    rule = next(r for r in spec.diagnostics.reading_rules if r.column == "spo2" and r.op == "<")
    critical = dict(BLUEPRINT, spo2=rule.threshold - 5)
    raw = _raw(spark, [BLUEPRINT, critical])
    Sinks(spec).write_readings(parse_messages(raw, spec.checks, spec.devices), 0)
    alerts = pd.read_parquet(tmp_path / "alerts" / "query=readings" / "batch_id=0")
    assert alerts["rule"].tolist() == [rule.name]
    alert = alerts.iloc[0]
    assert (alert["patient_id"], alert["value"]) == ("p1", rule.threshold - 5)
    assert alert["last_send_wall_ns"] == KAFKA_MS * 1_000_000
