"""The foreachBatch sinks of the streaming job: Parquet per micro-batch, the alerts topic, the
search index and, last, the commit log.

A batch is complete only when every sink has its alerts: Parquet, then the alerts topic (every
message confirmed by the broker, vitalstream.sinks.topic), then the search index (documents
searchable, vitalstream.sinks.indexer), and only then its record in ``commits.jsonl``. A sink
that cannot take the batch raises, so the foreachBatch call fails and Spark does not commit
the batch; restarted from its checkpoint, the job runs it again. Each output of a batch replaces
(Parquet, state) or repeats harmlessly (topic: consumers dedupe by alert id; index: ids are
deterministic and written with ``create``) an earlier attempt, so a replayed batch is harmless.

The commit record's ``commit_wall_ns`` is still the moment the batch's alerts were in Parquet
(the alert-latency stamp of vitalstream.measure.metrics); ``complete_wall_ns`` is when the
record was written, after every sink. Its ``stage_ms`` says where the sink's part of the batch
went (:class:`StageTimer`): ``collect`` (Spark runs the batch's plan and Arrow brings its rows to
the driver), ``rules`` (threshold, sequential rules and suppression in pandas, the rule state
read), ``write`` (Parquet), ``publish`` (alerts topic), ``index`` (search index) and ``commit``
(the per-batch rule state saved for a restart, and this record up to its serialisation; the
append of the line itself is not in it). vitalstream.experiments.breakdown reads them.

Not for: the queries that feed them (vitalstream.stream).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from vitalstream.ingest.producer import HEARTBEAT_KIND

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

from vitalstream.sinks.dedup import SeenAlerts
from vitalstream.sinks.indexer import RETRY_S, Indexer
from vitalstream.sinks.topic import DELIVERY_TIMEOUT_S, AlertTopic
from vitalstream.stream.alerts import (
    SinkState,
    apply_sequential,
    apply_suppression,
    concat_alerts,
    threshold_alerts,
)
from vitalstream.stream.parse import (
    detailed_reason,
)
from vitalstream.stream.spec import (
    EVENT_OUTPUT_COLUMNS,
    READING_COLUMNS,
    JobSpec,
)
from vitalstream.stream.windows import (
    with_fired_rules,
)

# The phases of a batch in the sink, in commits.jsonl's ``stage_ms`` (module docstring).
SINK_STAGES = ("collect", "rules", "write", "publish", "index", "commit")


class StageTimer:
    """Wall time per phase of one batch in the sink, from ``time.perf_counter_ns``.

    ``lap(stage)`` charges the time since the previous lap (or the start) to ``stage``, so
    phases that alternate (Parquet, then rules, then Parquet again) add up, and every
    nanosecond between the start and the last lap is charged to exactly one phase.
    """

    def __init__(self) -> None:
        self.ns = dict.fromkeys(SINK_STAGES, 0)
        self._mark = time.perf_counter_ns()

    def lap(self, stage: str) -> None:
        now = time.perf_counter_ns()
        self.ns[stage] += now - self._mark
        self._mark = now

    def ms(self) -> dict[str, float]:
        """Milliseconds per phase (µs resolution), the record's ``stage_ms``."""
        return {stage: round(ns / 1e6, 3) for stage, ns in self.ns.items()}


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
    """The two foreachBatch sinks of a run, their state, alert topic, index and commit log.

    ``delivery_timeout_s``: how long an alert may take to reach the alerts topic;
    ``index_retry_s``: how long a batch retries the search server; either exceeded fails the
    batch (see the module docstring).
    """

    def __init__(
        self,
        spec: JobSpec,
        *,
        delivery_timeout_s: float = DELIVERY_TIMEOUT_S,
        index_retry_s: float = RETRY_S,
    ) -> None:
        self.spec = spec
        self.window_state = SinkState(spec.path("state") / "windows")
        self.reading_state = SinkState(spec.path("state") / "readings")
        # A duplicated reading's alert is written once (vitalstream.sinks.dedup).
        self.reading_alerts = SeenAlerts(
            spec.path("state") / "reading_alerts", int(spec.watermark_s * 1000)
        )
        self._commit_lock = threading.Lock()
        self._topic = (
            AlertTopic(spec.bootstrap_servers, spec.alerts_topic, delivery_timeout_s)
            if spec.alerts_topic
            else None
        )
        self._indexer = (
            Indexer(spec.search, spec.out_dir, retry_s=index_retry_s) if spec.search else None
        )

    def commit(
        self,
        query: str,
        batch_id: int,
        written_ns: int,
        timer: StageTimer | None = None,
        **counts: int,
    ) -> None:
        """The batch's record, once every sink has its alerts; ``commit_wall_ns`` is when its
        alerts were in Parquet (``written_ns``), the stamp alert latency is measured to;
        ``stage_ms`` the ``timer``'s phases (none without one)."""
        record: dict[str, object] = {
            "query": query,
            "batch_id": batch_id,
            "commit_wall_ns": written_ns,
            "complete_wall_ns": time.time_ns(),
            **counts,
        }
        if timer is not None:
            timer.lap("commit")
            record["stage_ms"] = timer.ms()
        with self._commit_lock, self.spec.path("commits.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def publish(self, alerts: pd.DataFrame) -> int:
        """Emitted (not suppressed) alerts to the alerts topic, each confirmed by the broker;
        raises (failing the batch) otherwise. Returns how many were published."""
        if self._topic is None:
            return 0
        return self._topic.publish(alerts)

    def index(self, query: str, batch_id: int, alerts: pd.DataFrame, windows: pd.DataFrame) -> None:
        """The batch's alerts (searchable on return) and windows into the search index;
        raises (failing the batch) when the server stays away."""
        if self._indexer is not None:
            self._indexer.index_batch(query, batch_id, alerts, windows)

    def deliver(self, query: str, batch_id: int, alerts: pd.DataFrame, windows: pd.DataFrame,
                written_ns: int, counts: dict[str, int],
                timer: StageTimer | None = None) -> None:  # fmt: skip
        """After the batch's Parquet files: the topic, the index, then the commit record
        (with ``counts`` and the ``timer``'s phases)."""
        timer = timer or StageTimer()
        published = self.publish(alerts)
        timer.lap("publish")
        self.index(query, batch_id, alerts, windows)
        timer.lap("index")
        self.commit(query, batch_id, written_ns, timer, published=published, **counts)

    def close(self) -> None:
        """Drop the alert producer (before the broker may go away) and the indexer."""
        if self._topic is not None:
            self._topic.close()
            self._topic = None
        if self._indexer is not None:
            self._indexer.close()
            self._indexer = None

    def write_windows(self, batch: DataFrame, batch_id: int) -> None:
        """foreachBatch of the windows query: windows and their alerts to Parquet, the alerts
        to the topic and the index (with the windows), then the commit record."""
        from pyspark.sql import functions as F

        timer = StageTimer()
        self.window_state.restore(batch_id)
        timer.lap("rules")
        closed = batch.filter(F.col("patient_id").isNotNull())
        table = with_fired_rules(closed, self.spec.diagnostics.window_rules).toArrow()
        timer.lap("collect")
        alerts = concat_alerts([])
        if table.num_rows:
            _write_parquet(
                table.drop_columns(["fired_rules"]),
                self.spec.path("windows") / f"batch_id={batch_id}",
            )
            timer.lap("write")
            frame = table.to_pandas()
            parts = [threshold_alerts(frame, self.spec.diagnostics.window_rules, "window")]
            if self.spec.output_mode == "append":
                parts.append(apply_sequential(frame, self.spec, self.window_state))
            alerts = pd.concat(parts, ignore_index=True)
            alerts = apply_suppression(alerts, self.spec, self.window_state)
            timer.lap("rules")
            if len(alerts):
                _write_parquet(
                    alerts, self.spec.path("alerts") / "query=windows" / f"batch_id={batch_id}"
                )
            timer.lap("write")
            touched = frame["patient_id"].astype(str).unique()
            self.window_state.save(batch_id, touched)
            timer.lap("commit")
        written_ns = time.time_ns()
        windows = frame if table.num_rows else pd.DataFrame()
        counts = {"windows": table.num_rows, "alerts": len(alerts)}
        timer.lap("rules")
        self.deliver("windows", batch_id, alerts, windows, written_ns, counts, timer)

    def write_readings(self, batch: DataFrame, batch_id: int) -> None:
        """foreachBatch of the readings query: critical alerts first (they are timed), then
        the dead letter and the raw events, then the commit record.

        A duplicated reading fires the same alert (same id) again: only its first row is
        written, published, indexed and seen by suppression; the others are counted
        (``duplicate_alerts``).

        One Spark job per batch: Spark evaluates the reading rules and names the wrong field of
        bad messages, and the rows any output needs come to the driver once, through Arrow
        (all valid readings when raw events are written, else only bad and alerting ones).
        """
        from pyspark.sql import functions as F

        timer = StageTimer()
        self.reading_state.restore(batch_id)
        self.reading_alerts.restore(batch_id)
        timer.lap("rules")
        rules = self.spec.diagnostics.reading_rules
        # Only a heartbeat in its own shape is skipped here; a forged one (a patient, vitals)
        # carries a reason and goes to the dead letter like any other bad message.
        heartbeat = (
            F.coalesce(F.col("kind") == HEARTBEAT_KIND, F.lit(False)) & F.col("reason").isNull()
        )
        rows = with_fired_rules(detailed_reason(batch.filter(~heartbeat)), rules)
        if not self.spec.raw_events:
            rows = rows.filter(F.col("reason").isNotNull() | (F.size("fired_rules") > 0))
        table = rows.select(*READING_COLUMNS).toArrow()
        timer.lap("collect")
        reasons = table.column("reason")
        bad = table.filter(reasons.is_valid())
        good = table.filter(reasons.is_null())
        alerts = concat_alerts([])
        duplicates = 0
        if rules and good.num_rows:
            lengths = pa.compute.list_value_length(good.column("fired_rules"))
            fired = good.filter(pa.compute.greater(lengths, 0))
            if fired.num_rows:
                alerts, duplicates = self._reading_alerts(fired.to_pandas(), batch_id, timer)
        timer.lap("rules")
        written_ns = time.time_ns()
        published = self.publish(alerts)
        timer.lap("publish")
        self.index("readings", batch_id, alerts, pd.DataFrame())
        timer.lap("index")
        if bad.num_rows:
            deadletter = bad.select(["value", "reason", "partition", "offset", "kafka_time"])
            _write_parquet(deadletter, self.spec.path("deadletter") / f"batch_id={batch_id}")
        if self.spec.raw_events and good.num_rows:
            self._write_events(good, batch_id)
        timer.lap("write")
        self.commit(
            "readings", batch_id, written_ns, timer,
            alerts=len(alerts), duplicate_alerts=duplicates, published=published,
            deadletter=bad.num_rows,
        )  # fmt: skip

    def _reading_alerts(
        self, fired: pd.DataFrame, batch_id: int, timer: StageTimer
    ) -> tuple[pd.DataFrame, int]:
        """A batch's reading alerts, each id once (repeats dropped and counted), suppression
        applied, written to Parquet; the sinks' state saved for a restart."""
        timer.lap("collect")  # the Arrow → pandas conversion of the alerting rows
        alerts = threshold_alerts(fired, self.spec.diagnostics.reading_rules, "reading")
        alerts, duplicates = self.reading_alerts.first_written(alerts, batch_id)
        timer.lap("rules")
        touched = fired["patient_id"].astype(str).unique()
        self.reading_alerts.save(batch_id, touched)
        timer.lap("commit")
        alerts = apply_suppression(alerts, self.spec, self.reading_state)
        timer.lap("rules")
        if len(alerts):
            path = self.spec.path("alerts") / "query=readings" / f"batch_id={batch_id}"
            _write_parquet(alerts, path)
        timer.lap("write")
        self.reading_state.save(batch_id, alerts["patient_id"].unique())
        timer.lap("commit")
        return alerts, duplicates

    def _write_events(self, good: pa.Table, batch_id: int) -> None:
        """Raw valid readings, partitioned by event date and hour (Hive layout)."""
        times = good.column("event_time")
        # Where each reading came from (partition, offset, broker timestamp): lets a fault
        # experiment check that every offset was consumed exactly once (experiments.faults).
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
