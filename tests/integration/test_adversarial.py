"""No bad message silences the monitor: a seeded property-based stream through the real job.

Hypothesis mixes a few valid patients with every class of bad message the job must survive
(:data:`BAD_CLASSES`): malformed JSON, wrong types, missing fields, NaN and ±Infinity, values out
of range, far-future and far-past event times, forged heartbeats, unknown kinds, invalid
consciousness levels, empty and over-long patient ids, and exact duplicates of valid readings.
Many bad messages carry a valid patient's id, so a leak would show in that patient's windows.

Each example goes through a real broker and the real Spark job (:func:`start_job` with the real
sinks). Phase one sends the mix; phase two, after the job has closed the first windows, sends a
few valid-looking readings behind the watermark. The test then asserts that

* the job is alive (every query active, none failed);
* every message is accounted for exactly once: processed into a window, dead-lettered with the
  reason of its class, dropped as a duplicate (counted by the job), or dropped as late (the rest:
  exactly the phase-two readings), plus the closing heartbeats;
* the valid patients' windows and alerts equal the batch reference computed on the valid
  readings alone, so no bad message changed a good patient's windows or alerts.

``make test`` runs :data:`DEFAULT_EXAMPLES` seeded examples; set
``VITALSTREAM_ADVERSARIAL_EXAMPLES`` for more (each costs a topic and a job, ~30 s here).
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from vitalstream.core.config import DEFAULT_CONFIG, load_config
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.settings import MessageChecks
from vitalstream.experiments import run as experiment
from vitalstream.measure import metrics
from vitalstream.reference import batch as reference
from vitalstream.services import broker
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import start_job
from vitalstream.stream.spec import JobSpec

pytestmark = pytest.mark.integration

DEFAULT_EXAMPLES = 5
EXAMPLES = int(os.environ.get("VITALSTREAM_ADVERSARIAL_EXAMPLES", DEFAULT_EXAMPLES))
WINDOW_S = 60
WATERMARK_S = 60
STEP_MS = 5_000
CHECKS = MessageChecks(
    event_time_max_ahead_s=300, event_time_max_behind_s=86_400, patient_id_max_length=64
)
NS_UTC = "datetime64[ns, UTC]"

# Normal ranges a valid reading is drawn from; the high and low tails fire the window and
# reading rules (hr > 150, spo2 < 85), so alerts are compared too.
VITAL_RANGES = {
    "hr": (40.0, 190.0),
    "spo2": (75.0, 100.0),
    "sbp": (80.0, 180.0),
    "dbp": (40.0, 100.0),
    "rr": (8.0, 35.0),
    "temp": (35.0, 40.0),
}


@dataclass
class Scenario:
    """One example: the messages of both phases and what each one should become."""

    start_ms: int
    valid: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[bytes] = field(default_factory=list)
    bad: list[tuple[bytes, str]] = field(default_factory=list)
    late: list[dict[str, Any]] = field(default_factory=list)


def _json(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def _with_raw(message: dict[str, Any], name: str, token: str) -> bytes:
    """A JSON object with one field written as a raw token (NaN, Infinity: not JSON numbers,
    but what a device's serialiser may emit and Spark's reader accepts)."""
    text = _json({k: v for k, v in message.items() if k != name}).decode()
    return f'{text[:-1]},"{name}":{token}}}'.encode()


def _bad_malformed(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return f'{{"patient_id": "{m["patient_id"]}", "hr": 8{i}'.encode(), "malformed_json"


def _bad_type(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json(m | {"hr": f"fast{i}"}), "bad_type:hr"


def _bad_missing_patient(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json({k: v for k, v in m.items() if k != "patient_id"} | {"nonce": i}), (
        "missing:patient_id"
    )


def _bad_missing_time(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json({k: v for k, v in m.items() if k != "event_time_ms"} | {"nonce": i}), (
        "missing:event_time_ms"
    )


def _bad_no_vitals(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    kept = {k: v for k, v in m.items() if k not in VITAL_RANGES}
    return _json(kept | {"nonce": i}), "missing:all_vitals"


def _bad_nan(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    token = ("NaN", "Infinity", "-Infinity")[i % 3]
    return _with_raw(m | {"nonce": i}, "hr", token), "not_finite:hr"


def _bad_range(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json(m | {"hr": 99_999.0 + i}), "out_of_range:hr"


def _bad_future(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    # Days ahead of the broker's clock, or past the year 2262 (beyond pandas' timestamps), and
    # critical: before the fix one moved every patient's watermark, the other crashed the batch.
    ahead = (10 * 86_400_000, 40_000_000_000_000_000)[i % 2]
    return _json(m | {"event_time_ms": m["event_time_ms"] + ahead, "hr": 190.0}), (
        "out_of_range:event_time"
    )


def _bad_past(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    behind = (400 * 86_400_000, 10**15, 10**17)[i % 3]
    return _json(m | {"event_time_ms": m["event_time_ms"] - behind}), "out_of_range:event_time"


def _bad_heartbeat(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json(m | {"kind": "heartbeat", "hr": 99_999.0, "nonce": i}), "bad_shape:heartbeat"


def _bad_kind(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json(m | {"kind": f"gossip{i}"}), "unknown_kind"


def _bad_consciousness(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json(m | {"consciousness": f"Z{i}"}), "bad_value:consciousness"


def _bad_empty_id(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json(m | {"patient_id": "", "nonce": i}), "missing:patient_id"


def _bad_long_id(m: dict[str, Any], i: int) -> tuple[bytes, str]:
    return _json(m | {"patient_id": "P" * (CHECKS.patient_id_max_length + 1 + i)}), (
        "too_long:patient_id"
    )


# Each class of bad message: how to make one from a valid message (and a counter, which keeps
# every payload distinct), and the reason the dead letter must give.
BAD_CLASSES: dict[str, Callable[[dict[str, Any], int], tuple[bytes, str]]] = {
    "malformed_json": _bad_malformed,
    "wrong_type": _bad_type,
    "missing_patient": _bad_missing_patient,
    "missing_event_time": _bad_missing_time,
    "no_vitals": _bad_no_vitals,
    "not_finite": _bad_nan,
    "out_of_range": _bad_range,
    "far_future": _bad_future,
    "far_past": _bad_past,
    "forged_heartbeat": _bad_heartbeat,
    "unknown_kind": _bad_kind,
    "bad_consciousness": _bad_consciousness,
    "empty_patient_id": _bad_empty_id,
    "long_patient_id": _bad_long_id,
}


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A few patients of valid readings every 5 s, duplicates of some, bad messages of every
    class (most with a valid patient's id), and late readings for phase two."""
    now_ms = int(time.time() * 1000)
    # Minutes behind the broker's clock: inside the band, and the closing heartbeat too.
    start_ms = (now_ms - 30 * 60_000) // 60_000 * 60_000
    scenario = Scenario(start_ms=start_ms)
    patients = draw(st.integers(min_value=2, max_value=4))
    steps = draw(st.integers(min_value=12, max_value=40))
    for p in range(patients):
        for k in range(steps):
            vitals = {
                name: draw(st.floats(low, high, allow_nan=False).map(lambda v: round(v, 1)))
                for name, (low, high) in VITAL_RANGES.items()
            }
            if draw(st.booleans()):
                vitals["temp"] = None
            scenario.valid.append(
                {
                    "kind": "vital",
                    "patient_id": f"P{p}",
                    "device_id": f"D{p}",
                    "event_time_ms": start_ms + k * STEP_MS + p,
                    "send_wall_ns": 1,
                    "consciousness": draw(st.sampled_from(["A", "A", "A", "V", None])),
                    "o2_supplemental": draw(st.booleans()),
                    **vitals,
                }
            )
    indices = st.integers(min_value=0, max_value=len(scenario.valid) - 1)
    for i in draw(st.lists(indices, min_size=1, max_size=6, unique=True)):
        scenario.duplicates.append(_json(scenario.valid[i]))
    counts = draw(st.lists(st.integers(1, 3), min_size=len(BAD_CLASSES), max_size=len(BAD_CLASSES)))
    for (_, make), count in zip(BAD_CLASSES.items(), counts, strict=True):
        for i in range(count):
            scenario.bad.append(make(scenario.valid[draw(indices)], i))
    # Phase two: normal readings (no rule fires) of valid patients in the first minute, long
    # closed by then; the job must drop and count them, not reopen the window.
    for p in range(draw(st.integers(min_value=1, max_value=3))):
        normal = {"hr": 80.0, "spo2": 97.0, "sbp": 120.0, "dbp": 70.0, "rr": 14.0, "temp": 37.0}
        scenario.late.append(
            {
                "kind": "vital",
                "patient_id": f"P{p % patients}",
                "device_id": f"D{p % patients}",
                "event_time_ms": start_ms + 1_000 + p,
                "send_wall_ns": 1,
                **normal,
            }
        )
    return scenario


def _heartbeat(event_time_ms: int) -> bytes:
    return _json({"kind": "heartbeat", "event_time_ms": event_time_ms, "send_wall_ns": 1})


def _send(
    bootstrap: str, topic: str, values: list[bytes], heartbeat_ms: int, partitions: int
) -> None:
    """Every message with a patient-like key, then a heartbeat to each partition."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, value, key=str(i % 7).encode())
    for partition in range(partitions):
        producer.produce(topic, _heartbeat(heartbeat_ms), partition=partition)
    assert producer.flush(30) == 0, "the test's own messages must reach the broker"


def _drain(job: Any, bootstrap: str, topic: str, closing_ms: int) -> None:
    end = broker.topic_end_offsets(bootstrap, topic)
    experiment.wait_until_drained(job.queries, end, closing_watermark_ms=closing_ms, timeout_s=180)


def _progress(job: Any, name: str) -> list[dict[str, Any]]:
    return [experiment.progress_dict(p) for p in job.queries[name].recentProgress]


def _windows_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True).astype(NS_UTC)
    frame["patient_id"] = frame["patient_id"].astype(str)
    return frame.set_index(["patient_id", "window_start"]).sort_index()


def _assert_windows_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got.index.equals(want.index), "the valid patients' windows differ"
    for column in [c for c in want.columns if c in got.columns and c != "last_event_time"]:
        a, b = got[column], want[column]
        assert (a.isna().to_numpy() == b.isna().to_numpy()).all(), column
        mask = b.notna().to_numpy()
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_allclose(
                a.to_numpy(float)[mask], b.to_numpy(float)[mask], rtol=1e-9, err_msg=column
            )
        else:
            assert a[mask].astype(str).tolist() == b[mask].astype(str).tolist(), column


def _alert_keys(frame: pd.DataFrame) -> list[tuple[str, bool]]:
    if frame.empty:
        return []
    return sorted(zip(frame["alert_id"].astype(str), frame["suppressed"].astype(bool), strict=True))


_counter = iter(range(10**6))


@pytest.mark.timeout(1800)
@seed(20261207)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_no_bad_message_changes_a_good_patients_windows_or_alerts(
    scenario: Scenario, kafka, spark, tmp_path_factory
) -> None:
    bootstrap = kafka.bootstrap_servers
    topic = f"adversarial-{next(_counter)}-{os.getpid()}"
    broker.create_topic(bootstrap, topic, 2)
    out = tmp_path_factory.mktemp("adversarial")
    config = load_config([DEFAULT_CONFIG])
    diagnostics = DiagnosticsSpec.from_config(config["diagnostics"])
    spec = JobSpec(
        bootstrap, topic, out, window_s=WINDOW_S, watermark_s=WATERMARK_S,
        diagnostics=diagnostics, checks=CHECKS,
    )  # fmt: skip
    last_ms = max(m["event_time_ms"] for m in scenario.valid)
    closing_ms = last_ms + 2 * WINDOW_S * 1000
    first = [_json(m) for m in scenario.valid] + scenario.duplicates + [b for b, _ in scenario.bad]
    order = np.random.default_rng(len(first)).permutation(len(first))
    _send(bootstrap, topic, [first[i] for i in order], closing_ms + WATERMARK_S * 1000, 2)

    job = start_job(spark, spec, Sinks(spec))
    try:
        experiment.wait_until_started(job.queries)
        _drain(job, bootstrap, topic, closing_ms)
        second_ms = closing_ms + (2 * WINDOW_S + WATERMARK_S) * 1000
        _send(bootstrap, topic, [_json(m) for m in scenario.late], second_ms, 2)
        _drain(job, bootstrap, topic, second_ms - WATERMARK_S * 1000)
        failed = {n: q.exception() for n, q in job.queries.items() if q.exception()}
        assert not failed, failed
        assert all(q.isActive for q in job.queries.values()), "the job must keep running"
        windows_progress = _progress(job, "windows")
    finally:
        job.stop()
        broker.delete_topic(bootstrap, topic)

    # Dead letter: exactly the bad messages, each with its class's reason.
    deadletter = metrics.read_parquet_dir(out / "deadletter")
    got = Counter(zip(deadletter["value"].str.encode("utf-8"), deadletter["reason"], strict=True))
    assert got == Counter(scenario.bad)

    # Every valid-looking message once: in a window, dropped as duplicate, or dropped as late.
    windows = metrics.read_parquet_dir(out / "windows")
    valid_ids = {m["patient_id"] for m in scenario.valid}
    assert set(windows["patient_id"].astype(str)) == valid_ids
    assert int(windows["n"].sum()) == len(scenario.valid)
    assert metrics.dropped_duplicates(windows_progress) == len(scenario.duplicates)
    produced = len(first) + len(scenario.late)
    accounted = (
        int(windows["n"].sum()) + len(scenario.duplicates) + len(deadletter) + len(scenario.late)
    )
    assert accounted == produced

    # The valid patients' windows and alerts equal the reference on the valid readings alone.
    valid = pd.DataFrame(scenario.valid)
    want = reference.compute(valid, diagnostics, WINDOW_S, None)
    assert len(want["quarantined"]) == 0, want["quarantined"]
    _assert_windows_equal(_windows_frame(windows), _windows_frame(want["windows"]))
    alerts = metrics.read_parquet_dir(out / "alerts")
    assert _alert_keys(alerts) == _alert_keys(want["alerts"])
    assert not math.isnan(float(windows["hr_mean"].max()))
