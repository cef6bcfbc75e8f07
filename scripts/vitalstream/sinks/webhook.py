"""Webhook delivery: every alert of the alerts topic POSTed to each configured receiver, at
least once, without ever touching the stream.

The Spark job only publishes alerts to the topic (vitalstream.sinks.topic); a receiver that is
slow or down must not slow a micro-batch, so delivery is a separate consumer of that topic, the
:class:`Notifier`:

- Its consumer thread reads the topic (its own consumer group, offsets committed by hand), adds
  each alert to the on-disk outbox for every receiver (vitalstream.sinks.outbox) and commits the
  offsets only after the outbox transaction did. An alert is never only in memory; a crash
  between the two re-reads it and the outbox ignores the repeat, as it ignores the repeats of a
  replayed micro-batch (alert ids are deterministic).
- Per receiver, ``settings.workers`` threads take the due pending rows oldest first and POST the
  alert's JSON with ``Idempotency-Key: <alert_id>``. 2xx: delivered. No answer, a timeout, 408,
  425, 429 or 5xx: tried again after an exponential backoff with jitter (``Retry-After`` is
  honoured up to ``backoff_max_s``). Any other status: rejected, kept with its reason, not
  retried. Each receiver has its own threads, so one that hangs delays nobody else.

At least once means a receiver may see an alert twice (a POST whose answer was lost, a restart
while it was in flight); it must treat the ``Idempotency-Key`` as the alert's identity.

Not for: publishing alerts (vitalstream.sinks.topic); the reference receiver
(vitalstream.serving.receiver).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vitalstream.core.livesettings import DeliverySettings
from vitalstream.sinks.outbox import Outbox, OutboxRow, QueuedAlert

LOG = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite"
# Statuses a later attempt may turn into a delivery (RFC 9110: the request may be repeated).
RETRY_STATUSES = frozenset({408, 425, 429})
# How many messages one poll of the topic takes into one outbox transaction.
CONSUME_BATCH = 500
# Longest a delivery thread sleeps before it looks at the outbox again without being woken.
IDLE_WAIT_S = 0.5
USER_AGENT = "vitalstream-notifier"
# How many recent deliveries the latency percentiles are taken over, per receiver.
LATENCY_WINDOW = 10_000


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: ``outcome`` is ``delivered``, ``retry`` or ``rejected``."""

    outcome: str
    status: int | None
    error: str | None
    retry_after_s: float | None = None


def classify(status: int) -> str:
    """The outcome of an HTTP status: 2xx delivered; 408/425/429/5xx retry; the rest rejected
    (a 4xx, or a redirect: the notifier does not follow them, so a retry would get the same)."""
    if 200 <= status < 300:
        return "delivered"
    if status in RETRY_STATUSES or 500 <= status < 600:
        return "retry"
    return "rejected"


def backoff_s(attempts: int, settings: DeliverySettings, jitter: float) -> float:
    """The wait after the ``attempts``-th failed attempt: ``backoff_initial_s`` doubled per
    attempt up to ``backoff_max_s``, scaled by ``jitter`` in [0, 1] to between half and all
    of it, so receivers that come back are not hit by every alert at the same instant."""
    base = min(settings.backoff_initial_s * 2.0 ** max(attempts - 1, 0), settings.backoff_max_s)
    return base * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


def post(url: str, alert_id: str, body: bytes, timeout_s: float) -> Attempt:
    """POST one alert and classify the answer; connection errors and timeouts are retries."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": alert_id,
        "User-Agent": USER_AGENT,
    }
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout_s)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read(200).decode("utf-8", "replace").strip()
        status = response.status
        retry_after = _retry_after_s(response.getheader("Retry-After"))
    except (OSError, http.client.HTTPException) as err:
        return Attempt("retry", None, f"{type(err).__name__}: {err}"[:300])
    finally:
        connection.close()
    outcome = classify(status)
    error = None if outcome == "delivered" else f"HTTP {status} {response.reason}: {text}"[:300]
    return Attempt(outcome, status, error, retry_after)


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is ignored: backoff applies)."""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def percentiles_ms(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """P50, P99 and max (nearest rank) of delivery latencies; None when there are none."""
    if not latencies_ms:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(latencies_ms)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]

    return {"p50": rank(0.50), "p99": rank(0.99), "max": ordered[-1]}


class ReceiverWorkers:
    """One receiver's delivery threads over the outbox: they claim due rows (no row is sent by
    two threads at once), POST them and record the outcome. Usable without the topic: whatever
    is added to the outbox for ``url`` is delivered."""

    def __init__(self, url: str, outbox: Outbox, settings: DeliverySettings) -> None:
        self.url = url
        self.outbox = outbox
        self.settings = settings
        self.stopping = threading.Event()
        self.wake = threading.Condition()
        self.in_flight: set[str] = set()
        # The recent deliveries' latencies: a monitor runs for weeks, its metrics must not grow.
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.failed_attempts = 0
        self.last_error: str | None = None
        self.random = random.Random()
        self.threads = [
            threading.Thread(target=self._run, name=f"webhook-{i}-{url}", daemon=True)
            for i in range(max(1, settings.workers))
        ]

    def start(self) -> ReceiverWorkers:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Ask the threads to end (a POST in flight finishes first); see :meth:`join`."""
        self.stopping.set()
        self.notify()

    def notify(self) -> None:
        """New rows may be due: wake the idle threads."""
        with self.wake:
            self.wake.notify_all()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                row = self._claim()
                if row is None:
                    continue
                try:
                    self._deliver(row)
                finally:
                    with self.wake:
                        self.in_flight.discard(row.alert_id)
                        self.wake.notify_all()
            except Exception as err:  # the outbox closed under us, a disk error: log, go on
                if self.stopping.is_set():
                    return
                LOG.warning("webhook %s: %s", self.url, err)
                self.stopping.wait(IDLE_WAIT_S)

    def _claim(self) -> OutboxRow | None:
        """The oldest due row nobody is sending, or None after waiting until one may be due."""
        with self.wake:
            rows = self.outbox.due(self.url, time.time_ns(), 1, self.in_flight)
            if rows:
                self.in_flight.add(rows[0].alert_id)
                return rows[0]
            next_ns = self.outbox.next_try_ns(self.url)
            wait_s = IDLE_WAIT_S
            if next_ns is not None:
                # A due row that another thread is sending: wait for its outcome (notify).
                wait_s = min(max((next_ns - time.time_ns()) / 1e9, 0.01), IDLE_WAIT_S)
            self.wake.wait(wait_s)
            return None

    def _deliver(self, row: OutboxRow) -> None:
        attempt = post(self.url, row.alert_id, row.payload.encode(), self.settings.timeout_s)
        now_ns = time.time_ns()
        if attempt.outcome == "delivered":
            self.outbox.delivered(row.alert_id, self.url, now_ns, attempt.status or 0)
            with self.wake:
                self.latencies_ms.append((now_ns - row.first_seen_ns) / 1e6)
            return
        with self.wake:
            self.failed_attempts += 1
            self.last_error = attempt.error
        if attempt.outcome == "rejected":
            LOG.warning("webhook %s rejected %s: %s", self.url, row.alert_id, attempt.error)
            self.outbox.rejected(row.alert_id, self.url, attempt.error or "", attempt.status)
            return
        delay_s = backoff_s(row.attempts + 1, self.settings, self.random.random())
        if attempt.retry_after_s is not None:
            delay_s = max(delay_s, min(attempt.retry_after_s, self.settings.backoff_max_s))
        self.outbox.retry(
            row.alert_id, self.url, now_ns + int(delay_s * 1e9), attempt.error or "", attempt.status
        )

    def join(self, deadline: float) -> None:
        """Wait for the threads until ``deadline`` (``time.monotonic()``)."""
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0.0))

    def stats(self, counts: dict[str, int]) -> dict[str, Any]:
        """This receiver's part of :meth:`Notifier.metrics`; ``counts``: its outbox rows per
        state."""
        with self.wake:
            latencies = list(self.latencies_ms)
        return {
            "delivered": counts.get("delivered", 0),
            "pending": counts.get("pending", 0),
            "rejected": counts.get("rejected", 0),
            "failed_attempts": self.failed_attempts,
            "latency_ms": percentiles_ms(latencies),
            "last_error": self.last_error,
            "latencies_ms": latencies,
        }


class Notifier:
    """Delivers the alerts topic to HTTP receivers through an on-disk outbox (module docstring).

    ``state_dir`` holds the outbox; a new Notifier over the same folder (and group id) resumes:
    the topic from its committed offsets, the receivers from their pending rows.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        alerts_topic: str,
        receivers: Sequence[str],
        state_dir: Path,
        settings: DeliverySettings,
        group_id: str = "vitalstream-notifier",
    ) -> None:
        for url in receivers:
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ValueError(f"webhook {url!r}: expected an http:// or https:// URL")
        self.bootstrap_servers = bootstrap_servers
        self.alerts_topic = alerts_topic
        self.receivers = tuple(dict.fromkeys(receivers))
        self.state_dir = state_dir
        self.settings = settings
        self.group_id = group_id
        self.outbox: Outbox | None = None
        self._stopping = threading.Event()
        self._lanes: dict[str, ReceiverWorkers] = {}
        self._consumer_thread: threading.Thread | None = None
        self.consumed = 0
        self.invalid = 0
        self.lag: int | None = None
        self.consumer_error: str | None = None

    def start(self) -> Notifier:
        """Open the outbox and start the consumer and the delivery threads; returns at once."""
        if self.outbox is not None:
            raise RuntimeError("notifier already started")
        self.outbox = Outbox(self.state_dir / OUTBOX_FILE)
        self._lanes = {
            url: ReceiverWorkers(url, self.outbox, self.settings) for url in self.receivers
        }
        for lane in self._lanes.values():
            lane.start()
        self._consumer_thread = threading.Thread(
            target=self._consume, name="webhook-consumer", daemon=True
        )
        self._consumer_thread.start()
        return self

    def stop(self, timeout_s: float = 10) -> None:
        """Stop reading and sending; what is still pending stays in the outbox for the next
        Notifier. A POST in flight gets until ``timeout_s`` to finish."""
        self._stopping.set()
        for lane in self._lanes.values():
            lane.stop()
        deadline = time.monotonic() + timeout_s
        if self._consumer_thread is not None:
            self._consumer_thread.join(max(deadline - time.monotonic(), 0.0))
        for lane in self._lanes.values():
            lane.join(deadline)
        if self.outbox is not None:
            self.outbox.close()

    def _consume(self) -> None:
        """The consumer thread: topic → outbox → commit, until stopped."""
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # A topic created after the notifier started is found within a second or two.
                "topic.metadata.refresh.interval.ms": 2000,
            }
        )
        try:
            consumer.subscribe([self.alerts_topic])
            last_lag = 0.0
            while not self._stopping.is_set():
                try:
                    messages = _poll_batch(consumer)
                    if messages:
                        self._store(consumer, messages)
                except Exception as err:  # broker away, rebalance: the uncommitted is re-read
                    self.consumer_error = f"{type(err).__name__}: {err}"
                    LOG.warning("webhook consumer of %s: %s", self.alerts_topic, err)
                    self._stopping.wait(IDLE_WAIT_S)
                if time.monotonic() - last_lag >= 1.0:
                    self.lag = _lag(consumer)
                    last_lag = time.monotonic()
        finally:
            consumer.close()

    def _store(self, consumer: Any, messages: list[Any]) -> None:
        """One poll's alerts into the outbox, then their offsets committed (in that order)."""
        from confluent_kafka import TopicPartition

        alerts: list[QueuedAlert] = []
        next_offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is not None:
                self.consumer_error = str(message.error())
                continue
            next_offsets[(message.topic(), message.partition())] = message.offset() + 1
            alert = _queued(message)
            if alert is None:
                self.invalid += 1
                continue
            alerts.append(alert)
        assert self.outbox is not None
        if alerts:
            self.outbox.add(alerts, self.receivers)
            for lane in self._lanes.values():
                lane.notify()
        self.consumed += len(alerts)
        if next_offsets:
            offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
            consumer.commit(offsets=offsets, asynchronous=False)

    def metrics(self) -> dict[str, Any]:
        """Per receiver and in total: rows delivered, pending, rejected (the outbox, across
        restarts); failed attempts and delivery latency (since start); and the topic's side:
        alerts consumed, messages that were no alert, the consumer's lag."""
        counts = self.outbox.counts() if self.outbox is not None and not self.outbox.closed else {}
        receivers: dict[str, dict[str, Any]] = {}
        everything: list[float] = []
        for url, lane in self._lanes.items():
            receivers[url] = lane.stats(counts.get(url, {}))
            everything.extend(receivers[url].pop("latencies_ms"))
        total = {
            key: sum(r[key] for r in receivers.values())
            for key in ("delivered", "pending", "rejected", "failed_attempts")
        }
        total["latency_ms"] = percentiles_ms(everything)
        return {
            "consumed": self.consumed,
            "invalid": self.invalid,
            "lag": self.lag,
            "consumer_error": self.consumer_error,
            "receivers": receivers,
            "total": total,
        }


def status_text(metrics: dict[str, Any]) -> str:
    """The webhook part of a status line: ``webhooks 12 delivered, 0 pending, 0 rejected,
    p99 35 ms``."""
    total = metrics["total"]
    p99 = total["latency_ms"]["p99"]
    latency = f", p99 {p99:.0f} ms" if p99 is not None else ""
    return (
        f"webhooks {total['delivered']} delivered, {total['pending']} pending, "
        f"{total['rejected']} rejected{latency}"
    )


def _queued(message: Any) -> QueuedAlert | None:
    """The outbox entry of one topic message (None: not an alert, e.g. not JSON or no id).

    ``first_seen_ns`` is the message's Kafka timestamp: when the alert reached the topic."""
    try:
        payload = json.loads(message.value())
        alert_id = payload["alert_id"]
    except (TypeError, ValueError, KeyError):
        return None
    if not isinstance(alert_id, str) or not alert_id:
        return None
    kind, stamp_ms = message.timestamp()
    first_seen_ns = stamp_ms * 1_000_000 if kind != 0 and stamp_ms > 0 else time.time_ns()
    return QueuedAlert(alert_id, message.value().decode("utf-8", "replace"), first_seen_ns)


def _poll_batch(consumer: Any) -> list[Any]:
    """Whatever the topic has now: wait (up to half a second) for one message only, then take
    what is already fetched without waiting, since a batch consume would wait for a full batch
    or its whole timeout, and a lone critical alert would wait with it."""
    first = consumer.poll(0.5)
    if first is None:
        return []
    return [first, *consumer.consume(CONSUME_BATCH - 1, timeout=0)]


def _lag(consumer: Any) -> int | None:
    """Messages in the topic not yet read by this consumer (from cached watermarks)."""
    try:
        positions = consumer.position(consumer.assignment())
        lag = 0
        for tp in positions:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high is not None and high >= 0 and tp.offset >= 0:
                lag += max(high - tp.offset, 0)
        return lag
    except Exception:  # lag is a nicety: a broker hiccup must not stop the consumer
        return None
