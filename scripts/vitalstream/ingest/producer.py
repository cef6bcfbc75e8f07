"""Replay producer: sends a cohort's readings into a Kafka topic on an accelerated event clock.

Why it looks the way it does:

* It batches (``linger.ms``, ``batch.size``, compression) and never waits for a single message:
  the blueprint's send-and-wait producer tops out at a few thousand messages per second.
* Readings are sent in arrival order (event time plus the generator's network delay) on a clock
  that runs ``speedup`` times faster than patient time, so an hour of monitoring replays in a
  minute while latency is still measured in wall-clock time.
* Each message carries ``send_wall_ns``, the wall-clock time it was handed to the client; the
  sink stamps its commit time, and the difference is the alert latency.
* Messages are keyed by patient, so one patient's readings stay in order within a partition.
* Events with a ``gateway_id`` column (vitalstream.data.gateway) go out through one producer per
  gateway, as from separate sites: batching and compression happen per gateway. The bytes
  the clients put on the wire (librdkafka's ``tx_bytes``, after compression and with Kafka's
  framing) are reported beside the payload bytes.
* After the last reading it sends one heartbeat per partition whose event time lies past every
  window's end plus the watermark, so the streaming job can close and emit the final windows.
  Heartbeats carry ``"kind": "heartbeat"`` and no patient; the job never counts them as readings.

Not for: generating data (data.cohort) or consuming it (vitalstream.stream.job). It runs in
its own process, outside the system under test, as stream benchmarks require.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from vitalstream.core.cliargs import (
    checked,
    json_object,
    nonnegative_float,
    parquet_input,
    positive_float,
    writable_file,
)
from vitalstream.core.progress import Progress
from vitalstream.core.schema import VITAL_NAMES

# Columns that travel in each message; the generator's ground-truth annotations (artefact,
# clock skew, network delay) deliberately stay out of the stream.
MESSAGE_COLUMNS = (
    "patient_id",
    "device_id",
    "event_time_ms",
    *VITAL_NAMES,
    "o2_supplemental",
    "consciousness",
)
HEARTBEAT_KIND = "heartbeat"
STATS_INTERVAL_MS = 1000


@dataclass(frozen=True)
class ProducerSettings:
    """Client settings from config (condition ``producer`` block)."""

    linger_ms: float = 20
    batch_size: int = 1_048_576
    compression: str = "lz4"
    acks: str = "1"
    idempotence: bool = False
    # The blueprint's producer: wait for every delivery before the next send (load generator).
    send_and_wait: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ProducerSettings:
        unknown = set(values or {}) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown producer settings: {sorted(unknown)}")
        return cls(**dict(values or {}))

    def client_config(self, bootstrap_servers: str) -> dict[str, Any]:
        """librdkafka configuration; queue limits sized so a fast replay never blocks on them."""
        return {
            "bootstrap.servers": bootstrap_servers,
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_size,
            "compression.type": self.compression,
            "acks": self.acks,
            "enable.idempotence": self.idempotence,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_097_152,
            # Only failed deliveries call back: a callback per message costs a third of the rate.
            "delivery.report.only.error": True,
        }


@dataclass
class ReplayReport:
    """What the producer did; written next to the run's results."""

    topic: str
    messages: int = 0
    heartbeats: int = 0
    bytes: int = 0
    delivery_errors: int = 0
    first_send_wall_ns: int = 0
    last_send_wall_ns: int = 0
    seconds: float = 0.0
    achieved_rate: float = 0.0
    target_rate: float = 0.0
    speedup: float = 0.0
    heartbeat_event_time_ms: int = 0
    # Producers (one per gateway, else one), and what they sent as librdkafka reports it:
    # tx_bytes (requests on the wire, compressed batches with framing) and txmsg_bytes.
    producers: int = 1
    wire_bytes: int = 0
    wire_message_bytes: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


def epoch_ms(times: pd.Series) -> np.ndarray:
    """Event times as integer milliseconds since the epoch (UTC), whatever their stored unit."""
    return pd.to_datetime(times, utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()


def encode_messages(events: pd.DataFrame) -> list[bytes]:
    """JSON for each reading, without the closing brace: the send stamp is appended at send time.

    Encoding ahead of the timed loop keeps the loop to one concatenation and one produce call.
    NaN vitals (missing readings) become JSON null.
    """
    frame = events.copy()
    frame["event_time_ms"] = epoch_ms(frame["event_time"])
    columns = list(MESSAGE_COLUMNS)
    frame = frame[columns].astype(object).where(frame[columns].notna(), None)
    return [
        orjson.dumps(dict(zip(MESSAGE_COLUMNS, row, strict=True)))[:-1]
        for row in frame.itertuples(index=False, name=None)
    ]


def arrival_order(events: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Readings sorted by arrival (event time + network delay) and their arrival times in ms."""
    event_ms = epoch_ms(events["event_time"])
    delay_ms = (
        events["network_delay_ms"].to_numpy(dtype=np.int64)
        if "network_delay_ms" in events
        else np.zeros(len(events), dtype=np.int64)
    )
    arrival_ms = event_ms + delay_ms
    order = np.argsort(arrival_ms, kind="stable")
    return events.iloc[order].reset_index(drop=True), arrival_ms[order]


def heartbeat_event_time_ms(events: pd.DataFrame, window_s: float, watermark_s: float) -> int:
    """An event time past the last window's end plus the watermark, rounded up to a second."""
    last_ms = int(epoch_ms(events["event_time"]).max())
    return last_ms + math.ceil((2 * window_s + watermark_s + 1) * 1000)


def replay(
    events: pd.DataFrame,
    *,
    bootstrap_servers: str,
    topic: str,
    speedup: float,
    settings: ProducerSettings,
    window_s: float,
    watermark_s: float,
    progress_every_s: float = 5.0,
) -> ReplayReport:
    """Send ``events`` on the accelerated clock, then heartbeats; return what was sent."""
    from confluent_kafka import Producer

    ordered, arrival_ms = arrival_order(events)
    payloads = encode_messages(ordered)
    keys = ordered["patient_id"].astype(str).str.encode("utf-8").tolist()
    due_s = (arrival_ms - arrival_ms[0]) / 1000.0 / speedup if len(arrival_ms) else arrival_ms
    report = ReplayReport(topic=topic, speedup=speedup, settings=asdict(settings))
    span_s = float(due_s[-1]) if len(due_s) else 0.0
    report.target_rate = len(payloads) / span_s if span_s > 0 else float("inf")

    errors = [0]

    def on_error(err: object, _msg: object) -> None:
        if err is not None:
            errors[0] += 1

    gateway = (
        ordered["gateway_id"].to_numpy(dtype=np.int64)
        if "gateway_id" in ordered
        else np.zeros(len(ordered), dtype=np.int64)
    )
    stats = WireStats()
    producers = [
        Producer(
            settings.client_config(bootstrap_servers)
            # Statistics (tx_bytes) for the bytes on the wire; a JSON report a second per client.
            | {"statistics.interval.ms": STATS_INTERVAL_MS, "stats_cb": stats.callback(i)}
        )
        for i in range(int(gateway.max()) + 1 if len(gateway) else 1)
    ]
    producer = producers[0]
    report.producers = len(producers)
    start = time.monotonic()
    report.first_send_wall_ns = time.time_ns()
    sent = 0
    # PROGRESS lines for `vitalstream status` (vitalstream.core.progress), rate-limited.
    progress = Progress("replay", len(payloads), "readings", every_s=progress_every_s)
    while sent < len(payloads):
        now = time.monotonic() - start
        upto = int(np.searchsorted(due_s, now, side="right"))
        if upto <= sent:
            time.sleep(min(float(due_s[sent]) - now, 0.05))
            continue
        for i in range(sent, upto):
            value = payloads[i] + b',"send_wall_ns":%d}' % time.time_ns()
            _produce(producers[gateway[i]], topic, keys[i], value, on_error)
            report.bytes += len(value)
        sent = upto
        for client in producers:
            client.poll(0)
        progress.update(sent, topic=topic)
    report.last_send_wall_ns = time.time_ns()
    report.messages = sent
    report.heartbeat_event_time_ms = heartbeat_event_time_ms(events, window_s, watermark_s)
    report.heartbeats = _send_heartbeats(producer, topic, report.heartbeat_event_time_ms, on_error)
    remaining = sum(client.flush(60) for client in producers)
    report.seconds = time.monotonic() - start
    report.delivery_errors = errors[0] + remaining
    report.wire_bytes, report.wire_message_bytes = stats.final(producers)
    report.achieved_rate = sent / report.seconds if report.seconds > 0 else 0.0
    return report


class WireStats:
    """The latest librdkafka statistics of each producer (``stats_cb``)."""

    def __init__(self) -> None:
        self.latest: dict[int, dict[str, Any]] = {}
        self.received: dict[int, int] = {}

    def callback(self, index: int) -> Any:
        def on_stats(text: str) -> None:
            data = json.loads(text)
            self.latest[index] = {"tx_bytes": data["tx_bytes"], "txmsg_bytes": data["txmsg_bytes"]}
            self.received[index] = self.received.get(index, 0) + 1

        return on_stats

    def final(self, producers: Sequence[Any], timeout_s: float = 10.0) -> tuple[int, int]:
        """Totals over producers, from a statistics report made after the flush (counters only
        grow, so the first report after it is final)."""
        seen = dict(self.received)
        deadline = time.monotonic() + timeout_s
        for index, client in enumerate(producers):
            while self.received.get(index, 0) <= seen.get(index, 0):
                if time.monotonic() > deadline:
                    raise RuntimeError("no librdkafka statistics after the flush")
                client.poll(0.1)
        return (
            sum(v["tx_bytes"] for v in self.latest.values()),
            sum(v["txmsg_bytes"] for v in self.latest.values()),
        )


def _produce(
    producer: Any, topic: str, key: bytes, value: bytes, on_error: Any, partition: int | None = None
) -> None:
    """Produce, waiting for queue space instead of failing when the local queue is full."""
    kwargs = {"partition": partition} if partition is not None else {}
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_error, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)


def _send_heartbeats(producer: Any, topic: str, event_time_ms: int, on_error: Any) -> int:
    """One heartbeat to every partition, so each partition's reader sees the closing time."""
    partitions = producer.list_topics(topic, timeout=30).topics[topic].partitions
    for partition in sorted(partitions):
        value = orjson.dumps(
            {"kind": HEARTBEAT_KIND, "event_time_ms": event_time_ms, "send_wall_ns": time.time_ns()}
        )
        _produce(producer, topic, b"__heartbeat__", value, on_error, partition=partition)
    return len(partitions)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """``replay``: send an events Parquet file into a topic and write a JSON report."""
    parser = subparsers.add_parser("replay", help="replay a cohort's events into a Kafka topic")
    parser.add_argument(
        "--events", type=parquet_input, required=True, help="events.parquet of a cohort"
    )
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--speedup", type=positive_float, default=60.0, help="patient s per wall s")
    parser.add_argument("--window-s", type=positive_float, default=60.0)
    parser.add_argument("--watermark-s", type=nonnegative_float, default=120.0)
    parser.add_argument(
        "--settings", type=json_object, default="{}", help="producer settings as JSON, or @FILE"
    )
    parser.add_argument(
        "--report", type=writable_file, required=True, help="where to write the report"
    )
    parser.set_defaults(func=_cli_replay)


def _cli_replay(args: argparse.Namespace) -> int:
    settings = checked("--settings", ProducerSettings.from_mapping, args.settings)
    events = pd.read_parquet(args.events)
    report = replay(
        events,
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        speedup=args.speedup,
        settings=settings,
        window_s=args.window_s,
        watermark_s=args.watermark_s,
    )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(json.dumps({k: v for k, v in asdict(report).items() if k != "settings"}))
    return 1 if report.delivery_errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vitalstream-replay")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
