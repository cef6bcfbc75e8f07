"""The Spark Structured Streaming job: Kafka readings → validated events → event-time windows
→ threshold alerts, with a dead-letter output for bad messages.

Design choices, and why:

* Event time, not processing time: windows are keyed by the reading's own timestamp, and a
  watermark bounds how long a window waits for late readings. Processing-time windows would
  change their contents with every network hiccup and every replay speed.
* Append mode for windows: a window is written once, when the watermark has passed its end, so
  the Parquet output is final and comparable row for row with the batch reference.
* One ``foreachBatch`` sink writes the windows and the alerts derived from them, each batch into
  its own ``batch_id=<n>`` directory, replacing what is there, so a batch replayed after a
  restart replaces its own output instead of duplicating it. Spark evaluates the rules
  (``fired_rules``); the sink only reshapes fired rules into alert rows. After both writes it
  appends the batch's commit time to ``commits.jsonl``: that time, minus the send stamp of the
  window's last reading, is the alert latency (Karimov et al. 2018: a window's latency counts
  from its last event).
* Bad messages (malformed JSON, missing fields, wrong types, out-of-range vitals) are not
  dropped: a second query writes them with a reason to ``deadletter/`` and the job keeps going.
* Heartbeats (see vitalstream.producer) pass the watermark but have no patient: their window
  group is dropped in the sink. Filtering them out earlier would not work, because Spark pushes
  such a filter below the watermark operator, and the watermark would never advance.

Not for: deciding when a run ends or computing metrics (vitalstream.experiment, .metrics).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vitalstream.diagnostics import WindowRule, alert_id
from vitalstream.producer import HEARTBEAT_KIND
from vitalstream.schema import VITAL_NAMES, valid_range

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery
    from pyspark.sql.types import StructType

IDENTITY_FIELDS = ("kind", "patient_id", "device_id", "consciousness")
REQUIRED_FIELDS = ("patient_id", "event_time_ms", "send_wall_ns")
ALERT_COLUMNS = (
    "alert_id",
    "patient_id",
    "rule",
    "severity",
    "vital",
    "value",
    "threshold",
    "window_start",
    "window_end",
    "last_event_time",
    "last_send_wall_ns",
)


@dataclass(frozen=True)
class JobSpec:
    """Everything one run of the job needs; built from a condition's parameters."""

    bootstrap_servers: str
    topic: str
    out_dir: Path
    window_s: float
    watermark_s: float
    rules: tuple[WindowRule, ...]
    slide_s: float | None = None
    trigger_ms: int = 0
    max_offsets_per_trigger: int | None = None

    @property
    def windows_dir(self) -> Path:
        return self.out_dir / "windows"

    @property
    def alerts_dir(self) -> Path:
        return self.out_dir / "alerts"

    @property
    def deadletter_dir(self) -> Path:
        return self.out_dir / "deadletter"

    @property
    def commits_file(self) -> Path:
        return self.out_dir / "commits.jsonl"

    def checkpoint(self, query: str) -> str:
        return str(self.out_dir / "checkpoints" / query)


CORRUPT_FIELD = "_corrupt_record"


def message_schema(value_type: str = "typed") -> StructType:
    """The JSON message schema; ``value_type="string"`` reads every field as text.

    The typed schema carries a corrupt-record field: Spark fills it with the message text when
    the message is not JSON or a field has the wrong type, and still parses the other fields.
    The all-text reading, applied only to such messages, names the field that was wrong.
    """
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    def typed(name: str, kind: object) -> StructField:
        return StructField(name, StringType() if value_type == "string" else kind)

    fields = [typed(n, StringType()) for n in IDENTITY_FIELDS]
    fields += [typed("event_time_ms", LongType()), typed("send_wall_ns", LongType())]
    fields += [typed(v, DoubleType()) for v in VITAL_NAMES]
    fields.append(typed("o2_supplemental", BooleanType()))
    if value_type != "string":
        fields.append(StructField(CORRUPT_FIELD, StringType()))
    return StructType(fields)


def _quarantine_reason() -> Column:
    """Why a parsed message cannot be used (null when it can). First matching reason wins.

    References only the parsed struct ``m``, so it costs no further JSON parsing.
    """
    from pyspark.sql import functions as F

    m = F.col("m")
    field_names = [f.name for f in message_schema().fields if f.name != CORRUPT_FIELD]
    all_null = functools.reduce(lambda a, b: a & b, [m[n].isNull() for n in field_names])
    reason = F.when(m.isNull() | all_null, F.lit("malformed_json"))
    reason = reason.when(m[CORRUPT_FIELD].isNotNull(), F.lit("bad_type"))
    reason = reason.when(
        m["kind"].isNotNull() & ~m["kind"].isin("vital", HEARTBEAT_KIND), F.lit("unknown_kind")
    )
    heartbeat = m["kind"] == HEARTBEAT_KIND
    reason = reason.when(heartbeat & m["event_time_ms"].isNull(), F.lit("missing:event_time_ms"))
    reason = reason.when(heartbeat, F.lit(None))
    for name in REQUIRED_FIELDS:
        reason = reason.when(m[name].isNull(), F.lit(f"missing:{name}"))
    no_vitals = functools.reduce(lambda a, b: a & b, [m[v].isNull() for v in VITAL_NAMES])
    reason = reason.when(no_vitals, F.lit("missing:all_vitals"))
    for vital in VITAL_NAMES:
        low, high = valid_range(vital)
        reason = reason.when((m[vital] < low) | (m[vital] > high), F.lit(f"out_of_range:{vital}"))
    return reason


def parse_messages(raw: DataFrame) -> DataFrame:
    """Kafka records → one row per message with the parsed fields and a quarantine ``reason``.

    The parse sits inside a generator (``inline``) on purpose: Spark would otherwise inline
    ``from_json`` into every expression that reads a field, and the conditional quarantine
    checks would parse each message a dozen times (measured: 8x slower).
    """
    from pyspark.sql import functions as F

    value = F.col("value").cast("string")
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_FIELD}
    parsed = F.struct(F.from_json(value, message_schema(), options).alias("m"))
    return (
        raw.select(
            value.alias("value"),
            "partition",
            "offset",
            F.col("timestamp").alias("kafka_time"),
            F.inline(F.array(parsed)),
        )
        .select(
            "value",
            "partition",
            "offset",
            "kafka_time",
            _quarantine_reason().alias("reason"),
            "m.*",
        )
        .drop(CORRUPT_FIELD)
        .withColumn("event_time", F.timestamp_millis("event_time_ms"))
    )


def detailed_reason(bad: DataFrame) -> DataFrame:
    """Name the offending field of ``bad_type`` messages (parsing them again, as text).

    Applied to quarantined messages only, so the second parse costs nothing on good data.
    """
    from pyspark.sql import functions as F

    text = F.from_json(F.col("value"), message_schema("string"))
    typed = message_schema()
    check = None
    for field in (f for f in typed.fields if f.name != CORRUPT_FIELD):
        wrong = text[field.name].isNotNull() & F.col(field.name).isNull()
        check = (
            F.when(wrong, F.lit(f"bad_type:{field.name}"))
            if check is None
            else check.when(wrong, F.lit(f"bad_type:{field.name}"))
        )
    refined = check.otherwise(F.col("reason")) if check is not None else F.col("reason")
    return bad.withColumn(
        "reason", F.when(F.col("reason") == "bad_type", refined).otherwise(F.col("reason"))
    )


def window_aggregates(events: DataFrame, spec: JobSpec) -> DataFrame:
    """Per-patient event-time windows: count, mean, min, max and sd of each vital."""
    from pyspark.sql import functions as F

    slide = f"{spec.slide_s:g} seconds" if spec.slide_s else None
    window = F.window("event_time", f"{spec.window_s:g} seconds", slide)
    aggregates = [F.count(F.lit(1)).alias("n")]
    for vital in VITAL_NAMES:
        aggregates += [
            F.count(vital).alias(f"{vital}_n"),
            F.avg(vital).alias(f"{vital}_mean"),
            F.min(vital).alias(f"{vital}_min"),
            F.max(vital).alias(f"{vital}_max"),
            F.stddev_samp(vital).alias(f"{vital}_sd"),
        ]
    aggregates += [
        F.max("send_wall_ns").alias("last_send_wall_ns"),
        F.max("event_time").alias("last_event_time"),
    ]
    return (
        events.withWatermark("event_time", f"{spec.watermark_s:g} seconds")
        .groupBy(window, "patient_id")
        .agg(*aggregates)
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "*",
        )
        .drop("window")
    )


def with_fired_rules(windows: DataFrame, rules: tuple[WindowRule, ...]) -> DataFrame:
    """Add ``fired_rules``: the names of the rules that hold for each window, evaluated by Spark."""
    from pyspark.sql import functions as F

    fired = [F.when(rule.holds(F.col(rule.mean_column)), F.lit(rule.name)) for rule in rules]
    names = F.array(*fired) if fired else F.array().cast("array<string>")
    return windows.withColumn("fired_rules", F.filter(names, lambda name: name.isNotNull()))


def alerts_from_windows(windows: pd.DataFrame, rules: tuple[WindowRule, ...]) -> pd.DataFrame:
    """One alert row per (window, fired rule), with the deterministic id of diagnostics.alert_id.

    The rules were evaluated by Spark (``fired_rules``); this only reshapes the collected batch.
    """
    parts = []
    for rule in rules:
        mask = windows["fired_rules"].map(lambda names, name=rule.name: name in list(names))
        fired = windows.loc[
            mask,
            [
                "patient_id",
                "window_start",
                "window_end",
                "last_event_time",
                "last_send_wall_ns",
                rule.mean_column,
            ],
        ]
        fired = fired.rename(columns={rule.mean_column: "value"})
        fired = fired.assign(
            rule=rule.name,
            severity=rule.severity,
            vital=rule.vital,
            threshold=float(rule.threshold),
        )
        parts.append(fired)
    alerts = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if alerts.empty:
        return pd.DataFrame(columns=list(ALERT_COLUMNS))
    start_ms = alerts["window_start"].astype("datetime64[ms, UTC]").astype("int64")
    alerts["alert_id"] = [
        alert_id(p, r, int(t))
        for p, r, t in zip(alerts["patient_id"], alerts["rule"], start_ms, strict=True)
    ]
    return alerts[list(ALERT_COLUMNS)]


def _write_parquet(frame: pd.DataFrame | pa.Table, directory: Path) -> None:
    """Write one batch's rows as ``directory/part-0.parquet``, replacing an earlier attempt."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "part-0.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(directory / "part-0.parquet")


def _write_batch(spec: JobSpec, batch: DataFrame, batch_id: int) -> None:
    """foreachBatch sink: final windows and their alerts, then the commit stamp.

    The batch is collected once through Arrow and written with pyarrow: a Spark Parquet write
    per output costs several jobs and a Hadoop commit each, which dominated small batches.
    """
    from pyspark.sql import functions as F

    closed = with_fired_rules(batch.filter(F.col("patient_id").isNotNull()), spec.rules)
    table = closed.toArrow()
    n_alerts = 0
    if table.num_rows:
        _write_parquet(
            table.drop_columns(["fired_rules"]), spec.windows_dir / f"batch_id={batch_id}"
        )
        alerts = alerts_from_windows(table.to_pandas(), spec.rules)
        n_alerts = len(alerts)
        if n_alerts:
            _write_parquet(alerts, spec.alerts_dir / f"batch_id={batch_id}")
    record = {
        "batch_id": batch_id,
        "commit_wall_ns": time.time_ns(),
        "windows": table.num_rows,
        "alerts": n_alerts,
    }
    with spec.commits_file.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def read_topic(spark: SparkSession, spec: JobSpec) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", spec.bootstrap_servers)
        .option("subscribe", spec.topic)
        .option("startingOffsets", "earliest")
    )
    if spec.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", spec.max_offsets_per_trigger)
    return reader.load()


def start_job(spark: SparkSession, spec: JobSpec) -> dict[str, StreamingQuery]:
    """Start the window/alert query and the dead-letter query; return them by name."""
    from pyspark.sql import functions as F

    spec.out_dir.mkdir(parents=True, exist_ok=True)
    messages = parse_messages(read_topic(spark, spec))
    trigger = {"processingTime": f"{spec.trigger_ms} milliseconds"}
    usable = messages.filter(F.col("reason").isNull())
    windows = (
        window_aggregates(usable, spec)
        .writeStream.queryName("windows")
        .outputMode("append")
        .option("checkpointLocation", spec.checkpoint("windows"))
        .foreachBatch(functools.partial(_write_batch, spec))
        .trigger(**trigger)
        .start()
    )
    deadletter = (
        detailed_reason(messages.filter(F.col("reason").isNotNull()))
        .select("value", "reason", "partition", "offset", "kafka_time")
        .writeStream.queryName("deadletter")
        .format("parquet")
        .outputMode("append")
        .option("path", str(spec.deadletter_dir))
        .option("checkpointLocation", spec.checkpoint("deadletter"))
        .trigger(**trigger)
        .start()
    )
    return {"windows": windows, "deadletter": deadletter}
