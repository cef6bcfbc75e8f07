"""Shared fixtures of the integration tests: one real Kafka broker for the whole session, a
Spark session per module for tests that need Spark without Kafka, and one run of the quick
workflow in a scratch copy for the session (tests/integration/quickrun.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from quickrun import run_quick
from scratch import copy_repository
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


@pytest.fixture(scope="session")
def quick_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the repository for the quick workflow (scratch.copy_repository)."""
    return copy_repository(tmp_path_factory.mktemp("workflow") / "vitalstream")


@pytest.fixture(scope="session")
def quick_run(
    quick_workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The quick workflow, run once in ``quick_workdir``: the workflow tests check it whole and
    the cluster tests compare their run with its headline run. A test that needs it gets the
    run's own time limit (``pytest.mark.timeout(1800)``), not the suite's 900 s."""
    return run_quick(quick_workdir, tmp_path_factory.mktemp("quick_run"))
