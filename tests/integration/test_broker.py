"""Integration tests of services.broker against a real local Kafka broker (KRaft, no Docker).

They prove what the workflow relies on: a broker starts in seconds on free loopback ports,
keyed records round-trip without loss, ``topic_end_offsets`` counts them, and no JVM is left
behind, neither after ``stop`` nor after ``kill -9`` of the process that started it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from confluent_kafka import Consumer, Producer
from vitalstream.core.paths import SCRIPTS_DIR
from vitalstream.services import broker, supervise

pytestmark = pytest.mark.integration

N_MESSAGES = 1000
N_PARTITIONS = 6


def _tag(name: str) -> str:
    """A marker unique to this test run, so brokers of other runs are never confused with ours."""
    return f"pytest-{name}-{uuid.uuid4().hex[:8]}"


def _tagged(tag: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose command line carries ``-Dvitalstream.broker=<tag>``."""
    marker = f"-D{broker.MARKER_PROPERTY}={tag}"
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.BrokerHandle]:
    """One broker for the module's data-path tests (starting one costs ~2-3 s)."""
    handle = broker.LocalBroker().start(tmp_path_factory.mktemp("kafka"), tag=_tag("module"))
    try:
        yield handle
    finally:
        broker.stop(handle)
        assert not _tagged(handle.tag)


def test_kafka_version_comes_from_the_jars() -> None:
    version = broker.kafka_version(broker.ensure_kafka_jars())
    assert version.split(".")[0] == "4"


def test_thousand_keyed_messages_round_trip(kafka: broker.BrokerHandle) -> None:
    bootstrap = kafka.bootstrap_servers
    topic = "vitals-roundtrip"
    broker.create_topic(bootstrap, topic, N_PARTITIONS)
    broker.create_topic(bootstrap, topic, N_PARTITIONS)  # exists_ok: idempotent

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for i in range(N_MESSAGES):
        producer.produce(topic, key=f"patient-{i % 37}", value=f"{i}")
    assert producer.flush(30) == 0

    offsets = broker.topic_end_offsets(bootstrap, topic)
    assert sorted(offsets) == list(range(N_PARTITIONS))
    assert sum(offsets.values()) == N_MESSAGES
    assert sum(1 for end in offsets.values() if end > 0) > 1  # keys spread over partitions

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"roundtrip-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    values: list[int] = []
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(values) < N_MESSAGES and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            values.append(int(msg.value()))
            partitions_of_key[msg.key().decode()].add(msg.partition())
    finally:
        consumer.close()
    assert sorted(values) == list(range(N_MESSAGES))
    assert all(len(parts) == 1 for parts in partitions_of_key.values())  # keyed => one partition


def test_create_and_delete_topic(kafka: broker.BrokerHandle) -> None:
    bootstrap = kafka.bootstrap_servers
    broker.create_topic(bootstrap, "scratch", 2, config={"retention.ms": "60000"})
    assert "scratch" in broker.list_topics(bootstrap)
    with pytest.raises(ValueError, match="exists with 2 partitions"):
        broker.create_topic(bootstrap, "scratch", 3)
    broker.delete_topic(bootstrap, "scratch")
    broker.delete_topic(bootstrap, "scratch")  # missing_ok: idempotent
    assert "scratch" not in broker.list_topics(bootstrap)


def test_parallel_starts_get_distinct_ports_and_stop_leaves_nothing(tmp_path: Path) -> None:
    tags = [_tag("parallel-a"), _tag("parallel-b")]
    launcher = broker.LocalBroker()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(launcher.start, tmp_path / tag, tag=tag) for tag in tags]
        handles = [f.result() for f in futures]
    try:
        ports = {p for h in handles for p in (h.port, h.controller_port)}
        assert len(ports) == 4
        for handle in handles:
            assert [p.pid for p in _tagged(handle.tag)] == [handle.pid]
            broker.create_topic(handle.bootstrap_servers, "ping", 1)
            assert broker.topic_end_offsets(handle.bootstrap_servers, "ping") == {0: 0}
    finally:
        for handle in handles:
            broker.stop(handle)
    for handle in handles:
        assert not _tagged(handle.tag)
        assert not psutil.pid_exists(handle.pid) or (
            psutil.Process(handle.pid).status() == psutil.STATUS_ZOMBIE
        )
        broker.stop(handle)  # idempotent


def test_taken_port_is_refused_or_avoided(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port grabbed by someone else is refused (fixed port) or avoided (random ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))  # bound, not listening: Kafka's bind fails
        taken = squatter.getsockname()[1]
        with pytest.raises(broker.BrokerStartError, match="already in use"):
            broker.LocalBroker().start(tmp_path, port=taken, tag=_tag("fixed"))
        picks = iter([taken])
        real_free_port = supervise.free_port
        monkeypatch.setattr(supervise, "free_port", lambda: next(picks, None) or real_free_port())
        handle = broker.LocalBroker().start(tmp_path, tag=_tag("clash"))
        try:
            assert handle.port != taken
            assert broker.list_topics(handle.bootstrap_servers) == []
        finally:
            broker.stop(handle)
    assert not _tagged(handle.tag)


PARENT_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from vitalstream.services import broker
    broker.start_for_workflow(Path(sys.argv[1]), Path(sys.argv[2]), os.getpid())
    print("READY", flush=True)
    time.sleep(600)
    """
)


def test_watchdog_kills_broker_when_parent_is_killed(tmp_path: Path) -> None:
    """Stands in for ``kill -9`` of Snakemake: the broker must not outlive its workflow."""
    state_file = tmp_path / "broker.json"
    work_dir = tmp_path / "wd"
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS_DIR)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, str(state_file), str(work_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "READY"
        state = broker.read_state(state_file)
        assert broker.read_bootstrap(state_file) == state["bootstrap_servers"]
        assert state["kafka_version"] == broker.kafka_version()
        assert [p.pid for p in _tagged(state["tag"])] == [state["pid"]]
        assert psutil.Process(state["watchdog_pid"]).is_running()
        status = broker.broker_status(state_file)  # finds the watchdog by its markers
        assert status["alive"] and status["ready"] and status["watchdog_alive"]

        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_until(lambda: not _tagged(state["tag"]), 30), "broker outlived its parent"
        assert _wait_until(
            lambda: (
                not psutil.pid_exists(state["watchdog_pid"])
                or psutil.Process(state["watchdog_pid"]).status() == psutil.STATUS_ZOMBIE
            ),
            10,
        ), "watchdog did not exit after stopping the broker"
        assert "died: stopping broker" in (work_dir / "watchdog.log").read_text()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        broker.stop_from_state(state_file)
    assert not state_file.exists()
    assert not broker.stop_from_state(state_file)  # idempotent
