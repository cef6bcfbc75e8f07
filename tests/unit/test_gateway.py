"""Edge gateways: coalescing, sampling and gateway assignment on hand-made readings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from vitalstream.data import gateway
from vitalstream.data.cohort import CohortParams, generate_cohort
from vitalstream.data.gateway import GatewaySpec, apply_gateway

T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def readings(seconds, hr, device="D1", patient="P1", **columns) -> pd.DataFrame:
    n = len(seconds)
    frame = pd.DataFrame(
        {
            "patient_id": pd.array([patient] * n, dtype="string"),
            "device_id": pd.array([device] * n, dtype="string"),
            "event_time": (T0 + pd.to_timedelta(seconds, unit="s")).astype("datetime64[ms, UTC]"),
            "hr": np.asarray(hr, dtype=float),
            "spo2": 97.0,
            "sbp": 120.0,
            "dbp": 70.0,
            "map": 85.0,
            "rr": 16.0,
            "temp": 37.0,
            "o2_supplemental": pd.array([False] * n, dtype="boolean"),
            "consciousness": pd.array(["A"] * n, dtype="string"),
            "artefact": pd.array(["none"] * n, dtype="string"),
            "clock_skew_ms": np.zeros(n, dtype=np.int64),
            "network_delay_ms": np.zeros(n, dtype=np.int64),
        }
    )
    for name, values in columns.items():
        frame[name] = pd.array(values, dtype=frame[name].dtype)
    return frame


def test_coalesce_means_each_bucket_and_sends_it_when_the_bucket_ends():
    events = readings(range(20), [80 + i for i in range(20)])
    out, report = apply_gateway(events, GatewaySpec("coalesce", seconds=10))
    assert len(out) == 2 and report.messages_out == 2 and report.readings_in == 20
    # Means of 80..89 and 90..99 (84.5, 94.5), rounded as the generator rounds (half to even).
    assert out["hr"].tolist() == [84.0, 94.0]
    # Event time of the bucket's last reading; it leaves the gateway at the bucket's end.
    assert out["event_time"].tolist() == [T0 + pd.Timedelta(s, "s") for s in (9, 19)]
    assert out["network_delay_ms"].tolist() == [1000, 1000]


def test_coalesce_leaves_out_impossible_values_and_counts_them():
    hr = [80.0, 400.0, 82.0, np.nan]  # 400 bpm is outside the schema's range; NaN is missing
    out, report = apply_gateway(readings(range(4), hr), GatewaySpec("coalesce", seconds=10))
    assert out["hr"].tolist() == [81.0]
    assert report.excluded_out_of_range == 1


def test_coalesce_merges_exact_duplicates_once():
    events = readings([0, 0, 1], [80.0, 80.0, 86.0])
    out, report = apply_gateway(events, GatewaySpec("coalesce", seconds=10))
    assert out["hr"].tolist() == [83.0]
    assert report.duplicates_merged == 1


def test_coalesce_keeps_the_worst_consciousness_and_any_oxygen():
    events = readings(
        range(3), [80, 80, 80], consciousness=["A", "V", "A"], o2_supplemental=[False, True, False]
    )
    out, _ = apply_gateway(events, GatewaySpec("coalesce", seconds=10))
    assert out["consciousness"].tolist() == ["V"]
    assert out["o2_supplemental"].tolist() == [True]


def test_coalesce_waits_for_a_reading_that_arrives_after_the_bucket():
    events = readings(range(3), [80, 80, 80], network_delay_ms=[0, 0, 15_000])
    out, _ = apply_gateway(events, GatewaySpec("coalesce", seconds=10))
    # The last reading (t = 2 s) arrives at 17 s, after the bucket's end at 10 s.
    assert out["network_delay_ms"].tolist() == [15_000]


def test_sample_keeps_one_in_n_per_device_deterministically():
    events = pd.concat(
        [
            readings(range(100), [80] * 100, device=d, patient=p)
            for d, p in (("D1", "P1"), ("D2", "P2"))
        ],
        ignore_index=True,
    )
    first, _ = apply_gateway(events, GatewaySpec("sample", every=5))
    again, _ = apply_gateway(events, GatewaySpec("sample", every=5))
    assert first["device_id"].value_counts().to_dict() == {"D1": 20, "D2": 20}
    pd.testing.assert_frame_equal(first, again)


def test_forward_changes_nothing_but_adds_gateways():
    events = generate_cohort(CohortParams(patients=7, hours=0.02, seed=5)).events
    out, report = apply_gateway(events, GatewaySpec("forward", group_size=3))
    pd.testing.assert_frame_equal(out.drop(columns="gateway_id"), events.reset_index(drop=True))
    assert report.gateways == 3  # 7 devices, 3 to a gateway
    assert out.groupby("gateway_id")["device_id"].nunique().tolist() == [3, 3, 1]


def test_coalesced_cohort_keeps_every_device_and_window():
    events = generate_cohort(CohortParams(patients=4, hours=0.1, seed=9)).events
    out, _ = apply_gateway(events, GatewaySpec("coalesce", seconds=30))
    assert set(out["device_id"]) == set(events["device_id"])
    # 6 minutes of readings: 12 buckets of 30 s per device.
    assert out.groupby("device_id").size().eq(12).all()
    assert (
        gateway._epoch_ms(out["event_time"]).min() >= gateway._epoch_ms(events["event_time"]).min()
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "coalesce"}, "seconds"),
        ({"mode": "sample", "every": 0}, "every"),
        ({"mode": "teleport"}, "mode"),
        ({"mode": "forward", "size": 3}, "unknown gateway settings"),
    ],
)
def test_bad_gateway_settings_are_clear_errors(values, message):
    with pytest.raises(ValueError, match=message):
        GatewaySpec.from_mapping(values)
