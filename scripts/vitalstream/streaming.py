"""The Spark Structured Streaming job: Kafka readings → validated events → event-time windows,
clinical scores and alerts, with a dead-letter output for bad messages.

Two queries read the topic:

* ``windows`` (stateful, append mode): valid readings → per-patient event-time windows (tumbling
  or sliding) with count/mean/min/max/sd of each vital → NEWS2, qSOFA, SIRS and MEWS from the
  window values (vitalstream.scores) → threshold rules (evaluated by Spark) → the sink adds the
  sequential rules (sudden change between consecutive windows, EWMA anomaly) and suppression.
  Append mode because a window is final once the watermark passes its end: the output is
  written once and is comparable row for row with the batch reference.
* ``readings`` (stateless, per message): critical single-reading alerts (e.g. SpO2 < 85) that
  must not wait for a window, the dead letter (malformed JSON, missing fields, wrong types,
  out-of-range vitals, each with its reason) and, optionally, the raw events partitioned by date
  and hour. One query for all per-message outputs, so each message is parsed once here.

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
* Heartbeats (vitalstream.producer) pass the watermark but have no patient: their window group is
  dropped in the sink. Filtering them out earlier would not work, because Spark pushes such a
  filter below the watermark operator, and the watermark would never advance.

Not for: deciding when a run ends or computing metrics (vitalstream.experiment, .metrics).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from vitalstream.diagnostics import (
    DiagnosticsSpec,
    PatientState,
    alert_id,
    sequential_alerts,
    suppressed,
)
from vitalstream.producer import HEARTBEAT_KIND
from vitalstream.schema import CONSCIOUSNESS_LEVELS, VITAL_NAMES, charted_scale, valid_range
from vitalstream.search import Indexer, SearchSink

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery
    from pyspark.sql.types import StructType

IDENTITY_FIELDS = ("kind", "patient_id", "device_id", "consciousness")
REQUIRED_FIELDS = ("patient_id", "event_time_ms", "send_wall_ns")
WINDOW_STATS = ("n", "mean", "min", "max", "sd")
EVENT_OUTPUT_COLUMNS = (
    "patient_id",
    "device_id",
    "event_time",
    *VITAL_NAMES,
    "o2_supplemental",
    "consciousness",
    "send_wall_ns",
)
READING_COLUMNS = (
    *EVENT_OUTPUT_COLUMNS,
    "value",
    "reason",
    "partition",
    "offset",
    "kafka_time",
    "fired_rules",
)
ALERT_COLUMNS = (
    "alert_id",
    "patient_id",
    "kind",
    "rule",
    "severity",
    "column",
    "value",
    "threshold",
    "time",
    "window_start",
    "window_end",
    "last_event_time",
    "last_send_wall_ns",
    "suppressed",
)


@dataclass(frozen=True)
class JobSpec:
    """Everything one run of the job needs; built from a condition's parameters."""

    bootstrap_servers: str
    topic: str
    out_dir: Path
    window_s: float
    watermark_s: float
    diagnostics: DiagnosticsSpec = field(default_factory=DiagnosticsSpec)
    slide_s: float | None = None
    trigger_ms: int = 0
    max_offsets_per_trigger: int | None = None
    alerts_topic: str | None = None
    raw_events: bool = False
    # "append": a window is written once, when the watermark closes it (final values).
    # "update": every micro-batch writes the windows it changed (provisional values; the
    # sequential change and anomaly rules, which need final windows, are then skipped).
    output_mode: str = "append"
    # "microbatch": the two queries above. "realtime": Spark's real-time mode (4.1+), which
    # runs stateless queries only: just the critical-reading path, alerts to alerts_topic.
    trigger_mode: str = "microbatch"
    # Kafka consumer fetch wait (fetch.max.wait.ms); None = Kafka's default, 500 ms. Each
    # micro-batch task reads one partition up to the log end, where the broker holds the
    # fetch this long: about a quarter second per partition per batch on two cores.
    fetch_max_wait_ms: int | None = None
    # Further options of the Kafka source, verbatim (condition ``consumer.options``).
    source_options: dict[str, str] = field(default_factory=dict)
    # Prefix of the Spark query names: jobs sharing one session (vitalstream.siblings) need
    # names of their own.
    query_prefix: str = ""
    # False: the windows query alone. Jobs that share a replay and differ only in window
    # settings run the per-reading query once (vitalstream.siblings): its output does not
    # depend on them.
    readings_query: bool = True
    # Where the sinks also index alerts and windows (vitalstream.search); None = nowhere.
    search: SearchSink | None = None

    @classmethod
    def from_condition(
        cls,
        params: Mapping[str, Any],
        diagnostics: Mapping[str, Any],
        *,
        bootstrap_servers: str,
        topic: str,
        out_dir: Path,
        alerts_topic: str | None,
        raw_events: bool,
        search: SearchSink | None = None,
    ) -> JobSpec:
        """The job of one run: a condition's parameters (vitalstream.config.condition_params)
        plus where it reads and writes."""
        return cls(
            bootstrap_servers=bootstrap_servers,
            topic=topic,
            out_dir=out_dir,
            window_s=params["window_s"],
            slide_s=params["slide_s"],
            watermark_s=params["watermark_s"],
            trigger_ms=params["trigger_ms"],
            max_offsets_per_trigger=params["max_offsets_per_trigger"],
            diagnostics=DiagnosticsSpec.from_config(diagnostics),
            alerts_topic=alerts_topic,
            raw_events=raw_events,
            search=search,
            output_mode=params.get("output_mode", "append"),
            trigger_mode=params.get("trigger_mode", "microbatch"),
            fetch_max_wait_ms=(params.get("consumer") or {}).get("fetch_max_wait_ms"),
            source_options={
                str(k): str(v)
                for k, v in ((params.get("consumer") or {}).get("options") or {}).items()
            },
        )

    @property
    def window_ms(self) -> int:
        return int(self.window_s * 1000)

    def path(self, name: str) -> Path:
        """An output of the run: windows, alerts, deadletter, events, state, commits.jsonl."""
        return self.out_dir / name

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

    The second parse sits in the branch taken only for ``bad_type`` rows, so it costs nothing
    on good data.
    """
    from pyspark.sql import functions as F

    text = F.from_json(F.col("value"), message_schema("string"))
    typed = message_schema()
    check = None
    for fld in (f for f in typed.fields if f.name != CORRUPT_FIELD):
        wrong = text[fld.name].isNotNull() & F.col(fld.name).isNull()
        check = (
            F.when(wrong, F.lit(f"bad_type:{fld.name}"))
            if check is None
            else check.when(wrong, F.lit(f"bad_type:{fld.name}"))
        )
    refined = check.otherwise(F.col("reason")) if check is not None else F.col("reason")
    return bad.withColumn(
        "reason", F.when(F.col("reason") == "bad_type", refined).otherwise(F.col("reason"))
    )


def _consciousness_rank() -> Column:
    """ACVPU as 0..4, so the worst level of a window is a max."""
    from pyspark.sql import functions as F

    rank = F.lit(None).cast("int")
    for i, level in reversed(list(enumerate(CONSCIOUSNESS_LEVELS))):
        rank = F.when(F.col("consciousness") == level, F.lit(i)).otherwise(rank)
    return rank


def window_aggregates(events: DataFrame, spec: JobSpec) -> DataFrame:
    """Per-patient event-time windows: count, mean, min, max and sd of each vital, whether any
    reading was on oxygen, the worst consciousness level, and the send stamp of the last one."""
    from pyspark.sql import functions as F

    slide = f"{spec.slide_s:g} seconds" if spec.slide_s else None
    window = F.window("event_time", f"{spec.window_s:g} seconds", slide)
    aggregates = [F.count(F.lit(1)).alias("n")]
    for vital in VITAL_NAMES:
        # The mean as an exact integer sum of charted units over the count: one correctly
        # rounded division, so no summation order (Spark's, pandas') can move a mean such as
        # 39.05 °C across a score's band edge. Readings are rounded half up to the charted unit.
        scale = charted_scale(vital)
        charted = F.floor(F.col(vital) * F.lit(float(scale)) + F.lit(0.5)).cast("long")
        aggregates += [
            F.count(vital).alias(f"{vital}_n"),
            (F.sum(charted).cast("double") / (F.count(vital) * F.lit(float(scale)))).alias(
                f"{vital}_mean"
            ),
            F.min(vital).alias(f"{vital}_min"),
            F.max(vital).alias(f"{vital}_max"),
            F.stddev_samp(vital).alias(f"{vital}_sd"),
        ]
    worst = F.max(_consciousness_rank())
    aggregates += [
        F.max(F.col("o2_supplemental").cast("int")).alias("o2_any_int"),
        worst.alias("consciousness_rank"),
        F.max("send_wall_ns").alias("last_send_wall_ns"),
        F.max("event_time").alias("last_event_time"),
    ]
    levels = F.array(*[F.lit(level) for level in CONSCIOUSNESS_LEVELS])
    return (
        events.withWatermark("event_time", f"{spec.watermark_s:g} seconds")
        .groupBy(window, "patient_id")
        .agg(*aggregates)
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "*",
        )
        .withColumn("o2_any", F.col("o2_any_int") == 1)
        .withColumn("consciousness_worst", F.element_at(levels, F.col("consciousness_rank") + 1))
        .drop("window", "o2_any_int", "consciousness_rank")
    )


def with_scores(windows: DataFrame, spec: JobSpec) -> DataFrame:
    """Add the clinical scores (vitalstream.scores) computed by Spark from the window values,
    then the risk model's logit (vitalstream.riskmodel), which may read a score."""
    if spec.diagnostics.scores:
        from vitalstream.scores import score_columns, score_spec_from_config

        scores = score_columns(score_spec_from_config(spec.diagnostics.scores))
        windows = windows.select("*", *scores)
    if spec.diagnostics.risk_model is not None:
        windows = windows.select("*", spec.diagnostics.risk_model.logit_column())
    return windows


def with_fired_rules(frame: DataFrame, rules: Iterable[Any]) -> DataFrame:
    """Add ``fired_rules``: names of the threshold rules that hold for each row (Spark)."""
    from pyspark.sql import functions as F

    fired = [F.when(rule.holds(F.col(rule.column)), F.lit(rule.name)) for rule in rules]
    names = F.array(*fired) if fired else F.array().cast("array<string>")
    return frame.withColumn("fired_rules", F.filter(names, lambda name: name.isNotNull()))


def threshold_alerts(rows: pd.DataFrame, rules: Iterable[Any], kind: str) -> pd.DataFrame:
    """One alert row per (row, fired rule), reshaping Spark's ``fired_rules``.

    ``rows`` are windows (kind "window") or readings (kind "reading"); a reading's time is its
    event time, a window's its start.
    """
    parts = []
    for rule in rules:
        mask = rows["fired_rules"].map(lambda names, name=rule.name: name in list(names))
        fired = rows.loc[mask]
        if fired.empty:
            continue
        parts.append(
            _alert_frame(
                fired,
                kind,
                rule.name,
                rule.severity,
                rule.column,
                fired[rule.column].astype("float64"),
                float(rule.threshold),
            )
        )
    return _concat_alerts(parts)


def _alert_frame(
    rows: pd.DataFrame,
    kind: str,
    rule: str,
    severity: str,
    column: str,
    value: Any,
    threshold: float,
) -> pd.DataFrame:
    """Alert rows in ALERT_COLUMNS order (``suppressed`` decided later)."""
    if kind == "window":
        time_col, start, end = rows["window_start"], rows["window_start"], rows["window_end"]
        last_event = rows["last_event_time"]
        send = rows["last_send_wall_ns"]
    else:
        time_col = start = end = last_event = rows["event_time"]
        send = rows["send_wall_ns"]
    frame = pd.DataFrame(
        {
            "patient_id": rows["patient_id"].astype(str).to_numpy(),
            "kind": kind,
            "rule": rule,
            "severity": severity,
            "column": column,
            "value": pd.Series(value).to_numpy(dtype="float64"),
            "threshold": threshold,
            "time": pd.to_datetime(time_col, utc=True).to_numpy(),
            "window_start": pd.to_datetime(start, utc=True).to_numpy(),
            "window_end": pd.to_datetime(end, utc=True).to_numpy(),
            "last_event_time": pd.to_datetime(last_event, utc=True).to_numpy(),
            "last_send_wall_ns": pd.Series(send).to_numpy(dtype="int64"),
            "suppressed": False,
        }
    )
    for col in ("time", "window_start", "window_end", "last_event_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    time_ms = frame["time"].astype("datetime64[ms, UTC]").astype("int64")
    frame.insert(
        0,
        "alert_id",
        [alert_id(p, rule, int(t)) for p, t in zip(frame["patient_id"], time_ms, strict=True)],
    )
    return frame


def _concat_alerts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=_ALERT_DTYPES[c]) for c in ALERT_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(ALERT_COLUMNS)]


_ALERT_DTYPES = {
    "alert_id": "object",
    "patient_id": "object",
    "kind": "object",
    "rule": "object",
    "severity": "object",
    "column": "object",
    "value": "float64",
    "threshold": "float64",
    "time": "datetime64[ns, UTC]",
    "window_start": "datetime64[ns, UTC]",
    "window_end": "datetime64[ns, UTC]",
    "last_event_time": "datetime64[ns, UTC]",
    "last_send_wall_ns": "int64",
    "suppressed": "bool",
}


class SinkState:
    """Per-patient state of one sink, saved per batch so that a restart can rebuild it.

    Each batch writes the patients it touched to ``state/<query>/batch_id=<n>.json``. Before
    the first batch after a (re)start, the state is rebuilt from every saved batch before it;
    later saves of a re-run batch overwrite the earlier attempt's file.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.patients: dict[str, PatientState] = {}
        self._restored = False

    def patient(self, patient_id: str) -> PatientState:
        return self.patients.setdefault(patient_id, PatientState())

    def restore(self, before_batch: int) -> None:
        if self._restored:
            return
        self._restored = True
        files = sorted(
            self.directory.glob("batch_id=*.json"), key=lambda p: int(p.stem.split("=")[1])
        )
        for path in files:
            if int(path.stem.split("=")[1]) >= before_batch:
                break
            for pid, data in json.loads(path.read_text()).items():
                self.patients[pid] = PatientState.from_json(data)

    def save(self, batch_id: int, touched: Iterable[str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {
            pid: self.patients[pid].to_json()
            for pid in sorted(set(touched))
            if pid in self.patients
        }
        tmp = self.directory / f"batch_id={batch_id}.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.directory / f"batch_id={batch_id}.json")


def apply_sequential(windows: pd.DataFrame, spec: JobSpec, state: SinkState) -> pd.DataFrame:
    """Change and EWMA alerts of a batch of windows, in window order per patient."""
    rules = spec.diagnostics
    if not rules.sequential_rules or windows.empty:
        return _concat_alerts([])
    columns = sorted({r.column for r in rules.sequential_rules})
    ordered = windows.sort_values(["patient_id", "window_start"], kind="stable")
    ends = pd.to_datetime(ordered["window_end"], utc=True).astype("datetime64[ms, UTC]")
    ends_ms = ends.astype("int64").to_numpy()
    parts = []
    for i, (pid, end_ms) in enumerate(zip(ordered["patient_id"].astype(str), ends_ms, strict=True)):
        values = {
            c: float(ordered[c].iat[i]) if pd.notna(ordered[c].iat[i]) else float("nan")
            for c in columns
        }
        fired = sequential_alerts(state.patient(pid), int(end_ms), spec.window_ms, values, rules)
        for rule, severity, value, threshold in fired:
            column = next(r.column for r in rules.sequential_rules if r.name == rule)
            parts.append(
                _alert_frame(
                    ordered.iloc[[i]], "window", rule, severity, column, [value], threshold
                )
            )
    return _concat_alerts(parts)


def apply_suppression(alerts: pd.DataFrame, spec: JobSpec, state: SinkState) -> pd.DataFrame:
    """Mark repeats of one rule for one patient within ``suppression_s`` as suppressed."""
    if alerts.empty or spec.diagnostics.suppression_s <= 0:
        return alerts
    alerts = alerts.sort_values(["patient_id", "time", "rule"], kind="stable")
    time_ms = alerts["time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    flags = [
        suppressed(state.patient(pid), rule, int(t), spec.diagnostics.suppression_s)
        for pid, rule, t in zip(alerts["patient_id"], alerts["rule"], time_ms, strict=True)
    ]
    return alerts.assign(suppressed=flags).reset_index(drop=True)


def _write_parquet(frame: pd.DataFrame | pa.Table, directory: Path) -> None:
    """Write one batch's rows as ``directory/part-0.parquet``, replacing an earlier attempt."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "part-0.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(directory / "part-0.parquet")


class Sinks:
    """The two foreachBatch sinks of a run, their state, commit log and alert producer."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.window_state = SinkState(spec.path("state") / "windows")
        self.reading_state = SinkState(spec.path("state") / "readings")
        self._commit_lock = threading.Lock()
        self._producer: Any = None
        # Indexing runs beside the stream, after the Parquet commit: a slow index delays
        # the documents' visibility, not the next micro-batch.
        self._indexer = Indexer(spec.search, spec.out_dir) if spec.search else None

    def commit(self, query: str, batch_id: int, **counts: int) -> None:
        record = {"query": query, "batch_id": batch_id, "commit_wall_ns": time.time_ns(), **counts}
        with self._commit_lock, self.spec.path("commits.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def publish(self, alerts: pd.DataFrame) -> None:
        """Emitted (not suppressed) alerts to the alerts topic, for downstream consumers."""
        if not self.spec.alerts_topic or alerts.empty:
            return
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer(
                {
                    "bootstrap.servers": self.spec.bootstrap_servers,
                    "linger.ms": 5,
                    "enable.idempotence": True,
                }
            )
        for row in alerts.loc[~alerts["suppressed"]].itertuples(index=False):
            payload = {
                "alert_id": row.alert_id,
                "patient_id": row.patient_id,
                "kind": row.kind,
                "rule": row.rule,
                "severity": row.severity,
                "value": row.value,
                "time": row.time.isoformat(),
            }
            self._producer.produce(
                self.spec.alerts_topic, json.dumps(payload).encode(), key=row.patient_id.encode()
            )
        self._producer.flush(30)

    def close(self) -> None:
        """Flush and drop the alert producer (before the broker may go away) and index what
        is still queued."""
        if self._producer is not None:
            self._producer.flush(30)
            self._producer = None
        if self._indexer is not None:
            self._indexer.close()
            self._indexer = None

    def index(self, query: str, batch_id: int, alerts: pd.DataFrame, windows: pd.DataFrame) -> None:
        if self._indexer is not None:
            self._indexer.submit(query, batch_id, alerts, windows)

    def write_windows(self, batch: DataFrame, batch_id: int) -> None:
        """foreachBatch of the windows query: windows, their alerts, then the commit stamp."""
        from pyspark.sql import functions as F

        self.window_state.restore(batch_id)
        closed = batch.filter(F.col("patient_id").isNotNull())
        table = with_fired_rules(closed, self.spec.diagnostics.window_rules).toArrow()
        alerts = _concat_alerts([])
        if table.num_rows:
            _write_parquet(
                table.drop_columns(["fired_rules"]),
                self.spec.path("windows") / f"batch_id={batch_id}",
            )
            frame = table.to_pandas()
            parts = [threshold_alerts(frame, self.spec.diagnostics.window_rules, "window")]
            if self.spec.output_mode == "append":
                parts.append(apply_sequential(frame, self.spec, self.window_state))
            alerts = pd.concat(parts, ignore_index=True)
            alerts = apply_suppression(alerts, self.spec, self.window_state)
            if len(alerts):
                _write_parquet(
                    alerts, self.spec.path("alerts") / "query=windows" / f"batch_id={batch_id}"
                )
            touched = frame["patient_id"].astype(str).unique()
            self.window_state.save(batch_id, touched)
        self.commit("windows", batch_id, windows=table.num_rows, alerts=len(alerts))
        self.publish(alerts)
        self.index("windows", batch_id, alerts, frame if table.num_rows else pd.DataFrame())

    def write_readings(self, batch: DataFrame, batch_id: int) -> None:
        """foreachBatch of the readings query: critical alerts first (they are timed), then
        the dead letter and the raw events.

        One Spark job per batch: Spark evaluates the reading rules and names the wrong field of
        bad messages, and the rows any output needs come to the driver once, through Arrow
        (all valid readings when raw events are written, else only bad and alerting ones).
        """
        from pyspark.sql import functions as F

        self.reading_state.restore(batch_id)
        rules = self.spec.diagnostics.reading_rules
        heartbeat = F.coalesce(F.col("kind") == HEARTBEAT_KIND, F.lit(False))
        rows = with_fired_rules(detailed_reason(batch.filter(~heartbeat)), rules)
        if not self.spec.raw_events:
            rows = rows.filter(F.col("reason").isNotNull() | (F.size("fired_rules") > 0))
        table = rows.select(*READING_COLUMNS).toArrow()
        reasons = table.column("reason")
        bad = table.filter(reasons.is_valid())
        good = table.filter(reasons.is_null())
        alerts = _concat_alerts([])
        if rules and good.num_rows:
            lengths = pa.compute.list_value_length(good.column("fired_rules"))
            fired = good.filter(pa.compute.greater(lengths, 0))
            if fired.num_rows:
                frame = fired.to_pandas()
                alerts = threshold_alerts(frame, rules, "reading")
                alerts = apply_suppression(alerts, self.spec, self.reading_state)
                path = self.spec.path("alerts") / "query=readings" / f"batch_id={batch_id}"
                _write_parquet(alerts, path)
                self.reading_state.save(batch_id, alerts["patient_id"].unique())
        self.commit("readings", batch_id, alerts=len(alerts))
        self.publish(alerts)
        self.index("readings", batch_id, alerts, pd.DataFrame())
        if bad.num_rows:
            deadletter = bad.select(["value", "reason", "partition", "offset", "kafka_time"])
            _write_parquet(deadletter, self.spec.path("deadletter") / f"batch_id={batch_id}")
        if self.spec.raw_events and good.num_rows:
            self._write_events(good, batch_id)

    def _write_events(self, good: pa.Table, batch_id: int) -> None:
        """Raw valid readings, partitioned by event date and hour (Hive layout)."""
        times = good.column("event_time")
        # Where each reading came from (partition, offset, broker timestamp): lets a fault
        # experiment check that every offset was consumed exactly once (vitalstream.faults).
        table = (
            good.select([*EVENT_OUTPUT_COLUMNS, "partition", "offset", "kafka_time"])
            .append_column("date", pa.compute.strftime(times, format="%Y-%m-%d"))
            .append_column("hour", pa.compute.hour(times).cast(pa.int32()))
        )
        partitioning = ds.partitioning(
            pa.schema([("date", pa.string()), ("hour", pa.int32())]), flavor="hive"
        )
        ds.write_dataset(
            table,
            self.spec.path("events"),
            format="parquet",
            partitioning=partitioning,
            basename_template=f"batch_id={batch_id}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
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


@dataclass
class Job:
    """The running queries of one job (by name) and their sinks."""

    queries: dict[str, StreamingQuery]
    sinks: Sinks

    def stop(self) -> None:
        for query in self.queries.values():
            query.stop()
        self.sinks.close()


def start_job(spark: SparkSession, spec: JobSpec) -> Job:
    """Start the windows query and the per-reading query."""
    from pyspark.sql import functions as F

    spec.out_dir.mkdir(parents=True, exist_ok=True)
    sinks = Sinks(spec)
    messages = parse_messages(read_topic(spark, spec))
    trigger = {"processingTime": f"{spec.trigger_ms} milliseconds"}
    usable = messages.filter(F.col("reason").isNull())
    windows = (
        with_scores(window_aggregates(usable, spec), spec)
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


def start_realtime_job(spark: SparkSession, spec: JobSpec) -> Job:
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
    messages = parse_messages(read_topic(spark, spec))
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
    return Job({"readings": readings}, Sinks(spec))
