"""Fault experiments: the Spark job crashes, the broker crashes, one node of three dies.

Each condition of a replay experiment with a ``fault`` block replays a cohort through Kafka
into the Spark job, injects one fault, and checks with alert ids and Kafka offsets what a
monitoring pipeline must guarantee:

* ``spark_kill``: the whole job (Python driver and its JVM) is killed with SIGKILL once
  ``after_batches`` window batches have committed, and restarted from its checkpoint. The
  alerts it writes (Parquet, with their suppression flags) must equal those of an
  uninterrupted run over the same topic: none lost, none duplicated. The alerts *topic* and
  the search *index* are at-least-once: a batch re-run after the crash publishes and indexes
  its alerts again, so every alert id of the uninterrupted run must be in both (none lost),
  and repeats are counted and reported (consumers drop them by alert id; the index refuses an
  id it has).
* ``broker_restart``: the one broker is killed with SIGKILL while the producer (``acks=all``,
  idempotence) sends, and restarted ``down_s`` later from its data. Every produced reading
  must be in the topic exactly once and every offset consumed exactly once.
* ``broker_kill``: on a cluster of ``nodes`` KRaft nodes (replication factor 3,
  ``min.insync.replicas`` 2), the leader of partition 0 is killed mid-replay and stays dead.
  Same checks as a restart; the pause it caused is the longest delay from a reading's send
  to its append by the broker (topics use ``LogAppendTime``), against the median. The job's
  alerts topic lives on the faulty cluster too; every alert the run wrote to Parquet (its own
  reference: every reading was consumed exactly once) must be in the topic and in the index.

With ``sinks.search_index`` every fault run indexes its alerts into the search server the
runner is given (the workflow's local OpenSearch node, or ``search.url``); the audits by id are
in vitalstream.experiments.faultaudit.

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

from vitalstream.core.cliargs import writable_dir
from vitalstream.core.config import RunId, add_config_arguments, config_from_args
from vitalstream.core.devices import DeviceFormat
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.runsettings import ConditionSettings, FaultSettings, Settings
from vitalstream.core.settings import MessageChecks, SearchSink
from vitalstream.experiments import faultaudit, provenance
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
from vitalstream.sinks import search
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import start_job
from vitalstream.stream.spec import JobSpec

EXPECTED = "expected.json"  # runner → job: the offsets and watermark to drain to
JOB_EXIT_FAILED = 3
JOB_START_TIMEOUT_S = 180.0
NS_UTC = "datetime64[ns, UTC]"


# --------------------------------------------------------------------------- the job (child)


def _job_spec(
    condition: ConditionSettings,
    diagnostics: DiagnosticsSpec,
    args: argparse.Namespace,
    checks: MessageChecks,
    devices: DeviceFormat,
) -> JobSpec:
    return JobSpec.from_condition(
        condition,
        diagnostics,
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        out_dir=args.run_dir,
        alerts_topic=args.alerts_topic,
        raw_events=True,
        checks=checks,
        devices=devices,
        search=SearchSink(args.search_url, args.search_prefix, args.search_run)
        if args.search_url
        else None,
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
        spec = _job_spec(condition, settings.diagnostics, args, settings.checks, settings.devices)
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
        self,
        config_json: str,
        run: RunId,
        run_dir: Path,
        bootstrap: str,
        topic: str,
        alerts: str,
        search_sink: SearchSink | None = None,
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
        if search_sink is not None:
            self.command += [
                *("--search-url", search_sink.url, "--search-prefix", search_sink.prefix),
                *("--search-run", search_sink.run),
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
    search_url: str | None = None,
) -> dict[str, Any]:
    """Execute one fault condition and write metrics.json, provenance.json, condition.json.

    ``config_json``: the configuration for the job's child process (its command line);
    ``search_url``: the search server of a condition with ``sinks.search_index``, where the
    run indexes its alerts and which the audit checks."""
    this = settings.run(run)
    condition = this.condition
    fault = condition.fault
    if fault is None:
        raise RunError(f"{run.path} has no fault block")
    kind = fault.kind
    if kind not in FAULT_KINDS:
        raise RunError(f"unknown fault kind {kind!r} (known: {FAULT_KINDS})")
    clean_run_dir(run_dir)
    stale_logs = ("search_commits.jsonl", "search_errors.jsonl")  # the audit sums every record
    for stale in ("uninterrupted", "kafka", EXPECTED, "progress.jsonl", "job.log", *stale_logs):
        path = run_dir / stale
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    (run_dir / "condition.json").write_text(json.dumps(condition.record, indent=2) + "\n")
    search_sink = _search_sink(settings, run, condition, search_url)
    with _cluster(fault, run_dir, workflow_bootstrap) as (bootstrap, handles):
        replication = len(handles) if len(handles) > 1 else settings.kafka.replication_factor
        topic = f"fault.{run.condition}.rep{run.rep}.{uuid.uuid4().hex[:8]}"
        _create_topics(bootstrap, topic, condition.kafka_partitions, replication)
        spec = FaultRun(
            config_json, run, events, run_dir, bootstrap, topic, condition, fault, search_sink
        )
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
    if search_sink is not None:
        record["search"] = search.server_info(search_sink.url)
    (run_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    return result


def _search_sink(
    settings: Settings, run: RunId, condition: ConditionSettings, url: str | None
) -> SearchSink | None:
    """The index the run writes to, its earlier documents removed (None without
    ``sinks.search_index``)."""
    if not condition.sinks.search_index:
        return None
    if not url or settings.search is None:
        raise RunError(
            f"{run.path} indexes its alerts (sinks.search_index) but no search server is "
            "known: set search.url, or run through the workflow (--search-state)"
        )
    sink = settings.search.sink(url, run.path)
    search.wait_until_up(url)
    search.setup(url, sink.prefix)
    search.delete_run(url, sink.prefix, sink.run)
    return sink


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
    search_sink: SearchSink | None = None  # None: the run does not index its alerts

    def job(self, run_dir: Path, alerts_topic: str, indexed: bool = True) -> JobProcess:
        """The faulty run's job (``indexed``: into the search index), or a reference's."""
        return JobProcess(
            self.config_json, self.run, run_dir, self.bootstrap, self.topic, alerts_topic,
            self.search_sink if indexed else None,
        )  # fmt: skip

    def sink_audits(self, reference: pd.DataFrame, bootstrap: str) -> dict[str, Any]:
        """The alerts topic and the index of the faulty run against a reference alert set."""
        topic = faultaudit.topic_audit(reference, bootstrap, f"{self.topic}.alerts")
        index = None
        if self.search_sink is not None:
            index = faultaudit.index_audit(reference, self.search_sink, self.run_dir)
        return {"topic": topic, "index": index}

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
    try:
        if producer.wait(timeout=timeout_s) != 0:
            raise RunError(f"producer exited with {producer.returncode}; see producer.log")
    finally:
        _stop(producer)
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
    # The reference is not indexed: its Parquet alerts are the expected set of every sink.
    reference = f.job(reference_dir, f"{topic}.uninterrupted.alerts", indexed=False)
    job = f.job(run_dir, f"{topic}.alerts")
    try:
        reference.spawn()
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
    expected = faultaudit.alert_set(reference_dir)
    got = faultaudit.alert_set(run_dir)
    published = faultaudit.topic_alert_ids(bootstrap, f"{topic}.alerts")
    expected_published = faultaudit.topic_alert_ids(bootstrap, f"{topic}.uninterrupted.alerts")
    sinks = f.sink_audits(expected, bootstrap)
    parquet_ok = bool(expected.equals(got) and got.attrs["duplicates"] == 0)
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
        "sinks": sinks,
        "reading_alert_repeats_dropped": faultaudit.dropped_reading_repeats(run_dir),
        "ok": parquet_ok and faultaudit.sinks_held(sinks),
    }


def _committed_batches(run_dir: Path) -> dict[str, int]:
    commits = metrics.read_commits(run_dir / "commits.jsonl")
    if commits.empty:
        return {}
    return {str(q): int(n) for q, n in commits.groupby("query")["batch_id"].nunique().items()}


def _stop(producer: subprocess.Popen[bytes]) -> None:
    """Stop the replay's producer if it still runs (the run failed or timed out)."""
    if producer.poll() is None:
        producer.kill()
        producer.wait(timeout=30)


def _broker_fault(f: FaultRun, handles: list[broker.BrokerHandle]) -> dict[str, Any]:
    """Job and producer running; crash a broker mid-replay (restart it after ``down_s`` for
    ``broker_restart``); then audit every offset, and every alert the run wrote (its own
    reference, the readings being audited by offset) in the alerts topic and the index."""
    run_dir, topic, fault = f.run_dir, f.topic, f.fault
    job = f.job(run_dir, f"{topic}.alerts")
    producer = None
    try:
        job.start()
        producer = f.replay()
        fault_ns, victim, down_s, live = _inject(f, handles, producer)
        if producer.wait(timeout=fault.timeout_s) != 0:
            raise RunError(f"producer exited with {producer.returncode}; see producer.log")
        report = json.loads((run_dir / "producer.json").read_text())
        _write_expected(run_dir, live, topic, report, f.condition.watermark_s, fault.attempt_s)
        restarts = job.finish(fault.timeout_s)
    finally:
        job.kill()
        if producer is not None:
            _stop(producer)
    kind = fault.kind
    audit = faultaudit.offset_audit(run_dir, live, topic, report)
    sinks = f.sink_audits(faultaudit.alert_set(run_dir), live)
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
        "sinks": sinks,
        "reading_alert_repeats_dropped": faultaudit.dropped_reading_repeats(run_dir),
        "ok": bool(
            audit["exactly_once"]
            and report["delivery_errors"] == 0
            and faultaudit.sinks_held(sinks)
        ),
    }


def _inject(
    f: FaultRun, handles: list[broker.BrokerHandle], producer: subprocess.Popen[bytes]
) -> tuple[int, broker.BrokerHandle, float | None, str]:
    """Crash the victim ``at_s`` into the replay (and restart it ``down_s`` later for
    ``broker_restart``): when, whom, how long it was down, the bootstrap of the survivors."""
    kind, fault = f.fault.kind, f.fault
    time.sleep(fault.at_s)
    if producer.poll() is not None:
        raise RunError("the replay ended before the fault: lower fault.at_s or the speedup")
    if kind == "broker_restart":
        victim_index = 0
    else:
        leader = broker.partition_leaders(f.bootstrap, f.topic)[0]
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
    return fault_ns, victim, down_s, broker.cluster_bootstrap(survivors)


# --------------------------------------------------------------------------- CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fault-job", help="(internal) the Spark job of a fault run, killed and restarted by it"
    )
    parser.add_argument("run_id", help="<experiment>/<condition>/rep<k>")
    add_config_arguments(parser)
    parser.add_argument("--run-dir", type=writable_dir, required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--alerts-topic", default=None)
    parser.add_argument("--search-url", default=None, help="index the alerts on this server")
    parser.add_argument("--search-prefix", default="vitalstream")
    parser.add_argument("--search-run", default=None, help="the run's label in the index")
    parser.set_defaults(func=_cli_job)


def _cli_job(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = Settings.from_config(config_from_args(args))
    return run_job(settings, RunId.parse(args.run_id), args)
