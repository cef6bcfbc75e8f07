"""The foreachBatch sinks of the streaming job: Parquet per micro-batch, the commit log, the
alerts topic and the search index.

A batch is complete only when every sink has its alerts; each output of a batch replaces an
earlier attempt of the same batch, so a replayed batch is harmless.

Not for: the queries that feed them (vitalstream.stream).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from vitalstream.ingest.producer import HEARTBEAT_KIND

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

from vitalstream.sinks.search import Indexer
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
        alerts = concat_alerts([])
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
        alerts = concat_alerts([])
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
