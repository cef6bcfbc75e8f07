"""Bounded resources on a real broker: every topic the workflow creates carries retention
limits (services.topics.create_topic), in time and per partition, also when the caller passes
settings of its own (the fault runs' LogAppendTime topics)."""

from __future__ import annotations

import uuid

import pytest
from vitalstream.services import broker, topics

pytestmark = pytest.mark.integration


def described(bootstrap: str, topic: str) -> dict[str, str]:
    """The topic's own settings, as the broker reports them (describe_configs): only those set
    on the topic, not the broker's defaults (which an external cluster chooses)."""
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

    admin = topics.admin_client(bootstrap, 10.0)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    own = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    return {name: entry.value for name, entry in entries.items() if entry.source == own}


@pytest.mark.parametrize(
    "config", [None, {"message.timestamp.type": "LogAppendTime"}], ids=["plain", "log_append"]
)
def test_a_created_topic_carries_the_retention_limits(kafka, config):
    bootstrap = kafka.bootstrap_servers
    name = f"retention-{uuid.uuid4().hex[:8]}"
    broker.create_topic(bootstrap, name, 2, 1, config)
    try:
        settings = described(bootstrap, name)
        assert settings["retention.ms"] == str(topics.RETENTION_MS) == str(24 * 3600 * 1000)
        assert settings["retention.bytes"] == str(topics.RETENTION_BYTES)
        assert settings["segment.bytes"] == str(topics.SEGMENT_BYTES)
        if config:
            assert settings["message.timestamp.type"] == "LogAppendTime"
        # The alerts topic of a run goes through the same call.
        broker.create_topic(bootstrap, f"{name}.alerts", 1, 1)
        assert described(bootstrap, f"{name}.alerts")["retention.bytes"] == str(
            topics.RETENTION_BYTES
        )
    finally:
        broker.delete_topic(bootstrap, name)
        broker.delete_topic(bootstrap, f"{name}.alerts")
