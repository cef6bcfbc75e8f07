"""Shared fixtures of the integration tests: one real Kafka broker for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from vitalstream import broker

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.BrokerHandle]:
    """A real single-node KRaft broker on loopback, started once and stopped at the end."""
    handle = broker.LocalBroker().start(tmp_path_factory.mktemp("kafka"), tag="pytest-session")
    try:
        yield handle
    finally:
        broker.stop(handle)
