"""vitalstream.sinks.webhook against a real broker and real HTTP receivers: every alert of the
alerts topic reaches every receiver once per alert_id, even when the job publishes a batch
twice, a receiver that is down and comes back gets every alert, a new notifier over the same
state folder delivers what the last one left pending, and a slow receiver delays nobody else."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from vitalstream.core.diagnostics import alert_id
from vitalstream.core.livesettings import DeliverySettings
from vitalstream.services import broker
from vitalstream.serving.receiver import Receiver
from vitalstream.sinks.topic import AlertTopic
from vitalstream.sinks.webhook import Notifier

pytestmark = pytest.mark.integration

FAST = DeliverySettings(timeout_s=3.0, backoff_initial_s=0.1, backoff_max_s=0.5, workers=2)


def _alerts(n: int, patient: str) -> pd.DataFrame:
    """``n`` emitted window alerts of one patient, as the job's batch sink holds them."""
    starts = pd.date_range("2026-01-01 08:00", periods=n, freq="min", tz="UTC")
    return pd.DataFrame(
        {
            "alert_id": [
                alert_id(patient, "tachycardia", int(t.value // 1_000_000)) for t in starts
            ],
            "patient_id": patient,
            "kind": "window",
            "rule": "tachycardia",
            "severity": "high",
            "column": "hr",
            "value": 131.0,
            "threshold": 120.0,
            "time": starts,
            "window_start": starts,
            "window_end": starts + pd.Timedelta(minutes=1),
            "suppressed": False,
        }
    )


@pytest.fixture
def topic(kafka: broker.BrokerHandle) -> Iterator[str]:
    name = f"alerts.webhook.{uuid.uuid4().hex[:8]}"
    broker.create_topic(kafka.bootstrap_servers, name, 2, 1)
    yield name
    broker.delete_topic(kafka.bootstrap_servers, name)


def _publish(kafka: broker.BrokerHandle, topic: str, alerts: pd.DataFrame) -> None:
    sink = AlertTopic(kafka.bootstrap_servers, topic, delivery_timeout_s=30)
    assert sink.publish(alerts) == len(alerts)
    sink.close()


def _notifier(kafka: broker.BrokerHandle, topic: str, urls: list[str], state: Path) -> Notifier:
    return Notifier(kafka.bootstrap_servers, topic, urls, state, FAST, group_id=f"g-{topic}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_alerts_published_twice_reach_each_receiver_once_and_a_slow_one_delays_nobody(
    kafka: broker.BrokerHandle, topic: str, tmp_path: Path
) -> None:
    alerts = _alerts(8, "P1")
    fast, slow = Receiver(), Receiver(delay_s=1.0)
    fast.start(), slow.start()
    notifier = _notifier(kafka, topic, [fast.url, slow.url], tmp_path).start()
    try:
        _publish(kafka, topic, alerts)
        _publish(kafka, topic, alerts)  # a replayed micro-batch: the same alert ids again
        assert fast.wait_for(len(alerts), timeout_s=30)
        # The slow receiver takes a second per POST with two at a time: when the fast one has
        # every alert, the slow one cannot have them all yet.
        assert len(slow.first_arrival_ns()) < len(alerts)
        assert slow.wait_for(len(alerts), timeout_s=30)
        assert _wait(lambda: notifier.metrics()["consumed"] == 2 * len(alerts))
        assert _wait(lambda: notifier.metrics()["total"]["delivered"] == 2 * len(alerts))
        metrics = notifier.metrics()
    finally:
        notifier.stop()
        fast.stop(), slow.stop()
    expected = set(alerts["alert_id"])
    for receiver in (fast, slow):
        summary = receiver.summary()
        assert set(summary["ids"]) == expected
        assert (summary["received"], summary["duplicates"]) == (len(alerts), 0)
    # Each alert arrives with its payload as the topic had it (the values that fired it).
    payload = fast.arrivals()[0].payload
    assert (payload["column"], payload["threshold"], payload["value"]) == ("hr", 120.0, 131.0)
    assert payload["window_end"] is not None
    assert (metrics["total"]["pending"], metrics["total"]["rejected"]) == (0, 0)
    # Latency runs to the receiver's answer: the slow one's deliveries count as slower.
    latency = {url: metrics["receivers"][url]["latency_ms"] for url in (fast.url, slow.url)}
    assert latency[slow.url]["p50"] > latency[fast.url]["p50"]
    assert metrics["total"]["latency_ms"]["max"] == latency[slow.url]["max"]


def test_a_receiver_that_is_down_gets_every_alert_when_it_returns(
    kafka: broker.BrokerHandle, topic: str, tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    alerts = _alerts(6, "P2")
    notifier = _notifier(kafka, topic, [url], tmp_path).start()
    receiver = Receiver(port=port)
    try:
        _publish(kafka, topic, alerts)
        # Down: every attempt fails and is retried; the alerts wait in the outbox.
        assert _wait(lambda: notifier.metrics()["total"]["failed_attempts"] >= 2 * len(alerts))
        assert notifier.metrics()["total"]["pending"] == len(alerts)
        receiver.start()
        assert receiver.wait_for(len(alerts), timeout_s=30)
        assert _wait(lambda: notifier.metrics()["total"]["delivered"] == len(alerts))
    finally:
        notifier.stop()
        receiver.stop()
    summary = receiver.summary()
    assert set(summary["ids"]) == set(alerts["alert_id"])
    assert (summary["received"], summary["duplicates"]) == (len(alerts), 0)


def test_a_new_notifier_delivers_what_the_stopped_one_left_pending(
    kafka: broker.BrokerHandle, topic: str, tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    alerts = _alerts(5, "P3")
    first = _notifier(kafka, topic, [url], tmp_path).start()
    try:
        _publish(kafka, topic, alerts)
        assert _wait(lambda: first.metrics()["total"]["pending"] == len(alerts))
        assert first.metrics()["consumed"] == len(alerts)
    finally:
        first.stop()
    receiver = Receiver(port=port)
    receiver.start()
    second = _notifier(kafka, topic, [url], tmp_path).start()
    try:
        assert receiver.wait_for(len(alerts), timeout_s=30)
        assert _wait(lambda: second.metrics()["total"]["delivered"] == len(alerts))
        time.sleep(1.0)  # room for a wrongly re-read topic to show up as consumed alerts
        # The topic's offsets were committed after the outbox had the alerts: nothing re-read.
        assert second.metrics()["consumed"] == 0
    finally:
        second.stop()
        receiver.stop()
    summary = receiver.summary()
    assert set(summary["ids"]) == set(alerts["alert_id"])
    assert (summary["received"], summary["duplicates"]) == (len(alerts), 0)
