"""Per-patient event-time windows, their clinical scores and the threshold rules that fire.

Not for: the sequential rules and suppression, which need per-patient order
(vitalstream.stream.alerts).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vitalstream.core.schema import CONSCIOUSNESS_LEVELS, VITAL_NAMES, charted_scale
from vitalstream.ingest.producer import HEARTBEAT_KIND

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

from vitalstream.stream.parse import (
    consciousness_rank,
)
from vitalstream.stream.spec import (
    DUPLICATE_KEY,
    WINDOW_STATS,
    JobSpec,
)

# A heartbeat's own duplicate key (its Kafka partition and offset); null for readings.
HEARTBEAT_KEY = "heartbeat_key"


def watermarked_readings(events: DataFrame, spec: JobSpec) -> DataFrame:
    """The readings under the event-time watermark (applied here, once), each one once.

    A repeated reading (same patient, device and event time: a gateway's resend, a device's
    retry) is dropped while the watermark keeps its key, and counted by the operator
    (``numDroppedDuplicateRows``, vitalstream.measure.metrics.dropped_duplicates); the batch
    reference drops the same ones, so the windows stay comparable. The operator also drops rows
    at or behind the watermark (its ``numRowsDroppedByWatermark``), before the aggregation sees
    them. Heartbeats pass it too (it runs after the watermark operator, which they advance),
    each under a key of its own: the closing heartbeats of a replay, one per partition, share
    their event time, and counting them as duplicates would spoil the count of readings.
    """
    from pyspark.sql import functions as F

    heartbeat = F.col("kind") == HEARTBEAT_KIND
    own_key = F.when(heartbeat, F.concat_ws(":", F.col("partition"), F.col("offset")))
    delay = f"{spec.watermark_s:g} seconds"
    return (
        events.withColumn(HEARTBEAT_KEY, own_key)
        .withWatermark("event_time", delay)
        .dropDuplicatesWithinWatermark([*DUPLICATE_KEY, HEARTBEAT_KEY])
    )


def consciousness_level(rank: Column) -> Column:
    """The ACVPU level of a rank (0..4); null for a null rank (no reading had a level).

    Guarded by an explicit null test: after an aggregation Spark 4.2 evaluates
    ``element_at(literal array, NULL)`` to the array's last element ('U'), which scored a
    window without any level as unresponsive (NEWS2 +3) where the batch reference has none.
    """
    from pyspark.sql import functions as F

    levels = F.array(*[F.lit(level) for level in CONSCIOUSNESS_LEVELS])
    return F.when(rank.isNotNull(), F.element_at(levels, rank + 1))


def window_stats(wanted: Iterable[str]) -> tuple[str, ...]:
    """The statistics a windows query computes, in WINDOW_STATS order: ``wanted`` and the
    counts, which every mean and the risk model's missingness read. Raises ValueError naming
    an unknown statistic (a lever's config is checked before a job starts)."""
    wanted = set(wanted)
    unknown = sorted(wanted - set(WINDOW_STATS))
    if unknown:
        raise ValueError(f"window_stats: unknown statistic {', '.join(unknown)}")
    return tuple(stat for stat in WINDOW_STATS if stat in wanted | {"n"})


def vital_aggregate(vital: str, stat: str) -> Column:
    """One statistic of one vital over a window's readings."""
    from pyspark.sql import functions as F

    if stat == "mean":
        # An exact integer sum of charted units over the count: one correctly rounded
        # division, so no summation order (Spark's, pandas') can move a mean such as 39.05 °C
        # across a score's band edge. Readings are rounded half up to the charted unit.
        scale = float(charted_scale(vital))
        charted = F.floor(F.col(vital) * F.lit(scale) + F.lit(0.5)).cast("long")
        return F.sum(charted).cast("double") / (F.count(vital) * F.lit(scale))
    functions = {"n": F.count, "min": F.min, "max": F.max, "sd": F.stddev_samp}
    return functions[stat](vital)


def window_columns(stats: Iterable[str]) -> list[Column]:
    """A window's aggregates: its reading count, ``stats`` of each vital (window_stats), whether
    any reading was on oxygen, the worst consciousness rank, and the last send stamp and event
    time."""
    from pyspark.sql import functions as F

    kept = window_stats(stats)
    columns = [F.count(F.lit(1)).alias("n")]
    columns += [
        vital_aggregate(vital, stat).alias(f"{vital}_{stat}")
        for vital in VITAL_NAMES
        for stat in kept
    ]
    return [
        *columns,
        F.max(F.col("o2_supplemental").cast("int")).alias("o2_any_int"),
        F.max(consciousness_rank()).alias("consciousness_rank"),
        F.max("send_wall_ns").alias("last_send_wall_ns"),
        F.max("event_time").alias("last_event_time"),
    ]


def window_aggregates(events: DataFrame, spec: JobSpec) -> DataFrame:
    """Per-patient event-time windows of the readings (:func:`watermarked_readings`): count,
    mean, min, max and sd of each vital (those of ``spec.window_stats``), whether any reading
    was on oxygen, the worst consciousness level, and the send stamp of the last one."""
    from pyspark.sql import functions as F

    slide = f"{spec.slide_s:g} seconds" if spec.slide_s else None
    window = F.window("event_time", f"{spec.window_s:g} seconds", slide)
    return (
        watermarked_readings(events, spec)
        .groupBy(window, "patient_id")
        .agg(*window_columns(spec.window_stats))
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "*",
        )
        .withColumn("o2_any", F.col("o2_any_int") == 1)
        .withColumn("consciousness_worst", consciousness_level(F.col("consciousness_rank")))
        .drop("window", "o2_any_int", "consciousness_rank")
    )


def with_scores(windows: DataFrame, spec: JobSpec) -> DataFrame:
    """Add the clinical scores (vitalstream.core.scores) computed by Spark from the window values,
    then the risk model's logit (vitalstream.models.riskmodel), which may read a score."""
    if spec.diagnostics.scores:
        from vitalstream.core.scores import score_columns, score_spec_from_config

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
