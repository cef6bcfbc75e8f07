"""The Spark job against a real broker, proven equal to the batch reference.

* In-order data: every reading is processed or quarantined; windows (counts, means, sds, scores)
  and alerts (ids, suppression) equal vitalstream.reference.batch row for row (floats to 1e-9 rel.).
* Late data: the events missing from the streaming windows are exactly the rows the job reports
  as dropped behind the watermark, and every window that received all its events equals the
  reference.
* Bad messages land in the dead letter with their reason while the job keeps running; no bad
  message (far-future or unrepresentable event time, forged heartbeat, NaN/Infinity, invalid
  consciousness, empty or over-long id) changes a good patient's windows, and repeated readings
  are dropped and counted (issue #19: every message ends in exactly one place).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from vitalstream.core.config import DEFAULT_CONFIG, RunId, load_config
from vitalstream.core.diagnostics import DiagnosticsSpec, ThresholdRule
from vitalstream.core.runsettings import Settings
from vitalstream.data.cohort import CohortParams, generate_cohort, write_cohort
from vitalstream.experiments import run as experiment
from vitalstream.measure import metrics
from vitalstream.reference import batch as reference
from vitalstream.services import broker, sparkenv
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import start_job
from vitalstream.stream.spec import JobSpec

pytestmark = pytest.mark.integration
NS_UTC = "datetime64[ns, UTC]"
KEYS = ["patient_id", "window_start"]
COHORT = {
    "patients": 12,
    "hours": 0.5,
    "seed": 7,
    "prevalence": 0.5,
    "ramp_minutes": 6.0,
    "onset_window": [0.2, 0.4],
}
LATE = {
    "network_delay": "exponential",
    "network_delay_mean_ms": 20_000.0,
    "very_late_fraction": 0.01,
    "very_late_ms": 300_000.0,
}


def make_run(kafka, tmp_path_factory, cohort: dict, condition: dict) -> dict:
    cfg = load_config([DEFAULT_CONFIG])
    cfg["cohorts"]["main"] = dict(cohort)
    cfg["experiments"]["skeleton"]["defaults"].update(condition)
    out = tmp_path_factory.mktemp("cohort")
    generated = generate_cohort(CohortParams.from_mapping(cohort))
    paths = write_cohort(generated, out)
    run_dir = tmp_path_factory.mktemp("run")
    result = experiment.run_condition(
        Settings.from_config(cfg),
        RunId("skeleton", "base", 1),
        paths["events"],
        run_dir,
        kafka.bootstrap_servers,
    )
    params = cfg["experiments"]["skeleton"]["defaults"]
    ref = reference.compute(
        generated.events,
        DiagnosticsSpec.from_config(cfg["diagnostics"]),
        params["window_s"],
        params["slide_s"],
    )
    return {"result": result, "events": generated.events, "dir": run_dir, "ref": ref}


@pytest.fixture(scope="module")
def in_order(kafka, tmp_path_factory) -> dict:
    sinks = {"raw_events": True, "alerts_topic": True}
    return make_run(kafka, tmp_path_factory, COHORT, {"speedup": 300, "sinks": sinks})


@pytest.fixture(scope="module")
def late(kafka, tmp_path_factory) -> dict:
    # Lateness is relative to micro-batches: the watermark moves once per batch, so when a batch
    # spans minutes of event time nothing is late. 60x and at most 720 readings a batch (12
    # patients: a minute of event time, however slow the machine) keep it short, so the very
    # late messages (5 min) fall behind the watermark.
    cohort = COHORT | LATE | {"hours": 0.25}
    condition = {"speedup": 60, "watermark_s": 10, "max_offsets_per_trigger": 720}
    return make_run(kafka, tmp_path_factory, cohort, condition)


def streamed_windows(run: dict) -> pd.DataFrame:
    frame = metrics.read_parquet_dir(run["dir"] / "windows")
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True).astype(NS_UTC)
    frame["patient_id"] = frame["patient_id"].astype(str)
    return frame.set_index(KEYS).sort_index()


def reference_windows(run: dict) -> pd.DataFrame:
    frame = run["ref"]["windows"].copy()
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True).astype(NS_UTC)
    frame["patient_id"] = frame["patient_id"].astype(str)
    return frame.set_index(KEYS).sort_index()


def assert_rows_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Numeric columns to 1e-9 relative, everything else exactly; nulls must match."""
    columns = [c for c in want.columns if c in got.columns and c not in ("last_event_time",)]
    assert len(columns) > 40, columns
    for column in columns:
        a, b = got[column], want[column]
        assert (a.isna().to_numpy() == b.isna().to_numpy()).all(), column
        mask = b.notna().to_numpy()
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_allclose(
                a.to_numpy(float)[mask],
                b.to_numpy(float)[mask],
                rtol=1e-9,
                atol=1e-12,
                err_msg=column,
            )
        else:
            assert a[mask].astype(str).tolist() == b[mask].astype(str).tolist(), column


def test_every_reading_is_processed_or_quarantined(in_order):
    result = in_order["result"]
    assert result["events_produced"] == len(in_order["events"])
    assert result["quarantined"] == len(in_order["ref"]["quarantined"]) > 0
    assert result["events_processed"] + result["quarantined"] == result["events_produced"]
    assert result["dropped_by_watermark"] == 0
    # The cohort's resent readings: dropped and counted by the stream as by the reference.
    assert result["dropped_duplicates"] == in_order["ref"]["duplicates"] > 0
    assert result["events_in_windows"] + result["dropped_duplicates"] == result["events_processed"]


def test_in_order_windows_equal_the_reference_row_for_row(in_order):
    got, want = streamed_windows(in_order), reference_windows(in_order)
    assert list(got.index) == list(want.index)
    assert_rows_equal(got, want)


def test_in_order_alerts_equal_the_reference(in_order):
    got = metrics.read_parquet_dir(in_order["dir"] / "alerts")
    want = in_order["ref"]["alerts"]
    assert set(want["rule"]) >= {"tachycardia", "hypoxaemia", "news2_high"}
    assert got["alert_id"].is_unique
    pairs = lambda f: sorted(zip(f["alert_id"], f["suppressed"].astype(bool), strict=True))  # noqa: E731
    assert pairs(got) == pairs(want)
    assert {"window", "reading"} == set(got["kind"])


def test_late_events_missing_from_windows_equal_the_reported_drops(late):
    got, want = streamed_windows(late), reference_windows(late)
    dropped = late["result"]["dropped_by_watermark"]
    assert dropped > 0, "the late cohort should make the watermark drop rows"
    # Spark's own counter sees rows after partial aggregation: some, at most one per event.
    assert 0 < late["result"]["dropped_state_rows"] <= dropped
    joined = want[["n"]].join(got[["n"]], rsuffix="_stream", how="left").fillna(0)
    missing = int((joined["n"] - joined["n_stream"]).sum())
    # A resent reading behind the watermark is dropped as late, but the reference never
    # counted it: the reference's duplicates the stream did not count as such.
    late_duplicates = late["ref"]["duplicates"] - late["result"]["dropped_duplicates"]
    assert late_duplicates >= 0
    assert missing == dropped - late_duplicates
    complete = joined.index[joined["n"] == joined["n_stream"]]
    # Enough complete windows for the comparison below to mean something. (How many are
    # complete depends on how much event time a micro-batch spans, i.e. on batch speed.)
    assert len(complete) >= 20
    assert_rows_equal(got.loc[complete], want.loc[complete])


def test_latency_is_measured_for_every_alert(in_order):
    result = in_order["result"]
    for key, kind in (("alert_latency_ms", "window"), ("reading_alert_latency_ms", "reading")):
        alerts = metrics.read_parquet_dir(in_order["dir"] / "alerts")
        assert result[key]["count"] == int((alerts["kind"] == kind).sum()) > 0
        assert 0 < result[key]["p50"] <= result[key]["p99"] <= result[key]["max"]
    provenance = json.loads((in_order["dir"] / "provenance.json").read_text())
    assert provenance["spark_conf"]["spark.sql.shuffle.partitions"] == "2"
    assert "spark-submit --master 'local[2]'" in provenance["spark_submit"]


def test_raw_events_are_partitioned_by_date_and_hour(in_order):
    parts = sorted(
        p.relative_to(in_order["dir"] / "events").parts[:2]
        for p in (in_order["dir"] / "events").rglob("*.parquet")
    )
    assert parts and all(d.startswith("date=") and h.startswith("hour=") for d, h in parts)
    events = pd.read_parquet(in_order["dir"] / "events")
    assert len(events) == in_order["result"]["events_processed"]


def test_bad_messages_go_to_the_dead_letter_and_good_ones_are_processed(kafka, tmp_path):
    from confluent_kafka import Producer

    topic = "bad-messages"
    broker.create_topic(kafka.bootstrap_servers, topic, 2)
    base = {"patient_id": "P1", "device_id": "D1", "hr": 80.0, "spo2": 97.0, "send_wall_ns": 1}
    # Not at 0 ms: Spark's first watermark is 0, and the duplicate check drops rows at or
    # behind the watermark.
    good = [dict(base, event_time_ms=1_000 * (i + 1)) for i in range(10)]
    bad = {
        b"this is not json": "malformed_json",
        orjson.dumps(dict(base, event_time_ms=5_000, hr="fast")): "bad_type:hr",
        orjson.dumps(dict(base, event_time_ms=5_000, hr=999.0)): "out_of_range:hr",
        orjson.dumps(
            {k: v for k, v in base.items() if k != "patient_id"} | {"event_time_ms": 1}
        ): "missing:patient_id",
        orjson.dumps(dict(base, event_time_ms=None)): "missing:event_time_ms",
        orjson.dumps(
            {"patient_id": "P1", "event_time_ms": 1, "send_wall_ns": 1}
        ): "missing:all_vitals",
        orjson.dumps(dict(base, event_time_ms=1, kind="gossip")): "unknown_kind",
    }
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for message in good:
        producer.produce(topic, orjson.dumps(message), key=b"P1")
    for value in bad:
        producer.produce(topic, value, key=b"P1")
    heartbeat = orjson.dumps({"kind": "heartbeat", "event_time_ms": 600_000, "send_wall_ns": 1})
    for partition in (0, 1):
        producer.produce(topic, heartbeat, partition=partition)
    assert producer.flush(30) == 0

    spec = JobSpec(kafka.bootstrap_servers, topic, tmp_path, window_s=60, watermark_s=10)
    spark = sparkenv.build_session(sparkenv.effective_conf())
    try:
        job = start_job(spark, spec, Sinks(spec))
        experiment.wait_until_started(job.queries)
        end = broker.topic_end_offsets(kafka.bootstrap_servers, topic)
        experiment.wait_until_drained(job.queries, end, closing_watermark_ms=590_000, timeout_s=120)
        assert all(q.isActive for q in job.queries.values()), "the job must keep running"
        job.stop()
    finally:
        spark.stop()
    deadletter = metrics.read_parquet_dir(tmp_path / "deadletter")
    reasons = dict(zip(deadletter["value"].str.encode("utf-8"), deadletter["reason"], strict=True))
    assert reasons == bad
    windows = metrics.read_parquet_dir(tmp_path / "windows")
    assert windows["n"].sum() == len(good)
    broker.delete_topic(kafka.bootstrap_servers, topic)


def test_emitted_alerts_are_published_to_the_alerts_topic(kafka, in_order):
    from confluent_kafka import Consumer, TopicPartition

    topic = json.loads((in_order["dir"] / "provenance.json").read_text())["kafka"]["topic"]
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": "test",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        partition = TopicPartition(f"{topic}.alerts", 0, 0)
        _, high = consumer.get_watermark_offsets(partition, timeout=10)
        consumer.assign([partition])
        ids = []
        while len(ids) < high:
            message = consumer.poll(5)
            assert message is not None, f"only {len(ids)} of {high} alerts read"
            ids.append(json.loads(message.value())["alert_id"])
    finally:
        consumer.close()
    alerts = metrics.read_parquet_dir(in_order["dir"] / "alerts")
    emitted = set(alerts.loc[~alerts["suppressed"].astype(bool), "alert_id"])
    assert set(ids) == emitted and len(ids) == len(emitted)


# --------------------------------------------------------------------------- issue #19: one job

GUARD_WATERMARK_S = 300  # longer than the good data spans: no good reading is ever late
GUARD_STEP_MS = 5_000
GUARD_STEPS = 48  # 4 minutes of readings per patient, 12 per 1-minute window
CRITICAL_TACHYCARDIA = ThresholdRule("critical_tachycardia", "hr", ">", 150, "high")


def _guard_reading(start_ms: int, patient: str, k: int, **fields) -> dict:
    return {
        "kind": "vital",
        "patient_id": patient,
        "device_id": f"D{patient}",
        "event_time_ms": start_ms + k * GUARD_STEP_MS,
        "send_wall_ns": 1,
        "hr": 80.0,
        "spo2": 97.0,
        "consciousness": "A",
        **fields,
    }


def _raw_token(message: dict, name: str, token: str) -> bytes:
    """A JSON object with one field written as a bare token (NaN, Infinity): not JSON, but
    what a device's serialiser may emit and Spark's JSON reader accepts as a number."""
    text = orjson.dumps({k: v for k, v in message.items() if k != name}).decode()
    return f'{text[:-1]},"{name}":{token}}}'.encode()


def _guard_bad_messages(start_ms: int, now_ms: int) -> dict[str, dict[bytes, str]]:
    """Per class, bad messages of the good patients (value → reason), each distinct."""
    p1 = lambda k, **f: _guard_reading(start_ms, "P1", k, **f)  # noqa: E731
    p2 = lambda k, **f: _guard_reading(start_ms, "P2", k, **f)  # noqa: E731
    off = lambda k: start_ms + k * GUARD_STEP_MS + 1  # noqa: E731
    return {
        # A device clock 10 days ahead: before the fix it moved the watermark every patient
        # shares, and every later reading of every patient was dropped as late.
        "far_future": {
            orjson.dumps(p2(3, event_time_ms=now_ms + 10 * 86_400_000)): "out_of_range:event_time"
        },
        # The year 3000, a critical reading: its alert's time is beyond pandas' timestamps and
        # failed the readings batch (on every restart); a huge value fails Spark's ANSI cast.
        "year_3000": {
            orjson.dumps(p1(5, event_time_ms=32_503_680_000_000, hr=190.0)): (
                "out_of_range:event_time"
            ),
            orjson.dumps(p1(6, event_time_ms=9_000_000_000_000_000_000)): (
                "out_of_range:event_time"
            ),
            orjson.dumps(p1(7, event_time_ms=-86_400_000)): "out_of_range:event_time",
        },
        # A reading dressed as a heartbeat: it passed every check and counted hr=99999.
        "forged_heartbeat": {
            orjson.dumps(p1(9, kind="heartbeat", hr=99_999.0)): "bad_shape:heartbeat",
        },
        # Off the good readings' times by 1 ms, so that no bad message shares a reading's key.
        "not_finite": {
            _raw_token(p1(11, event_time_ms=off(11)), "temp", "NaN"): "not_finite:temp",
            _raw_token(p1(13, event_time_ms=off(13)), "hr", "Infinity"): "not_finite:hr",
            _raw_token(p2(13, event_time_ms=off(13)), "spo2", "-Infinity"): "not_finite:spo2",
        },
        "bad_consciousness": {
            orjson.dumps(p1(15, consciousness="Z", hr=140.0)): "bad_value:consciousness",
        },
        "patient_id": {
            orjson.dumps(p1(17, patient_id="")): "missing:patient_id",
            orjson.dumps(p1(17, patient_id="   ")): "missing:patient_id",
            orjson.dumps(p1(17, patient_id="P" * 65)): "too_long:patient_id",
        },
    }


@pytest.fixture(scope="module")
def guarded(kafka, tmp_path_factory) -> dict:
    """One job over two good patients' readings, their repeats and every class of bad message.

    Phase one (first two minutes, the bad messages, two repeats of one reading) is read before
    phase two (last two minutes, one repeat): a watermark a bad message moved in phase one
    would drop phase two as late. A closing heartbeat per partition ends the run.
    """
    from confluent_kafka import Producer

    topic = "guarded-messages"
    broker.create_topic(kafka.bootstrap_servers, topic, 2)
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms - 30 * 60_000) // 60_000 * 60_000
    half = GUARD_STEPS // 2
    good = {
        k: [orjson.dumps(_guard_reading(start_ms, p, k)) for p in ("P1", "P2")]
        for k in range(GUARD_STEPS)
    }
    bad = _guard_bad_messages(start_ms, now_ms)
    repeats = [good[3][0], good[3][0], good[30][1]]
    phase_one = [m for k in range(half) for m in good[k]] + repeats[:2]
    phase_one += [value for messages in bad.values() for value in messages]
    phase_two = [m for k in range(half, GUARD_STEPS) for m in good[k]] + repeats[2:]
    end_ms = start_ms + GUARD_STEPS * GUARD_STEP_MS
    heartbeat = orjson.dumps(
        {"kind": "heartbeat", "event_time_ms": end_ms + (GUARD_WATERMARK_S + 60) * 1000,
         "send_wall_ns": 1}
    )  # fmt: skip

    def send(values: list[bytes], heartbeats: bool) -> None:
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        for value in values:
            producer.produce(topic, value, key=b"P")
        for partition in (0, 1) if heartbeats else ():
            producer.produce(topic, heartbeat, partition=partition)
        assert producer.flush(30) == 0

    out = tmp_path_factory.mktemp("guarded")
    diagnostics = DiagnosticsSpec(reading_rules=(CRITICAL_TACHYCARDIA,))
    spec = JobSpec(
        kafka.bootstrap_servers, topic, out, window_s=60, watermark_s=GUARD_WATERMARK_S,
        diagnostics=diagnostics,
    )  # fmt: skip
    send(phase_one, heartbeats=False)
    spark = sparkenv.build_session(sparkenv.effective_conf())
    try:
        job = start_job(spark, spec, Sinks(spec))
        experiment.wait_until_started(job.queries)
        for values, heartbeats, closing in ((None, False, 0), (phase_two, True, end_ms)):
            if values:
                send(values, heartbeats)
            end = broker.topic_end_offsets(kafka.bootstrap_servers, topic)
            experiment.wait_until_drained(job.queries, end, closing, timeout_s=180)
        alive = {name: q.isActive and q.exception() is None for name, q in job.queries.items()}
        progress = [experiment.progress_dict(p) for p in job.queries["windows"].recentProgress]
        job.stop()
    finally:
        spark.stop()
        broker.delete_topic(kafka.bootstrap_servers, topic)
    deadletter = metrics.read_parquet_dir(out / "deadletter")
    return {
        "dir": Path(out),
        "alive": alive,
        "bad": bad,
        "repeats": len(repeats),
        "progress": progress,
        "deadletter": dict(
            zip(deadletter["value"].str.encode("utf-8"), deadletter["reason"], strict=True)
        ),
        "windows": metrics.read_parquet_dir(out / "windows"),
        "alerts": metrics.read_parquet_dir(out / "alerts"),
    }


def _dead_lettered(guarded: dict, cls: str) -> None:
    want = guarded["bad"][cls]
    assert {v: guarded["deadletter"].get(v) for v in want} == want


def _good_windows_unaffected(guarded: dict) -> None:
    """Both good patients: four 1-minute windows of 12 readings each, normal values only."""
    windows = guarded["windows"]
    assert sorted(set(windows["patient_id"].astype(str))) == ["P1", "P2"]
    for _, rows in windows.groupby("patient_id"):
        assert rows["n"].tolist() == [12, 12, 12, 12]
        assert (rows["hr_max"] == 80.0).all() and (rows["hr_min"] == 80.0).all()
        assert (rows["spo2_min"] == 97.0).all() and (rows["consciousness_worst"] == "A").all()


def test_every_query_survives_the_bad_messages(guarded):
    assert guarded["alive"] == {"windows": True, "readings": True}
    every = {v: r for messages in guarded["bad"].values() for v, r in messages.items()}
    assert guarded["deadletter"] == every
    _good_windows_unaffected(guarded)


def test_a_far_future_reading_of_one_patient_no_longer_silences_everyone(guarded):
    _dead_lettered(guarded, "far_future")
    _good_windows_unaffected(guarded)


def test_a_year_3000_critical_reading_does_not_crash_the_batch(guarded):
    _dead_lettered(guarded, "year_3000")
    assert guarded["alive"]["readings"]
    assert guarded["alerts"].empty, "no reading alert for a refused reading"


def test_a_forged_heartbeat_is_dead_lettered(guarded):
    _dead_lettered(guarded, "forged_heartbeat")
    _good_windows_unaffected(guarded)


def test_nan_and_infinity_are_dead_lettered(guarded):
    _dead_lettered(guarded, "not_finite")
    _good_windows_unaffected(guarded)


def test_an_invalid_consciousness_level_is_dead_lettered(guarded):
    _dead_lettered(guarded, "bad_consciousness")
    _good_windows_unaffected(guarded)


def test_empty_and_over_long_patient_ids_are_dead_lettered(guarded):
    _dead_lettered(guarded, "patient_id")
    _good_windows_unaffected(guarded)


def test_repeated_readings_are_dropped_and_counted(guarded):
    # Two repeats read in phase one, one in phase two; the closing heartbeats (one per
    # partition, one event time) are not readings and not counted.
    assert metrics.dropped_duplicates(guarded["progress"]) == guarded["repeats"] == 3
    assert int(guarded["windows"]["n"].sum()) == 2 * GUARD_STEPS
    _good_windows_unaffected(guarded)
