"""``up`` with the services named in the configuration: it starts no broker and no search
node of its own, uses those, and stops nothing it did not start.

The "external" services are real ones started here on loopback (the session's Kafka broker and
an OpenSearch node), as the external profile's test does for the workflow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer
from vitalstream.services import broker, searchnode, topics
from vitalstream.serving.benchlive import UpProcess
from vitalstream.serving.receiver import Receiver
from vitalstream.sinks import search

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def search_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handle = searchnode.start_node(tmp_path_factory.mktemp("opensearch"), tag="pytest-up-ext")
    try:
        yield handle.url
    finally:
        searchnode.stop(handle)


def test_up_uses_the_configured_broker_and_search_node(
    kafka: broker.BrokerHandle, search_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(port=0)
    hook = receiver.start()
    config = tmp_path / "external.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kafka": {"bootstrap_servers": kafka.bootstrap_servers},
                "search": {"url": search_url},
                "live": {"topic": "vitals.ext", "alerts_topic": "alerts.ext", "window_s": 5},
            }
        )
    )
    state = tmp_path / "state"
    command = ["python", "-m", "vitalstream", "up", "--config", str(config)]
    command += ["--state-dir", str(state), "--webhook", hook, "--dashboard-port", "0"]
    up = UpProcess(command, tmp_path / "up.log")
    try:
        up.wait_ready(300)
        assert up.lines["bootstrap"] == kafka.bootstrap_servers
        assert up.lines["search"] == search_url
        assert not (state / "broker").exists() and not (state / "search").exists()
        reading = {"patient_id": "ext-1", "ts": time.time_ns() // 1_000_000, "hr": 80,
                   "spo2": 79, "sbp": 120}  # fmt: skip
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        producer.produce("vitals.ext", json.dumps(reading).encode(), key=b"ext-1")
        producer.flush(30)
        assert receiver.wait_for(1, 120), (tmp_path / "up.log").read_text()[-3000:]
        assert receiver.arrivals()[0].payload["patient_id"] == "ext-1"
    finally:
        assert up.stop() == 0
        receiver.stop()
    # Neither external service was stopped with it.
    assert "vitals.ext" in topics.list_topics(kafka.bootstrap_servers)
    assert search.server_info(search_url)
