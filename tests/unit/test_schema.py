"""Unit tests of the canonical event/label schema and of ``validate_events``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from vitalstream.core import schema
from vitalstream.core.schema import (
    EVENT_COLUMNS,
    EVENT_DTYPES,
    LABEL_COLUMNS,
    VITAL_NAMES,
    validate_events,
)

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_vitals_order_units_and_ranges() -> None:
    assert VITAL_NAMES == ("hr", "spo2", "sbp", "dbp", "map", "rr", "temp")
    assert schema.valid_range("hr") == (20.0, 250.0)
    assert schema.valid_range("spo2") == (50.0, 100.0)
    assert schema.valid_range("sbp") == (40.0, 260.0)
    assert schema.valid_range("dbp") == (20.0, 160.0)
    assert schema.valid_range("map") == (30.0, 200.0)
    assert schema.valid_range("rr") == (3.0, 60.0)
    assert schema.valid_range("temp") == (30.0, 43.0)
    assert all(v.dtype == "float64" for v in schema.VITALS)
    with pytest.raises(KeyError):
        schema.valid_range("etco2")


def test_event_and_label_columns() -> None:
    expected = (
        "patient_id",
        "device_id",
        "event_time",
        *VITAL_NAMES,
        "o2_supplemental",
        "consciousness",
        "artefact",
        "clock_skew_ms",
        "network_delay_ms",
    )
    assert expected == EVENT_COLUMNS
    assert LABEL_COLUMNS == (
        "patient_id",
        "age",
        "sex",
        "deteriorates",
        "onset_time",
        "ramp_minutes",
        "source",
    )
    events = schema.event_arrow_schema()
    assert events.names == list(EVENT_COLUMNS)
    assert events.field("event_time").type == pa.timestamp("ms", tz="UTC")
    assert not events.field("patient_id").nullable and events.field("hr").nullable
    assert events.field("network_delay_ms").type == pa.int64()
    assert schema.label_arrow_schema().names == list(LABEL_COLUMNS)
    assert dict(schema.empty_events().dtypes.astype(str)) == EVENT_DTYPES
    assert dict(schema.empty_labels().dtypes.astype(str)) == schema.LABEL_DTYPES


def test_kafka_fields_and_docs_helpers() -> None:
    assert schema.KAFKA_JSON_FIELDS[2] == "event_time_ms"
    ddl = schema.kafka_json_ddl()
    assert ddl.startswith("patient_id STRING, device_id STRING, event_time_ms BIGINT, hr DOUBLE")
    assert "o2_supplemental BOOLEAN" in ddl
    records = schema.to_records()
    assert [r["name"] for r in records] == list(EVENT_COLUMNS)
    assert records[3]["valid_range"] == "20–250"
    table = schema.to_markdown_table()
    assert table.count("\n") == len(EVENT_COLUMNS) + 2
    assert "| spo2 | double | % |" in table


def _good_rows(n: int) -> dict[str, list]:
    return {
        "patient_id": [f"P{i:06d}" for i in range(1, n + 1)],
        "device_id": [f"D{i:06d}" for i in range(1, n + 1)],
        "event_time_ms": [BASE_MS + 1000 * i for i in range(n)],
        "hr": [80.0] * n,
        "spo2": [97.0] * n,
        "sbp": [120.0] * n,
        "dbp": [60.0] * n,
        "map": [80.0] * n,
        "rr": [16.0] * n,
        "temp": [37.0] * n,
    }


def _loose_frame() -> tuple[pd.DataFrame, dict[int, str | None]]:
    """A Kafka-like frame (object columns, event_time_ms) with one fault per row."""
    rows = _good_rows(14)
    expected: dict[int, str | None] = {}
    rows["patient_id"][1] = None
    expected[1] = "missing:patient_id"
    rows["patient_id"][2] = 17  # JSON number where a string belongs
    expected[2] = "bad_type:patient_id"
    rows["event_time_ms"][3] = "yesterday"
    expected[3] = "bad_type:event_time"
    rows["hr"][4] = "abc"
    expected[4] = "bad_type:hr"
    for v in VITAL_NAMES:
        rows[v][5] = None
    expected[5] = "missing:all_vitals"
    rows["spo2"][6] = 130.0
    expected[6] = "out_of_range:spo2"
    rows["hr"][7] = 0.0
    expected[7] = "out_of_range:hr"
    rows["temp"][8] = 99.9
    expected[8] = "out_of_range:temp"
    rows["sbp"][9] = None  # a single missing vital is fine
    expected[9] = None
    rows["hr"][10], rows["spo2"][10] = 20.0, 100.0  # inclusive range edges are valid
    expected[10] = None
    rows["rr"][11] = float("inf")  # a device fault, not a missing vital (as the stream)
    expected[11] = "not_finite:rr"
    rows["device_id"][12] = "  "
    expected[12] = "missing:device_id"
    rows["hr"][13] = True  # booleans are not measurements
    expected[13] = "bad_type:hr"
    expected[0] = None
    df = pd.DataFrame(rows, dtype=object)
    df.index = pd.RangeIndex(100, 114)  # validation must keep the caller's index
    return df, expected


def test_validate_events_reasons_and_partition() -> None:
    df, expected = _loose_frame()
    valid, quarantined = validate_events(df)
    assert len(valid) + len(quarantined) == len(df)
    assert set(valid.index).isdisjoint(quarantined.index)
    assert sorted([*valid.index, *quarantined.index]) == list(df.index)
    got = dict(zip(quarantined.index - 100, quarantined["reason"], strict=True))
    want = {i: r for i, r in expected.items() if r is not None}
    assert got == want
    assert set(valid.index - 100) == {i for i, r in expected.items() if r is None}
    assert list(valid.columns) == list(EVENT_COLUMNS)
    assert dict(valid.dtypes.astype(str)) == EVENT_DTYPES
    assert np.isnan(valid.loc[109, "sbp"])
    assert valid.loc[100, "event_time"] == pd.Timestamp(BASE_MS, unit="ms", tz="UTC")
    # absent optional columns get documented defaults
    assert (valid["artefact"] == "none").all() and valid["o2_supplemental"].isna().all()
    # quarantine keeps the original (malformed) values for inspection
    assert quarantined.loc[104, "hr"] == "abc"


def test_validate_events_context_and_annotations() -> None:
    rows = _good_rows(6)
    rows["o2_supplemental"] = [True, "yes", None, False, True, False]
    rows["consciousness"] = ["A", "C", "X", None, "U", "V"]
    rows["artefact"] = ["none", "flatline", "none", "other", "none", "none"]
    rows["clock_skew_ms"] = [0, -250, 0, 0, 0, 0]
    rows["network_delay_ms"] = [5, 0, 0, 0, -1, 1.5]
    valid, quarantined = validate_events(pd.DataFrame(rows, dtype=object))
    assert dict(zip(quarantined.index, quarantined["reason"], strict=True)) == {
        1: "bad_type:o2_supplemental",
        2: "bad_value:consciousness",
        3: "bad_value:artefact",
        4: "out_of_range:network_delay_ms",
        5: "bad_type:network_delay_ms",
    }
    assert valid["o2_supplemental"].tolist() == [True]
    assert valid.loc[0, "network_delay_ms"] == 5


def test_validate_events_missing_required_column() -> None:
    rows = _good_rows(3)
    del rows["device_id"]
    valid, quarantined = validate_events(pd.DataFrame(rows))
    assert valid.empty and list(valid.columns) == list(EVENT_COLUMNS)
    assert (quarantined["reason"] == "missing:device_id").all()


def test_validate_events_canonical_frame_passes_unchanged() -> None:
    rows = _good_rows(4)
    ms = rows.pop("event_time_ms")
    df = pd.DataFrame(rows)
    df.insert(2, "event_time", schema.timestamps_from_ms(np.array(ms)))
    df["o2_supplemental"] = pd.array([False, True, None, False], dtype="boolean")
    df["consciousness"] = pd.array(["A", None, "V", "A"], dtype="string")
    df["artefact"] = pd.array(["none"] * 4, dtype="string")
    df["clock_skew_ms"] = np.zeros(4, dtype="int64")
    df["network_delay_ms"] = np.arange(4, dtype="int64")
    df = df.astype(EVENT_DTYPES)
    valid, quarantined = validate_events(df)
    assert quarantined.empty
    pd.testing.assert_frame_equal(valid, df)


def test_validate_events_iso_strings_and_naive_times() -> None:
    rows = _good_rows(3)
    del rows["event_time_ms"]
    rows["event_time"] = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01.500+00:00", "nope"]
    valid, quarantined = validate_events(pd.DataFrame(rows))
    assert list(quarantined["reason"]) == ["bad_type:event_time"]
    assert valid["event_time"].iloc[1] == pd.Timestamp(BASE_MS + 1500, unit="ms", tz="UTC")
    rows["event_time"] = pd.to_datetime(["2026-01-01", "2026-01-01", "2026-01-02"])  # naive
    valid, _ = validate_events(pd.DataFrame(rows))
    assert str(valid["event_time"].dtype) == "datetime64[ms, UTC]"


def test_validate_events_agrees_with_the_streams_message_checks() -> None:
    """The checks of vitalstream.stream.parse that apply to a file, with the same reasons:
    ±infinity, an over-long patient id, and event times outside what pandas can hold."""
    rows = _good_rows(9)
    rows["hr"][1] = float("inf")
    rows["spo2"][2] = float("-inf")
    rows["hr"][3] = float("nan")  # NaN in a file is a missing vital: the row stays valid
    rows["patient_id"][4] = "P" * 65
    rows["patient_id"][5] = "P" * 64
    rows["event_time_ms"][6] = -1  # before 1970
    rows["event_time_ms"][7] = schema.EVENT_TIME_END_MS  # 2262-04-11: beyond datetime64[ns]
    rows["event_time_ms"][8] = 32_503_680_000_000  # the year 3000
    valid, quarantined = validate_events(pd.DataFrame(rows, dtype=object), 64)
    assert dict(zip(quarantined.index, quarantined["reason"], strict=True)) == {
        1: "not_finite:hr",
        2: "not_finite:spo2",
        4: "too_long:patient_id",
        6: "out_of_range:event_time",
        7: "out_of_range:event_time",
        8: "out_of_range:event_time",
    }
    assert list(valid.index) == [0, 3, 5]
    assert np.isnan(valid.loc[3, "hr"])
    # Valid rows convert to nanoseconds (what the reference's windows do).
    assert valid["event_time"].astype("datetime64[ns, UTC]").notna().all()


def test_the_representable_range_ends_where_pandas_nanoseconds_end() -> None:
    last = pd.Timestamp(schema.EVENT_TIME_END_MS - 1, unit="ms", tz="UTC")
    assert last.as_unit("ns") < pd.Timestamp.max.tz_localize("UTC")
    assert pd.Timestamp(schema.EVENT_TIME_END_MS, unit="ms", tz="UTC") == pd.Timestamp(
        "2262-04-11", tz="UTC"
    )
    assert schema.EVENT_TIME_MIN_MS == 0


def test_validate_events_refuses_datetimes_before_the_epoch() -> None:
    rows = _good_rows(2)
    del rows["event_time_ms"]
    rows["event_time"] = pd.to_datetime(["1969-12-31T23:59:59Z", "2026-01-01T00:00:00Z"])
    valid, quarantined = validate_events(pd.DataFrame(rows))
    assert list(quarantined["reason"]) == ["out_of_range:event_time"]
    assert len(valid) == 1
