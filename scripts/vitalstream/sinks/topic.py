"""The alerts topic: emitted alerts to Kafka, each one confirmed by the broker before the
micro-batch that produced it completes.

A producer's ``flush(timeout)`` returns when its timeout runs out, whether or not the messages
got through; a batch whose alerts were still queued would then be committed by Spark and its
alerts lost with the process. Here every message has a delivery report, the producer is
idempotent with ``acks=all`` (a resend after a lost connection is neither lost nor doubled
within one producer session), and :meth:`AlertTopic.publish` waits until the broker confirmed
every alert of the batch or its delivery timeout (``message.timeout.ms``) expired, then raises
on any failure. The foreachBatch call fails, the query stops before Spark commits the batch,
and a restart from the checkpoint publishes the batch again: alert ids are deterministic and
consumers drop repeats by ``alert_id``, so the topic is at-least-once and never lossy.

Not for: the readings producer (vitalstream.ingest.producer).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pandas as pd

# How long one alert may take to reach the broker, retries included (``message.timeout.ms``):
# long enough to ride out a broker restart or a leader election, short enough that a broker
# that is gone fails the batch instead of stalling the stream forever.
DELIVERY_TIMEOUT_S = 120.0
# Extra time publish() waits beyond the delivery timeout for the last reports to arrive.
REPORT_GRACE_S = 10.0


class DeliveryError(RuntimeError):
    """Some alerts of a batch were not confirmed by the broker: the batch must not complete."""


def alert_payload(row: Any) -> dict[str, Any]:
    """The JSON message of one alert (what downstream consumers read: the webhook receivers,
    the live dashboard): who, which rule, and the values that fired it. ``column`` is the vital
    the rule reads, ``value`` what it had, ``threshold`` the rule's limit; a window alert also
    names its window (``window_start``/``window_end``), a reading alert has null there."""
    window = getattr(row, "kind", None) == "window"
    return {
        "alert_id": row.alert_id,
        "patient_id": row.patient_id,
        "kind": row.kind,
        "rule": row.rule,
        "severity": row.severity,
        "value": row.value,
        "time": row.time.isoformat(),
        "column": _text_or_none(getattr(row, "column", None)),
        "threshold": _number_or_none(getattr(row, "threshold", None)),
        "window_start": _iso_or_none(getattr(row, "window_start", None)) if window else None,
        "window_end": _iso_or_none(getattr(row, "window_end", None)) if window else None,
    }


def _text_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _number_or_none(value: Any) -> float | None:
    """A finite number, else None (JSON has no NaN)."""
    if value is None or pd.isna(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _iso_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


class AlertTopic:
    """The job's producer of the alerts topic; created on first use, recreated after a
    failed batch (a producer whose messages timed out may be in an unusable state)."""

    def __init__(
        self, bootstrap_servers: str, topic: str, delivery_timeout_s: float = DELIVERY_TIMEOUT_S
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        self._producer: Any = None

    def _client(self) -> Any:
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "linger.ms": 5,
                    "enable.idempotence": True,
                    "acks": "all",
                    "message.timeout.ms": int(self.delivery_timeout_s * 1000),
                }
            )
        return self._producer

    def publish(self, alerts: pd.DataFrame) -> int:
        """Send the emitted (not suppressed) alerts and wait for every delivery report.

        Returns how many the broker confirmed; raises :class:`DeliveryError` when any was
        refused or not confirmed within the delivery timeout.
        """
        emitted = alerts.loc[~alerts["suppressed"].astype(bool)] if len(alerts) else alerts
        if emitted.empty:
            return 0
        producer = self._client()
        failures: list[str] = []
        confirmed = [0]

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))
            else:
                confirmed[0] += 1

        try:
            for row in emitted.itertuples(index=False):
                self._produce(producer, row, on_delivery)
        except Exception as err:  # a fatal producer error: the next batch needs a new one
            self._producer = None
            raise DeliveryError(f"alerts topic {self.topic!r}: {err}") from err
        self._await_reports(producer, len(emitted), confirmed, failures)
        return confirmed[0]

    def _produce(self, producer: Any, row: Any, on_delivery: Any) -> None:
        """Queue one alert; a full local queue is drained (served reports) and retried."""
        payload = json.dumps(alert_payload(row)).encode()
        while True:
            try:
                producer.produce(
                    self.topic, payload, key=str(row.patient_id).encode(), on_delivery=on_delivery
                )
                return
            except BufferError:
                producer.poll(0.1)

    def _await_reports(
        self, producer: Any, sent: int, confirmed: list[int], failures: list[str]
    ) -> None:
        """Wait until every message of the batch has a report; raise unless all succeeded.

        The wait is bounded by the delivery timeout: librdkafka reports each message as
        failed once it expires, so waiting longer only covers the reports' own delay."""
        deadline = time.monotonic() + self.delivery_timeout_s + REPORT_GRACE_S
        while confirmed[0] + len(failures) < sent and time.monotonic() < deadline:
            producer.flush(min(1.0, max(deadline - time.monotonic(), 0.0)))
        missing = sent - confirmed[0] - len(failures)
        if failures or missing:
            # The batch fails: drop what is still queued and start the next attempt with a
            # fresh producer session (the re-run publishes the batch again anyway).
            producer.purge()
            self._producer = None
            reasons = sorted(set(failures))[:3]
            raise DeliveryError(
                f"alerts topic {self.topic!r}: {len(failures)} of {sent} alerts refused, "
                f"{missing} unconfirmed after {self.delivery_timeout_s:.0f} s ({reasons})"
            )

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is still queued (nothing, after a successful publish) and drop the
        producer before the broker may go away."""
        if self._producer is not None:
            self._producer.flush(timeout_s)
            self._producer = None
