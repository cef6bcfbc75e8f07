"""Fault experiments: the Spark job crashes, the broker crashes, one node of three dies.

Each condition of a replay experiment with a ``fault`` block replays a cohort through Kafka
into the Spark job, injects one fault, and checks with alert ids and Kafka offsets what a
monitoring pipeline must guarantee:

* ``spark_kill``: the whole job (Python driver and its JVM) is killed with SIGKILL once
  ``after_batches`` window batches have committed, and restarted from its checkpoint. The
  alerts it writes (Parquet, with their suppression flags) must equal those of an
  uninterrupted run over the same topic: none lost, none duplicated. The alerts *topic* is
  at-least-once: a batch re-run after the crash publishes its alerts again, so duplicates
  there are counted and reported (consumers drop them by alert id).
* ``broker_restart``: the one broker is killed with SIGKILL while the producer (``acks=all``,
  idempotence) sends, and restarted ``down_s`` later from its data. Every produced reading
  must be in the topic exactly once and every offset consumed exactly once.
* ``broker_kill``: on a cluster of ``nodes`` KRaft nodes (replication factor 3,
  ``min.insync.replicas`` 2), the leader of partition 0 is killed mid-replay and stays dead.
  Same checks as a restart; the pause it caused is the longest delay from a reading's send
  to its append by the broker (topics use ``LogAppendTime``), against the median.

The job runs in a child process (``python -m vitalstream fault-job``) so that it can be
killed as a crashed driver would be; the runner restarts it whenever it dies or its queries
fail (an outage may fail a query) and counts the restarts. Broker faults start their own
broker or cluster in the run directory, never touching the workflow's broker.

Not for: performance (experiments.perf) or fault-free runs (vitalstream.experiments.run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.config import RunId, add_config_arguments, config_from_args
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.runsettings import ConditionSettings, FaultSettings, Settings
from vitalstream.experiments import provenance
from vitalstream.experiments.run import (
    RunError,
    clean_run_dir,
    progress_dict,
    raise_if_failed,
    spawn_child,
    start_producer,
    wait_until_drained,
    wait_until_started,
)
from vitalstream.measure import metrics, runseries
from vitalstream.measure.faultsummary import FAULT_KINDS
from vitalstream.services import broker, sparkenv
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import start_job
from vitalstream.stream.spec import JobSpec

EXPECTED = "expected.json"  # runner → job: the offsets and watermark to drain to
JOB_EXIT_FAILED = 3
JOB_START_TIMEOUT_S = 180.0
NS_UTC = "datetime64[ns, UTC]"


# --------------------------------------------------------------------------- the job (child)


def _job_spec(
    condition: ConditionSettings, diagnostics: DiagnosticsSpec, args: argparse.Namespace
) -> JobSpec:
    return JobSpec.from_condition(
        condition,
        diagnostics,
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        out_dir=args.run_dir,
        alerts_topic=args.alerts_topic,
        raw_events=True,
    )


def run_job(settings: Settings, run: RunId, args: argparse.Namespace) -> int:
    """Run the job until the runner writes ``expected.json`` and the job has drained to it.

    Exit 0 when drained, ``JOB_EXIT_FAILED`` when a query failed (the runner restarts it from
    the checkpoint). Each attempt appends its progress reports to ``progress.jsonl``.
    """
    condition = settings.run(run).condition
    conf = sparkenv.effective_conf(
        settings.spark.defaults_file, settings.spark.conf, condition.spark_conf
    )
    spark = sparkenv.build_session(conf)
    job = None
    try:
        spec = _job_spec(condition, settings.diagnostics, args)
        job = start_job(spark, spec, Sinks(spec))
        wait_until_started(job.queries)
        print(json.dumps({"started_wall_ns": time.time_ns()}), flush=True)
        expected = args.run_dir / EXPECTED
        while not expected.exists():
            raise_if_failed(job.queries)
            time.sleep(0.2)
        target = json.loads(expected.read_text())
        offsets = {int(p): int(o) for p, o in target["end_offsets"].items()}
        wait_until_drained(job.queries, offsets, int(target["closing_ms"]), target["timeout_s"])
        return 0
    except RunError as error:
        print(f"job failed: {error}", file=sys.stderr, flush=True)
        return JOB_EXIT_FAILED
    finally:
        if job is not None:
            with (args.run_dir / "progress.jsonl").open("a") as fh:
                for name, query in job.queries.items():
                    for progress in query.recentProgress:
                        fh.write(json.dumps({"query": name, **progress_dict(progress)}) + "\n")
            with contextlib.suppress(Exception):
                job.stop()
        spark.stop()


# --------------------------------------------------------------------------- the runner


class JobProcess:
    """The job's child process: started, awaited, killed like a crashed driver, restarted."""

    def __init__(
        self, config_json: str, run: RunId, run_dir: Path, bootstrap: str, topic: str, alerts: str
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "vitalstream",
            "fault-job",
            run.path,
            "--config-json",
            config_json,
            "--run-dir",
            str(run_dir),
            "--bootstrap-servers",
            bootstrap,
            "--topic",
            topic,
            "--alerts-topic",
            alerts,
        ]
        self.log = run_dir / "job.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Launch an attempt and wait until its queries have run their first batch."""
        self.wait_started(self.spawn())

    def spawn(self) -> int:
        """Launch an attempt without waiting for it; returns the log offset it writes from."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        mark = self.log.stat().st_size if self.log.exists() else 0
        self.proc = spawn_child(
            self.command, self.log, own_group=True, env={"PYSPARK_PYTHON": sys.executable}
        )
        self.starts += 1
        return mark

    def wait_started(self, mark: int) -> None:
        """Wait until the attempt that logs from ``mark`` has run its first batch."""
        assert self.proc is not None
        deadline = time.monotonic() + JOB_START_TIMEOUT_S
        while b"started_wall_ns" not in self.log.read_bytes()[mark:]:
            if self.proc.poll() is not None:
                raise RunError(f"fault job exited with {self.proc.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RunError(f"fault job did not start within {JOB_START_TIMEOUT_S:.0f} s")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the job's process group (driver and JVM): a crash, no clean shutdown."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout_s: float, max_restarts: int = 3) -> int:
        """Wait for the job to drain, restarting it (from its checkpoint) whenever it failed.
        Returns the number of restarts this needed."""
        restarts = 0
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc is not None
            remaining = max(deadline - time.monotonic(), 1.0)
            try:
                code = self.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired as error:
                self.kill()
                raise RunError(f"fault job did not finish within {timeout_s:.0f} s") from error
            if code == 0:
                return restarts
            if restarts >= max_restarts:
                raise RunError(f"fault job failed {restarts + 1} times; see {self.log}")
            restarts += 1
            self.start()


@contextlib.contextmanager
def _cluster(
    fault: FaultSettings, run_dir: Path, workflow_bootstrap: str
) -> Iterator[tuple[str, list[broker.BrokerHandle]]]:
    """The Kafka the fault runs against: the workflow's broker for a job crash, a broker or
    cluster of the run's own for a broker fault (stopped however the run ends)."""
    kind = fault.kind
    if kind == "spark_kill":
        yield workflow_bootstrap, []
        return
    launcher = broker.LocalBroker()
    tag = f"fault-{run_dir.resolve()}"
    # Watchdogs stop the brokers if this runner dies, however it dies.
    if kind == "broker_restart":
        handles = [launcher.start(run_dir / "kafka", tag=tag, watch_parent=os.getpid())]
    else:
        handles = launcher.start_cluster(
            run_dir / "kafka",
            fault.nodes,
            tag=tag,
            min_insync=2,
            watch_parent=os.getpid(),
        )
    try:
        yield broker.cluster_bootstrap(handles), handles
    finally:
        for handle in handles:
            broker.stop(handle, timeout=10)
            # The brokers' logs stay for inspection; their copy of the topic does not.
            shutil.rmtree(handle.work_dir / "kraft-data", ignore_errors=True)


def _wait_for_commits(run_dir: Path, query: str, count: int, job: JobProcess, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        commits = run_dir / "commits.jsonl"
        if commits.exists():
            done = sum(
                1 for line in commits.read_text().splitlines() if f'"query": "{query}"' in line
            )
            if done >= count:
                return
        if job.proc is not None and job.proc.poll() is not None:
            raise RunError(f"fault job ended before {count} {query} batches; see {job.log}")
        time.sleep(0.05)
    raise RunError(f"fewer than {count} {query} batches within {timeout_s:.0f} s")


def _write_expected(
    run_dir: Path,
    bootstrap: str,
    topic: str,
    report: Mapping[str, Any],
    watermark_s: float,
    timeout_s: float,
) -> None:
    target = {
        "end_offsets": {str(p): o for p, o in broker.topic_end_offsets(bootstrap, topic).items()},
        "closing_ms": int(report["heartbeat_event_time_ms"]) - int(watermark_s * 1000),
        "timeout_s": timeout_s,
    }
    tmp = run_dir / (EXPECTED + ".tmp")
    tmp.write_text(json.dumps(target))
    tmp.replace(run_dir / EXPECTED)


def _create_topics(bootstrap: str, topic: str, partitions: int, replication: int):
    config = {"message.timestamp.type": "LogAppendTime"}
    if replication > 1:
        config["min.insync.replicas"] = "2"
    broker.create_topic(bootstrap, topic, partitions, replication, config)
    broker.create_topic(bootstrap, f"{topic}.alerts", 1, replication)


def run_fault(
    settings: Settings,
    run: RunId,
    events: Path,
    run_dir: Path,
    workflow_bootstrap: str,
    config_json: str,
) -> dict[str, Any]:
    """Execute one fault condition and write metrics.json, provenance.json, condition.json.

    ``config_json``: the configuration for the job's child process (its command line)."""
    this = settings.run(run)
    condition = this.condition
    fault = condition.fault
    if fault is None:
        raise RunError(f"{run.path} has no fault block")
    kind = fault.kind
    if kind not in FAULT_KINDS:
        raise RunError(f"unknown fault kind {kind!r} (known: {FAULT_KINDS})")
    clean_run_dir(run_dir)
    for stale in ("uninterrupted", "kafka", EXPECTED, "progress.jsonl", "job.log"):
        path = run_dir / stale
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    (run_dir / "condition.json").write_text(json.dumps(condition.record, indent=2) + "\n")
    with _cluster(fault, run_dir, workflow_bootstrap) as (bootstrap, handles):
        replication = len(handles) if len(handles) > 1 else settings.kafka.replication_factor
        topic = f"fault.{run.condition}.rep{run.rep}.{uuid.uuid4().hex[:8]}"
        _create_topics(bootstrap, topic, condition.kafka_partitions, replication)
        spec = FaultRun(config_json, run, events, run_dir, bootstrap, topic, condition, fault)
        result = _spark_kill(spec) if kind == "spark_kill" else _broker_fault(spec, handles)
        result["kafka_version"] = handles[0].kafka_version if handles else broker.kafka_version()
        if kind == "spark_kill":
            for name in (topic, f"{topic}.alerts", f"{topic}.uninterrupted.alerts"):
                broker.delete_topic(bootstrap, name)
    result |= {"fault": dict(condition.record["fault"]), "condition": condition.record}
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    conf = sparkenv.effective_conf(
        settings.spark.defaults_file, settings.spark.conf, condition.spark_conf
    )
    record = provenance.collect(this, settings.kafka, conf, sparkenv.connector_jars(), topic)
    (run_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    return result


@dataclass(frozen=True)
class FaultRun:
    """One fault run: what it replays, where, into which topic, with which settings."""

    config_json: str  # the configuration for the job's child process
    run: RunId
    events: Path
    run_dir: Path
    bootstrap: str
    topic: str
    condition: ConditionSettings
    fault: FaultSettings

    def job(self, run_dir: Path, alerts_topic: str) -> JobProcess:
        return JobProcess(
            self.config_json, self.run, run_dir, self.bootstrap, self.topic, alerts_topic
        )

    def replay(self) -> subprocess.Popen[bytes]:
        return start_producer(
            self.events,
            self.bootstrap,
            self.topic,
            self.condition,
            self.run_dir / "producer.json",
            self.run_dir / "producer.log",
        )


def _spark_kill(f: FaultRun) -> dict[str, Any]:
    """Fill the topic, run the job once uninterrupted and once with a crash; compare."""
    run_dir, bootstrap, topic, timeout_s = f.run_dir, f.bootstrap, f.topic, f.fault.timeout_s
    producer = f.replay()
    if producer.wait(timeout=timeout_s) != 0:
        raise RunError(f"producer exited with {producer.returncode}; see producer.log")
    report = json.loads((run_dir / "producer.json").read_text())
    reference_dir = run_dir / "uninterrupted"
    reference_dir.mkdir(parents=True, exist_ok=True)
    broker.create_topic(bootstrap, f"{topic}.uninterrupted.alerts", 1, 1)
    for directory in (reference_dir, run_dir):
        _write_expected(
            directory, bootstrap, topic, report, f.condition.watermark_s, f.fault.attempt_s
        )
    # The uninterrupted run and the crashed one read the same filled topic side by side (their
    # own checkpoints, their own alert topics): the comparison does not depend on timing, and the
    # second JVM's start-up overlaps the first's instead of following it.
    reference = f.job(reference_dir, f"{topic}.uninterrupted.alerts")
    reference.spawn()
    job = f.job(run_dir, f"{topic}.alerts")
    try:
        job.start()
        _wait_for_commits(run_dir, "windows", f.fault.after_batches, job, timeout_s)
        killed_ns = time.time_ns()
        job.kill()
        committed_at_kill = _committed_batches(run_dir)
        job.start()
        restarts = job.finish(timeout_s)
        reference_restarts = reference.finish(timeout_s)
    finally:
        reference.kill()
        job.kill()
    expected = _alert_set(reference_dir)
    got = _alert_set(run_dir)
    published = _topic_alert_ids(bootstrap, f"{topic}.alerts")
    expected_published = _topic_alert_ids(bootstrap, f"{topic}.uninterrupted.alerts")
    return {
        "kind": "spark_kill",
        "killed_wall_ns": killed_ns,
        "batches_committed_at_kill": committed_at_kill,
        "job_starts": job.starts,
        "restarts_after_kill": restarts,
        "reference_restarts": reference_restarts,
        "alerts_expected": len(expected),
        "alerts_written": len(got),
        "alerts_lost": len(set(expected.index) - set(got.index)),
        "alerts_unexpected": len(set(got.index) - set(expected.index)),
        "alerts_duplicated": int(got.attrs["duplicates"]),
        "alerts_equal": bool(expected.equals(got) and got.attrs["duplicates"] == 0),
        "published_alerts": len(published),
        "published_distinct": len(set(published)),
        "published_duplicates": len(published) - len(set(published)),
        "published_lost": len(set(expected_published) - set(published)),
        "events_produced": int(report["messages"]),
        "ok": bool(expected.equals(got) and got.attrs["duplicates"] == 0),
    }


def _committed_batches(run_dir: Path) -> dict[str, int]:
    commits = metrics.read_commits(run_dir / "commits.jsonl")
    if commits.empty:
        return {}
    return {str(q): int(n) for q, n in commits.groupby("query")["batch_id"].nunique().items()}


def _alert_set(run_dir: Path) -> pd.DataFrame:
    """Written alerts by id (id, rule, patient, time, suppressed), sorted; ``attrs
    ['duplicates']`` counts ids written more than once."""
    alerts = metrics.read_parquet_dir(run_dir / "alerts")
    if alerts.empty:
        frame = pd.DataFrame(columns=["rule", "patient_id", "suppressed"])
        frame.attrs["duplicates"] = 0
        return frame
    duplicates = int(alerts["alert_id"].duplicated().sum())
    frame = (
        alerts[["alert_id", "rule", "patient_id", "suppressed"]]
        .drop_duplicates("alert_id")
        .set_index("alert_id")
        .sort_index()
        .astype({"rule": str, "patient_id": str, "suppressed": bool})
    )
    frame.attrs["duplicates"] = duplicates
    return frame


def _topic_alert_ids(bootstrap: str, topic: str) -> list[str]:
    """Every alert id published to ``topic`` (with repeats)."""
    from confluent_kafka import Consumer, TopicPartition

    end = broker.topic_end_offsets(bootstrap, topic)
    total = sum(end.values())
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"audit-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    ids: list[str] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in end])
        deadline = time.monotonic() + 60
        while len(ids) < total and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    ids.append(json.loads(message.value())["alert_id"])
    finally:
        consumer.close()
    return ids


def _broker_fault(f: FaultRun, handles: list[broker.BrokerHandle]) -> dict[str, Any]:
    """Job and producer running; crash a broker mid-replay (restart it after ``down_s`` for
    ``broker_restart``); then audit every offset."""
    run_dir, bootstrap, topic, fault = f.run_dir, f.bootstrap, f.topic, f.fault
    timeout_s = fault.timeout_s
    kind = fault.kind
    job = f.job(run_dir, f"{topic}.alerts")
    job.start()
    producer = f.replay()
    time.sleep(fault.at_s)
    if producer.poll() is not None:
        raise RunError("the replay ended before the fault: lower fault.at_s or the speedup")
    if kind == "broker_restart":
        victim_index = 0
    else:
        leader = broker.partition_leaders(bootstrap, topic)[0]
        victim_index = next(i for i, h in enumerate(handles) if h.tag.endswith(f"node{leader}"))
    victim = handles[victim_index]
    fault_ns = time.time_ns()
    broker.crash(victim)
    down_s = None
    if kind == "broker_restart":
        time.sleep(fault.down_s)
        handles[victim_index] = broker.LocalBroker().restart(victim, watch_parent=os.getpid())
        down_s = (time.time_ns() - fault_ns) / 1e9
    survivors = [h for i, h in enumerate(handles) if kind == "broker_restart" or i != victim_index]
    live = broker.cluster_bootstrap(survivors)
    if producer.wait(timeout=timeout_s) != 0:
        raise RunError(f"producer exited with {producer.returncode}; see producer.log")
    report = json.loads((run_dir / "producer.json").read_text())
    _write_expected(run_dir, live, topic, report, f.condition.watermark_s, fault.attempt_s)
    restarts = job.finish(timeout_s)
    audit = _offset_audit(run_dir, live, topic, report)
    sent, delays = runseries.append_delay_arrays(run_dir)
    before = delays[sent < fault_ns]
    return {
        "kind": kind,
        "fault_wall_ns": fault_ns,
        "victim_node": victim.tag.rsplit("/", 1)[-1] if kind == "broker_kill" else "broker",
        "down_s": down_s,
        "nodes": len(handles),
        "job_restarts": restarts,
        "producer_delivery_errors": int(report["delivery_errors"]),
        **audit,
        # Send → broker append: its median before the fault, and its maximum (the pause:
        # a reading sent as the broker died waited for it, or for a new leader).
        "append_delay_median_s": float(np.median(before)) if len(before) else None,
        "append_delay_p99_s": float(np.percentile(delays, 99)) if len(delays) else None,
        "pause_s": float(np.max(delays)) if len(delays) else None,
        "readings_after_fault": int((sent >= fault_ns).sum()),
        "ok": bool(audit["exactly_once"] and report["delivery_errors"] == 0),
    }


def _offset_audit(
    run_dir: Path, bootstrap: str, topic: str, report: Mapping[str, Any]
) -> dict[str, Any]:
    """Produced vs in the topic vs consumed: counts, and every (partition, offset) once."""
    end = broker.topic_end_offsets(bootstrap, topic)
    in_topic = int(sum(end.values()))
    produced = int(report["messages"]) + int(report["heartbeats"])
    events = metrics.read_parquet_dir(run_dir / "events")
    deadletter = metrics.read_parquet_dir(run_dir / "deadletter", query="readings")
    consumed = (
        pd.concat(
            [f[["partition", "offset"]] for f in (events, deadletter) if len(f)], ignore_index=True
        )
        if len(events) or len(deadletter)
        else pd.DataFrame(columns=["partition", "offset"])
    )
    keys = consumed["partition"].astype("int64") * (1 << 40) + consumed["offset"].astype("int64")
    duplicated = int(keys.duplicated().sum())
    # Heartbeats are read but not written as readings: one per partition, the last offset.
    expected_keys = in_topic - int(report["heartbeats"])
    distinct = int(keys.nunique())
    return {
        "produced": produced,
        "in_topic": in_topic,
        "consumed_readings": len(consumed),
        "consumed_distinct": distinct,
        "consumed_duplicates": duplicated,
        "lost": max(expected_keys - distinct, 0),
        "exactly_once": bool(
            produced == in_topic and distinct == expected_keys and duplicated == 0
        ),
    }


# --------------------------------------------------------------------------- CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fault-job", help="(internal) the Spark job of a fault run, killed and restarted by it"
    )
    parser.add_argument("run_id", help="<experiment>/<condition>/rep<k>")
    add_config_arguments(parser)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--alerts-topic", default=None)
    parser.set_defaults(func=_cli_job)


def _cli_job(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = Settings.from_config(config_from_args(args))
    return run_job(settings, RunId.parse(args.run_id), args)
