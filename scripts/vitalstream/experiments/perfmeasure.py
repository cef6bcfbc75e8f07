"""What a performance run measured (vitalstream.experiments.perf runs it): its alerts'
latencies, read from the run's files or from Kafka in real-time mode; its metrics.json and the
series the notebooks read; and the raw ceiling the pipeline is compared with, a plain
confluent-kafka consumer that only reads and decodes a topic (``python -m vitalstream
ceiling``).

Not for: running the group (vitalstream.experiments.perf) or the step criterion and series
arithmetic (vitalstream.measure.perfmetrics).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import UsageError, positive_int, writable_file
from vitalstream.core.runsettings import ConditionSettings
from vitalstream.experiments import provenance
from vitalstream.experiments.run import RunError, resolve_bootstrap
from vitalstream.ingest.load import LoadSpec
from vitalstream.ingest.producer import epoch_ms
from vitalstream.measure import metrics, perfmetrics
from vitalstream.services import broker

# The per-run series of a performance run, beside metrics.json (a search copies its lo probe's).
PERF_OUTPUTS = ("progress.json", "producer.json", "batches.csv", "lag.csv", "latency.parquet")


def kafka_alerts(bootstrap: str, topic: str, timeout_s: float = 30.0) -> pd.DataFrame:
    """Every alert a real-time-mode run wrote to Kafka: its send stamp, rules, and the
    record's timestamp (CreateTime: when Spark's Kafka writer produced it)."""
    from confluent_kafka import Consumer

    expected = sum(broker.topic_end_offsets(bootstrap, topic).values())
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"alerts-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(rows) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error():
                    continue
                value = json.loads(message.value())
                rows.append(
                    {
                        "patient_id": value["patient_id"],
                        "rules": ",".join(value["fired_rules"]),
                        "send_wall_ns": int(value["send_wall_ns"]),
                        "kafka_time_ms": int(message.timestamp()[1]),
                    }
                )
    finally:
        consumer.close()
    if len(rows) < expected:
        raise RunError(f"read {len(rows)} of {expected} alerts from {topic}")
    columns = ["patient_id", "rules", "send_wall_ns", "kafka_time_ms"]
    return pd.DataFrame(rows, columns=columns)


def alert_latencies(
    alerts: pd.DataFrame, commits: pd.DataFrame, timeline: np.ndarray, watermark_s: float
) -> pd.DataFrame:
    """Per alert: kind, rule, the moment latency counts from, and the three latencies (ms)."""
    columns = ["kind", "rule", "at_wall_ns", "latency_ms", "event_to_alert_ms"]
    if alerts.empty:
        return pd.DataFrame(columns=columns)
    joined = alerts.merge(commits, on=["query", "batch_id"], how="left")
    if joined["commit_wall_ns"].isna().any():
        raise ValueError("alerts written by a batch without a commit record")
    commit = joined["commit_wall_ns"].to_numpy("int64")
    last_send = joined["last_send_wall_ns"].to_numpy("int64")
    at = last_send.astype(float)
    window = (joined["kind"] == "window").to_numpy()
    if window.any():
        closes = epoch_ms(joined.loc[window, "window_end"]) + int(watermark_s * 1000)
        at[window] = perfmetrics.closable_wall_ns(timeline, closes)
    frame = pd.DataFrame(
        {
            "kind": joined["kind"].astype(str),
            "rule": joined["rule"].astype(str),
            "at_wall_ns": at,
            "latency_ms": (commit - at) / 1e6,
            "event_to_alert_ms": (commit - last_send) / 1e6,
        }
    )
    return frame.dropna(subset=["at_wall_ns"]).astype({"at_wall_ns": "int64"})


def realtime_latencies(alerts: pd.DataFrame) -> pd.DataFrame:
    """Critical-alert latency of a real-time-mode run: the alert record's Kafka timestamp
    minus the reading's send stamp (ms resolution, the broker's record timestamp)."""
    send = alerts["send_wall_ns"].to_numpy("int64")
    latency = alerts["kafka_time_ms"].to_numpy("int64") - send / 1e6
    return pd.DataFrame(
        {
            "kind": "reading",
            "rule": alerts["rules"].astype(str),
            "at_wall_ns": send,
            "latency_ms": latency,
            "event_to_alert_ms": latency,
        }
    )


def peak_processing_rate(queries: Mapping[str, pd.DataFrame]) -> float:
    """The job's capacity without a latency bound: per query the highest rows per second of
    micro-batch time (the largest batches amortise the fixed cost best), the slower query's.
    """
    peaks = []
    for batches in queries.values():
        busy = batches[(batches["rows"] > 0) & (batches["duration_ms"] > 0)]
        if len(busy):
            peaks.append(float((busy["rows"] / (busy["duration_ms"] / 1000)).max()))
    return min(peaks) if peaks else 0.0


def perf_metrics(
    run_dir: Path,
    condition: ConditionSettings,
    criterion: perfmetrics.SustainCriterion,
    probe: bool = False,
) -> dict[str, Any]:
    """metrics.json of a performance run, and its series (batches.csv, lag.csv,
    latency.parquet) for the notebooks. A ``probe`` (one fixed-rate step of a rate search)
    is judged by the fixed-rate criterion (perfmetrics.fixed_step_result), recorded under
    ``probe``; its ``sustainable_rate`` is its rate if it held, else 0."""
    base = metrics.run_metrics(run_dir, condition.record)
    report = json.loads((run_dir / "producer.json").read_text())
    progress = json.loads((run_dir / "progress.json").read_text())
    timeline = np.asarray(report["timeline"], dtype=float)
    queries = {name: perfmetrics.batch_table(rows) for name, rows in progress.items()}
    if (run_dir / "kafka_alerts.parquet").exists():  # real-time mode: alerts in Kafka
        latency = realtime_latencies(pd.read_parquet(run_dir / "kafka_alerts.parquet"))
    else:
        commits = metrics.read_commits(run_dir / "commits.jsonl")
        alerts = metrics.read_parquet_dir(run_dir / "alerts")
        latency = alert_latencies(alerts, commits, timeline, condition.watermark_s)
    reading = latency[latency["kind"] == "reading"]
    window = latency[latency["kind"] == "window"]
    steps = perfmetrics.step_results(
        report, queries, reading, window, criterion, condition.trigger_ms
    )
    lag = perfmetrics.lag_series(report, queries)
    start_ns = timeline[0, 0]
    batches = pd.concat(
        [frame.assign(query=name) for name, frame in queries.items()], ignore_index=True
    )
    batches["t_s"] = (batches["end_wall_ns"] - start_ns) / 1e9
    batches.to_csv(run_dir / "batches.csv", index=False)
    lag.to_csv(run_dir / "lag.csv", index=False)
    latency.to_parquet(run_dir / "latency.parquet", index=False)
    windows_batches = queries.get("windows", queries["readings"])
    held = perfmetrics.sustainable_rate(steps)
    extra: dict[str, Any] = {}
    if probe:
        extra["probe"] = perfmetrics.fixed_step_result(
            report, queries, criterion, condition.trigger_ms
        )
        held = extra["probe"]["rate"] if extra["probe"]["held"] else 0.0
    return (
        extra
        | base
        | {
            "load": dict(condition.record["load"]),
            "steps": steps,
            "sustainable_rate": held,
            "criterion": asdict(criterion),
            "critical_alert_latency_ms": metrics.latency_summary(reading["latency_ms"]),
            "window_processing_latency_ms": metrics.latency_summary(window["latency_ms"]),
            "event_to_alert_ms": metrics.latency_summary(window["event_to_alert_ms"]),
            "batch_duration_ms": metrics.latency_summary(
                windows_batches.loc[windows_batches["rows"] > 0, "duration_ms"]
            ),
            "readings_batch_duration_ms": metrics.latency_summary(
                queries["readings"].loc[queries["readings"]["rows"] > 0, "duration_ms"]
            ),
            "state_rows_max": int(windows_batches["state_rows"].max())
            if len(windows_batches)
            else 0,
            "state_bytes_max": int(windows_batches["state_bytes"].max())
            if len(windows_batches)
            else 0,
            "lag_max": float(lag["lag"].max()) if len(lag) else 0.0,
            "peak_processing_rate": peak_processing_rate(queries),
            "producer_target_rates": [s["target_rate"] for s in report["steps"]],
            "send_and_wait": bool(report.get("send_and_wait")),
        }
    )


def ceiling_round(
    bootstrap: str, messages: int, partitions: int, rep: int, before_run: str
) -> dict[str, Any]:
    """The raw ceiling measured in a performance group's session, on its broker, before
    the first run of repetition round ``rep`` (``before_run``), so that each repetition's
    ratio has a ceiling from its own round."""
    print(f"ceiling: {messages} messages, {partitions} partitions (round {rep})", flush=True)
    return raw_ceiling(bootstrap, messages, partitions) | {"rep": rep, "before_run": before_run}


def write_ceilings(path: Path, rounds: list[dict[str, Any]]) -> None:
    """<out_root>/<experiment>/ceiling.json: every round's ceiling, and their median."""
    rates = [r["msgs_per_s"] for r in rounds]
    record = {
        "msgs_per_s_median": float(np.median(rates)) if rates else None,
        "rounds": rounds,
        "provenance": {"machine": provenance.machine(), "git": provenance.git_commit()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def add_ceiling(run_dir: Path, result: dict[str, Any], ceiling: Mapping[str, Any]) -> None:
    """Record the round's ceiling in the run's metrics.json, and the ratio of the run's
    sustainable rate to it (the issue's target: at least 0.9 for the tuned job)."""
    rate = float(ceiling["msgs_per_s"])
    result |= {
        "ceiling_msgs_per_s": rate,
        "ceiling_ratio": float(result["sustainable_rate"]) / rate if rate > 0 else None,
        "ceiling_rep": int(ceiling["rep"]),
    }
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


def raw_ceiling(
    bootstrap: str, messages: int, partitions: int, patients: int = 10_000
) -> dict[str, Any]:
    """How fast one plain consumer reads and decodes the topic: the ceiling any pipeline on
    this machine is compared with. The topic is filled first (not timed)."""
    import orjson
    from confluent_kafka import Consumer

    from vitalstream.ingest.load import generate
    from vitalstream.ingest.producer import ProducerSettings

    topic = f"perf.ceiling.{uuid.uuid4().hex[:8]}"
    broker.create_topic(bootstrap, topic, partitions)
    rate = 300_000.0
    spec = LoadSpec(patients=patients, rates=(rate,), step_s=messages / rate)
    filled = generate(spec, bootstrap_servers=bootstrap, topic=topic, settings=ProducerSettings())
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ceiling-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52_428_800,
        }
    )
    consumer.subscribe([topic])
    read, decoded_bytes, started = 0, 0, None
    deadline = time.monotonic() + 300
    try:
        while read < filled.messages and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=1.0)
            if batch and started is None:
                started = time.perf_counter()
            for message in batch:
                if message.error():
                    continue
                value = message.value()
                orjson.loads(value)
                decoded_bytes += len(value)
                read += 1
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        consumer.close()
        broker.delete_topic(bootstrap, topic)
    return {
        "messages": read,
        "produced": filled.messages,
        "seconds": seconds,
        "msgs_per_s": read / seconds if seconds > 0 else 0.0,
        "mb_per_s": decoded_bytes / seconds / 1e6 if seconds > 0 else 0.0,
        "partitions": partitions,
        "consumer": "confluent-kafka Consumer.consume(10000) + orjson.loads, one process",
    }


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    ceiling = subparsers.add_parser(
        "ceiling", help="raw consumer ceiling: a plain consumer reading and decoding a topic"
    )
    ceiling.add_argument("--bootstrap-servers", default=None, help="default: --broker-state")
    ceiling.add_argument("--messages", type=positive_int, default=2_000_000)
    ceiling.add_argument("--partitions", type=positive_int, default=6)
    ceiling.add_argument("--broker-state", type=Path, default=None)
    ceiling.add_argument("--out", type=writable_file, required=True)
    ceiling.set_defaults(func=_cli_ceiling)


def _cli_ceiling(args: argparse.Namespace) -> int:
    if not args.bootstrap_servers and not (args.broker_state and args.broker_state.is_file()):
        raise UsageError(
            "arguments --bootstrap-servers/--broker-state: no Kafka cluster; give "
            "--bootstrap-servers, or --broker-state naming an existing state file"
        )
    bootstrap = resolve_bootstrap(args.bootstrap_servers, args.broker_state)
    result = raw_ceiling(bootstrap, args.messages, args.partitions)
    result["provenance"] = {"machine": provenance.machine(), "git": provenance.git_commit()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}))
    return 0
