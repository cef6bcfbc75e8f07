"""Device simulator of the live monitor: N bedside devices sending vitals into Kafka in real time.

``python -m vitalstream simulate --bootstrap-servers HOST:PORT --topic T --patients N`` (broker
and topic default to those of the ``up`` running over the state folder), ``up --simulate N``
and the live benchmark's load generator run it; :func:`simulate` is the same in-process. Why it
looks the way it does:

* **The blueprint's device message**, as JSON, keyed by patient id::

      {"patient_id": "P000042", "ts": 1765091475123, "hr": 88, "spo2": 97, "sbp": 121,
       "rr": 17, "temp": 37.1}

  ``ts`` is the reading's time in epoch milliseconds (event time = the wall clock at send);
  ``rr`` and ``temp`` are the canonical names, sent so that NEWS2 has them. The Kafka record's
  timestamp is the send stamp.
* **Real-time, smooth load.** Patient ``p`` sends its ``k``-th reading at
  ``(k + p / N) / rate_hz`` seconds after the start: message ``i`` (patient ``i % N``, reading
  ``i // N``) is due at ``i / (N · rate_hz)`` s, so phases are staggered evenly and the load
  is flat rather than a burst every period. A late sender catches up (devices do not skip).
* **The cohort's physiology** (vitalstream.ingest.livecohort), generated chunk by chunk on a
  background thread, vectorised with numpy; a message is a byte template filled from the
  chunk's row, cheaper than building a dict for orjson (a 2-core machine also runs Kafka, Spark
  and the search node).
* **Injected load** for the live benchmark: critical readings (SpO2 below the critical reading
  rule) and tachycardic patients (every window fires the tachycardia rule). Each critical
  reading is recorded (patient, ``ts``, send wall clock in ns), handed to ``on_critical`` and
  written to ``--report`` with the tachycardic patients and the counts.

Runs until ``--seconds`` elapse, or Ctrl-C / SIGTERM: the producer is flushed and the command
exits 0 (1 if a delivery failed).

Not for: replaying a generated cohort (vitalstream.ingest.producer) or the performance
experiments' rate ramps (vitalstream.ingest.load).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from vitalstream.core.cliargs import (
    UsageError,
    checked,
    nonnegative_int,
    positive_float,
    writable_file,
)
from vitalstream.core.config import add_config_arguments, config_from_args
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.livesettings import LiveSettings
from vitalstream.core.progress import emit as emit_progress
from vitalstream.ingest.livecohort import (
    DEVICE_VITALS,
    CriticalSchedule,
    InjectionValues,
    LiveCohort,
    SimulatorSpec,
    patient_ids,
)
from vitalstream.ingest.producer import ProducerSettings
from vitalstream.services.uprecord import running_up

# Low linger: a reading waits at most a few ms in the client (the live latency budget is 1 s).
LIVE_PRODUCER = ProducerSettings(linger_ms=5, batch_size=262_144)
TICK_S = 0.005  # longest sleep between sends; also how fast a stop is noticed
MAX_BATCH = 5_000  # messages per pass of the send loop, so a catch-up still polls and stops
FLUSH_TIMEOUT_S = 10.0

__all__ = [
    "CriticalReading",
    "InjectionValues",
    "ReadingStream",
    "SimulateReport",
    "SimulatorSpec",
    "due_count",
    "injection_from_config",
    "register_cli",
    "simulate",
    "total_messages",
]


@dataclass(frozen=True)
class CriticalReading:
    """One injected critical reading: what the benchmark times its alert from."""

    patient_id: str
    ts_ms: int
    send_wall_ns: int
    spo2: float
    message_index: int


@dataclass
class SimulateReport:
    """What the simulator did (``--report``; the live benchmark reads it)."""

    topic: str
    patients: int
    rate_hz: float
    seed: int
    critical_per_mille: int
    tachycardic_per_mille: int
    natural_alerts: bool
    critical_rule: str = ""
    critical_spo2: float = 0.0
    tachycardia_rule: str = ""
    sent: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0  # of the send schedule (without start-up and the final flush)
    achieved_rate: float = 0.0  # readings per second, all patients
    target_rate: float = 0.0
    start_wall_ns: int = 0
    end_wall_ns: int = 0
    interrupted: bool = False
    critical_count: int = 0
    criticals: list[CriticalReading] = field(default_factory=list)
    tachycardic_patients: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The report without its lists (one line on stderr)."""
        data = asdict(self)
        data["tachycardic_count"] = len(data.pop("tachycardic_patients"))
        data.pop("criticals")
        return data


def due_count(elapsed_s: float, total_rate_hz: float) -> int:
    """Messages due ``elapsed_s`` after the start: message ``i`` is due at ``i / rate``."""
    return math.floor(elapsed_s * total_rate_hz) + 1 if elapsed_s >= 0 else 0


def total_messages(spec: SimulatorSpec) -> int | None:
    """Messages a run of ``spec.seconds`` sends (those due before its end); None: unbounded."""
    if spec.seconds is None:
        return None
    return max(1, math.ceil(spec.seconds * spec.patients * spec.rate_hz - 1e-9))


def injection_from_config(config: dict[str, Any]) -> InjectionValues:
    """The injected values from the configuration's ``diagnostics`` rules."""
    diagnostics = DiagnosticsSpec.from_config(config["diagnostics"])
    return InjectionValues.from_rules(diagnostics.reading_rules, diagnostics.window_rules)


@dataclass
class Batch:
    """Messages ``[lo, hi)`` ready to produce, and which of them are critical."""

    ts_ms: int
    keys: list[bytes]
    values: list[bytes]
    critical_positions: list[int]  # positions in keys/values
    critical_indices: list[int]  # message indices


class ReadingStream:
    """The simulator's messages in send order, without Kafka: ``batch(lo, hi, ts_ms)``.

    Deterministic in ``spec`` and ``start_ms``: the same batches give the same bytes. Calls
    must come in order (the trajectory is generated forward); the next chunk is generated on a
    background thread while the current one is sent.
    """

    def __init__(self, spec: SimulatorSpec, injection: InjectionValues, start_ms: int) -> None:
        self.spec = spec
        self.injection = injection
        self.cohort = LiveCohort(spec, injection, start_ms)
        self.ids = patient_ids(spec.patients)
        self.keys = [pid.encode() for pid in self.ids]
        self.prefixes = [b'{"patient_id":"%s","ts":' % key for key in self.keys]
        self.schedule = CriticalSchedule(
            spec.critical_per_mille,
            spec.patients,
            avoid=np.flatnonzero(self.cohort.patients.deteriorates),
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-cohort")
        self._next: Future[dict[str, np.ndarray]] = self._pool.submit(self.cohort.next_chunk)
        self._chunk_number = -1
        self._chunk: dict[str, np.ndarray] = {}
        self._sample = -1
        self._row: list[list[float]] = []

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _row_of(self, sample: int) -> list[list[float]]:
        """Every patient's vitals of reading number ``sample``, as Python lists per vital."""
        if sample != self._sample:
            chunk_number, row = divmod(sample, self.spec.chunk_samples)
            while self._chunk_number < chunk_number:
                self._chunk = self._next.result()
                self._chunk_number += 1
                self._next = self._pool.submit(self.cohort.next_chunk)
            self._row = [self._chunk[name][row].tolist() for name in DEVICE_VITALS]
            self._sample = sample
        return self._row

    def batch(self, lo: int, hi: int, ts_ms: int) -> Batch:
        """Messages ``lo`` … ``hi - 1``, all stamped ``ts_ms`` (they are sent within ms)."""
        n = self.spec.patients
        critical = set(self.schedule.criticals(lo, hi))
        keys: list[bytes] = []
        values: list[bytes] = []
        positions: list[int] = []
        for i in range(lo, hi):
            patient = i % n
            hr, spo2, sbp, rr, temp = (column[patient] for column in self._row_of(i // n))
            if i in critical:
                spo2 = self.injection.critical_spo2
                positions.append(len(values))
            keys.append(self.keys[patient])
            values.append(
                b'%s%d,"hr":%d,"spo2":%d,"sbp":%d,"rr":%d,"temp":%.1f}'
                % (self.prefixes[patient], ts_ms, hr, spo2, sbp, rr, temp)
            )
        return Batch(ts_ms, keys, values, positions, sorted(critical))


def simulate(
    spec: SimulatorSpec,
    *,
    bootstrap_servers: str,
    topic: str,
    injection: InjectionValues,
    stop: threading.Event | None = None,
    on_critical: Callable[[CriticalReading], None] | None = None,
    producer: ProducerSettings = LIVE_PRODUCER,
    progress_every_s: float | None = None,
) -> SimulateReport:
    """Send ``spec``'s readings into ``topic`` in real time until ``spec.seconds`` elapse or
    ``stop`` is set; flush and report. ``on_critical`` is called on the sending thread right
    after each critical reading is handed to the client (keep it cheap)."""
    from confluent_kafka import Producer

    stop = stop or threading.Event()
    client = Producer(producer.client_config(bootstrap_servers))
    failures = [0]

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures[0] += 1

    start_ns = time.time_ns()
    stream = ReadingStream(spec, injection, start_ns // 1_000_000)
    report = _new_report(spec, topic, injection, stream)
    report.start_wall_ns = start_ns
    try:
        loop = SendLoop(client, topic, on_delivery, on_critical, progress_every_s)
        loop.run(spec, stream, stop, report)
    finally:
        stream.close()
        remaining = client.flush(FLUSH_TIMEOUT_S)
        report.end_wall_ns = time.time_ns()
        report.failed = failures[0] + remaining
        report.critical_count = len(report.criticals)
    return report


def _new_report(
    spec: SimulatorSpec, topic: str, injection: InjectionValues, stream: ReadingStream
) -> SimulateReport:
    return SimulateReport(
        topic=topic,
        patients=spec.patients,
        rate_hz=spec.rate_hz,
        seed=spec.seed,
        critical_per_mille=spec.critical_per_mille,
        tachycardic_per_mille=spec.tachycardic_per_mille,
        natural_alerts=spec.natural_alerts,
        critical_rule=injection.critical_rule,
        critical_spo2=injection.critical_spo2,
        tachycardia_rule=injection.tachycardia_rule,
        target_rate=spec.patients * spec.rate_hz,
        tachycardic_patients=[stream.ids[p] for p in stream.cohort.tachycardic],
    )


class SendLoop:
    """The real-time schedule: send what is due, else wait until the next message is."""

    def __init__(
        self,
        client: Any,
        topic: str,
        on_delivery: Callable[[object, object], None],
        on_critical: Callable[[CriticalReading], None] | None,
        progress_every_s: float | None,
    ) -> None:
        self.client = client
        self.topic = topic
        self.on_delivery = on_delivery
        self.on_critical = on_critical
        self.progress_every_s = progress_every_s or math.inf

    def run(
        self,
        spec: SimulatorSpec,
        stream: ReadingStream,
        stop: threading.Event,
        report: SimulateReport,
    ) -> None:
        total_rate = spec.patients * spec.rate_hz
        end = total_messages(spec)
        start = time.monotonic()
        next_progress = start + self.progress_every_s
        while not stop.is_set() and (end is None or report.sent < end):
            now = time.monotonic()
            due = due_count(now - start, total_rate)
            if end is not None:
                due = min(due, end)
            if due <= report.sent:
                stop.wait(min(TICK_S, max(0.0, report.sent / total_rate - (now - start))))
                continue
            hi = min(due, report.sent + MAX_BATCH)
            batch = stream.batch(report.sent, hi, time.time_ns() // 1_000_000)
            self.produce(batch, stream, report)
            report.sent = hi
            self.client.poll(0)
            if now >= next_progress:
                next_progress = now + self.progress_every_s
                _progress(report, now - start)
        report.interrupted = stop.is_set()
        # The schedule's own time: start-up and the final flush are not part of the rate.
        report.seconds = time.monotonic() - start
        report.achieved_rate = report.sent / report.seconds if report.seconds > 0 else 0.0

    def produce(self, batch: Batch, stream: ReadingStream, report: SimulateReport) -> None:
        """Hand a batch to the client; record each critical reading as it goes out."""
        critical_at = dict(zip(batch.critical_positions, batch.critical_indices, strict=True))
        for position, (key, value) in enumerate(zip(batch.keys, batch.values, strict=True)):
            send_wall_ns = time.time_ns()
            _produce(self.client, self.topic, key, value, self.on_delivery)
            report.bytes += len(value)
            index = critical_at.get(position)
            if index is None:
                continue
            reading = CriticalReading(
                patient_id=stream.ids[index % stream.spec.patients],
                ts_ms=batch.ts_ms,
                send_wall_ns=send_wall_ns,
                spo2=stream.injection.critical_spo2,
                message_index=index,
            )
            report.criticals.append(reading)
            if self.on_critical is not None:
                self.on_critical(reading)


def _produce(
    client: Any,
    topic: str,
    key: bytes,
    value: bytes,
    on_delivery: Callable[[object, object], None],
) -> None:
    """Produce, waiting for queue space rather than failing when the local queue is full."""
    while True:
        try:
            client.produce(topic, value=value, key=key, on_delivery=on_delivery)
            return
        except BufferError:
            client.poll(0.05)


def _progress(report: SimulateReport, elapsed_s: float) -> None:
    emit_progress(
        "simulate",
        done=report.sent,
        unit="readings",
        rate=round(report.sent / elapsed_s, 1) if elapsed_s > 0 else None,
        criticals=len(report.criticals),
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def bootstrap_address(text: str) -> str:
    """``HOST:PORT[,HOST:PORT…]`` (a Kafka bootstrap list)."""
    for part in text.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
            raise argparse.ArgumentTypeError(f"must be HOST:PORT (a Kafka bootstrap), got {text!r}")
    return text


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argument type: an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {text!r}")
        return value

    return parse


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="simulate N bedside devices sending vitals in real time"
    )
    parser.add_argument(
        "--bootstrap-servers",
        type=bootstrap_address,
        help="Kafka (default: the broker of the `up` running over --state-dir)",
    )
    parser.add_argument(
        "--topic", help="input topic (default: the running `up`'s, else config live.topic)"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="state folder of the running `up` (config live.state_dir)"
    )
    parser.add_argument("--patients", type=int_between(1, 999_999), required=True)
    parser.add_argument(
        "--rate-hz", type=positive_float, help="readings per patient per second (config)"
    )
    parser.add_argument("--seed", type=nonnegative_int, help="root seed (default: config)")
    parser.add_argument("--seconds", type=positive_float, help="stop after (default: run on)")
    parser.add_argument("--critical-per-mille", type=int_between(0, 1000), default=0)
    parser.add_argument("--tachycardic-per-mille", type=int_between(0, 1000), default=0)
    parser.add_argument(
        "--stable",
        action="store_true",
        help="no deterioration or benign dips: only injected readings fire alerts",
    )
    parser.add_argument("--report", type=writable_file, help="write the report (JSON) here")
    parser.add_argument("--progress-every-s", type=positive_float, default=10.0)
    add_config_arguments(parser, required=False)
    parser.set_defaults(func=_cli_simulate)


def _where(args: argparse.Namespace, live: LiveSettings) -> tuple[str, str]:
    """The broker and topic: as given, else those of the ``up`` running over the state folder
    (its record, vitalstream.services.uprecord), else an error naming both ways."""
    state_dir = args.state_dir or live.state_dir
    running = running_up(state_dir) or {}
    bootstrap = args.bootstrap_servers or running.get("bootstrap")
    if not bootstrap:
        raise UsageError(
            f"argument --bootstrap-servers: not given, and no `up` runs over {state_dir} "
            "(start `python -m vitalstream up`, or name the broker)"
        )
    return str(bootstrap), str(args.topic or running.get("topic") or live.topic)


def ensure_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    """Create the input topic if it is missing (the broker does not auto-create topics); an
    existing topic is used as it is, whatever its partition count."""
    from confluent_kafka import KafkaException

    from vitalstream.services.topics import create_topic, list_topics

    try:
        if topic not in list_topics(bootstrap_servers, timeout=5.0):
            create_topic(bootstrap_servers, topic, partitions)
    except (KafkaException, TimeoutError) as exc:
        raise UsageError(
            f"--bootstrap-servers {bootstrap_servers}: cannot use Kafka there: {exc}"
        ) from None


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (a clean end: flush, report, exit 0)."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _cli_simulate(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    live = checked("--config", LiveSettings.from_config, config.get("live", {}))
    spec = checked(
        "--patients",
        SimulatorSpec,
        patients=args.patients,
        rate_hz=args.rate_hz if args.rate_hz is not None else live.simulate.rate_hz,
        seed=args.seed if args.seed is not None else live.simulate.seed,
        seconds=args.seconds,
        critical_per_mille=args.critical_per_mille,
        tachycardic_per_mille=args.tachycardic_per_mille,
        natural_alerts=not args.stable,
    )
    try:
        injection = injection_from_config(config)
    except ValueError as exc:
        raise UsageError(f"--config: {exc}") from None
    bootstrap, topic = _where(args, live)
    ensure_topic(bootstrap, topic, live.partitions)
    stop = threading.Event()
    with stop_on_signals(stop):
        report = simulate(
            spec,
            bootstrap_servers=bootstrap,
            topic=topic,
            injection=injection,
            stop=stop,
            progress_every_s=args.progress_every_s,
        )
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(asdict(report)) + "\n")
    print(json.dumps(report.summary()), file=sys.stderr)
    return 1 if report.failed else 0
