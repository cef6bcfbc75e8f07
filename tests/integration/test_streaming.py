"""The Spark job against a real broker, proven equal to the batch reference.

* In-order data: every reading is processed or quarantined; windows (counts, means, sds, scores)
  and alerts (ids, suppression) equal vitalstream.reference.batch row for row (floats to 1e-9 rel.).
* Late data: the events missing from the streaming windows are exactly the rows the job reports
  as dropped behind the watermark, and every window that received all its events equals the
  reference.
* Bad messages land in the dead letter with their reason while the job keeps running.
"""

from __future__ import annotations

import json

import numpy as np
import orjson
import pandas as pd
import pytest
from vitalstream.core.config import DEFAULT_CONFIG, RunId, load_config
from vitalstream.core.diagnostics import DiagnosticsSpec
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
    # Lateness is relative to micro-batches: the watermark moves once per batch, so at a high
    # speed-up a batch spans minutes of event time and nothing is late. 60x keeps a batch to
    # seconds of event time, so the very late messages (5 min) fall behind the watermark.
    cohort = COHORT | LATE | {"hours": 0.25}
    return make_run(kafka, tmp_path_factory, cohort, {"speedup": 60, "watermark_s": 10})


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
    assert result["events_in_windows"] == result["events_processed"]


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
    assert missing == dropped
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
    good = [dict(base, event_time_ms=1_000 * i) for i in range(10)]
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
