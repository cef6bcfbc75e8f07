"""Window risk model: Spark's logit column equals numpy's logit bit for bit (so the job and the
batch reference fire the same risk alerts), nulls, NaN, integer counts and
presence indicators included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from vitalstream.core.riskspec import LOGIT_COLUMN, WindowRiskModel

pytestmark = pytest.mark.integration

MODEL = WindowRiskModel(
    name="risk_model",
    severity="medium",
    features=("hr_mean", "spo2_mean", "temp_mean", "news2_total", "hr_n", "hr_min", "spo2_present"),
    centre=(82.31415926, 95.7, 37.05, 1.4142, 11.7, 79.3, 0.93),
    scale=(11.1, 2.7182818, 0.61, 1.7320508, 3.3, 12.9, 0.25514),
    weights=(0.731, -0.45, 0.123456789, 0.9, -0.0731, 0.333, -1.21),
    intercept=-2.2,
    threshold=0.3,
)


def test_spark_and_numpy_logits_are_identical(spark):
    rng = np.random.default_rng(7)
    n = 5000
    frame = pd.DataFrame(
        {
            "hr_mean": [
                round(v, int(d))
                for v, d in zip(rng.normal(85, 20, n), rng.integers(0, 6, n), strict=True)
            ],
            "spo2_mean": rng.normal(95, 3, n),
            "temp_mean": rng.normal(37.2, 0.8, n).round(2),
            "news2_total": rng.integers(0, 12, n),
            # A reading count (a long in Spark) and a window minimum, as in the deployed model.
            "hr_n": rng.integers(0, 60, n),
            "hr_min": rng.normal(80, 15, n).round(0),
            "spo2_n": rng.integers(0, 3, n),  # spo2_present: computed from the count
        }
    )
    frame.loc[::17, "hr_mean"] = np.nan
    frame.loc[::23, "spo2_mean"] = None
    frame["row"] = np.arange(n)
    expected = MODEL.logit_values(frame)
    data = spark.createDataFrame(frame.astype({"news2_total": "int32"}))
    # NaN from pandas stays NaN in Spark; make a third of the hr gaps real nulls as well.
    from pyspark.sql import functions as F

    data = data.withColumn(
        "hr_mean", F.when(F.col("row") % 51 == 0, F.lit(None)).otherwise(F.col("hr_mean"))
    )
    got = (
        data.select("row", MODEL.logit_column())
        .toPandas()
        .sort_values("row")[LOGIT_COLUMN]
        .to_numpy()
    )
    assert np.array_equal(got, expected), np.flatnonzero(got != expected)[:10]
    fired = MODEL.rule().holds(got)
    assert 0 < fired.sum() < n
    assert math.isclose(MODEL.threshold_logit, math.log(0.3 / 0.7))
