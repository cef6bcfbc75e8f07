"""Performance experiments (RQ1, RQ5): every run of one experiment in one Spark session.

Why a group and not one process per run: Spark's start-up costs about 10 s here, a large share
of a 20-s measurement, and it would be paid ~100 times by the full grid. Start-up is not what
RQ1 and RQ5 measure, so the group shares one session (and the workflow's one broker) and each
run still gets a fresh topic, fresh queries, fresh checkpoints and state, and its own
``spark.sql.*`` settings (shuffle partitions, state store), which Spark reads when a query
starts. What cannot change inside a session (driver memory, master) is rejected by config
validation. The group starts with an unmeasured warm-up run (JIT, class loading, first
connections), and runs repetitions round-robin (rep 1 of every condition, then rep 2, ...) so
that slow drift of a shared machine spreads over all conditions instead of biasing one.

Each run: topic → queries started (first empty batch done) → load generator process
(vitalstream.load) with the condition's rate ramp → the ramp stops early once the job has
clearly fallen behind → drain (bounded) → metrics (vitalstream.perfmetrics) and provenance.

Also here: the raw ceiling, a plain confluent-kafka consumer that only reads and decodes a topic.

Not for: single cohort replays (vitalstream.experiment).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from vitalstream import broker, metrics, perfmetrics, provenance, sparkenv
from vitalstream.config import (
    RunId,
    add_config_arguments,
    condition_params,
    config_from_args,
    expand_runs,
    is_load_experiment,
)
from vitalstream.experiment import (
    RunError,
    _progress_dict,
    _raise_if_failed,
    clean_run_dir,
    prepare_job,
    resolve_bootstrap,
    spawn_child,
    wait_until_drained,
    wait_until_started,
)
from vitalstream.load import LoadSpec
from vitalstream.producer import epoch_ms
from vitalstream.streaming import start_job, start_realtime_job

PERF_OUTPUTS = ("progress.json", "producer.json", "batches.csv", "lag.csv", "latency.parquet")


def group_order(config: Mapping[str, Any], experiment: str) -> list[RunId]:
    """The experiment's runs, repetitions round-robin over conditions."""
    runs = [r for r in expand_runs(config) if r.experiment == experiment]
    return sorted(runs, key=lambda r: r.rep)


class ResourceSampler(threading.Thread):
    """CPU (% of one core) and resident memory of the Spark JVM and of the load generator,
    sampled every ``every_s`` while a run is under load."""

    def __init__(self, pids: Mapping[str, int], every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.every_s = every_s
        self.samples: dict[str, list[tuple[float, float]]] = {n: [] for n in self.procs}
        self._stop_event = threading.Event()

    def run(self) -> None:
        for proc in self.procs.values():
            _safe(proc.cpu_percent)
        while not self._stop_event.wait(self.every_s):
            for name, proc in self.procs.items():
                cpu = _safe(proc.cpu_percent)
                rss = _safe(lambda p=proc: p.memory_info().rss)
                if cpu is not None and rss is not None:
                    self.samples[name].append((float(cpu), float(rss)))

    def stop(self) -> dict[str, dict[str, float | None]]:
        self._stop_event.set()
        self.join(timeout=5)
        summary: dict[str, dict[str, float | None]] = {}
        for name, rows in self.samples.items():
            cpu = [c for c, _ in rows]
            rss = [r for _, r in rows]
            summary[name] = {
                "cpu_mean_pct": float(np.mean(cpu)) if cpu else None,
                "cpu_max_pct": float(np.max(cpu)) if cpu else None,
                "rss_max_mib": float(np.max(rss)) / 2**20 if rss else None,
                "samples": len(rows),
            }
        return summary


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def jvm_pid() -> int:
    """The Spark driver JVM: the java child of this Python process."""
    for child in psutil.Process().children(recursive=True):
        if child.name().startswith("java"):
            return child.pid
    raise RunError("no Spark JVM found among this process's children")


def start_load(
    bootstrap: str, topic: str, params: Mapping[str, Any], report: Path, log: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "vitalstream",
        "load",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--load",
        json.dumps(params["load"]),
        "--window-s",
        str(params["window_s"]),
        "--settings",
        json.dumps(params.get("producer", {})),
        "--report",
        str(report),
    ]
    return spawn_child(command, log)


def _consumed(query: Any) -> int:
    return perfmetrics.offsets_sum(query.lastProgress or {}) or 0


def _apply_sql_conf(spark: Any, conf: Mapping[str, Any]) -> dict[str, str | None]:
    """Set the condition's spark.sql.* settings; return the previous values to restore."""
    previous = {}
    for key, value in conf.items():
        previous[key] = spark.conf.get(key, None)
        spark.conf.set(key, str(value).lower() if isinstance(value, bool) else str(value))
    return previous


def _restore_sql_conf(spark: Any, previous: Mapping[str, str | None]) -> None:
    for key, value in previous.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


class _Phases:
    """Wall seconds per phase of a run, so that the grid's time budget can be audited."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self.seconds: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now


def run_one(
    spark: Any,
    config: Mapping[str, Any],
    run: RunId,
    run_dir: Path,
    bootstrap: str,
    criterion: perfmetrics.SustainCriterion,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One measured run in the shared session; writes metrics.json, provenance.json,
    condition.json and the per-run series."""
    phases = _Phases()
    params = dict(params or condition_params(config, run))
    clean_run_dir(run_dir)
    for name in PERF_OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
    (run_dir / "condition.json").write_text(json.dumps(params, indent=2) + "\n")
    load = LoadSpec.from_mapping(params["load"], window_s=params["window_s"])
    topic = f"perf.{run.experiment}.{run.condition}.rep{run.rep}.{uuid.uuid4().hex[:8]}"
    # Real-time mode writes its alerts to Kafka; the micro-batch job to Parquet only.
    realtime = params.get("trigger_mode", "microbatch") == "realtime"
    spec = prepare_job(config, params, bootstrap, topic, run_dir, alerts=realtime, raw_events=False)
    alerts_topic = spec.alerts_topic
    previous = _apply_sql_conf(spark, params.get("spark_conf", {}))
    producer = None
    try:
        job = start_realtime_job(spark, spec) if realtime else start_job(spark, spec)
        queries = job.queries
        session_conf = spark_session_conf(spark)  # with this condition's settings applied
        wait_until_started(queries)
        phases.mark("start")
        producer = start_load(
            bootstrap, topic, params, run_dir / "producer.json", run_dir / "producer.log"
        )
        sampler = ResourceSampler({"jvm": jvm_pid(), "producer": producer.pid})
        sampler.start()
        aborted = _watch_ramp(
            queries,
            producer,
            bootstrap,
            topic,
            load,
            criterion,
            params,
            may_abort=bool(params.get("abort_on_backlog", True)),
        )
        phases.mark("load")
        # Single-rate runs wait until the last window the data closes is written (their
        # window-alert latency may rest on it); a ramp has closed many windows by its end.
        closing_ms = (
            _last_closable_window_end(run_dir / "producer.json", params)
            if not realtime and len(load.rates) == 1
            else None
        )
        # An aborted run has failed its step; draining its backlog would measure nothing
        # and cost up to drain_s. Each query's next batch completion is awaited (the
        # criterion reads staleness there), then the run stops.
        if aborted:
            _await_next_batch(queries, criterion.drain_s)
            drained = False
        else:
            drained = _drain(queries, bootstrap, topic, closing_ms, criterion.drain_s)
        phases.mark("drain")
        resources = sampler.stop()
        progress = {
            name: [_progress_dict(p) for p in q.recentProgress] for name, q in queries.items()
        }
        job.stop()
        phases.mark("stop")
    finally:
        if producer is not None and producer.poll() is None:
            producer.kill()
        _restore_sql_conf(spark, previous)
    # A SIGTERM that reached the generator as it exited (interpreter shutdown restores the
    # default handler) ends it with -SIGTERM; its report is complete all the same.
    stopped_late = aborted and producer.returncode == -signal.SIGTERM
    if producer.returncode != 0 and not (stopped_late and (run_dir / "producer.json").exists()):
        raise RunError(f"load generator exited with {producer.returncode}; see producer.log")
    (run_dir / "progress.json").write_text(json.dumps(progress) + "\n")
    kafka_messages = int(sum(broker.topic_end_offsets(bootstrap, topic).values()))
    if alerts_topic:
        kafka_alerts(bootstrap, alerts_topic).to_parquet(run_dir / "kafka_alerts.parquet")
    result = perf_metrics(run_dir, params, criterion)
    phases.mark("metrics")
    sending_s = json.loads((run_dir / "producer.json").read_text())["seconds"]
    result |= {
        "kafka_messages": kafka_messages,
        # Throughput into Kafka: what the topic holds over the time the generator sent.
        "kafka_rate": kafka_messages / sending_s if sending_s > 0 else 0.0,
        "ramp_aborted": aborted,
        "drained": drained,
        "resources": resources,
        # Where the run's wall time went ("start": topic and queries to their first batch).
        "phases_s": phases.seconds,
    }
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    command = ["perf-group", run.experiment, "--config", "<config files>"]
    record = provenance.collect(
        config, run, params, session_conf, sparkenv.connector_jars(), topic, command
    )
    (run_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    for name in (topic, alerts_topic):
        if name:
            broker.delete_topic(bootstrap, name)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return result


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


def spark_session_conf(spark: Any) -> dict[str, str]:
    """The session's effective settings, as recorded in provenance."""
    conf = dict(spark.sparkContext.getConf().getAll())
    for key in [*conf, "spark.sql.streaming.stateStore.providerClass"]:
        if key.startswith("spark.sql."):
            conf[key] = spark.conf.get(key, None) or conf.get(key, "")
    conf["spark.sql.shuffle.partitions"] = spark.conf.get("spark.sql.shuffle.partitions")
    return {k: v for k, v in conf.items() if v != ""}


def _watch_ramp(
    queries: Mapping[str, Any],
    producer: subprocess.Popen[bytes],
    bootstrap: str,
    topic: str,
    load: LoadSpec,
    criterion: perfmetrics.SustainCriterion,
    params: Mapping[str, Any],
    may_abort: bool = True,
) -> bool:
    """Wait for the generator; stop it once the staleness exceeds ``abort_factor`` × the bound
    (the current step has failed and every later one would too) or the generator cannot
    keep its rate, unless ``may_abort`` is False. True if stopped early."""
    bound_s = criterion.max_lag_s + params["trigger_ms"] / 1000
    aborted = False
    start = None  # when the first message reached the broker (process start-up excluded)
    next_check = time.monotonic() + 0.5
    while producer.poll() is None:
        _raise_if_failed(queries)
        now = time.monotonic()
        if may_abort and not aborted and now >= next_check:
            next_check = now + 0.5
            produced = sum(broker.topic_end_offsets(bootstrap, topic).values())
            if start is None:
                start = now if produced else None
                continue
            consumed = min(_consumed(q) for q in queries.values())
            elapsed = now - start
            # Staleness, as the criterion measures it: the age of the oldest unread reading,
            # dated by the ramp's schedule (the generator keeps it; `short` checks that).
            stale = elapsed - load.due_s(consumed + 1) if consumed < produced else 0.0
            behind = stale > criterion.abort_factor * bound_s
            # The generator itself cannot keep the rate (the blueprint's send-and-wait
            # producer): later, faster steps cannot hold either.
            short = elapsed > 3 and produced < 0.8 * load.expected_sent(elapsed - 0.5)
            # Past the ramp's end the generator is flushing and exiting: nothing to stop.
            over = elapsed >= load.step_s * len(load.rates)
            if (behind or short) and not over:
                producer.send_signal(signal.SIGTERM)
                aborted = True
        time.sleep(0.1)
    return aborted


def _last_closable_window_end(report_path: Path, params: Mapping[str, Any]) -> int | None:
    """End (event ms) of the last window the data sent can close: newest event time minus
    the watermark, rounded down to a window boundary (None if no window can close)."""
    if not report_path.exists():
        return None
    report = json.loads(report_path.read_text())
    if not report.get("timeline"):
        return None
    newest = int(report["timeline"][-1][2])
    window_ms = int(params["window_s"] * 1000)
    end = (newest - int(params["watermark_s"] * 1000)) // window_ms * window_ms
    return end if end > int(report["origin_event_ms"]) else None


def _await_next_batch(queries: Mapping[str, Any], timeout_s: float) -> bool:
    """Wait (at most ``timeout_s``) until every query has completed one more micro-batch."""
    last = {name: (q.lastProgress or {}).get("batchId", -1) for name, q in queries.items()}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _raise_if_failed(queries)
        if all((q.lastProgress or {}).get("batchId", -1) > last[n] for n, q in queries.items()):
            return True
        time.sleep(0.1)
    return False


def _drain(
    queries: Mapping[str, Any],
    bootstrap: str,
    topic: str,
    closing_ms: int | None,
    timeout_s: float,
) -> bool:
    """Wait (at most ``timeout_s``) until every query has read every offset and, when the
    data closes a window, until the windows query has emitted it: the batch after the one
    that moved the watermark past its end. False on timeout (the run is kept, flagged)."""
    end_offsets = broker.topic_end_offsets(bootstrap, topic)
    produced = sum(end_offsets.values())
    try:
        if closing_ms is None:
            deadline = time.monotonic() + timeout_s
            while not all(_consumed(q) >= produced for q in queries.values()):
                _raise_if_failed(queries)
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.2)
        else:
            wait_until_drained(queries, end_offsets, closing_ms, timeout_s)
    except RunError as error:
        if "did not drain" in str(error):
            return False
        raise
    time.sleep(0.2)  # let the batch that read the last offsets finish its sink
    return True


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
    run_dir: Path, params: Mapping[str, Any], criterion: perfmetrics.SustainCriterion
) -> dict[str, Any]:
    """metrics.json of a performance run, and its series (batches.csv, lag.csv,
    latency.parquet) for the notebooks."""
    base = metrics.run_metrics(run_dir, params)
    report = json.loads((run_dir / "producer.json").read_text())
    progress = json.loads((run_dir / "progress.json").read_text())
    timeline = np.asarray(report["timeline"], dtype=float)
    queries = {name: perfmetrics.batch_table(rows) for name, rows in progress.items()}
    if (run_dir / "kafka_alerts.parquet").exists():  # real-time mode: alerts in Kafka
        latency = realtime_latencies(pd.read_parquet(run_dir / "kafka_alerts.parquet"))
    else:
        commits = metrics.read_commits(run_dir / "commits.jsonl")
        alerts = metrics.read_parquet_dir(run_dir / "alerts")
        latency = alert_latencies(alerts, commits, timeline, params["watermark_s"])
    reading = latency[latency["kind"] == "reading"]
    window = latency[latency["kind"] == "window"]
    steps = perfmetrics.step_results(
        report, queries, reading, window, criterion, int(params["trigger_ms"])
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
    return base | {
        "load": dict(params["load"]),
        "steps": steps,
        "sustainable_rate": perfmetrics.sustainable_rate(steps),
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
        "state_rows_max": int(windows_batches["state_rows"].max()) if len(windows_batches) else 0,
        "state_bytes_max": int(windows_batches["state_bytes"].max()) if len(windows_batches) else 0,
        "lag_max": float(lag["lag"].max()) if len(lag) else 0.0,
        "peak_processing_rate": peak_processing_rate(queries),
        "producer_target_rates": [s["target_rate"] for s in report["steps"]],
        "send_and_wait": bool(report.get("send_and_wait")),
    }


def warm_up(
    spark: Any,
    config: Mapping[str, Any],
    run: RunId,
    out_root: Path,
    bootstrap: str,
    seconds: float,
) -> None:
    """An unmeasured run of the experiment's default (tuned) configuration at its first
    rate, ``seconds`` long, written to a scratch folder that is removed afterwards."""
    params = dict(config["experiments"][run.experiment]["defaults"], cohort=None)
    first = LoadSpec.from_mapping(params["load"], window_s=params["window_s"]).rates[0]
    load = {k: v for k, v in params["load"].items() if k != "rates_per_patient"}
    params["load"] = load | {"rates": [first], "step_s": seconds}
    scratch = out_root / run.experiment / ".warmup"
    run_one(spark, config, run, scratch, bootstrap, perfmetrics.SustainCriterion(), params)
    shutil.rmtree(scratch, ignore_errors=True)  # kept when it failed, for its logs


def run_group(
    config: Mapping[str, Any], experiment: str, out_root: Path, bootstrap: str
) -> list[dict[str, Any]]:
    """Every run of ``experiment`` in one Spark session (see the module docstring)."""
    spec = config["experiments"][experiment]
    if not is_load_experiment(spec):
        raise RunError(f"experiment {experiment!r} has no load block: not a performance group")
    criterion = perfmetrics.SustainCriterion.from_mapping(spec.get("sustain"))
    defaults = spec["defaults"]
    conf = sparkenv.effective_conf(
        Path(config["spark"]["defaults_file"]), config["spark"]["conf"], defaults["spark_conf"]
    )
    spark = sparkenv.build_session(conf)
    results = []
    try:
        runs = group_order(config, experiment)
        if spec.get("warmup_s", 0) > 0:
            print(f"warm-up: defaults, {spec['warmup_s']} s", flush=True)
            warm_up(spark, config, runs[0], out_root, bootstrap, spec["warmup_s"])
        for run in runs:
            started = time.monotonic()
            result = run_one(spark, config, run, out_root / run.path, bootstrap, criterion)
            results.append(result)
            summary = {
                "run": run.path,
                "seconds": round(time.monotonic() - started, 1),
                "sustainable_rate": result["sustainable_rate"],
                "critical_p99_ms": result["critical_alert_latency_ms"]["p99"],
                "window_p99_ms": result["window_processing_latency_ms"]["p99"],
            }
            print(json.dumps(summary), flush=True)
    finally:
        spark.stop()
    return results


def raw_ceiling(
    bootstrap: str, messages: int, partitions: int, patients: int = 10_000
) -> dict[str, Any]:
    """How fast one plain consumer reads and decodes the topic: the ceiling any pipeline on
    this machine is compared with. The topic is filled first (not timed)."""
    import orjson
    from confluent_kafka import Consumer

    from vitalstream.load import generate
    from vitalstream.producer import ProducerSettings

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
    parser = subparsers.add_parser(
        "perf-group", help="run every condition of a performance experiment in one Spark session"
    )
    parser.add_argument("experiment", help="a performance experiment of the config (load block)")
    add_config_arguments(parser)
    parser.add_argument("--out-root", type=Path, default=Path("results/runs"))
    parser.add_argument("--broker-state", type=Path, default=None)
    parser.set_defaults(func=_cli_group)

    ceiling = subparsers.add_parser(
        "ceiling", help="raw consumer ceiling: a plain consumer reading and decoding a topic"
    )
    ceiling.add_argument("--bootstrap-servers", default=None, help="default: --broker-state")
    ceiling.add_argument("--messages", type=int, default=2_000_000)
    ceiling.add_argument("--partitions", type=int, default=6)
    ceiling.add_argument("--broker-state", type=Path, default=None)
    ceiling.add_argument("--out", type=Path, required=True)
    ceiling.set_defaults(func=_cli_ceiling)


def _cli_group(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    config = config_from_args(args)
    bootstrap = resolve_bootstrap(config, args.broker_state)
    run_group(config, args.experiment, args.out_root, bootstrap)
    return 0


def _cli_ceiling(args: argparse.Namespace) -> int:
    config = {"kafka": {"bootstrap_servers": args.bootstrap_servers}}
    bootstrap = resolve_bootstrap(config, args.broker_state)
    result = raw_ceiling(bootstrap, args.messages, args.partitions)
    result["provenance"] = {"machine": provenance.machine(), "git": provenance.git_commit()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}))
    return 0
