"""The Spark Structured Streaming job: Kafka readings → validated events → event-time windows,
clinical scores and alerts, with a dead-letter output for bad messages.

Two queries read the topic:

* ``windows`` (stateful, append mode): valid readings → per-patient event-time windows (tumbling
  or sliding) with count/mean/min/max/sd of each vital → NEWS2, qSOFA, SIRS and MEWS from the
  window values (vitalstream.core.scores) → threshold rules (evaluated by Spark) → the sink adds the
  sequential rules (sudden change between consecutive windows, EWMA anomaly) and suppression.
  Append mode because a window is final once the watermark passes its end: the output is
  written once and is comparable row for row with the batch reference.
* ``readings`` (stateless, per message): critical single-reading alerts (e.g. SpO2 < 85) that
  must not wait for a window, the dead letter (malformed JSON, missing fields, wrong types,
  NaN/Infinity and out-of-range vitals, event times outside the band config ``checks`` allows,
  forged heartbeats, invalid consciousness, empty or over-long ids, each with its reason:
  vitalstream.stream.parse) and, optionally, the raw events partitioned by date and hour. One
  query for all per-message outputs, so each message is parsed once here.

Every message ends in exactly one place: a window (once: the windows query drops a repeated
reading within the watermark and counts it), the dead letter with its reason, or dropped behind
the watermark and counted (vitalstream.measure.metrics: ``dropped_duplicates``,
``dropped_by_watermark``).

Why the sinks look the way they do:

* Event time, not processing time: windows are keyed by the reading's own timestamp, and a
  watermark bounds how long a window waits for late readings.
* Each ``foreachBatch`` sink writes a batch's rows into ``.../batch_id=<n>/`` with a fixed file
  name, replacing an earlier attempt of the same batch, so a batch replayed after a restart
  replaces its own output instead of duplicating it. It collects a batch once through Arrow and
  writes with pyarrow: a Spark Parquet write per output costs several jobs and a Hadoop commit.
* After writing, a sink appends the batch's commit time to ``commits.jsonl``. That time minus
  the send stamp of the (window's last) reading is the alert latency (Karimov et al. 2018).
* Per-patient state of the sequential rules lives in the sink and is saved per batch
  (``state/<query>/batch_id=<n>.json``, only the patients the batch touched), so a restarted job
  rebuilds it from the batches before the first one it re-runs.
* Heartbeats (ingest.producer) pass the watermark but have no patient: their window group is
  dropped in the sink. Filtering them out earlier would not work, because Spark pushes such a
  filter below the watermark operator, and the watermark would never advance.

Not for: deciding when a run ends or computing metrics (vitalstream.experiments.run, .metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

from vitalstream.stream.parse import (
    parse_messages,
)
from vitalstream.stream.spec import (
    JobSpec,
)
from vitalstream.stream.windows import (
    window_aggregates,
    with_fired_rules,
    with_scores,
)


def read_topic(spark: SparkSession, spec: JobSpec) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", spec.bootstrap_servers)
        .option("subscribe", spec.topic)
        .option("startingOffsets", "earliest")
    )
    if spec.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", spec.max_offsets_per_trigger)
    if spec.fetch_max_wait_ms is not None:
        reader = reader.option("kafka.fetch.max.wait.ms", str(spec.fetch_max_wait_ms))
    for key, value in spec.source_options.items():
        reader = reader.option(key, value)
    return reader.load()


class BatchSinks(Protocol):
    """Where the job's micro-batches go (vitalstream.sinks.batch.Sinks). The stream does not
    import its sinks: whoever starts a job (an experiment, the live monitor, a test) passes
    them, so the sinks stage sits after the stream and can be replaced."""

    def write_windows(self, batch: DataFrame, batch_id: int) -> None: ...

    def write_readings(self, batch: DataFrame, batch_id: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class Job:
    """The running queries of one job (by name) and their sinks."""

    queries: dict[str, StreamingQuery]
    sinks: BatchSinks

    def stop(self) -> None:
        for query in self.queries.values():
            query.stop()
        self.sinks.close()


def windows_plan(messages: DataFrame, spec: JobSpec) -> dict[str, DataFrame]:
    """The windows query's plan from parsed messages, named after each Spark stage: the valid
    readings (``validate``), their windows (``aggregate``) and the windows with scores
    (``score``, what the query writes). One definition, so that what the breakdown
    (vitalstream.experiments.breakdown) times is the plan the job runs."""
    from pyspark.sql import functions as F

    usable = messages.filter(F.col("reason").isNull())
    windows = window_aggregates(usable, spec)
    return {"validate": usable, "aggregate": windows, "score": with_scores(windows, spec)}


def start_job(spark: SparkSession, spec: JobSpec, sinks: BatchSinks) -> Job:
    """Start the windows query and the per-reading query, each ending in ``sinks``."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    messages = parse_messages(read_topic(spark, spec), spec.checks, spec.devices)
    trigger = {"processingTime": f"{spec.trigger_ms} milliseconds"}
    windows = (
        windows_plan(messages, spec)["score"]
        .writeStream.queryName(f"{spec.query_prefix}windows")
        .outputMode(spec.output_mode)
        .option("checkpointLocation", spec.checkpoint("windows"))
        .foreachBatch(sinks.write_windows)
        .trigger(**trigger)
        .start()
    )
    if not spec.readings_query:
        return Job({"windows": windows}, sinks)
    readings = (
        messages.writeStream.queryName(f"{spec.query_prefix}readings")
        .option("checkpointLocation", spec.checkpoint("readings"))
        .foreachBatch(sinks.write_readings)
        .trigger(**trigger)
        .start()
    )
    return Job({"windows": windows, "readings": readings}, sinks)


def start_realtime_job(spark: SparkSession, spec: JobSpec, sinks: BatchSinks) -> Job:
    """The critical-reading path alone in Spark's real-time mode: Kafka in, the reading rules
    as Spark expressions, one JSON alert per (reading, fired rules) to ``spec.alerts_topic``.

    Real-time mode (Spark 4.1+) processes records as they arrive instead of in micro-batches,
    but only for stateless queries and Kafka or foreach sinks (not foreachBatch): no windows,
    scores, suppression or dead letter here, so it is a latency condition of RQ5, not a
    replacement for the job. The trigger interval is only a checkpoint interval in this mode.
    """
    from pyspark.sql import functions as F

    if not spec.alerts_topic:
        raise ValueError("real-time mode writes alerts to Kafka: spec.alerts_topic is required")
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    messages = parse_messages(read_topic(spark, spec), spec.checks, spec.devices)
    good = messages.filter(F.col("reason").isNull() & (F.col("kind") == "vital"))
    fired = with_fired_rules(good, spec.diagnostics.reading_rules).filter(F.size("fired_rules") > 0)
    alerts = fired.select(
        F.col("patient_id").alias("key"),
        F.to_json(F.struct("patient_id", "event_time_ms", "send_wall_ns", "fired_rules")).alias(
            "value"
        ),
    )
    interval = f"{spec.trigger_ms} milliseconds"  # Spark refuses less than 5 s
    readings = (
        alerts.writeStream.queryName("readings")
        .format("kafka")
        .option("kafka.bootstrap.servers", spec.bootstrap_servers)
        .option("topic", spec.alerts_topic)
        .option("checkpointLocation", spec.checkpoint("readings"))
        .outputMode("update")
        .trigger(realTime=interval)
        .start()
    )
    return Job({"readings": readings}, sinks)
