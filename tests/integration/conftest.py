"""Shared fixtures of the integration tests: one real Kafka broker for the whole session, a
Spark session per module for tests that need Spark without Kafka, and one run of the quick
workflow in a scratch copy for the session (tests/integration/quickrun.py).

The quick workflow takes most of the suite's time, and its Spark jobs leave about half of the
two cores idle. So it starts in the background at the first integration test, and the tests
that need it run last (``pytest_collection_modifyitems``): the other integration tests and the
unit tests run beside it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from quickrun import QuickRun
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


def needs_quick_run(item: pytest.Item) -> bool:
    """Whether a test uses the quick workflow's run (directly or through another fixture)."""
    return "quick_run" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Integration tests that do not need the quick workflow first, then the unit tests, then
    the tests that need it: all of them but the last run while it runs. A test that spoils the
    quick run's results (marker ``spoils_quick_run``) comes after every test that reads them.
    Otherwise in file order (the sort is stable)."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("spoils_quick_run"):
            return 3
        if needs_quick_run(item):
            return 2
        return 0 if item.get_closest_marker("integration") else 1

    items.sort(key=rank)


@pytest.fixture(scope="session", autouse=True)
def quick_started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuickRun | None]:
    """The quick workflow, started at the session's first integration test when a selected
    test needs it (None otherwise); stopped at the end if it still runs."""
    if not any(needs_quick_run(item) for item in request.session.items):
        yield None
        return
    run = QuickRun(request.getfixturevalue("quick_workdir"), tmp_path_factory.mktemp("quick_run"))
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture(scope="session")
def quick_run(quick_started: QuickRun | None) -> subprocess.CompletedProcess[str]:
    """The quick workflow's finished run in ``quick_workdir``: the workflow tests check it
    whole and the cluster tests compare their run with its headline run. A test that needs it
    gets the run's own time limit (``pytest.mark.timeout(1800)``), not the suite's 900 s."""
    assert quick_started is not None
    return quick_started.finish()
