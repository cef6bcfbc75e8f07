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
(vitalstream.ingest.load) with the condition's rate ramp → the ramp stops early once the job has
clearly fallen behind → drain (bounded) → metrics (vitalstream.experiments.perfmeasure) and
provenance. A condition with a ``load/search`` block runs a rate search instead: fixed-rate
probes, each such a run (vitalstream.experiments.perfsearch). An experiment with ``ceiling:
true`` measures the raw consumer ceiling in the same session, on the same broker, before each
repetition round's first run (right after the warm-up for the first), so that each run's
metrics carry the ratio of its sustainable rate to a ceiling of its own round.

Not for: single cohort replays (vitalstream.experiments.run), a run's metrics or the raw
consumer ceiling (vitalstream.experiments.perfmeasure).
"""

from __future__ import annotations

import argparse
import functools
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from vitalstream.core.cliargs import writable_dir
from vitalstream.core.config import add_config_arguments, config_from_args
from vitalstream.core.devices import DeviceFormat
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.progress import emit as emit_progress
from vitalstream.core.runsettings import (
    ConditionSettings,
    ExperimentSettings,
    RunSettings,
    Settings,
)
from vitalstream.core.settings import KafkaSettings, MessageChecks
from vitalstream.experiments import perfmeasure, perfsearch, provenance
from vitalstream.experiments.perfmeasure import PERF_OUTPUTS, kafka_alerts, perf_metrics
from vitalstream.experiments.run import (
    RunError,
    clean_run_dir,
    prepare_job,
    progress_dict,
    raise_if_failed,
    resolve_bootstrap,
    spawn_child,
    wait_until_drained,
    wait_until_started,
)
from vitalstream.ingest.load import LoadSpec
from vitalstream.measure import perfmetrics
from vitalstream.services import broker, sparkenv
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import start_job, start_realtime_job


def group_order(settings: Settings, experiment: str) -> list[RunSettings]:
    """The experiment's runs, repetitions round-robin over conditions."""
    return sorted(settings.runs_of(experiment), key=lambda r: r.run.rep)


class ResourceSampler(threading.Thread):
    """CPU (% of one core) and resident memory of the Spark JVM, the load generator and the
    Kafka broker, sampled every ``every_s`` while a run is under load. A process that is gone
    or not ours to read (None, or no such PID) is left out: its key is absent."""

    def __init__(self, pids: Mapping[str, int | None], every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        procs = {name: _safe(lambda p=pid: psutil.Process(p)) for name, pid in pids.items() if pid}
        self.procs = {name: proc for name, proc in procs.items() if proc is not None}
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
    bootstrap: str, topic: str, condition: ConditionSettings, report: Path, log: Path
) -> subprocess.Popen[bytes]:
    """The load generator (vitalstream.ingest.load) sending the condition's load, a process."""
    if condition.load is None:
        raise RunError("a performance run needs the condition's load block")
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
        json.dumps(condition.load.as_mapping()),
        "--window-s",
        str(condition.window_s),
        "--settings",
        json.dumps(dict(condition.producer)),
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
    this: RunSettings,
    kafka: KafkaSettings,
    diagnostics: DiagnosticsSpec,
    run_dir: Path,
    bootstrap: str,
    criterion: perfmetrics.SustainCriterion,
    checks: MessageChecks | None = None,
    devices: DeviceFormat | None = None,
    probe: bool = False,
) -> dict[str, Any]:
    """One measured run in the shared session; writes metrics.json, provenance.json,
    condition.json and the per-run series. A ``probe`` (one fixed-rate step of a search) is
    judged by the fixed-rate criterion; stopped early, it has failed."""
    phases = _Phases()
    run, condition = this.run, this.condition
    if condition.load is None:
        raise RunError(f"{run.path} has no load block: not a performance run")
    clean_run_dir(run_dir)
    for name in PERF_OUTPUTS:
        (run_dir / name).unlink(missing_ok=True)
    (run_dir / "condition.json").write_text(json.dumps(condition.record, indent=2) + "\n")
    load = LoadSpec.from_mapping(condition.load.as_mapping(), window_s=condition.window_s)
    topic = f"perf.{run.experiment}.{run.condition}.rep{run.rep}.{uuid.uuid4().hex[:8]}"
    # Real-time mode writes its alerts to Kafka; the micro-batch job to Parquet only.
    realtime = condition.trigger_mode == "realtime"
    spec = prepare_job(
        condition,
        diagnostics,
        kafka,
        bootstrap,
        topic,
        run_dir,
        alerts=realtime,
        raw_events=False,
        # Load at many readings per patient per second runs its event time ahead of Kafka's.
        checks=(checks or MessageChecks()).without_clock_band(),
        devices=devices,
    )
    alerts_topic = spec.alerts_topic
    previous = _apply_sql_conf(spark, condition.spark_conf)
    producer = None
    try:
        starter = start_realtime_job if realtime else start_job
        job = starter(spark, spec, Sinks(spec))
        queries = job.queries
        session_conf = spark_session_conf(spark)  # with this condition's settings applied
        wait_until_started(queries)
        phases.mark("start")
        producer = start_load(
            bootstrap, topic, condition, run_dir / "producer.json", run_dir / "producer.log"
        )
        sampler = ResourceSampler(
            {
                "jvm": jvm_pid(),
                "producer": producer.pid,
                "broker": broker.listening_pid(bootstrap),
            }
        )
        sampler.start()
        aborted = _watch_ramp(
            queries,
            producer,
            bootstrap,
            topic,
            load,
            criterion,
            condition.trigger_ms,
            may_abort=condition.abort_on_backlog,
            run_path=run.path,
        )
        phases.mark("load")
        # Single-rate runs wait until the last window the data closes is written (their
        # window-alert latency may rest on it); a ramp has closed many windows by its end.
        closing_ms = (
            _last_closable_window_end(run_dir / "producer.json", condition)
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
            name: [progress_dict(p) for p in q.recentProgress] for name, q in queries.items()
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
    result = perf_metrics(run_dir, condition, criterion, probe=probe)
    if probe and aborted:
        result["probe"] |= {"held": False}
        result["sustainable_rate"] = 0.0
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
        this, kafka, session_conf, sparkenv.connector_jars(), topic, command
    )
    (run_dir / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    for name in (topic, alerts_topic):
        if name:
            broker.delete_topic(bootstrap, name)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return result


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
    trigger_ms: int,
    may_abort: bool = True,
    run_path: str | None = None,
) -> bool:
    """Wait for the generator; stop it once the staleness exceeds ``abort_factor`` × the bound
    (the current step has failed and every later one would too) or the generator cannot
    keep its rate, unless ``may_abort`` is False. True if stopped early."""
    bound_s = criterion.max_lag_s + trigger_ms / 1000
    aborted = False
    start = None  # when the first message reached the broker (process start-up excluded)
    next_check = time.monotonic() + 0.5
    entered, step = time.monotonic(), -1
    while producer.poll() is None:
        raise_if_failed(queries)
        now = time.monotonic()
        step = _report_step(load, now - entered, step, run_path)
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


def _report_step(load: LoadSpec, elapsed_s: float, shown: int, run_path: str | None) -> int:
    """Print a progress line when the ramp (by the clock, as the generator runs it) enters
    a new step, for `vitalstream status`; returns the step now shown."""
    step = min(int(elapsed_s // load.step_s), len(load.rates) - 1) if load.step_s > 0 else 0
    if step != shown:
        n = len(load.rates)
        emit_progress(
            "ramp",
            done=step,
            total=n,
            unit="steps",
            step=step + 1,
            rate=round(load.rates[step], 1),
            run=run_path,
        )
    return step


def _last_closable_window_end(report_path: Path, condition: ConditionSettings) -> int | None:
    """End (event ms) of the last window the data sent can close: newest event time minus
    the watermark, rounded down to a window boundary (None if no window can close)."""
    if not report_path.exists():
        return None
    report = json.loads(report_path.read_text())
    if not report.get("timeline"):
        return None
    newest = int(report["timeline"][-1][2])
    window_ms = int(condition.window_s * 1000)
    end = (newest - int(condition.watermark_s * 1000)) // window_ms * window_ms
    return end if end > int(report["origin_event_ms"]) else None


def _await_next_batch(queries: Mapping[str, Any], timeout_s: float) -> bool:
    """Wait (at most ``timeout_s``) until every query has completed one more micro-batch."""
    last = {name: (q.lastProgress or {}).get("batchId", -1) for name, q in queries.items()}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raise_if_failed(queries)
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
                raise_if_failed(queries)
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


def warmup_condition(experiment: ExperimentSettings) -> ConditionSettings:
    """The warm-up's condition: the experiment's defaults (tuned), without a cohort, at their
    first rate for warmup_s."""
    defaults = experiment.warmup
    if defaults is None or defaults.load is None:
        raise RunError(f"experiment {experiment.name!r} has no warm-up")
    load = defaults.load
    first = LoadSpec.from_mapping(load.as_mapping(), window_s=defaults.window_s).rates[0]
    load = replace(load, rates=(first,), rates_per_patient=None, step_s=experiment.warmup_s)
    return replace(defaults, load=load, record={**defaults.record, "load": load.as_mapping()})


def warm_up(
    spark: Any,
    settings: Settings,
    first_run: RunSettings,
    out_root: Path,
    bootstrap: str,
) -> None:
    """An unmeasured run of the warm-up's condition (``warmup_condition``) in the group's
    session, written to a scratch folder that is removed afterwards."""
    experiment = settings.experiment(first_run.run.experiment)
    warm = RunSettings(first_run.run, warmup_condition(experiment))
    scratch = out_root / experiment.name / ".warmup"
    criterion = perfmetrics.SustainCriterion()
    run_one(
        spark,
        warm,
        settings.kafka,
        settings.diagnostics,
        scratch,
        bootstrap,
        criterion,
        settings.checks,
        settings.devices,
    )
    shutil.rmtree(scratch, ignore_errors=True)  # kept when it failed, for its logs


def _ceiling_for_round(
    settings: Settings,
    this: RunSettings,
    bootstrap: str,
    ceilings: list[dict[str, Any]],
    out_root: Path,
) -> None:
    """Measure the raw ceiling before the first run of each repetition round (appended to
    ``ceilings``; all rounds so far written to <out_root>/<experiment>/ceiling.json)."""
    if settings.ceiling is None or (ceilings and ceilings[-1]["rep"] == this.run.rep):
        return
    c, run = settings.ceiling, this.run
    ceilings.append(
        perfmeasure.ceiling_round(bootstrap, c.messages, c.partitions, run.rep, run.path)
    )
    perfmeasure.write_ceilings(out_root / run.experiment / "ceiling.json", ceilings)


def run_group(
    settings: Settings, experiment: str, out_root: Path, bootstrap: str
) -> list[dict[str, Any]]:
    """Every run of ``experiment`` in one Spark session (see the module docstring)."""
    spec = settings.experiment(experiment)
    if not spec.performance:
        raise RunError(f"experiment {experiment!r} has no load block: not a performance group")
    criterion = perfmetrics.SustainCriterion.from_mapping(spec.sustain)
    if spec.ceiling and settings.ceiling is None:
        raise RunError(f"experiment {experiment!r} asks for a ceiling: no ceiling block given")
    conf = sparkenv.effective_conf(
        settings.spark.defaults_file, settings.spark.conf, spec.spark_conf
    )
    spark = sparkenv.build_session(conf)
    results = []
    ceilings: list[dict[str, Any]] = []

    def measure(this: RunSettings, run_dir: Path, judged: Any, probe: bool = False) -> Any:
        return run_one(
            spark,
            this,
            settings.kafka,
            settings.diagnostics,
            run_dir,
            bootstrap,
            judged,
            settings.checks,
            settings.devices,
            probe=probe,
        )

    try:
        runs = group_order(settings, experiment)
        if spec.warmup_s > 0:
            print(f"warm-up: defaults, {spec.warmup_s} s", flush=True)
            warm_up(spark, settings, runs[0], out_root, bootstrap)
        for index, this in enumerate(runs):
            run = this.run
            emit_progress("perf-group", done=index, total=len(runs), unit="runs", run=run.path)
            if spec.ceiling:
                _ceiling_for_round(settings, this, bootstrap, ceilings, out_root)
            started = time.monotonic()
            run_dir = out_root / run.path
            if this.condition.load is not None and this.condition.load.search is not None:
                probe = functools.partial(measure, probe=True)
                result = perfsearch.run_search(this, run_dir, criterion, probe)
            else:
                result = measure(this, run_dir, criterion)
            if ceilings:
                perfmeasure.add_ceiling(run_dir, result, ceilings[-1])
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


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "perf-group", help="run every condition of a performance experiment in one Spark session"
    )
    parser.add_argument("experiment", help="a performance experiment of the config (load block)")
    add_config_arguments(parser)
    parser.add_argument("--out-root", type=writable_dir, default=Path("results/runs"))
    parser.add_argument("--broker-state", type=Path, default=None)
    parser.set_defaults(func=_cli_group)


def _cli_group(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = Settings.from_config(config_from_args(args))
    bootstrap = resolve_bootstrap(settings.kafka.bootstrap_servers, args.broker_state)
    run_group(settings, args.experiment, args.out_root, bootstrap)
    return 0
