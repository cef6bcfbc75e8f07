"""Shared fixtures of the integration tests: one real Kafka broker for the whole session, and
a Spark session per module for tests that need Spark without Kafka."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from vitalstream.services import broker, sparkenv

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.BrokerHandle]:
    """A real single-node KRaft broker on loopback, started once and stopped at the end."""
    handle = broker.LocalBroker().start(tmp_path_factory.mktemp("kafka"), tag="pytest-session")
    try:
        yield handle
    finally:
        broker.stop(handle)


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """A local Spark session with the project's own settings: a pytest process keeps its first
    JVM (heap, class path) for every later session, and the streaming tests need the runs' heap
    and connector jars."""
    session = sparkenv.build_session(sparkenv.effective_conf())
    try:
        yield session
    finally:
        session.stop()
