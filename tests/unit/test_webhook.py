"""vitalstream.sinks.outbox and vitalstream.sinks.webhook without Kafka: the outbox keeps one
row per (alert, receiver) across reopens, failed attempts back off and are retried until
delivered, a 4xx that a retry cannot fix is rejected once. Real HTTP servers throughout: the
reference receiver and a tiny server that answers a scripted list of statuses."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from vitalstream.core.livesettings import DeliverySettings
from vitalstream.serving.receiver import Receiver
from vitalstream.sinks.outbox import DELIVERED, PENDING, REJECTED, Outbox, QueuedAlert
from vitalstream.sinks.webhook import (
    ReceiverWorkers,
    backoff_s,
    classify,
    percentiles_ms,
    post,
    status_text,
)

FAST = DeliverySettings(timeout_s=2.0, backoff_initial_s=0.05, backoff_max_s=0.2, workers=2)


def _alert(n: int, first_seen_ns: int | None = None) -> QueuedAlert:
    alert_id = f"alert-{n:03d}"
    payload = json.dumps({"alert_id": alert_id, "patient_id": "P1", "rule": "tachycardia"})
    return QueuedAlert(alert_id, payload, first_seen_ns or time.time_ns() + n)


class Scripted:
    """A real HTTP server that answers POSTs with the next status of a list (the last one
    repeats), and records which ids it was sent and when."""

    def __init__(self, statuses: list[int], retry_after: str | None = None) -> None:
        self.statuses = list(statuses)
        self.calls: list[tuple[str | None, float]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.calls.append((self.headers.get("Idempotency-Key"), time.monotonic()))
                status = owner.statuses.pop(0) if len(owner.statuses) > 1 else owner.statuses[0]
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"nope")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    rec = Receiver(log=tmp_path / "received.jsonl")
    rec.start()
    yield rec
    rec.stop()


def _wait(predicate: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# --------------------------------------------------------------------------------- outbox


def test_a_republished_alert_is_queued_once_per_receiver(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    urls = ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]
    assert outbox.add([_alert(1), _alert(2)], urls) == 4
    # The same ids again (a replayed micro-batch, a re-read after a crash): nothing new.
    assert outbox.add([_alert(2), _alert(1)], urls) == 0
    assert outbox.add([_alert(3)], urls) == 2
    assert outbox.counts() == {url: {PENDING: 3, DELIVERED: 0, REJECTED: 0} for url in urls}
    outbox.close()


def test_the_outbox_keeps_each_row_state_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    url = "http://127.0.0.1:1/"
    outbox = Outbox(path)
    first = _alert(1, first_seen_ns=1_000)
    outbox.add([first, _alert(2, 2_000), _alert(3, 3_000)], [url])
    outbox.delivered("alert-001", url, 5_000, 200)
    outbox.rejected("alert-002", url, "HTTP 400 Bad Request", 400)
    outbox.retry("alert-003", url, 9_000, "ConnectionRefusedError", None)
    outbox.close()

    again = Outbox(path)
    assert again.add([first], [url]) == 0  # delivered stays delivered
    rows = {r.alert_id: r for r in again.rows(url)}
    assert (rows["alert-001"].state, rows["alert-001"].delivered_ns) == (DELIVERED, 5_000)
    assert rows["alert-001"].payload == first.payload
    assert (rows["alert-002"].state, rows["alert-002"].last_status) == (REJECTED, 400)
    assert rows["alert-003"].state == PENDING
    assert (rows["alert-003"].attempts, rows["alert-003"].next_try_ns) == (1, 9_000)
    assert again.due(url, 8_999, 10) == []
    assert [r.alert_id for r in again.due(url, 9_000, 10)] == ["alert-003"]
    again.close()


def test_due_rows_come_oldest_first_and_skip_those_in_flight(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    url = "http://127.0.0.1:1/"
    outbox.add([_alert(3, 300), _alert(1, 100), _alert(2, 200)], [url])
    assert [r.alert_id for r in outbox.due(url, 1_000, 2)] == ["alert-001", "alert-002"]
    assert [r.alert_id for r in outbox.due(url, 1_000, 2, skip={"alert-001"})] == [
        "alert-002",
        "alert-003",
    ]
    assert outbox.next_try_ns(url) == 100
    outbox.close()


# ------------------------------------------------------------------------ retry or reject


def test_backoff_doubles_from_the_initial_wait_up_to_the_maximum() -> None:
    settings = DeliverySettings(backoff_initial_s=0.5, backoff_max_s=30.0)
    full = [backoff_s(n, settings, jitter=1.0) for n in range(1, 10)]
    assert full == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    # Jitter spreads each wait over its upper half, never beyond the maximum.
    assert [backoff_s(n, settings, jitter=0.0) for n in (1, 4, 9)] == [0.25, 2.0, 15.0]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (400, "rejected"),
        (401, "rejected"),
        (404, "rejected"),
        (410, "rejected"),
        (301, "rejected"),
    ],
)
def test_statuses_a_retry_may_fix_are_retried_the_others_rejected(status: int, outcome: str):
    assert classify(status) == outcome


def test_post_sends_the_alert_with_its_idempotency_key(receiver: Receiver) -> None:
    body = json.dumps({"alert_id": "a-1", "rule": "hypoxia"}).encode()
    attempt = post(receiver.url, "a-1", body, timeout_s=2)
    assert (attempt.outcome, attempt.status, attempt.error) == ("delivered", 200, None)
    (arrival,) = receiver.arrivals()
    assert (arrival.alert_id, arrival.duplicate, arrival.payload["rule"]) == (
        "a-1",
        False,
        "hypoxia",
    )


def test_nobody_listening_is_a_retry_with_the_reason() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    attempt = post(f"http://127.0.0.1:{port}/", "a-1", b"{}", timeout_s=2)
    assert attempt.outcome == "retry" and attempt.status is None
    assert "Connection" in (attempt.error or "")


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(tmp_path: Path) -> None:
    server = Scripted([503, 429, 200])
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.add([_alert(1)], [server.url])
    workers = ReceiverWorkers(server.url, outbox, FAST).start()
    try:
        assert _wait(lambda: outbox.counts()[server.url][DELIVERED] == 1)
    finally:
        workers.stop()
        workers.join(time.monotonic() + 5)
        server.close()
    row = outbox.row("alert-001", server.url)
    assert row is not None and (row.attempts, row.last_status, row.last_error) == (3, 200, None)
    # Each retry waited at least half its backoff: 0.025 s after the first failure, 0.05 s
    # after the second.
    times = [t for _, t in server.calls]
    assert times[1] - times[0] >= 0.025 and times[2] - times[1] >= 0.05
    stats = workers.stats(outbox.counts()[server.url])
    assert (stats["delivered"], stats["failed_attempts"]) == (1, 2)
    assert stats["latency_ms"]["max"] is not None and stats["latency_ms"]["max"] > 0
    outbox.close()


def test_a_4xx_is_rejected_once_and_kept_with_its_reason(tmp_path: Path) -> None:
    server = Scripted([422])
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.add([_alert(1), _alert(2)], [server.url])
    workers = ReceiverWorkers(server.url, outbox, FAST).start()
    try:
        assert _wait(lambda: outbox.counts()[server.url][REJECTED] == 2)
        time.sleep(0.3)  # longer than any backoff: a rejected row is not tried again
    finally:
        workers.stop()
        workers.join(time.monotonic() + 5)
        server.close()
    assert sorted(k for k, _ in server.calls) == ["alert-001", "alert-002"]
    row = outbox.row("alert-001", server.url)
    assert row is not None and row.last_status == 422 and "HTTP 422" in (row.last_error or "")
    assert workers.stats(outbox.counts()[server.url])["failed_attempts"] == 2
    outbox.close()


def test_retry_after_is_honoured_up_to_the_maximum_backoff(tmp_path: Path) -> None:
    server = Scripted([503, 200], retry_after="100")
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.add([_alert(1)], [server.url])
    workers = ReceiverWorkers(server.url, outbox, FAST).start()
    try:
        assert _wait(lambda: outbox.counts()[server.url][DELIVERED] == 1)
    finally:
        workers.stop()
        workers.join(time.monotonic() + 5)
        server.close()
    times = [t for _, t in server.calls]
    # 100 s asked, capped at backoff_max_s = 0.2 s (and more than the 0.05 s backoff).
    assert times[1] - times[0] >= 0.2
    outbox.close()


def test_pending_alerts_are_delivered_oldest_first_once_each(
    tmp_path: Path, receiver: Receiver
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.add([_alert(n, 1_000 + n) for n in range(20)], [receiver.url])
    workers = ReceiverWorkers(receiver.url, outbox, FAST).start()
    try:
        assert receiver.wait_for(20, timeout_s=10)
        assert _wait(lambda: outbox.counts()[receiver.url][DELIVERED] == 20)
    finally:
        workers.stop()
        workers.join(time.monotonic() + 5)
    summary = receiver.summary()
    assert (summary["received"], summary["unique"], summary["duplicates"]) == (20, 20, 0)
    # Two workers: the order is the outbox's, give or take one in flight.
    ids = summary["ids"]
    assert ids[:2] in (["alert-000", "alert-001"], ["alert-001", "alert-000"])
    assert set(ids) == {f"alert-{n:03d}" for n in range(20)}
    logged = [json.loads(line) for line in receiver.log.read_text().splitlines()]
    assert [r["alert_id"] for r in logged] == ids
    outbox.close()


def test_percentiles_and_status_text() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentiles_ms(values) == {"p50": 50.0, "p99": 99.0, "max": 100.0}
    assert percentiles_ms([]) == {"p50": None, "p99": None, "max": None}
    metrics = {
        "total": {
            "delivered": 7,
            "pending": 1,
            "rejected": 0,
            "latency_ms": {"p50": 10.0, "p99": 42.4, "max": 50.0},
        }
    }
    assert status_text(metrics) == "webhooks 7 delivered, 1 pending, 0 rejected, p99 42 ms"


# ------------------------------------------------------------------- the reference receiver


def test_the_receiver_marks_a_repeated_id_as_duplicate(receiver: Receiver) -> None:
    for key in ("x", "y", "x"):
        assert post(receiver.url, key, json.dumps({"alert_id": key}).encode(), 2).status == 200
    summary = receiver.summary()
    assert summary == {"received": 3, "unique": 2, "duplicates": 1, "ids": ["x", "y"]}
    assert [a.duplicate for a in receiver.arrivals()] == [False, False, True]
    assert set(receiver.first_arrival_ns()) == {"x", "y"}
