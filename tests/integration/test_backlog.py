"""A restart after a backlog: the job reads it in micro-batches of at most
``max_offsets_per_trigger`` records, never at once, and still processes every reading.

Why: the sinks collect each micro-batch on the driver (vitalstream.sinks.batch), so a job that
restarts behind a backlog of hours would otherwise read all of it in its first batch and could
exhaust the driver's heap. Every condition has a finite cap (config/schema.yaml). A driver heap
cannot be shrunk inside one pytest JVM, so the test checks the cause instead: each batch after
the restart read at most the cap (its progress report's numInputRows), the backlog took about
ten of them, every reading reached a window and the queries are alive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from vitalstream.core.config import RunId, condition_params, load_config
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.runsettings import ConditionSettings
from vitalstream.experiments import run as experiment
from vitalstream.measure import metrics
from vitalstream.services import broker, sparkenv
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import Job, start_job
from vitalstream.stream.spec import JobSpec

pytestmark = pytest.mark.integration

CAP = 400  # the job's max_offsets_per_trigger: its usual batch
BACKLOG_BATCHES = 10  # the backlog while it is down: ten usual batches
PATIENTS = 20
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z; one reading a second per patient
WATERMARK_S = 10
TIMEOUT_S = 120


def readings(first_second: int, seconds: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, message) of every patient's reading in each second of the span."""
    for second in range(first_second, first_second + seconds):
        for patient in range(PATIENTS):
            message = {
                "patient_id": f"P{patient:02d}",
                "device_id": f"D{patient:02d}",
                "event_time_ms": START_MS + second * 1000,
                "hr": 70.0 + patient,
                "spo2": 97.0,
                "send_wall_ns": time.time_ns(),
            }
            yield message["patient_id"].encode(), orjson.dumps(message)


def produce(bootstrap: str, topic: str, messages: Iterator[tuple[bytes, bytes]]) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    count = 0
    for key, value in messages:
        producer.produce(topic, value, key=key)
        count += 1
    assert producer.flush(30) == 0
    return count


def heartbeats(bootstrap: str, topic: str, event_time_ms: int, partitions: int) -> None:
    """A heartbeat to every partition: the watermark passes every window of the readings."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    beat = orjson.dumps({"kind": "heartbeat", "event_time_ms": event_time_ms, "send_wall_ns": 1})
    for partition in range(partitions):
        producer.produce(topic, beat, partition=partition)
    assert producer.flush(30) == 0


def job_spec(bootstrap: str, topic: str, out_dir) -> JobSpec:
    """The skeleton's condition as configured (it has a finite cap), with the test's cap."""
    config = load_config()
    params = condition_params(config, RunId("skeleton", "base", 1))
    assert isinstance(params["max_offsets_per_trigger"], int)  # every condition is capped
    params |= {"max_offsets_per_trigger": CAP, "watermark_s": WATERMARK_S}
    condition = ConditionSettings.from_params(params, "skeleton/base")
    return JobSpec.from_condition(
        condition,
        DiagnosticsSpec.from_config(config["diagnostics"]),
        bootstrap_servers=bootstrap,
        topic=topic,
        out_dir=out_dir,
        alerts_topic=None,
        raw_events=False,
    )


def run_until_drained(spark, spec: JobSpec, bootstrap: str, closing_ms: int) -> Job:
    job = start_job(spark, spec, Sinks(spec))
    experiment.wait_until_started(job.queries)
    end = broker.topic_end_offsets(bootstrap, spec.topic)
    experiment.wait_until_drained(job.queries, end, closing_ms, timeout_s=TIMEOUT_S)
    return job


def test_a_restart_reads_a_tenfold_backlog_in_capped_batches(kafka, tmp_path):
    bootstrap = kafka.bootstrap_servers
    topic = f"backlog-{uuid.uuid4().hex[:8]}"
    partitions = 2
    broker.create_topic(bootstrap, topic, partitions)
    spec = job_spec(bootstrap, topic, tmp_path / "run")
    assert spec.max_offsets_per_trigger == CAP
    first_seconds = CAP // PATIENTS  # one usual batch before the stop
    backlog_seconds = BACKLOG_BATCHES * CAP // PATIENTS
    spark = sparkenv.build_session(sparkenv.effective_conf())
    try:
        sent = produce(bootstrap, topic, readings(0, first_seconds))
        run_until_drained(spark, spec, bootstrap, closing_ms=0).stop()

        # Down while ten usual batches arrive, then a restart from the checkpoints.
        sent += produce(bootstrap, topic, readings(first_seconds, backlog_seconds))
        last_ms = START_MS + (first_seconds + backlog_seconds) * 1000
        beat_ms = last_ms + (2 * 60 + WATERMARK_S + 1) * 1000
        heartbeats(bootstrap, topic, beat_ms, partitions)
        job = run_until_drained(spark, spec, bootstrap, beat_ms - WATERMARK_S * 1000)
        try:
            for name, query in job.queries.items():
                rows = [
                    p["numInputRows"] for p in map(experiment.progress_dict, query.recentProgress)
                ]
                assert max(rows) <= CAP, (name, rows)
                # The backlog (and the heartbeats) took at least ten full batches.
                assert sum(r == CAP for r in rows) >= BACKLOG_BATCHES, (name, rows)
                assert sum(rows) == BACKLOG_BATCHES * CAP + partitions, (name, rows)
                assert query.isActive and query.exception() is None, name
        finally:
            job.stop()
    finally:
        spark.stop()
        broker.delete_topic(bootstrap, topic)
    windows = metrics.read_parquet_dir(spec.out_dir / "windows")
    assert windows["n"].sum() == sent == (first_seconds + backlog_seconds) * PATIENTS
