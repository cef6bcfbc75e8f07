"""Early-warning scores: Spark (score_columns) equals pandas (score_frame) exactly, per column.

One static DataFrame over a grid of window values: every band edge of every table ± half a
resolution step, the cut points themselves, NaN and null means, every consciousness level (and an
unknown one) and oxygen true/false/null. Nulls must agree too.
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.scores import (
    SCORE_COLUMNS,
    SPARK_TYPES,
    ParameterTable,
    score_columns,
    score_frame,
    score_spec_from_config,
)

pytestmark = pytest.mark.integration

SPEC = score_spec_from_config(vsconfig.load_config()["diagnostics"]["scores"])
NUMERIC = ("hr_mean", "rr_mean", "spo2_mean", "sbp_mean", "temp_mean")
LEVELS = ["A", "C", "V", "P", "U", "X", None]
OXYGEN = [True, False, None]


def _edge_values(column: str) -> list[float | None]:
    """Every cut point of every table on ``column``, ± half a step, the charted bounds, gaps."""
    values: set[float] = set()
    for table in (*SPEC.news2, *SPEC.qsofa, *SPEC.sirs, *SPEC.mews):
        if not isinstance(table, ParameterTable) or table.column != column:
            continue
        step = Decimal(repr(table.resolution))
        for upto, cut in zip(table.uptos, table.cuts, strict=True):
            exact = Decimal(repr(upto))
            for offset in (-step / 2, -step / 4, 0, step / 4, step / 2, step, step * 3 / 2):
                values.add(float(exact + step / 2 + offset))
            values.update({cut, math.nextafter(cut, -math.inf), math.nextafter(cut, math.inf)})
    return [*sorted(values), math.nan, None, -1.0, 1e6]


def grid() -> list[dict[str, object]]:
    """Rows cycling each column's values with different periods, so combinations vary.

    Plain Python values: None is a null (Spark null, pandas NaN/NA), math.nan a NaN double.
    """
    columns: dict[str, list] = {c: _edge_values(c) for c in NUMERIC}
    columns["o2_any"] = OXYGEN
    columns["consciousness_worst"] = LEVELS
    n = max(len(v) for v in columns.values()) * len(LEVELS) * len(OXYGEN)
    cycles = {name: itertools.cycle(v) for name, v in columns.items()}
    rows = [{name: next(cycle) for name, cycle in cycles.items()} for _ in range(n)]
    # Whole-row cases the cycling may miss: everything missing (null, then NaN), all extreme.
    rows.append({**dict.fromkeys(NUMERIC), "o2_any": None, "consciousness_worst": None})
    rows.append({**dict.fromkeys(NUMERIC, math.nan), "o2_any": None, "consciousness_worst": "X"})
    rows.append({**dict.fromkeys(NUMERIC, -1.0), "o2_any": True, "consciousness_worst": "U"})
    rows.append({**dict.fromkeys(NUMERIC, 1e6), "o2_any": True, "consciousness_worst": "U"})
    return [{"id": i, **row} for i, row in enumerate(rows)]


def _python(value: object) -> object:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def test_spark_scores_equal_pandas_scores_exactly(spark):
    rows = grid()
    frame = pd.DataFrame(rows)
    assert len(frame) > 1000
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    schema = StructType(
        [StructField("id", LongType(), False)]
        + [StructField(c, DoubleType()) for c in NUMERIC]
        + [StructField("o2_any", BooleanType()), StructField("consciousness_worst", StringType())]
    )
    records = [tuple(row[c] for c in schema.fieldNames()) for row in rows]
    # None stays a Spark null and NaN stays a NaN double: both must score null.
    assert any(r[1] is None for r in records)
    assert any(isinstance(r[1], float) and math.isnan(r[1]) for r in records)
    windows = spark.createDataFrame(records, schema)

    result = windows.select("id", *score_columns(SPEC)).orderBy("id")
    for name, kind in SCORE_COLUMNS.items():
        assert result.schema[name].dataType.simpleString() == SPARK_TYPES[kind], name
    spark_rows = result.collect()

    pandas_frame = frame.copy()
    for c in NUMERIC:
        pandas_frame[c] = pandas_frame[c].astype("float64")
    expected = score_frame(pandas_frame, SPEC).sort_values("id")

    assert [r["id"] for r in spark_rows] == expected["id"].tolist()
    for name in SCORE_COLUMNS:
        got = [r[name] for r in spark_rows]
        want = [_python(v) for v in expected[name].tolist()]
        mismatches = [
            (frame.iloc[i].to_dict(), g, w)
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            if g != w or type(g) is not type(w)
        ]
        assert not mismatches, f"{name}: {len(mismatches)} rows differ, e.g. {mismatches[:3]}"

    # The grid exercises what it claims to: every band of every parameter, and nulls.
    for name, kind in SCORE_COLUMNS.items():
        if kind == "int" and name.startswith(("news2_", "mews_")) and "total" not in name:
            assert expected[name].isna().any(), name
    assert set(expected["news2_risk"]) == {"low", "low_medium", "medium", "high"}


def test_a_window_without_a_consciousness_level_has_none(spark):
    """A window whose readings carry no consciousness level has a null worst level, as in the
    batch reference. Spark 4.2 evaluates element_at(literal array, NULL) after an aggregation to
    the array's last element, which scored such a window as unresponsive ('U', NEWS2 +3)."""
    from pyspark.sql import functions as F
    from vitalstream.stream.parse import consciousness_rank
    from vitalstream.stream.windows import consciousness_level

    rows = [("w1", "V"), ("w1", None), ("w1", "A"), ("w2", None), ("w2", None), ("w3", "U")]
    readings = spark.createDataFrame(rows, "window string, consciousness string")
    worst = readings.groupBy("window").agg(F.max(consciousness_rank()).alias("rank"))
    got = worst.select("window", consciousness_level(F.col("rank")).alias("level"))
    assert {r["window"]: r["level"] for r in got.collect()} == {"w1": "V", "w2": None, "w3": "U"}
