"""Per-patient event-time windows, their clinical scores and the threshold rules that fire.

Not for: the sequential rules and suppression, which need per-patient order
(vitalstream.stream.alerts).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vitalstream.core.schema import CONSCIOUSNESS_LEVELS, VITAL_NAMES, charted_scale

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

from vitalstream.stream.parse import (
    consciousness_rank,
)
from vitalstream.stream.spec import (
    JobSpec,
)


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
    worst = F.max(consciousness_rank())
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
