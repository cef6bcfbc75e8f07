"""The load generator's pieces: token bucket, message bytes, load settings."""

from __future__ import annotations

import json

import pytest
from vitalstream.ingest import load
from vitalstream.ingest.producer import ProducerSettings


def test_token_bucket_hands_out_rate_times_elapsed():
    bucket = load.TokenBucket(rate=1000.0, burst=1e9, now=0.0)
    taken = sum(bucket.take(t / 100) for t in range(1, 101))  # 1 s in 10-ms ticks
    # Fractions of a token carry over to the next take: nothing is lost but rounding.
    assert taken + bucket.tokens == pytest.approx(1000)
    assert taken >= 999


def test_token_bucket_caps_a_stall_at_the_burst():
    bucket = load.TokenBucket(rate=1000.0, burst=50.0, now=0.0)
    assert bucket.take(10.0) == 50  # ten seconds stalled: only the burst, time lost is lost


def test_token_bucket_rejects_a_zero_rate():
    with pytest.raises(ValueError):
        load.TokenBucket(rate=0.0, burst=1.0, now=0.0)


def test_messages_are_valid_json_with_the_job_fields():
    prefix = load.patient_prefixes(12)[11]
    pools = load.fragment_pools(seed=1, size=4)
    for body in pools["stable"] + pools["deteriorating"] + pools["critical"]:
        message = json.loads(prefix + body + b',"event_time_ms":5,"send_wall_ns":7}')
        assert message["patient_id"] == "L000011"
        assert message["kind"] == "vital"
        assert {"hr", "spo2", "sbp", "dbp", "map", "rr", "temp", "consciousness"} <= set(message)


def test_critical_fragments_trip_the_critical_rules():
    critical = [json.loads(b"{" + f + b"}") for f in load.fragment_pools(seed=1)["critical"]]
    assert all(m["spo2"] < 85 and m["hr"] > 150 for m in critical)


def test_rates_per_patient_scale_with_patients():
    spec = load.LoadSpec.from_mapping(
        {"patients": 300, "rates_per_patient": [1, 2], "step_s": 3}, window_s=60
    )
    assert spec.rates == (300.0, 600.0)
    assert load.expected_messages(spec) == 2700


def test_load_settings_reject_unknown_keys_and_missing_rates():
    with pytest.raises(ValueError, match="unknown"):
        load.LoadSpec.from_mapping({"patients": 1, "rates": [1], "step_s": 1, "x": 1}, 60)
    with pytest.raises(ValueError, match="rates"):
        load.LoadSpec.from_mapping({"patients": 1, "step_s": 1}, 60)


def test_origin_puts_the_first_window_end_lead_seconds_ahead():
    spec = load.LoadSpec(patients=1, rates=(1.0,), step_s=1, lead_s=2, window_s=60)
    origin = spec.origin_ms(now_ms=125_000)
    assert (origin + 2000) % 60_000 == 0 and origin >= 125_000 - 60_000


def test_send_and_wait_is_a_producer_setting_not_a_client_option():
    settings = ProducerSettings.from_mapping({"send_and_wait": True})
    assert settings.send_and_wait
    assert "send_and_wait" not in settings.client_config("x:1")


def test_the_schedule_dates_every_message_of_a_ramp():
    spec = load.LoadSpec.from_mapping(
        {"patients": 10, "rates": [100, 1000], "step_s": 2}, window_s=60
    )
    assert spec.expected_sent(1) == 100
    assert spec.expected_sent(3) == 200 + 1000
    assert spec.expected_sent(10) == 2200  # the ramp is over
    for count in (1, 150, 200, 201, 1700, 2200):
        assert spec.expected_sent(spec.due_s(count)) == pytest.approx(count)
    assert spec.due_s(5000) == 4  # past the ramp: its end
