"""Where a micro-batch's time goes (``python -m vitalstream breakdown``), at a few load levels.

One uncounted drain of the unchanged job first warms the session up. A level is a micro-batch
size in messages (what one batch carries at a given rate). For each,
a fresh topic is filled with the load generator's messages (vitalstream.ingest.load, not timed),
then two measurements read it:

a. the real streaming job (vitalstream.stream.job with the sinks of vitalstream.sinks.batch),
   ``maxOffsetsPerTrigger`` = the level, over several batches: Spark's phases per batch, the
   state operators' metrics and the sink's own phases (``stage_ms``); medians per query over
   the batches after the first, which pays the warm-up;
b. Spark's part of a windows batch split by stage: cumulative prefixes of the windows query's
   plan (Kafka fetch, + JSON parse, + validation, + aggregation with its state store, + scores
   and fired rules) each run as a streaming query to Spark's ``noop`` sink over the same
   offsets (the job's first ``repeats + 1`` batches), then the windows query itself with its
   sink (collection to the driver; sequential rules, suppression and Parquet writes in pandas
   and pyarrow, from its ``stage_ms``). A stage costs the difference of successive medians of
   ``addBatch`` after the first batch (vitalstream.measure.stagecosts, which also clips and
   names negative ones). Streaming, not batch, queries: Spark refuses the job's
   ``dropDuplicatesWithinWatermark`` on a batch DataFrame, and a streaming prefix also pays
   the state store as the job does.

Both use the package's own functions (parse_messages, window_aggregates, with_scores, Sinks),
never a copy of the job. The topic stays until its level is measured and is deleted after.

Then, optionally (``--levers-file``, config ``breakdown.levers``), which change buys what: each
lever (a Spark SQL setting, or the per-reading query left out) and the unchanged job drain a
topic of full batches at one level in the same session, in an order that rotates every round;
their rates and ratios are vitalstream.measure.levers's.

Not for: sustained throughput (vitalstream.experiments.perf) or the raw ceiling (perfmeasure).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import (
    UsageError,
    existing_file,
    positive_int,
    writable_dir,
    writable_file,
)
from vitalstream.core.config import (
    RunId,
    add_config_arguments,
    config_from_args,
    run_config_subset,
)
from vitalstream.core.runsettings import ConditionSettings, Settings
from vitalstream.experiments import provenance
from vitalstream.experiments.run import (
    RunError,
    prepare_job,
    progress_dict,
    raise_if_failed,
    resolve_bootstrap,
)
from vitalstream.ingest.load import LoadSpec, generate
from vitalstream.ingest.producer import ProducerSettings
from vitalstream.measure import levers as leverstats
from vitalstream.measure import stagecosts
from vitalstream.services import broker, sparkenv
from vitalstream.sinks.batch import Sinks
from vitalstream.stream.job import read_topic, start_job, windows_plan
from vitalstream.stream.parse import parse_messages
from vitalstream.stream.spec import WINDOW_STATS, JobSpec
from vitalstream.stream.windows import window_stats, with_fired_rules

# Filling a topic: at most this rate (one Python core keeps it on a busy machine), for at least
# a second (the token bucket meters a shorter step poorly), 30 % over what is needed (the step
# may still fall short of its rate).
FILL_RATE = 100_000.0
FILL_MIN_S = 1.0
FILL_MARGIN = 1.3
# The session settings a reader needs beside the numbers.
CONF_KEYS = (
    "spark.master",
    "spark.driver.memory",
    "spark.sql.shuffle.partitions",
    "spark.sql.streaming.stateStore.providerClass",
    "spark.sql.execution.arrow.pyspark.enabled",
    "spark.sql.adaptive.enabled",
)


def fill_topic(bootstrap: str, topic: str, messages: int, condition: ConditionSettings) -> int:
    """At least ``messages`` of the load generator's messages in ``topic``, with the
    condition's patients and lead (its event time runs ahead of the wall clock by design);
    how many it holds."""
    if condition.load is None:
        raise RunError("the breakdown's condition needs a load block (patients)")
    load = condition.load
    step_s = max(FILL_MIN_S, FILL_MARGIN * messages / FILL_RATE)
    spec = LoadSpec(
        patients=load.patients,
        rates=(FILL_MARGIN * messages / step_s,),
        step_s=step_s,
        lead_s=load.lead_s,
        window_s=condition.window_s,
        deteriorating_fraction=load.deteriorating_fraction,
        critical_per_mille=load.critical_per_mille,
        seed=load.seed,
    )
    report = generate(spec, bootstrap_servers=bootstrap, topic=topic, settings=ProducerSettings())
    filled = sum(broker.topic_end_offsets(bootstrap, topic).values())
    if filled < messages:
        raise RunError(f"filled {topic} with {filled} of {messages} messages ({report.messages})")
    return filled


def _commit_records(spec: JobSpec, query: str) -> list[dict[str, Any]]:
    path = spec.path("commits.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("query") == query]


def run_batches(queries: Mapping[str, Any], batches: int, timeout_s: float) -> dict[str, list]:
    """Let ``queries`` run until each has completed ``batches`` batches with data, stop them;
    each one's progress reports."""
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        while True:
            raise_if_failed(queries)
            reports = {n: [progress_dict(p) for p in q.recentProgress] for n, q in queries.items()}
            done = {n: len(stagecosts.data_batches(r)) for n, r in reports.items()}
            if min(done.values()) >= batches:
                took = time.monotonic() - started
                print(
                    f"breakdown: {', '.join(queries)}: {batches} batches in {took:.1f} s",
                    flush=True,
                )
                return reports
            if time.monotonic() > deadline:
                raise RunError(f"breakdown: {done} of {batches} batches within {timeout_s:.0f} s")
            time.sleep(0.1)
    finally:
        for query in queries.values():
            query.stop()


def streaming_part(spark: Any, spec: JobSpec, batches: int, timeout_s: float) -> dict[str, Any]:
    """The job (both queries, its sinks) over ``batches`` batches: medians per query
    (stagecosts.streaming_medians)."""
    sinks = Sinks(spec)
    try:
        reports = run_batches(start_job(spark, spec, sinks).queries, batches, timeout_s)
    finally:
        sinks.close()
    return {
        name: stagecosts.streaming_medians(
            stagecosts.data_batches(progress)[:batches], _commit_records(spec, name)
        )
        for name, progress in reports.items()
    }


def plan_prefixes(spark: Any, spec: JobSpec) -> dict[str, Any]:
    """The windows query's plan as the job builds it, cut after each Spark stage before the
    sink: Kafka rows, parsed messages, valid readings, windows, scores and fired rules."""
    from pyspark.sql import functions as F

    raw = read_topic(spark, spec)
    parsed = parse_messages(raw, spec.checks, spec.devices)
    plan = windows_plan(parsed, spec)
    # The sink's first step on a windows batch (sinks.batch.Sinks.write_windows), in Spark.
    fired = with_fired_rules(
        plan["score"].filter(F.col("patient_id").isNotNull()), spec.diagnostics.window_rules
    )
    return {"fetch": raw, "parse": parsed, **plan, "score": fired}


def _noop_query(frame: Any, spec: JobSpec, stage: str) -> Any:
    return (
        frame.writeStream.format("noop")
        .queryName(f"breakdown_{stage}")
        .outputMode("append")
        .option("checkpointLocation", spec.checkpoint(f"prefix_{stage}"))
        .trigger(processingTime=f"{spec.trigger_ms} milliseconds")
        .start()
    )


def stage_part(spark: Any, spec: JobSpec, repeats: int, timeout_s: float) -> dict[str, Any]:
    """Spark's part of a windows batch by stage. Each prefix (plan_prefixes) runs as a
    streaming query to Spark's ``noop`` sink over the job's first ``repeats + 1`` batches (same
    offsets, same state store); its cost is the median ``addBatch`` after the first batch.
    The last prefix is the windows query itself with its sink, whose ``stage_ms`` give the
    collection to the driver (Spark runs the plan there) and the driver's own phases."""
    batches = repeats + 1
    plans = plan_prefixes(spark, spec)
    samples: dict[str, list[float]] = {}
    for stage in stagecosts.SPARK_STAGES[:-1]:
        reports = run_batches({stage: _noop_query(plans[stage], spec, stage)}, batches, timeout_s)
        measured = stagecosts.data_batches(reports[stage])[:batches]
        samples[stage] = [float(b["durationMs"]["addBatch"]) for b in measured]
    windows_only = dataclasses.replace(spec, readings_query=False, query_prefix="breakdown_")
    sinks = Sinks(windows_only)
    try:
        reports = run_batches(start_job(spark, windows_only, sinks).queries, batches, timeout_s)
    finally:
        sinks.close()
    measured = stagecosts.data_batches(reports["windows"])[:batches]
    sink = stagecosts.streaming_medians(measured, _commit_records(windows_only, "windows"))
    stage_ms = {int(c["batch_id"]): c["stage_ms"] for c in _commit_records(windows_only, "windows")}
    samples["collect"] = [float(stage_ms[int(b["batchId"])]["collect"]) for b in measured]
    cumulative = {stage: stagecosts.warm_median(values) or 0.0 for stage, values in samples.items()}
    costs, clipped = stagecosts.stage_costs(cumulative)
    return {
        "input_rows": [int(b["numInputRows"]) for b in measured],
        "cumulative_ms": cumulative,
        "costs_ms": costs,
        "clipped": clipped,
        "driver_ms": sink["stage_ms"],
        "samples_ms": samples,
    }


def measured_job(
    settings: Settings, condition: ConditionSettings, bootstrap: str, topic: str, out_dir: Path
) -> JobSpec:
    """The job the breakdown measures on ``topic``: the condition's, without the alerts topic
    or raw events (the study's runs write them; here they would only add writes), and without
    the clock band (the load generator's event time runs ahead of the wall clock)."""
    return prepare_job(
        condition,
        settings.diagnostics,
        settings.kafka,
        bootstrap,
        topic,
        out_dir,
        alerts=False,
        raw_events=False,
        checks=settings.checks.without_clock_band(),
        devices=settings.devices,
    )


def measure_level(
    spark: Any,
    settings: Settings,
    condition: ConditionSettings,
    bootstrap: str,
    level: int,
    *,
    repeats: int,
    batches: int,
    work_dir: Path,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """One level: a topic filled for both parts, the job over ``batches`` batches of
    ``level`` messages, then the stage split over the first ``repeats + 1`` of the same
    batches; the topic deleted after."""
    condition = dataclasses.replace(condition, max_offsets_per_trigger=level)
    topic = f"perf.breakdown.{level}.{uuid.uuid4().hex[:8]}"
    out_dir = work_dir / f"level_{level}"
    spec = measured_job(settings, condition, bootstrap, topic, out_dir / "stream")
    try:
        # One batch more than either part reads, so that every measured batch is full.
        filled = fill_topic(bootstrap, topic, level * (max(batches, repeats + 1) + 1), condition)
        streaming = streaming_part(spark, spec, batches, timeout_s)
        stages = stage_part(
            spark, dataclasses.replace(spec, out_dir=out_dir / "stages"), repeats, timeout_s
        )
    finally:
        broker.delete_topic(bootstrap, topic)
    return {
        "messages": level,
        "topic_messages": filled,
        "streaming": streaming,
        "stages": stages,
    }


@dataclass(frozen=True)
class Lever:
    """One change to the job, measured against the unchanged job (config
    ``breakdown.levers.variants``): Spark SQL settings for its queries, no per-reading query,
    another number of Kafka partitions (None: the breakdown's) or fewer window statistics
    (None: the job's)."""

    name: str
    sql_conf: Mapping[str, str] = field(default_factory=dict)
    readings_query: bool = True
    partitions: int | None = None
    window_stats: tuple[str, ...] | None = None

    def topic_partitions(self, condition: ConditionSettings) -> int:
        """Its topic's Kafka partitions: its own, else the condition's (the breakdown's)."""
        return self.partitions or condition.kafka_partitions


@dataclass(frozen=True)
class LeverPlan:
    """The levers measured at one level (``breakdown.levers``): ``batches`` full batches per
    drain, ``repeats`` rounds, each lever once per round."""

    level: int
    batches: int
    repeats: int
    levers: tuple[Lever, ...]

    @classmethod
    def from_mapping(cls, block: Mapping[str, Any]) -> LeverPlan:
        """The config block (schema-checked); ``select`` names the variants measured (all by
        default), in its order."""
        variants = block.get("variants") or {}
        if leverstats.BASELINE in variants:
            raise UsageError(
                f"breakdown.levers.variants: {leverstats.BASELINE!r} is the unchanged job"
            )
        names = block.get("select") or list(variants)
        unknown = [name for name in names if name not in variants]
        if unknown:
            raise UsageError(f"breakdown.levers.select: no variant {', '.join(unknown)}")
        levers = tuple(_lever(name, variants[name]) for name in names)
        return cls(int(block["level"]), int(block["batches"]), int(block["repeats"]), levers)


def _lever(name: str, variant: Mapping[str, Any]) -> Lever:
    """One variant of ``breakdown.levers.variants``; an unknown window statistic is a usage
    error before any job starts."""
    stats = variant.get("window_stats")
    try:
        stats = window_stats(stats) if stats is not None else None
    except ValueError as error:
        raise UsageError(f"breakdown.levers.variants.{name}.{error}") from None
    return Lever(
        name,
        {str(k): _conf_text(v) for k, v in (variant.get("sql_conf") or {}).items()},
        bool(variant.get("readings_query", True)),
        variant.get("partitions"),
        stats,
    )


def _conf_text(value: Any) -> str:
    """A Spark setting as Spark spells it: YAML's ``true`` is ``"true"``, not ``"True"``."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def lever_drain(
    spark: Any, spec: JobSpec, lever: Lever, batches: int, timeout_s: float
) -> dict[str, Any]:
    """The job changed by ``lever`` over ``batches`` batches of a filled topic (its Spark SQL
    settings set for its queries and restored after): each query's drain rate and median
    batch time, and the job's rate (vitalstream.measure.levers.job_rate)."""
    previous = {key: spark.conf.get(key, None) for key in lever.sql_conf}
    for key, value in lever.sql_conf.items():
        spark.conf.set(key, value)
    spec = dataclasses.replace(
        spec,
        readings_query=lever.readings_query,
        query_prefix=f"lever_{lever.name}_",
        window_stats=lever.window_stats or spec.window_stats,
    )
    sinks = Sinks(spec)
    before = executor_times(spark)
    try:
        reports = run_batches(start_job(spark, spec, sinks).queries, batches, timeout_s)
    finally:
        sinks.close()
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
    after = executor_times(spark)
    return {
        "msgs_per_s": leverstats.job_rate(reports),
        "gc_ms": after["gc_ms"] - before["gc_ms"],
        "task_ms": after["task_ms"] - before["task_ms"],
        "queries": {
            name: {
                "msgs_per_s": leverstats.drain_rate(progress),
                "state_store": leverstats.state_store(progress),
                "batch_ms": stagecosts.warm_median(
                    [
                        float(b["durationMs"]["triggerExecution"])
                        for b in stagecosts.data_batches(progress)
                    ]
                ),
            }
            for name, progress in reports.items()
        },
    }


def drain_topic(
    spark: Any,
    settings: Settings,
    condition: ConditionSettings,
    bootstrap: str,
    lever: Lever,
    batches: int,
    out_dir: Path,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """The job changed by ``lever`` draining a topic of its own, filled with ``batches`` full
    batches (the condition's ``maxOffsetsPerTrigger``) on the lever's partitions, deleted
    after (lever_drain)."""
    topic = f"perf.lever.{lever.name}.{uuid.uuid4().hex[:8]}"
    job = dataclasses.replace(condition, kafka_partitions=lever.topic_partitions(condition))
    spec = measured_job(settings, job, bootstrap, topic, out_dir)
    try:
        messages = int(condition.max_offsets_per_trigger or 0) * batches
        fill_topic(bootstrap, topic, messages, condition)
        return lever_drain(spark, spec, lever, batches, timeout_s)
    finally:
        broker.delete_topic(bootstrap, topic)


def measure_levers(
    spark: Any,
    settings: Settings,
    condition: ConditionSettings,
    bootstrap: str,
    plan: LeverPlan,
    work_dir: Path,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Every lever and the unchanged job, each draining a topic of its own filled with
    ``plan.batches`` full batches, ``plan.repeats`` rounds in a rotating order after one
    uncounted drain of the unchanged job; the rounds and their summary
    (vitalstream.measure.levers.summarise)."""
    condition = dataclasses.replace(condition, max_offsets_per_trigger=plan.level)
    by_name = {leverstats.BASELINE: Lever(leverstats.BASELINE)}
    by_name |= {lever.name: lever for lever in plan.levers}

    def drain(name: str, folder: str) -> dict[str, Any]:
        return drain_topic(
            spark, settings, condition, bootstrap, by_name[name], plan.batches,
            work_dir / "levers" / folder, timeout_s,
        )  # fmt: skip

    # One drain of the unchanged job first, not counted: the session keeps warming up after
    # the levels (a first round measured 30 % below the later ones without it).
    print("breakdown: levers: a warm-up drain", flush=True)
    warmup = drain(leverstats.BASELINE, "warmup")
    rounds: list[dict[str, Any]] = []
    for index in range(plan.repeats):
        order = leverstats.rotation(list(by_name), index)
        drains: dict[str, Any] = {}
        for name in order:
            print(f"breakdown: lever {name}, round {index + 1} of {plan.repeats}", flush=True)
            drains[name] = drain(name, f"round_{index}/{name}")
        rounds.append({"order": order, "drains": drains})
    rates = [{name: d["msgs_per_s"] for name, d in one["drains"].items()} for one in rounds]
    return {
        "level": plan.level,
        "batches": plan.batches,
        "repeats": plan.repeats,
        "variants": {
            lever.name: {
                "sql_conf": dict(lever.sql_conf),
                "readings_query": lever.readings_query,
                "window_stats": list(lever.window_stats or WINDOW_STATS),
                "partitions": lever.topic_partitions(condition),
                "shuffle_partitions": shuffle_partitions(spark, lever.sql_conf),
                "task_slots": task_slots(spark, lever.topic_partitions(condition), lever.sql_conf),
            }
            for lever in plan.levers
        },
        "warmup": warmup,
        "rounds": rounds,
        "summary": leverstats.summarise(rates),
    }


def shuffle_partitions(spark: Any, sql_conf: Mapping[str, str] | None = None) -> int:
    """The aggregation's tasks per batch: the session's shuffle partitions unless ``sql_conf``
    (a lever's) sets them."""
    key = "spark.sql.shuffle.partitions"
    return int((sql_conf or {}).get(key) or spark.conf.get(key))


def task_slots(spark: Any, partitions: int, sql_conf: Mapping[str, str] | None = None) -> int:
    """How many tasks of a batch run at once: the session's cores (its default parallelism),
    at most one task per Kafka partition in the reading stages and one per shuffle partition
    in the aggregation. The cost model's ``k`` (vitalstream.measure.costmodel)."""
    cores = int(spark.sparkContext.defaultParallelism)
    return min(cores, partitions, shuffle_partitions(spark, sql_conf))


def executor_times(spark: Any) -> dict[str, float]:
    """The executors' task time and garbage-collection time so far (ms, summed; in local mode
    the driver's JVM is the one executor), from Spark's status store: a drain's difference is
    how much of its work went to collecting garbage, what the heap size changes.

    PySpark has no public call for these (its StatusTracker gives task counts only), so this
    goes through the JVM's ``AppStatusStore``, the store Spark's own UI and REST API read."""
    executors = spark.sparkContext._jsc.sc().statusStore().executorList(True).iterator()
    gc_ms = task_ms = 0.0
    while executors.hasNext():
        executor = executors.next()
        gc_ms += float(executor.totalGCTime())
        task_ms += float(executor.totalDuration())
    return {"gc_ms": gc_ms, "task_ms": task_ms}


def session_conf(spark: Any) -> dict[str, str]:
    """The session's settings a reader of the breakdown needs (CONF_KEYS that are set)."""
    conf = dict(spark.sparkContext.getConf().getAll())
    values = {key: spark.conf.get(key, None) or conf.get(key) for key in CONF_KEYS}
    return {key: str(value) for key, value in values.items() if value}


def breakdown(
    spark: Any,
    settings: Settings,
    run: RunId,
    bootstrap: str,
    levels: Sequence[int],
    *,
    repeats: int,
    batches: int,
    partitions: int,
    work_dir: Path,
    levers: LeverPlan | None = None,
) -> dict[str, Any]:
    """Every level of the breakdown in one Spark session (the first level's first batch pays
    the session's warm-up, which the medians leave out), then the levers if any; ``spark`` as
    condition_session builds it, or any session with the Kafka connector."""
    if batches < 2:
        raise UsageError("argument --batches: at least 2 (the first one is the warm-up)")
    condition = dataclasses.replace(settings.runs[run].condition, kafka_partitions=partitions)
    # One uncounted drain of the unchanged job at the first level first: without it the first
    # level's batches pay the session's warm-up (a quick run's first level measured its
    # windows batch at 2.4 times what the same job's drain of that size took later).
    print("breakdown: a warm-up drain", flush=True)
    warmup = drain_topic(
        spark, settings, dataclasses.replace(condition, max_offsets_per_trigger=levels[0]),
        bootstrap, Lever(leverstats.BASELINE), batches, work_dir / "warmup",
    )  # fmt: skip
    results = []
    for level in levels:
        print(f"breakdown: level {level} messages per batch", flush=True)
        results.append(
            measure_level(
                spark,
                settings,
                condition,
                bootstrap,
                level,
                repeats=repeats,
                batches=batches,
                work_dir=work_dir,
            )
        )
    measured = (
        measure_levers(spark, settings, condition, bootstrap, levers, work_dir)
        if levers and levers.levers
        else None
    )
    return {
        "condition": f"{run.experiment}/{run.condition}",
        "warmup": warmup,
        "levels": results,
        "levers": measured,
        "repeats": repeats,
        "batches": batches,
        "partitions": partitions,
        "shuffle_partitions": shuffle_partitions(spark),
        "task_slots": task_slots(spark, partitions),
        "patients": condition.load.patients if condition.load else None,
        "trigger_ms": condition.trigger_ms,
        "conf": session_conf(spark),
    }


def condition_session(settings: Settings, run: RunId) -> Any:
    """The Spark session of ``run``'s condition: the config's settings and its spark_conf."""
    conf = sparkenv.effective_conf(
        settings.spark.defaults_file, settings.spark.conf, settings.runs[run].condition.spark_conf
    )
    return sparkenv.build_session(conf)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "breakdown", help="where a micro-batch's time goes, per stage, at a few load levels"
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--condition", required=True, help="<experiment>/<condition> whose job is measured"
    )
    parser.add_argument("--levels", type=positive_int, nargs="+", required=True,
                        help="micro-batch sizes in messages")  # fmt: skip
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--batches", type=positive_int, default=6)
    parser.add_argument("--partitions", type=positive_int, default=2)
    parser.add_argument("--bootstrap-servers", default=None, help="default: --broker-state")
    parser.add_argument("--broker-state", type=Path, default=None)
    parser.add_argument(
        "--work-dir",
        type=writable_dir,
        default=None,
        help="keep the job's outputs here (default: a temporary directory)",
    )
    parser.add_argument(
        "--levers-file",
        type=existing_file,
        default=None,
        help="JSON of config block breakdown.levers: changes measured against the job",
    )
    parser.add_argument("--out", type=writable_file, required=True)
    parser.set_defaults(func=_cli_breakdown)


def _run_id(config: Mapping[str, Any], condition: str) -> RunId:
    experiment, _, name = condition.partition("/")
    block = config.get("experiments", {}).get(experiment)
    if block is None or name not in (block.get("conditions") or {}):
        raise UsageError(f"argument --condition: no condition {condition!r} in the config")
    return RunId(experiment, name, 1)


def read_lever_plan(path: Path) -> LeverPlan | None:
    """The levers file (rule measure_breakdown writes config block breakdown.levers there;
    ``{}`` when the config has none, then no levers); a file that is not such a block is a
    usage error."""
    try:
        block = json.loads(path.read_text())
        return LeverPlan.from_mapping(block) if block != {} else None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        problem = f"not a breakdown.levers block ({err})"
        raise UsageError(f"argument --levers-file: {path}: {problem}") from err


def _cli_breakdown(args: argparse.Namespace) -> int:
    if not args.bootstrap_servers and not (args.broker_state and args.broker_state.is_file()):
        raise UsageError(
            "arguments --bootstrap-servers/--broker-state: no Kafka cluster; give "
            "--bootstrap-servers, or --broker-state naming an existing state file"
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    config = config_from_args(args)
    run = _run_id(config, args.condition)
    settings = Settings.from_config(run_config_subset(config, run))
    bootstrap = resolve_bootstrap(args.bootstrap_servers, args.broker_state)
    levers = read_lever_plan(args.levers_file) if args.levers_file else None
    started = time.perf_counter()
    spark = condition_session(settings, run)
    with tempfile.TemporaryDirectory(prefix="breakdown-") as scratch:
        try:
            result = breakdown(
                spark,
                settings,
                run,
                bootstrap,
                args.levels,
                repeats=args.repeats,
                batches=args.batches,
                partitions=args.partitions,
                work_dir=args.work_dir or Path(scratch),
                levers=levers,
            )
        finally:
            spark.stop()
    result["wall_s"] = time.perf_counter() - started
    result["provenance"] = {"machine": provenance.machine(), "git": provenance.git_commit()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"levels": args.levels, "wall_s": round(result["wall_s"], 1)}))
    return 0
