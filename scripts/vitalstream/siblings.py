"""Shared replays: several runs that differ only in the windows query's settings (watermark,
window length, slide) read one replay of one topic, each through a job of its own, in one
Spark session at the same time.

Why: RQ3 (watermark × delay model) and the window ablation compare conditions on *the same*
input. Replaying it once per condition would cost a replay and a Spark start-up per run and
would compare runs made minutes apart on a shared machine; reading one replay with one job per
condition makes the comparison exact on the input (the same messages, in the same partition
order) and fair on the machine (the jobs share it at the same time), and costs one replay.
Spark decides watermarks per query, so the jobs are as independent as separate runs. Each run
still gets its own directory with the same files a single run writes (metrics.json,
provenance.json, condition.json, the producer's report), so the batch reference and
validation rules treat it like any other run.

The per-reading query (critical alerts, dead letter, raw events) does not depend on window
settings, so only the group's first job runs it and the others receive copies of its output:
the same files each would have written, at a third less work per micro-batch.

The jobs' micro-batches interleave on two cores, so a shared replay measures completeness,
state and accuracy; wall-clock latencies are not comparable with a single run's.

Not for: runs whose input differs (an edge gateway, another cohort: vitalstream.experiment).
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
from pathlib import Path
from typing import Any

from vitalstream import broker, metrics, provenance, sparkenv
from vitalstream.config import (
    SHARED_REPLAY_KEYS,
    ConfigError,
    RunId,
    add_config_arguments,
    condition_params,
    config_from_args,
)
from vitalstream.experiment import (
    RunError,
    _progress_dict,
    _raise_if_failed,
    clean_run_dir,
    resolve_bootstrap,
    start_producer,
    topic_name,
    wait_until_drained,
    wait_until_started,
)
from vitalstream.streaming import JobSpec, start_job


def shared_params(config: Mapping[str, Any], runs: Sequence[RunId]) -> list[dict[str, Any]]:
    """Each run's parameters, checked to differ only in :data:`SHARED_REPLAY_KEYS`."""
    params = [condition_params(config, run) for run in runs]

    def rest(p: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in SHARED_REPLAY_KEYS}

    for run, p in zip(runs[1:], params[1:], strict=True):
        if rest(p) != rest(params[0]):
            raise ConfigError(
                f"{run.path} cannot share a replay with {runs[0].path}: they differ in more "
                f"than {SHARED_REPLAY_KEYS}"
            )
    return params


def replay_params(params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The producer's parameters: its heartbeat must close every job's last window, so it
    uses the longest window and watermark of the group."""
    merged = dict(params[0])
    merged["window_s"] = max(p["window_s"] + (p.get("slide_s") or 0) for p in params)
    merged["watermark_s"] = max(p["watermark_s"] for p in params)
    return merged


# What the per-reading query writes into a run directory (vitalstream.streaming.Sinks).
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


def run_shared(
    config: Mapping[str, Any],
    runs: Sequence[RunId],
    events: Path,
    out_root: Path,
    bootstrap: str,
    drain_timeout_s: float = 900.0,
) -> dict[str, dict[str, Any]]:
    """Run the group; write every run's metrics.json, provenance.json and condition.json."""
    params = shared_params(config, runs)
    dirs = [out_root / run.path for run in runs]
    for run_dir, p in zip(dirs, params, strict=True):
        clean_run_dir(run_dir)
        for name in ("producer.json", "producer.log", "progress.json"):
            (run_dir / name).unlink(missing_ok=True)
        (run_dir / "condition.json").write_text(json.dumps(p, indent=2) + "\n")
    topic = topic_name(runs[0])
    first = params[0]
    broker.create_topic(
        bootstrap, topic, first["kafka_partitions"], config["kafka"]["replication_factor"]
    )
    specs = []
    for run, p, run_dir in zip(runs, params, dirs, strict=True):
        sinks = p.get("sinks", {})
        alerts_topic = f"{topic}.{run.condition}.alerts" if sinks.get("alerts_topic") else None
        if alerts_topic:
            broker.create_topic(bootstrap, alerts_topic, 1, config["kafka"]["replication_factor"])
        specs.append(
            JobSpec.from_condition(
                p,
                config["diagnostics"],
                bootstrap_servers=bootstrap,
                topic=topic,
                out_dir=run_dir,
                alerts_topic=alerts_topic,
                raw_events=bool(sinks.get("raw_events", False)),
            )
        )
    # The per-reading query (critical alerts, dead letter, raw events) reads the same messages
    # the same way in every job of the group: the first job runs it, the others copy its output.
    specs = [
        dataclasses.replace(spec, query_prefix=f"{run.condition}.", readings_query=i == 0)
        for i, (spec, run) in enumerate(zip(specs, runs, strict=True))
    ]
    conf = sparkenv.effective_conf(
        Path(config["spark"]["defaults_file"]), config["spark"]["conf"], first["spark_conf"]
    )
    spark = sparkenv.build_session(conf)
    producer = None
    jobs = []
    try:
        jobs = [start_job(spark, spec) for spec in specs]
        every = {f"{i}.{name}": q for i, job in enumerate(jobs) for name, q in job.queries.items()}
        wait_until_started(every)
        report_path = dirs[0] / "producer.json"
        producer = start_producer(
            events, bootstrap, topic, replay_params(params), report_path, dirs[0] / "producer.log"
        )
        while producer.poll() is None:
            _raise_if_failed(every)
            time.sleep(0.2)
        if producer.returncode != 0:
            raise RunError(f"producer exited with {producer.returncode}; see producer.log")
        report = json.loads(report_path.read_text())
        end_offsets = broker.topic_end_offsets(bootstrap, topic)
        progress = []
        for job, p in zip(jobs, params, strict=True):
            closing_ms = report["heartbeat_event_time_ms"] - int(p["watermark_s"] * 1000)
            wait_until_drained(job.queries, end_offsets, closing_ms, drain_timeout_s)
        for job in jobs:
            progress.append(
                {
                    name: [_progress_dict(x) for x in q.recentProgress]
                    for name, q in job.queries.items()
                }
            )
    finally:
        for job in jobs:
            job.stop()
        if producer is not None and producer.poll() is None:
            producer.kill()
        spark.stop()
    results = {}
    for run, run_dir, p, prog in zip(runs, dirs, params, progress, strict=True):
        if run_dir != dirs[0]:
            shutil.copy(report_path, run_dir / "producer.json")
            copy_readings_outputs(dirs[0], run_dir)
            prog["readings"] = progress[0]["readings"]
        (run_dir / "progress.json").write_text(json.dumps(prog) + "\n")
        result = metrics.run_metrics(run_dir, p)
        result["shared_replay"] = [r.path for r in runs]
        (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        record = provenance.collect(config, run, p, conf, sparkenv.connector_jars(), topic)
        (run_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
        results[run.path] = result
    broker.delete_topic(bootstrap, topic)
    return results


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run-shared", help="run conditions that differ only in window settings on one replay"
    )
    parser.add_argument("run_ids", nargs="+", help="<experiment>/<condition>/rep<k> of one group")
    add_config_arguments(parser)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--out-root", type=Path, required=True, help="results/runs")
    parser.add_argument("--broker-state", type=Path, default=None)
    parser.set_defaults(func=_cli_run_shared)


def _cli_run_shared(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    config = config_from_args(args)
    runs = [RunId.parse(text) for text in args.run_ids]
    bootstrap = resolve_bootstrap(config, args.broker_state)
    results = run_shared(config, runs, args.events, args.out_root, bootstrap)
    print(json.dumps({path: r["events_processed"] for path, r in results.items()}))
    return 0
