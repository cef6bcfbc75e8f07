"""The live dashboard's feeds against real servers: AlertFeed reads the alerts topic of the
session's Kafka broker from one hour back, waits for a topic that does not exist yet and drops
republished ids; WindowFeed reads a run's windows from a local OpenSearch node, first the last
hour and then only what is new, tolerates a missing index and counts a server that is away."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from vitalstream.services import searchnode, topics
from vitalstream.serving.livestate import AlertFeed, LiveState, WindowFeed
from vitalstream.sinks import search

pytestmark = pytest.mark.integration
PREFIX = "vslive"


def _wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _alert(i: int) -> dict[str, object]:
    return {
        "alert_id": f"al-{i}",
        "patient_id": f"P{i:03d}",
        "kind": "reading",
        "rule": "critical_tachycardia",
        "severity": "high",
        "value": 150.0 + i,
        "time": f"2026-01-01T00:{i:02d}:00.000Z",
    }


def _produce(bootstrap: str, topic: str, alerts: list[dict], age_s: float = 0.0) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    stamp_ms = int((time.time() - age_s) * 1000)
    for alert in alerts:
        producer.produce(topic, json.dumps(alert).encode(), timestamp=stamp_ms)
    assert producer.flush(30) == 0


def _ids(state: LiveState) -> set[str]:
    return {a["alert_id"] for a in state.snapshot()["alerts"]}


def test_alert_feed_reads_the_last_hour_and_drops_republished_ids(kafka):
    topic = f"alerts-live-{uuid.uuid4().hex[:8]}"
    topics.create_topic(kafka.bootstrap_servers, topic, partitions=2)
    _produce(kafka.bootstrap_servers, topic, [_alert(i) for i in range(3)], age_s=2 * 3600)
    _produce(kafka.bootstrap_servers, topic, [_alert(i) for i in range(3, 8)])
    state = LiveState()
    feed = AlertFeed(kafka.bootstrap_servers, topic, state)
    feed.start()
    try:
        _wait_for(lambda: len(_ids(state)) == 5)
        _produce(kafka.bootstrap_servers, topic, [_alert(i) for i in range(5, 10)])  # 5..7 again
        _wait_for(lambda: feed.received == 10)
    finally:
        feed.stop()
    assert not feed.alive
    assert _ids(state) == {f"al-{i}" for i in range(3, 10)}  # two hours old: not shown
    assert feed.errors == 0


def test_alert_feed_waits_for_a_topic_created_later(kafka):
    topic = f"alerts-later-{uuid.uuid4().hex[:8]}"
    state = LiveState()
    feed = AlertFeed(kafka.bootstrap_servers, topic, state)
    feed.start()
    try:
        time.sleep(1.5)
        assert feed.alive and not _ids(state)
        topics.create_topic(kafka.bootstrap_servers, topic, partitions=1)
        _produce(kafka.bootstrap_servers, topic, [_alert(1)])
        _wait_for(lambda: _ids(state) == {"al-1"})
    finally:
        feed.stop()


@pytest.fixture(scope="module")
def search_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handle = searchnode.start_node(tmp_path_factory.mktemp("opensearch"), tag="pytest-livefeeds")
    try:
        search.setup(handle.url, PREFIX)
        yield handle.url
    finally:
        searchnode.stop(handle)


def _windows(patients: int, minutes: range) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01T00:00", tz="UTC")
    rows = [
        {
            "patient_id": f"P{p:03d}",
            "window_start": start + pd.Timedelta(minutes=m),
            "window_end": start + pd.Timedelta(minutes=m + 1),
            "n": 60,
            "hr_mean": 80.0 + p + m % 3,
            "spo2_mean": 96.0,
            "news2_total": (p + m) % 10,
        }
        for p in range(patients)
        for m in minutes
    ]
    return pd.DataFrame(rows)


def _index(url: str, frame: pd.DataFrame, run: str) -> None:
    index = search.index_name(PREFIX, search.WINDOWS)
    result = search.bulk_index(url, index, frame, search.WINDOWS, run)
    assert result.indexed == len(frame) and not result.errors


def test_window_feed_backfills_then_reads_only_what_is_new(search_url):
    state = LiveState()
    feed = WindowFeed(search_url, PREFIX, "live", state, poll_s=0.2)
    feed.RESCAN_EVERY = 10**9  # the periodic re-read is checked below, on its own
    feed.start()
    try:
        _wait_for(lambda: feed.polls >= 3)  # no index yet: empty answers, not errors
        assert feed.errors == 0 and feed.received == 0
        _index(search_url, _windows(30, range(0, 50)), "live")
        _index(search_url, _windows(30, range(0, 50)), "another-run")
        _wait_for(lambda: state.snapshot()["patients"] == 30 and feed.received >= 1500)
        _index(search_url, _windows(30, range(50, 52)), "live")
        _wait_for(lambda: {t["end"] for t in state.snapshot()["tiles"]} == {_end_ms(52)})
    finally:
        feed.stop()
    assert feed.received == 30 * 52  # each window read once: every poll went on from the last
    tiles = {t["p"]: t for t in state.snapshot()["tiles"]}
    assert len(tiles) == 30 and tiles["P007"]["news2"] == (7 + 51) % 10
    assert feed.poll_once() == 0

    seq = state.seq
    feed.RESCAN_EVERY = 1  # a re-read of the last seconds finds only windows the state has
    assert feed.poll_once() > 0
    assert state.seq == seq

    late = LiveState()  # a dashboard started later backfills the hour from the index
    assert WindowFeed(search_url, PREFIX, "live", late).poll_once() == 30 * 52
    assert late.snapshot()["patients"] == 30


def _end_ms(minute: int) -> int:
    return int(pd.Timestamp("2026-01-01T00:00", tz="UTC").value // 1_000_000) + minute * 60_000


def test_window_feed_counts_a_server_that_is_away_and_keeps_going(tmp_path: Path):
    state = LiveState()
    feed = WindowFeed("http://127.0.0.1:9", PREFIX, "live", state, poll_s=0.1)
    feed.start()
    try:
        _wait_for(lambda: feed.errors >= 3)
        assert feed.alive and "127.0.0.1:9" in feed.last_error
    finally:
        feed.stop()
