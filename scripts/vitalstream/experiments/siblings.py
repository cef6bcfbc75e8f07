"""Shared sessions and shared replays: a group of runs in one Spark session, each through a
job of its own, all at once.

* Runs that differ only in the windows query's settings (watermark, window length, slide)
  read *one replay* of one topic: RQ3 (watermark × delay model) and the window ablation
  compare conditions on the same input, so the comparison is exact on the input (the same
  messages in the same partition order) and fair on the machine (the jobs share it at the
  same time), at the cost of one replay. Spark decides watermarks per query, so the jobs are
  as independent as separate runs.
* Runs whose input differs (an edge gateway, another cohort) get a replay each, started
  together, in the same session (``share_session``: RQ2, validation): one Spark start-up and
  warm-up instead of one per run.

Each run still gets its own directory with the files a single run writes (metrics.json,
provenance.json, condition.json, its replay's producer report), so the batch reference,
validation and accuracy rules treat it like any other run.

The per-reading query (critical alerts, dead letter, raw events) does not depend on window
settings, so only the first job of a replay runs it and the others receive copies of its
output: the same files each would have written, at a third less work per micro-batch.

The jobs' micro-batches interleave on two cores, so a shared session measures completeness,
state and accuracy; its wall-clock latencies are not comparable with a single run's (the
timed experiments, RQ1 and RQ5, never share).

Not for: timed runs (vitalstream.experiments.run, vitalstream.experiments.perf) or fault runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import parquet_input, writable_dir
from vitalstream.core.config import ConfigError, RunId, add_config_arguments, config_from_args
from vitalstream.core.devices import DeviceFormat
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.runsettings import (
    SHARED_SESSION_SINKS,
    ConditionSettings,
    RunSettings,
    Settings,
)
from vitalstream.core.settings import KafkaSettings, MessageChecks
from vitalstream.experiments import provenance
from vitalstream.experiments.run import (
    RunError,
    clean_run_dir,
    progress_dict,
    raise_if_failed,
    resolve_bootstrap,
    start_producer,
    topic_name,
    wait_until_drained,
    wait_until_started,
)
from vitalstream.measure import metrics
from vitalstream.services import broker, sparkenv
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import start_job
from vitalstream.stream.spec import JobSpec


@dataclass
class Replay:
    """One topic and one producer, read by a job per run."""

    events: Path
    runs: list[RunSettings] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    topic: str = ""

    @property
    def report_path(self) -> Path:
        return self.dirs[0] / "producer.json"

    @property
    def conditions(self) -> list[ConditionSettings]:
        return [run.condition for run in self.runs]


def plan_replays(
    runs: Sequence[RunSettings], events: Sequence[Path], out_root: Path
) -> list[Replay]:
    """The group's replays: runs with the same replay key share one. Every run of a session
    must ask for the same session-wide Spark settings."""
    if len(events) != len(runs):
        raise ConfigError(f"{len(runs)} runs but {len(events)} events files")
    replays: dict[tuple[str, str], Replay] = {}
    session = None
    for run, path in zip(runs, events, strict=True):
        condition = run.condition
        if session is None:
            session = condition.spark_conf
        elif condition.spark_conf != session:
            raise ConfigError(f"{run.run.path} cannot share a Spark session: other spark_conf")
        replay = replays.setdefault((condition.input_key, str(path)), Replay(Path(path)))
        replay.runs.append(run)
        replay.dirs.append(out_root / run.run.path)
    return list(replays.values())


def replay_condition(conditions: Sequence[ConditionSettings]) -> ConditionSettings:
    """The producer's settings: its heartbeat must close every job's last window, so it
    uses the longest window and watermark of the group."""
    return dataclasses.replace(
        conditions[0],
        window_s=max(c.window_s + (c.slide_s or 0) for c in conditions),
        watermark_s=max(c.watermark_s for c in conditions),
    )


# What the per-reading query writes into a run directory (vitalstream.stream.job.Sinks).
READINGS_OUTPUTS = (
    "deadletter",
    "events",
    Path("alerts") / "query=readings",
    Path("state") / "readings",
)


def copy_readings_outputs(source: Path, target: Path) -> None:
    """Give a windows-only job of a group the per-reading query's outputs and commit records."""
    for name in READINGS_OUTPUTS:
        if (source / name).exists():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
    commits = (source / "commits.jsonl").read_text().splitlines()
    readings = [line for line in commits if json.loads(line).get("query") == "readings"]
    with (target / "commits.jsonl").open("a") as fh:
        fh.writelines(line + "\n" for line in readings)


def _job_specs(
    replay: Replay,
    diagnostics: DiagnosticsSpec,
    kafka: KafkaSettings,
    bootstrap: str,
    checks: MessageChecks,
    devices: DeviceFormat,
) -> list[JobSpec]:
    """A job per run of the replay; the first runs the per-reading query (critical alerts, dead
    letter, raw events), which reads the same messages the same way in every job, and the
    others receive copies of its output."""
    specs = []
    for i, (run, run_dir) in enumerate(zip(replay.runs, replay.dirs, strict=True)):
        condition, name = run.condition, run.run.condition
        sinks = condition.sinks.over(SHARED_SESSION_SINKS)
        alerts_topic = f"{replay.topic}.{name}.alerts" if sinks.alerts_topic else None
        if alerts_topic:
            broker.create_topic(bootstrap, alerts_topic, 1, kafka.replication_factor)
        spec = JobSpec.from_condition(
            condition,
            diagnostics,
            bootstrap_servers=bootstrap,
            topic=replay.topic,
            out_dir=run_dir,
            alerts_topic=alerts_topic,
            raw_events=sinks.raw_events,
            checks=checks,
            devices=devices,
        )
        specs.append(dataclasses.replace(spec, query_prefix=f"{name}.", readings_query=i == 0))
    return specs


def run_shared(
    settings: Settings,
    runs: Sequence[RunId],
    events: Path | Sequence[Path],
    out_root: Path,
    bootstrap: str,
    drain_timeout_s: float = 900.0,
) -> dict[str, dict[str, Any]]:
    """Run the group in one Spark session: one replay per distinct input, a job per run, all
    at once; write every run's metrics.json, provenance.json and condition.json. A job of a
    shared session writes raw events and publishes alerts only if its condition asks."""
    paths = [Path(events)] * len(runs) if isinstance(events, (str, Path)) else list(events)
    replays = plan_replays([settings.run(run) for run in runs], paths, out_root)
    for replay in replays:
        for run_dir, condition in zip(replay.dirs, replay.conditions, strict=True):
            clean_run_dir(run_dir)
            for name in ("producer.json", "producer.log", "progress.json"):
                (run_dir / name).unlink(missing_ok=True)
            (run_dir / "condition.json").write_text(json.dumps(condition.record, indent=2) + "\n")
        replay.topic = topic_name(replay.runs[0].run)
        broker.create_topic(
            bootstrap,
            replay.topic,
            replay.conditions[0].kafka_partitions,
            settings.kafka.replication_factor,
        )
    specs = [
        _job_specs(
            replay,
            settings.diagnostics,
            settings.kafka,
            bootstrap,
            settings.checks,
            settings.devices,
        )
        for replay in replays
    ]
    conf = sparkenv.effective_conf(
        settings.spark.defaults_file,
        settings.spark.conf,
        replays[0].conditions[0].spark_conf,
    )
    spark = sparkenv.build_session(conf)
    producers: list[Any] = []
    jobs: list[list[Any]] = []
    try:
        jobs = [
            [start_job(spark, spec, Sinks(spec)) for spec in replay_specs] for replay_specs in specs
        ]
        every = {
            f"{r}.{i}.{name}": q
            for r, replay_jobs in enumerate(jobs)
            for i, job in enumerate(replay_jobs)
            for name, q in job.queries.items()
        }
        wait_until_started(every)
        producers = [
            start_producer(
                replay.events,
                bootstrap,
                replay.topic,
                replay_condition(replay.conditions),
                replay.report_path,
                replay.dirs[0] / "producer.log",
            )
            for replay in replays
        ]
        while any(producer.poll() is None for producer in producers):
            raise_if_failed(every)
            time.sleep(0.2)
        for replay, producer in zip(replays, producers, strict=True):
            if producer.returncode != 0:
                raise RunError(
                    f"producer of {replay.topic} exited with {producer.returncode}; "
                    f"see {replay.dirs[0] / 'producer.log'}"
                )
        progress = []
        for replay, replay_jobs in zip(replays, jobs, strict=True):
            report = json.loads(replay.report_path.read_text())
            end_offsets = broker.topic_end_offsets(bootstrap, replay.topic)
            for job, condition in zip(replay_jobs, replay.conditions, strict=True):
                closing_ms = report["heartbeat_event_time_ms"] - int(condition.watermark_s * 1000)
                wait_until_drained(job.queries, end_offsets, closing_ms, drain_timeout_s)
            progress.append(
                [
                    {
                        name: [progress_dict(x) for x in q.recentProgress]
                        for name, q in job.queries.items()
                    }
                    for job in replay_jobs
                ]
            )
    finally:
        for job in (job for replay_jobs in jobs for job in replay_jobs):
            job.stop()
        for producer in producers:
            if producer.poll() is None:
                producer.kill()
        spark.stop()
    results = {}
    for replay, replay_progress in zip(replays, progress, strict=True):
        results |= _write_results(
            settings.kafka, replay, replay_progress, conf, [r.path for r in runs]
        )
        broker.delete_topic(bootstrap, replay.topic)
    return results


def _write_results(
    kafka: KafkaSettings,
    replay: Replay,
    progress: list[dict[str, Any]],
    conf: Mapping[str, Any],
    session: list[str],
) -> dict[str, dict[str, Any]]:
    """metrics.json and provenance.json of each run of one replay."""
    results = {}
    first = replay.dirs[0]
    for run, run_dir, prog in zip(replay.runs, replay.dirs, progress, strict=True):
        if run_dir != first:
            shutil.copy(replay.report_path, run_dir / "producer.json")
            copy_readings_outputs(first, run_dir)
            prog["readings"] = progress[0]["readings"]
        (run_dir / "progress.json").write_text(json.dumps(prog) + "\n")
        result = metrics.run_metrics(run_dir, run.condition.record)
        result["shared_replay"] = [r.run.path for r in replay.runs]
        result["shared_session"] = session
        (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        record = provenance.collect(run, kafka, conf, sparkenv.connector_jars(), replay.topic)
        (run_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
        results[run.run.path] = result
    return results


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run-shared", help="run a group of conditions in one Spark session (shared replays)"
    )
    parser.add_argument("run_ids", nargs="+", help="<experiment>/<condition>/rep<k> of one group")
    add_config_arguments(parser)
    parser.add_argument(
        "--events", type=parquet_input, nargs="+", required=True, help="one per run, or one for all"
    )
    parser.add_argument("--out-root", type=writable_dir, required=True, help="results/runs")
    parser.add_argument("--broker-state", type=Path, default=None)
    parser.set_defaults(func=_cli_run_shared)


def _cli_run_shared(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = Settings.from_config(config_from_args(args))
    runs = [RunId.parse(text) for text in args.run_ids]
    bootstrap = resolve_bootstrap(settings.kafka.bootstrap_servers, args.broker_state)
    events = args.events if len(args.events) > 1 else args.events[0]
    results = run_shared(settings, runs, events, args.out_root, bootstrap)
    print(json.dumps({path: r["events_processed"] for path, r in results.items()}))
    return 0
