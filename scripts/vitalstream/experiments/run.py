"""One experimental run: topic → Spark job → replay producer → drain → metrics and provenance.

The order matters for what is measured. The Spark queries start first and finish their first
(empty) micro-batch, so Spark's start-up (about 10 s here) is not counted as latency. The
producer runs as a separate process, outside the system under test. The run ends when the
queries have consumed every offset the producer wrote and the watermark has passed the last
window (the producer's heartbeats push it there), so every window and alert is final.

Not for: computing metrics from the outputs (measure.metrics) or the grid (vitalstream.core.config).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import UsageError
from vitalstream.core.config import RunId
from vitalstream.core.devices import DeviceFormat
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.paths import SCRIPTS_DIR
from vitalstream.core.progress import emit as emit_progress
from vitalstream.core.runsettings import SINGLE_RUN_SINKS, ConditionSettings, Settings
from vitalstream.core.settings import KafkaSettings, MessageChecks, SearchSettings
from vitalstream.experiments import provenance
from vitalstream.measure import metrics
from vitalstream.services import broker, sparkenv
from vitalstream.sinks import search
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import start_job
from vitalstream.stream.spec import JobSpec

RUN_OUTPUTS = ("windows", "alerts", "deadletter", "events", "state", "checkpoints", "commits.jsonl")


class RunError(RuntimeError):
    """The run could not complete (a query failed, the producer failed, or it timed out)."""


def topic_name(run: RunId) -> str:
    """A fresh topic per run, so no run ever reads another run's (or a failed attempt's) data."""
    return f"vitals.{run.experiment}.{run.condition}.rep{run.rep}.{uuid.uuid4().hex[:8]}"


def clean_run_dir(run_dir: Path) -> None:
    """Remove a previous attempt's outputs: Spark would resume from its checkpoint otherwise."""
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def _die_with_parent() -> None:
    """Child processes end when the runner ends, however it ends (Linux PR_SET_PDEATHSIG)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_producer(
    events: Path,
    bootstrap: str,
    topic: str,
    condition: ConditionSettings,
    report: Path,
    log: Path,
) -> subprocess.Popen[bytes]:
    """The replay of ``events`` into ``topic`` at the condition's speed-up, as a process."""
    if condition.speedup is None:
        raise RunError("a replay needs the condition's speedup")
    command = [
        sys.executable,
        "-m",
        "vitalstream",
        "replay",
        "--events",
        str(events),
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--speedup",
        str(condition.speedup),
        "--window-s",
        str(condition.window_s),
        "--watermark-s",
        str(condition.watermark_s),
        "--settings",
        json.dumps(dict(condition.producer)),
        "--report",
        str(report),
    ]
    return spawn_child(command, log)


def spawn_child(
    command: list[str], log: Path, *, own_group: bool = False, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child process (a producer, or a fault run's job): output appended to ``log``, the
    package importable from wherever this process found it, ended with its parent.
    ``own_group`` puts it in a process group of its own, so that killing the group takes its
    children (a JVM) with it."""
    package_root = str(SCRIPTS_DIR)
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    with log.open("ab") as fh:
        return subprocess.Popen(
            command,
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=own_group,
            env=os.environ | dict(env or {}) | {"PYTHONPATH": path},
        )


def progress_dict(progress: Any) -> dict[str, Any]:
    """A query progress report as plain JSON data (pyspark returns an object or a dict)."""
    text = getattr(progress, "json", None)
    return (
        json.loads(text) if isinstance(text, str) else json.loads(json.dumps(progress, default=str))
    )


def raise_if_failed(queries: Mapping[str, Any]) -> None:
    for name, query in queries.items():
        error = query.exception()
        if error is not None:
            raise RunError(f"Spark query {name!r} failed: {error}")
        if not query.isActive:
            raise RunError(f"Spark query {name!r} stopped unexpectedly")


def wait_until_started(queries: Mapping[str, Any], timeout_s: float = 180.0) -> None:
    """Block until every query has completed its first micro-batch."""
    deadline = time.monotonic() + timeout_s
    while any(q.lastProgress is None for q in queries.values()):
        raise_if_failed(queries)
        if time.monotonic() > deadline:
            raise RunError(f"Spark queries did not start within {timeout_s:.0f} s")
        time.sleep(0.2)


def _read_offsets(progress: Mapping[str, Any]) -> dict[str, int]:
    """The end offsets (partition → offset) a progress report's batch read up to."""
    sources = progress.get("sources") or [{}]
    offsets = sources[0].get("endOffset") or {}
    if isinstance(offsets, str):
        offsets = json.loads(offsets)
    return next(iter(offsets.values()), {}) if offsets else {}


def _offsets_reached(progress: Mapping[str, Any], end_offsets: Mapping[int, int]) -> bool:
    read = _read_offsets(progress)
    return all(int(read.get(str(p), -1)) >= end for p, end in end_offsets.items())


def _consumed(query: Any, end_offsets: Mapping[int, int]) -> bool:
    progress = query.lastProgress
    return bool(progress) and _offsets_reached(progress_dict(progress), end_offsets)


def _watermark_ms(query: Any) -> int:
    return metrics.progress_watermark_ms(progress_dict(query.lastProgress or {}))


def wait_until_drained(
    queries: Mapping[str, Any],
    end_offsets: Mapping[int, int],
    closing_watermark_ms: int,
    timeout_s: float,
) -> None:
    """Block until every query has read all offsets and the windows query has run with a
    watermark at or past ``closing_watermark_ms``.

    A report's watermark is the one its batch ran with (an idle report's, that of the last batch
    it ran), so such a report means the batch that evicted every window the closing watermark
    closes has run and its sink has written them. Offsets and watermarks only grow, so it is
    enough that *some* report showed them: the query's history is read once (a caller that
    waits for several jobs in turn, experiments.siblings, looks at a job after it went idle),
    then each new last report. A query restarted from its checkpoint with nothing left to do
    (vitalstream.experiments.faults) has only idle reports, which still carry its offsets.
    """
    deadline = time.monotonic() + timeout_s
    consumed = dict.fromkeys(queries, False)
    watermark = 0
    history = {name: [progress_dict(p) for p in q.recentProgress] for name, q in queries.items()}
    while True:
        raise_if_failed(queries)
        for name, query in queries.items():
            reports = history.pop(name, [])
            if query.lastProgress is not None:
                reports.append(progress_dict(query.lastProgress))
            consumed[name] = consumed[name] or any(
                _offsets_reached(p, end_offsets) for p in reports
            )
            if name == "windows":
                watermark = max([watermark, *(metrics.progress_watermark_ms(p) for p in reports)])
        if all(consumed.values()) and watermark >= closing_watermark_ms:
            return
        if time.monotonic() > deadline:
            raise RunError(
                f"run did not drain within {timeout_s:.0f} s: "
                f"{_drain_state(queries, end_offsets, closing_watermark_ms)}"
            )
        time.sleep(0.3)


def _drain_state(
    queries: Mapping[str, Any], end_offsets: Mapping[int, int], closing_watermark_ms: int
) -> str:
    """What a stuck drain waits for: each query's last batch, offsets and watermark."""
    parts = [f"end offsets {dict(end_offsets)}, closing watermark {closing_watermark_ms}"]
    for name, query in queries.items():
        progress = query.lastProgress or {}
        sources = progress.get("sources") or [{}]
        parts.append(
            f"{name}: batch {progress.get('batchId')}, end offset "
            f"{sources[0].get('endOffset')}, watermark {_watermark_ms(query)}"
        )
    return "; ".join(parts)


def prepare_job(
    condition: ConditionSettings,
    diagnostics: DiagnosticsSpec,
    kafka: KafkaSettings,
    bootstrap: str,
    topic: str,
    run_dir: Path,
    *,
    alerts: bool,
    raw_events: bool,
    search_sink: search.SearchSink | None = None,
    checks: MessageChecks | None = None,
    devices: DeviceFormat | None = None,
) -> JobSpec:
    """Create a run's topic (and ``<topic>.alerts`` when ``alerts``) and describe the job
    that reads it; shared by single runs and performance groups (vitalstream.experiments.perf).

    With a ``search_sink`` the index templates are applied and the run's earlier documents
    removed first, so the index holds this attempt's output only."""
    if search_sink is not None:
        search.wait_until_up(search_sink.url)
        search.setup(search_sink.url, search_sink.prefix)
        search.delete_run(search_sink.url, search_sink.prefix, search_sink.run)
    replication = kafka.replication_factor
    broker.create_topic(bootstrap, topic, condition.kafka_partitions, replication)
    alerts_topic = f"{topic}.alerts" if alerts else None
    if alerts_topic:
        broker.create_topic(bootstrap, alerts_topic, 1, replication)
    return JobSpec.from_condition(
        condition,
        diagnostics,
        bootstrap_servers=bootstrap,
        topic=topic,
        out_dir=run_dir,
        alerts_topic=alerts_topic,
        raw_events=raw_events,
        search=search_sink,
        checks=checks,
        devices=devices,
    )


def run_condition(
    settings: Settings,
    run: RunId,
    events: Path,
    run_dir: Path,
    bootstrap: str,
    drain_timeout_s: float = 600.0,
    search_url: str | None = None,
) -> dict[str, Any]:
    """Execute one run and write its metrics.json, provenance.json and condition.json.

    ``search_url``: the search server of a condition with ``sinks.search_index``."""
    this = settings.run(run)
    condition = this.condition
    clean_run_dir(run_dir)
    (run_dir / "condition.json").write_text(json.dumps(condition.record, indent=2) + "\n")
    topic = topic_name(run)
    sinks = condition.sinks.over(SINGLE_RUN_SINKS)
    spec = prepare_job(
        condition,
        settings.diagnostics,
        settings.kafka,
        bootstrap,
        topic,
        run_dir,
        alerts=sinks.alerts_topic,
        raw_events=sinks.raw_events,
        search_sink=search_sink_of(settings.search, run, search_url)
        if sinks.search_index
        else None,
        checks=settings.checks,
        devices=settings.devices,
    )
    conf = sparkenv.effective_conf(
        settings.spark.defaults_file, settings.spark.conf, condition.spark_conf
    )
    spark = sparkenv.build_session(conf)
    producer = None
    try:
        job = start_job(spark, spec, Sinks(spec))
        queries = job.queries
        wait_until_started(queries)
        # Phases for `vitalstream status`; the replay's own percentage is in producer.log.
        emit_progress("run", phase="replay", run=run.path)
        producer = start_producer(
            events,
            bootstrap,
            topic,
            condition,
            run_dir / "producer.json",
            run_dir / "producer.log",
        )
        while producer.poll() is None:
            raise_if_failed(queries)
            time.sleep(0.2)
        if producer.returncode != 0:
            raise RunError(f"producer exited with {producer.returncode}; see producer.log")
        report = json.loads((run_dir / "producer.json").read_text())
        closing_ms = report["heartbeat_event_time_ms"] - int(condition.watermark_s * 1000)
        end_offsets = broker.topic_end_offsets(bootstrap, topic)
        emit_progress("run", phase="drain", run=run.path)
        wait_until_drained(queries, end_offsets, closing_ms, drain_timeout_s)
        query_progress = {
            name: [progress_dict(p) for p in q.recentProgress] for name, q in queries.items()
        }
        job.stop()
    finally:
        if producer is not None and producer.poll() is None:
            producer.kill()
        spark.stop()
    (run_dir / "progress.json").write_text(json.dumps(query_progress) + "\n")
    emit_progress("run", phase="metrics", run=run.path)
    result = metrics.run_metrics(run_dir, condition.record)
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    record = provenance.collect(this, settings.kafka, conf, sparkenv.connector_jars(), topic)
    if spec.search is not None:
        record["search"] = search.server_info(spec.search.url)
    (run_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    # The readings topic is deleted (it can be large); the alerts topic stays for consumers.
    broker.delete_topic(bootstrap, topic)
    return result


def resolve_bootstrap(configured: str | None, state_file: Path | None) -> str:
    """The configured cluster (kafka.bootstrap_servers), else the broker the workflow started
    (its state file)."""
    if configured:
        return configured
    if state_file is None or not state_file.exists():
        # An argument problem, not a failed run: one line and exit status 2 (vitalstream.__main__).
        raise UsageError(
            "argument --broker-state: no Kafka cluster: set kafka.bootstrap_servers in config, or "
            "run through the workflow, which starts a local broker and passes --broker-state"
        )
    return broker.read_bootstrap(state_file)


def resolve_search_url(search_settings: SearchSettings | None, state_file: Path | None) -> str:
    """The configured search server (search.url), else the node the workflow started (its
    state file)."""
    configured = search_settings.url if search_settings is not None else None
    return configured or search.resolve_url({}, state_file)


def search_sink_of(
    search_settings: SearchSettings | None, run: RunId, url: str | None
) -> search.SearchSink:
    """The index a condition with ``sinks.search_index`` writes to."""
    if not url:
        raise RunError(
            f"{run.path} indexes its alerts (sinks.search_index) but no search server is "
            "known: set search.url, or run through the workflow (--search-state)"
        )
    if search_settings is None:
        raise RunError(f"{run.path} indexes its alerts but the config has no search block")
    return search_settings.sink(url, run.path)
