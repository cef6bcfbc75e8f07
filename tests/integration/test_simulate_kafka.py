"""The device simulator against a real broker: everything it reports sent is in the topic, in
the device format, and every critical reading it reports is there with its patient and ``ts``;
the command stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vitalstream.core.config import load_config
from vitalstream.ingest.simulate import SimulatorSpec, injection_from_config, simulate
from vitalstream.services.topics import create_topic, topic_end_offsets

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-simulate-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records, deadline = [], time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is None:
                    records.append(message)
    finally:
        consumer.close()
    return records


def test_fifty_patients_at_2_hz_land_in_the_topic_with_their_criticals(kafka):
    bootstrap, topic = kafka.bootstrap_servers, "simulate-api"
    create_topic(bootstrap, topic, partitions=2)
    spec = SimulatorSpec(
        patients=50, rate_hz=2.0, seconds=3.0, critical_per_mille=20, tachycardic_per_mille=40
    )
    seen = []
    report = simulate(
        spec,
        bootstrap_servers=bootstrap,
        topic=topic,
        injection=injection_from_config(load_config()),
        on_critical=seen.append,
    )
    assert report.sent == 300 and report.failed == 0
    assert sum(topic_end_offsets(bootstrap, topic).values()) == 300
    assert report.critical_count == len(report.criticals) == 6 == len(seen)
    assert report.criticals == seen
    assert len(report.tachycardic_patients) == 2

    records = consume_all(bootstrap, topic, 300)
    values = [json.loads(r.value()) for r in records]
    assert len(values) == 300
    assert all(r.key().decode() == v["patient_id"] for r, v in zip(records, values, strict=True))
    assert {v["patient_id"] for v in values} == {f"P{i:06d}" for i in range(1, 51)}
    critical_in_topic = {
        (v["patient_id"], v["ts"]) for v in values if v["spo2"] == report.critical_spo2
    }
    assert {(c.patient_id, c.ts_ms) for c in report.criticals} <= critical_in_topic
    for critical in report.criticals:  # the record's timestamp is the send stamp
        record = next(
            r
            for r, v in zip(records, values, strict=True)
            if (v["patient_id"], v["ts"]) == (critical.patient_id, critical.ts_ms)
        )
        assert abs(record.timestamp()[1] - critical.send_wall_ns // 1_000_000) < 1_000


def test_the_command_stops_cleanly_on_sigterm_and_reports(kafka, tmp_path):
    report_path = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    command = [
        sys.executable,
        "-m",
        "vitalstream",
        "simulate",
        "--bootstrap-servers",
        kafka.bootstrap_servers,
        "--topic",
        "simulate-cli",  # created by the command
        "--patients",
        "20",
        "--critical-per-mille",
        "50",
        "--report",
        str(report_path),
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            offsets = _offsets_or_none(kafka.bootstrap_servers, "simulate-cli")
            if offsets and sum(offsets.values()) >= 40:
                break
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-2000:]
    report = json.loads(report_path.read_text())
    assert report["interrupted"] is True and report["failed"] == 0
    assert report["sent"] >= 40
    assert (
        sum(topic_end_offsets(kafka.bootstrap_servers, "simulate-cli").values()) == report["sent"]
    )
    assert report["critical_count"] == len(report["criticals"]) >= 2


def _offsets_or_none(bootstrap: str, topic: str) -> dict[int, int] | None:
    try:
        return topic_end_offsets(bootstrap, topic, timeout=2.0)
    except KeyError:  # the command has not created the topic yet
        return None
