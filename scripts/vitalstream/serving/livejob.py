"""The live monitor's streaming job: the experiments' Spark job, reading a live topic without
end, from its checkpoint, until it is told to stop (``python -m vitalstream live-job``).

It runs as a child process of ``up`` (vitalstream.serving.up) in a process group of its own, so
that a crash (or a SIGKILL in a test) takes the driver and its JVM together, and ``up`` starts it
again: the queries resume from their checkpoints, a replayed batch rewrites its own Parquet,
republishes the same alert ids and re-indexes the same documents, so nothing is doubled downstream.

Each second it writes ``health.json`` beside its outputs: per query the last batch's duration,
input and processed rates and the offsets it is behind the topic's end, plus running totals of
readings, alerts and dead-lettered messages from its own commit log. ``up`` prints them and the
dashboard shows them.

Not for: starting the services or the dashboard (vitalstream.serving.up).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vitalstream.core.config import add_config_arguments, config_from_args
from vitalstream.core.livesettings import LiveSettings
from vitalstream.core.runsettings import Settings
from vitalstream.core.settings import SearchSink
from vitalstream.experiments.run import RunError, progress_dict, raise_if_failed
from vitalstream.services import sparkenv, supervise
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import Job, start_job
from vitalstream.stream.spec import JobSpec

STARTED = "live job started"
HEALTH_FILE = "health.json"
EXIT_FAILED = 3
HEALTH_EVERY_S = 1.0
LIVE_RUN = "live"


def live_prefix(index_prefix: str) -> str:
    """The live system's index prefix: its own indices, apart from the experiments'."""
    return f"{index_prefix}-live"


def job_dir(live: LiveSettings) -> Path:
    """Where the live job writes its outputs and checkpoints."""
    return live.state_dir / "job"


def live_spec(
    settings: Settings, live: LiveSettings, *, bootstrap: str, search_url: str | None
) -> JobSpec:
    """The live job: the study's rules and checks on a live topic, with a bound on how far
    behind its Kafka timestamp a reading may be (store-and-forward buffers, config ``live``)."""
    checks = dataclasses.replace(
        settings.checks, event_time_max_behind_s=live.event_time_max_behind_s
    )
    search = None
    if search_url is not None and settings.search is not None:
        search = SearchSink(search_url, live_prefix(settings.search.index_prefix), LIVE_RUN)
    return JobSpec(
        bootstrap_servers=bootstrap,
        topic=live.topic,
        out_dir=job_dir(live),
        window_s=live.window_s,
        watermark_s=live.watermark_s,
        trigger_ms=live.trigger_ms,
        diagnostics=settings.diagnostics,
        alerts_topic=live.alerts_topic,
        raw_events=False,
        search=search,
        checks=checks,
        devices=settings.devices,
    )


# --------------------------------------------------------------------------- health


def _offsets_behind(progress: Mapping[str, Any]) -> int | None:
    """How many offsets the batch's end was behind the topic's latest offset (all partitions)."""
    sources = progress.get("sources") or []
    if not sources:
        return None
    end, latest = sources[0].get("endOffset"), sources[0].get("latestOffset")
    if not end or not latest:
        return None
    end, latest = (json.loads(x) if isinstance(x, str) else x for x in (end, latest))
    behind = 0
    for topic, parts in latest.items():
        done = end.get(topic, {})
        behind += sum(max(int(o) - int(done.get(p, 0)), 0) for p, o in parts.items())
    return behind


def query_health(progress: Mapping[str, Any] | None) -> dict[str, Any]:
    """One query's last progress report, reduced to what an operator watches."""
    if not progress:
        return {}
    durations = progress.get("durationMs") or {}
    return {
        "batch_id": progress.get("batchId"),
        "batch_ms": durations.get("triggerExecution"),
        "durations_ms": dict(durations),
        "input_rows": progress.get("numInputRows"),
        "input_per_s": progress.get("inputRowsPerSecond"),
        "processed_per_s": progress.get("processedRowsPerSecond"),
        "behind": _offsets_behind(progress),
        "timestamp": progress.get("timestamp"),
    }


class CommitTotals:
    """Running totals of the job's commit log (``commits.jsonl``), read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.totals = {"alerts": 0, "published": 0, "deadletter": 0, "windows": 0, "batches": 0}

    def update(self) -> dict[str, int]:
        if not self.path.exists():
            return dict(self.totals)
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            record = json.loads(line)
            self.totals["batches"] += 1
            for key in ("alerts", "published", "deadletter", "windows"):
                self.totals[key] += int(record.get(key, 0))
        return dict(self.totals)


def write_health(job: Job, totals: CommitTotals, path: Path) -> None:
    """The job's health now, atomically (``up`` and the dashboard read it while it is written)."""
    queries = {}
    for name, query in job.queries.items():
        last = query.lastProgress
        queries[name] = query_health(progress_dict(last) if last is not None else None)
    state = {"time_ns": time.time_ns(), "pid": os.getpid(), "queries": queries, **totals.update()}
    supervise.write_state(path, state)


def read_health(path: Path) -> dict[str, Any]:
    """The health the job wrote last; empty when it has not written any yet."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- the process


def _stop_on_signal(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_live_job(
    settings: Settings, live: LiveSettings, spec: JobSpec, stop: threading.Event
) -> int:
    """Run the job until ``stop`` is set (exit 0) or a query fails (``EXIT_FAILED``: ``up``
    restarts it from the checkpoint)."""
    conf = sparkenv.effective_conf(
        settings.spark.defaults_file, settings.spark.conf, live.spark_conf
    )
    spark = sparkenv.build_session(conf)
    job = None
    try:
        job = start_job(spark, spec, Sinks(spec))
        print(f"{STARTED}: {spec.out_dir}", flush=True)
        totals = CommitTotals(spec.path("commits.jsonl"))
        while not stop.wait(HEALTH_EVERY_S):
            try:
                raise_if_failed(job.queries)  # failed, or stopped without an error
            except RunError as failure:
                print(f"live job: {failure}", file=sys.stderr, flush=True)
                return EXIT_FAILED
            write_health(job, totals, spec.path(HEALTH_FILE))
        return 0
    finally:
        if job is not None:
            with contextlib.suppress(Exception):
                job.stop()
        spark.stop()


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "live-job", help="(internal) the live monitor's streaming job, started by `up`"
    )
    add_config_arguments(parser)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--search-url", default=None, help="index alerts and windows here")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    config = config_from_args(args)
    settings = Settings.from_config(config)
    live = LiveSettings.from_config(config.get("live", {}))
    spec = live_spec(settings, live, bootstrap=args.bootstrap_servers, search_url=args.search_url)
    stop = threading.Event()
    _stop_on_signal(stop)
    return run_live_job(settings, live, spec, stop)
