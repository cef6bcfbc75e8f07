"""vitalstream.sinks.topic against a real broker: a batch's emitted alerts are confirmed before
publish returns, and a broker that is away fails the batch instead of losing its alerts."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from vitalstream.core.diagnostics import alert_id
from vitalstream.services import broker
from vitalstream.sinks.batch import Sinks
from vitalstream.sinks.topic import AlertTopic, DeliveryError
from vitalstream.stream.spec import JobSpec

pytestmark = pytest.mark.integration


def _alerts(n: int) -> pd.DataFrame:
    times = pd.date_range("2026-01-01 08:00", periods=n, freq="min", tz="UTC")
    return pd.DataFrame(
        {
            "alert_id": [alert_id("P1", "tachycardia", int(t.value // 1_000_000)) for t in times],
            "patient_id": "P1",
            "kind": "window",
            "rule": "tachycardia",
            "severity": "high",
            "value": 130.0,
            "time": times,
            "suppressed": [i % 4 == 3 for i in range(n)],  # suppressed ones are not published
        }
    )


def test_every_emitted_alert_is_confirmed_before_publish_returns(kafka) -> None:
    topic = f"alerts.{uuid.uuid4().hex[:8]}"
    broker.create_topic(kafka.bootstrap_servers, topic, 1, 1)
    alerts = _alerts(40)
    emitted = int((~alerts["suppressed"]).sum())
    sink = AlertTopic(kafka.bootstrap_servers, topic, delivery_timeout_s=30)
    assert sink.publish(alerts) == emitted
    # Confirmed means appended: the topic holds them now, with nothing left to flush.
    assert sum(broker.topic_end_offsets(kafka.bootstrap_servers, topic).values()) == emitted
    sink.close()
    broker.delete_topic(kafka.bootstrap_servers, topic)


def test_an_unreachable_broker_fails_the_batch_and_writes_no_commit(tmp_path: Path) -> None:
    """Nothing listens on the port: no alert can be confirmed, so the batch's sinks raise once
    the delivery timeout has passed (Spark does not commit the batch; a restart replays it),
    instead of returning as if the alerts had gone out, and no commit record is written."""
    spec = JobSpec(
        bootstrap_servers=f"127.0.0.1:{broker.free_port()}",
        topic="readings",
        out_dir=tmp_path,
        window_s=60,
        watermark_s=120,
        alerts_topic="readings.alerts",
    )
    sinks = Sinks(spec, delivery_timeout_s=3)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="of 4 alerts refused"):
        sinks.deliver("windows", 0, _alerts(5), pd.DataFrame(), 1, {"alerts": 5})
    assert time.monotonic() - started < 30
    assert not (tmp_path / "commits.jsonl").exists()
    sinks.close()
