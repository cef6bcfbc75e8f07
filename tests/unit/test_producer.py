"""Producer encoding and ordering (no broker needed)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest
from vitalstream.data.cohort import CohortParams, generate_cohort
from vitalstream.ingest import producer


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return generate_cohort(CohortParams(patients=5, hours=0.05, seed=3)).events


def test_messages_round_trip_to_the_source_rows(events):
    payloads = producer.encode_messages(events)
    assert len(payloads) == len(events)
    for i in (0, len(events) // 2, len(events) - 1):
        message = orjson.loads(payloads[i] + b',"send_wall_ns":1}')
        row = events.iloc[i]
        assert message["patient_id"] == row["patient_id"]
        assert message["event_time_ms"] == int(row["event_time"].value // 1_000_000)
        for vital in ("hr", "spo2", "temp"):
            expected = row[vital]
            if pd.isna(expected):
                assert message[vital] is None
            else:
                assert message[vital] == pytest.approx(float(expected))
        assert "artefact" not in message and "network_delay_ms" not in message


def test_missing_vitals_travel_as_json_null():
    frame = pd.DataFrame(
        {
            "patient_id": ["P1"],
            "device_id": ["D1"],
            "event_time": pd.to_datetime([0], unit="ms", utc=True),
            "hr": [np.nan],
            "spo2": [97.0],
            "sbp": [120.0],
            "dbp": [80.0],
            "map": [93.0],
            "rr": [16.0],
            "temp": [37.0],
            "o2_supplemental": [None],
            "consciousness": [None],
        }
    )
    message = orjson.loads(producer.encode_messages(frame)[0] + b"}")
    assert message["hr"] is None and message["o2_supplemental"] is None


def test_arrival_order_applies_network_delay():
    frame = pd.DataFrame(
        {
            "event_time": pd.to_datetime([0, 1000, 2000], unit="ms", utc=True),
            "network_delay_ms": [5000, 0, 0],
            "patient_id": ["a", "b", "c"],
        }
    )
    ordered, arrival = producer.arrival_order(frame)
    assert ordered["patient_id"].tolist() == ["b", "c", "a"]
    assert arrival.tolist() == [1000, 2000, 5000]


def test_heartbeat_closes_every_window(events):
    last_ms = int(producer.epoch_ms(events["event_time"]).max())
    hb = producer.heartbeat_event_time_ms(events, window_s=60, watermark_s=120)
    # The last window ends at most one window after the last reading; the watermark must pass it.
    assert hb - 120_000 >= last_ms + 60_000
    assert hb - last_ms <= math.ceil((2 * 60 + 120 + 1) * 1000)


def test_producer_settings_reject_unknown_keys():
    with pytest.raises(ValueError, match="lingerms"):
        producer.ProducerSettings.from_mapping({"lingerms": 5})
    config = producer.ProducerSettings.from_mapping({"acks": "all"}).client_config("x:1")
    assert config["acks"] == "all" and config["bootstrap.servers"] == "x:1"
