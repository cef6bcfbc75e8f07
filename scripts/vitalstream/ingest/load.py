"""Load generator of the performance experiments: P monitored patients at one reading per
patient-second, sent at an exact wall-clock rate in steps (a rate ramp).

Why it looks the way it does:

* A token bucket meters the sends, so each step runs at its target rate whatever the client's
  internal batching does; the achieved rate of every step is reported beside the target, and a
  step whose producer fell short is flagged rather than silently counted (the producer is part
  of a configuration: the blueprint's send-and-wait producer cannot reach most targets).
* Messages are built from pre-encoded pieces (a prefix per patient, a pool of vital-sign
  fragments) plus the event time and the wall-clock send stamp, so one Python core produces
  several hundred thousand messages per second; the cohort replay (ingest.producer) is too
  slow to encode 100,000 patients on the fly.
* Event time runs on the patients' clock: patient p's k-th reading is stamped
  ``origin + k s + p/P s``. At rate R the stream's event time advances R/P seconds per wall
  second; with R = P (the RQ1 grid) it is real time. The origin sits ``lead_s`` before a window
  boundary so that the first window closes early in the run and window-alert latency is
  measurable in a short run.
* A small share of patients deteriorates (window rules fire) and a small share of readings is
  critical (single-reading rules fire), so every latency in the experiment has a sample.
* A timeline (every ~100 ms: wall clock, messages sent, newest event time) lets the metrics turn
  Spark's offsets into consumer lag and event time into "when the window could first close".

Not for: replaying a generated cohort (ingest.producer) or measuring (vitalstream.experiments.perf).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vitalstream.core.cliargs import checked, json_object, positive_float, writable_file
from vitalstream.core.progress import emit as emit_progress
from vitalstream.ingest.producer import ProducerSettings

PATIENT_PREFIX = "L"
TIMELINE_EVERY_S = 0.1


@dataclass(frozen=True)
class LoadSpec:
    """The load of one run (condition ``load`` block)."""

    patients: int
    rates: tuple[float, ...]
    step_s: float
    lead_s: float = 5.0
    window_s: float = 60.0
    deteriorating_fraction: float = 0.05
    critical_per_mille: int = 1
    seed: int = 20261128

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], window_s: float) -> LoadSpec:
        known = (set(cls.__dataclass_fields__) - {"window_s"}) | {"rates_per_patient"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown load settings: {sorted(unknown)}")
        data = dict(values)
        per_patient = data.pop("rates_per_patient", None)
        if per_patient is not None:
            # Readings per patient per wall second: RQ1's "N patients at 1 reading/s".
            data["rates"] = [data["patients"] * r for r in per_patient]
        if not data.get("rates"):
            raise ValueError("load needs rates (messages/s) or rates_per_patient")
        data["rates"] = tuple(float(r) for r in data["rates"])
        return cls(window_s=window_s, **data)

    def origin_ms(self, now_ms: int) -> int:
        """Event time of the first reading: ``lead_s`` before the next window boundary."""
        window_ms = int(self.window_s * 1000)
        boundary = (now_ms // window_ms + 1) * window_ms
        return boundary - int(self.lead_s * 1000)

    def expected_sent(self, elapsed_s: float) -> float:
        """Messages the ramp's schedule has sent ``elapsed_s`` after its first send."""
        total, left = 0.0, max(elapsed_s, 0.0)
        for rate in self.rates:
            span = min(left, self.step_s)
            total += rate * span
            left -= span
            if left <= 0:
                break
        return total

    def due_s(self, count: float) -> float:
        """Seconds after the first send at which the schedule sends message ``count`` (the
        inverse of ``expected_sent``; the ramp's end for a count past it). The performance
        runner dates unread messages with it to tell how stale the job is while it runs."""
        elapsed, left = 0.0, max(count, 0.0)
        for rate in self.rates:
            span = rate * self.step_s
            if left <= span:
                return elapsed + left / rate
            elapsed += self.step_s
            left -= span
        return elapsed


class TokenBucket:
    """Tokens accrue at ``rate`` per second up to ``burst``; ``take`` hands out whole tokens.

    The cap keeps a stalled sender from catching up in one burst: time lost is lost, and the
    achieved rate says so.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.tokens = 0.0
        self.last = now

    def take(self, now: float) -> int:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        whole = int(self.tokens)
        self.tokens -= whole
        return whole


def patient_prefixes(patients: int) -> list[bytes]:
    """``{"patient_id":"L000042","device_id":"D000042",`` for every patient."""
    width = max(6, len(str(patients)))
    return [
        b'{"patient_id":"%s%0*d","device_id":"D%0*d",'
        % (PATIENT_PREFIX.encode(), width, p, width, p)
        for p in range(patients)
    ]


def _fragment(hr: float, spo2: float, sbp: float, rr: float, temp: float) -> bytes:
    dbp = round(sbp * 0.62)
    mean_ap = round((sbp + 2 * dbp) / 3)
    return (
        b'"kind":"vital","hr":%.0f,"spo2":%.0f,"sbp":%.0f,"dbp":%d,"map":%d,"rr":%.0f,'
        b'"temp":%.1f,"o2_supplemental":false,"consciousness":"A"'
        % (hr, spo2, sbp, dbp, mean_ap, rr, temp)
    )


def fragment_pools(seed: int, size: int = 512) -> dict[str, list[bytes]]:
    """Vital-sign fragments: stable patients, deteriorating patients (window rules fire:
    tachycardia, hypoxaemia, NEWS2), and critical readings (single-reading rules fire)."""
    rng = np.random.default_rng(seed)

    def pool(hr: float, spo2: float, sbp: float, rr: float, temp: float) -> list[bytes]:
        return [
            _fragment(
                rng.normal(hr, 4),
                min(100.0, rng.normal(spo2, 1)),
                rng.normal(sbp, 6),
                rng.normal(rr, 1.5),
                rng.normal(temp, 0.2),
            )
            for _ in range(size)
        ]

    return {
        "stable": pool(78, 97, 122, 15, 36.9),
        "deteriorating": pool(128, 89, 95, 26, 38.6),
        "critical": [_fragment(160, 82, 85, 32, 39.0) for _ in range(8)],
    }


@dataclass
class StepReport:
    target_rate: float
    seconds: float = 0.0
    messages: int = 0
    achieved_rate: float = 0.0
    start_wall_ns: int = 0
    end_wall_ns: int = 0


@dataclass
class LoadReport:
    """What the generator did; the run's metrics read it (producer.json)."""

    topic: str
    patients: int
    messages: int = 0
    bytes: int = 0
    heartbeats: int = 0
    delivery_errors: int = 0
    seconds: float = 0.0
    achieved_rate: float = 0.0
    origin_event_ms: int = 0
    send_and_wait: bool = False
    interrupted: bool = False
    steps: list[StepReport] = field(default_factory=list)
    # [wall_ns, messages sent so far, newest event time sent (ms)], every ~100 ms.
    timeline: list[list[int]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


class _Stop:
    """Set by SIGTERM/SIGINT: the runner ends a ramp early once the job has fallen behind."""

    requested = False

    @classmethod
    def install(cls) -> None:
        def handler(_signum: int, _frame: object) -> None:
            cls.requested = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def generate(
    spec: LoadSpec,
    *,
    bootstrap_servers: str,
    topic: str,
    settings: ProducerSettings,
    clock: Callable[[], float] = time.monotonic,
) -> LoadReport:
    """Send the ramp of ``spec`` into ``topic`` and report per step."""
    from confluent_kafka import Producer

    prefixes = patient_prefixes(spec.patients)
    pools = fragment_pools(spec.seed)
    stable, deteriorating, critical = pools["stable"], pools["deteriorating"], pools["critical"]
    deteriorating_every = (
        max(1, round(1 / spec.deteriorating_fraction)) if spec.deteriorating_fraction else 0
    )
    width = max(6, len(str(spec.patients)))
    keys = [b"%s%0*d" % (PATIENT_PREFIX.encode(), width, p) for p in range(spec.patients)]
    producer = Producer(settings.client_config(bootstrap_servers))
    errors = [0]

    def on_error(err: object, _msg: object) -> None:
        if err is not None:
            errors[0] += 1

    report = LoadReport(
        topic=topic,
        patients=spec.patients,
        send_and_wait=settings.send_and_wait,
        settings=asdict(settings),
    )
    report.origin_event_ms = spec.origin_ms(time.time_ns() // 1_000_000)
    patients, origin = spec.patients, report.origin_event_ms
    pool_mask = len(stable) - 1
    sent = 0
    newest_event = origin
    start = clock()
    next_sample = start
    for index, rate in enumerate(spec.rates):
        # One line per step (vitalstream.core.progress): `vitalstream status` shows the ramp.
        emit_progress(
            "load",
            done=index,
            total=len(spec.rates),
            unit="steps",
            step=index + 1,
            rate=round(rate, 1),
        )
        step = StepReport(target_rate=rate, start_wall_ns=time.time_ns())
        step_start = clock()
        bucket = TokenBucket(rate, burst=max(rate * 0.02, 64), now=step_start)
        step_end = step_start + spec.step_s
        while not _Stop.requested:
            now = clock()
            if now >= step_end:
                break
            if now >= next_sample:
                report.timeline.append([time.time_ns(), sent, newest_event])
                next_sample = now + TIMELINE_EVERY_S
            n = bucket.take(now)
            if n == 0:
                time.sleep(min(0.001, 1 / rate))
                continue
            for i in range(sent, sent + n):
                patient, k = i % patients, i // patients
                newest_event = origin + k * 1000 + (patient * 1000) // patients
                mix = (i * 2654435761) & 0xFFFFFFFF
                if (mix >> 8) % 1000 < spec.critical_per_mille:
                    body = critical[mix & 7]
                elif deteriorating_every and patient % deteriorating_every == 0:
                    body = deteriorating[mix & pool_mask]
                else:
                    body = stable[mix & pool_mask]
                value = b'%s%s,"event_time_ms":%d,"send_wall_ns":%d}' % (
                    prefixes[patient],
                    body,
                    newest_event,
                    time.time_ns(),
                )
                _produce(producer, topic, keys[patient], value, on_error)
                report.bytes += len(value)
                if settings.send_and_wait:
                    producer.flush()
            step.messages += n
            sent += n
            producer.poll(0)
        step.seconds = clock() - step_start
        step.end_wall_ns = time.time_ns()
        step.achieved_rate = step.messages / step.seconds if step.seconds > 0 else 0.0
        report.steps.append(step)
        if _Stop.requested:
            report.interrupted = True
            break
    report.timeline.append([time.time_ns(), sent, newest_event])
    remaining = producer.flush(60)
    report.messages = sent
    report.seconds = clock() - start
    report.achieved_rate = sent / report.seconds if report.seconds > 0 else 0.0
    report.delivery_errors = errors[0] + remaining
    return report


def _produce(producer: Any, topic: str, key: bytes, value: bytes, on_error: Any) -> None:
    """Produce, waiting for queue space instead of failing when the local queue is full."""
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_error)
            return
        except BufferError:
            producer.poll(0.05)


def critical_count(messages: int, per_mille: int) -> int:
    """How many of the first ``messages`` messages ``generate`` makes critical (the same
    multiplicative hash as its loop), so a test can count the alerts that must exist."""
    index = np.arange(messages, dtype=np.uint64)
    mix = (index * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    return int(np.count_nonzero((mix >> np.uint64(8)) % np.uint64(1000) < per_mille))


def ramp(start: float, factor: float, steps: int) -> list[float]:
    """``steps`` rates from ``start``, each ``factor`` times the previous one."""
    return [start * factor**i for i in range(steps)]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "load", help="send synthetic readings at exact rates (token bucket), report per step"
    )
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument(
        "--load",
        type=json_object,
        required=True,
        help="load settings as JSON (condition `load`), or @FILE",
    )
    parser.add_argument("--window-s", type=positive_float, default=60.0)
    parser.add_argument(
        "--settings", type=json_object, default="{}", help="producer settings as JSON, or @FILE"
    )
    parser.add_argument("--report", type=writable_file, required=True)
    parser.set_defaults(func=_cli_load)


def _cli_load(args: argparse.Namespace) -> int:
    spec = checked("--load", LoadSpec.from_mapping, args.load, window_s=args.window_s)
    settings = checked("--settings", ProducerSettings.from_mapping, args.settings)
    _Stop.install()
    report = generate(
        spec,
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        settings=settings,
    )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(asdict(report)) + "\n")
    summary = {k: v for k, v in asdict(report).items() if k not in {"timeline", "settings"}}
    print(json.dumps(summary), file=sys.stderr)
    return 1 if report.delivery_errors else 0


def expected_messages(spec: LoadSpec) -> int:
    """Messages a full ramp sends (for sizing and tests)."""
    return int(sum(math.floor(rate * spec.step_s) for rate in spec.rates))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vitalstream-load")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
