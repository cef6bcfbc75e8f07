"""Clinical early-warning scores (NEWS2, qSOFA, SIRS, MEWS) on window aggregates, defined once.

The score tables are data (``diagnostics.scores`` in config/config.yaml, typed by
config/schema.yaml). :func:`score_spec_from_config` turns them into frozen dataclasses, and the
same dataclasses drive both engines: :func:`score_frame` (pandas, the batch reference) and
:func:`score_columns` (Spark column expressions for the streaming job). Neither engine holds a
number of its own, so the two cannot drift apart, and the paper prints the definitions from the
same data (:func:`score_table_rows`).

Inputs, one row per patient and window (see vitalstream.stream.job): ``hr_mean``, ``rr_mean``,
``spo2_mean``, ``sbp_mean``, ``temp_mean`` (doubles), ``o2_any`` (bool: any reading of the
window on supplemental oxygen; null = unknown) and ``consciousness_worst`` (A/C/V/P/U, the worst
level of the window; null = unknown). The column each parameter reads is configurable.

Band edges and non-integer means
    The published tables are written as charted: inclusive integer ranges for pulse,
    respiration, SpO2 and blood pressure, one decimal for temperature. A window mean is put in
    the band its value would be charted in when rounded *half up* to the charted resolution:
    NEWS2 pulse 90.4 → charted 90 → 0 points, 90.5 → charted 91 → 1 point; temperature
    35.04 → 35.0 → 3 points, 35.05 → 35.1 → 1 point. This is implemented without rounding, as
    half-step cut points: each band stores its inclusive charted upper bound ``upto`` (null for
    the open last band), and a value v is in the first band with ``v < upto + resolution/2``.
    The cut point is the double nearest to the exact decimal ``upto + resolution/2`` (computed
    with :class:`decimal.Decimal`, so 35.0 + 0.05 is the literal 35.05, not 35.050000000000004).
    Spark (a ``when`` chain of ``<`` comparisons) and pandas (:func:`numpy.searchsorted`) thus
    compare the same doubles with the same cut points, and no rounding mode can make them differ.
    "Below" limits are translated to charted bounds once, in config: MEWS respiration "<9" is
    ``upto: 8``, MEWS temperature "<35" is ``upto: 34.9``, SIRS "temperature < 36" is
    ``upto: 35.9`` and "> 38" starts after ``upto: 38.0``.

Missing values
    A null or NaN mean, a null or unrecognised consciousness level and a null ``o2_any`` give a
    null sub-score: missing, never a silent 0. Totals and counts add the sub-scores that are
    available (a missing one contributes nothing), so they are lower bounds, and a
    ``*_complete`` flag says whether every input was available.

NEWS2 (Royal College of Physicians 2017, scale 1)
    Seven sub-scores ``news2_rr, news2_spo2, news2_o2, news2_sbp, news2_hr,
    news2_consciousness, news2_temp``; ``news2_total`` is their sum; ``news2_complete`` is true
    when all seven are available; ``news2_single3`` when any sub-score equals the configured
    single-parameter red score (3). ``news2_risk``: "high" if total ≥ 7, "medium" if total ≥ 5,
    "low_medium" if below 5 but a single parameter scores 3, else "low" (thresholds in config).
    Unknown oxygen or consciousness: the sub-score is null and the total counts it as 0, i.e.
    the patient is scored *as if on air and alert* (the most common state on a ward, and the
    choice that never raises an alarm from missing data), while ``news2_complete`` is false so
    that such windows can be told apart and excluded. SpO2 scale 2 is not implemented.

qSOFA (Seymour et al. 2016), from vitals
    One point each for respiration ≥ 22/min, systolic BP ≤ 100 mmHg and altered mentation,
    taken as any consciousness level other than A (the bedside ACVPU stands in for GCS < 15).
    ``qsofa`` is the count of criteria known to be met (0–3), ``qsofa_positive`` is count ≥ 2,
    ``qsofa_complete`` says all three inputs were available.

SIRS (Bone et al. 1992), vital-sign criteria only
    Temperature > 38 or < 36 °C, heart rate > 90/min, respiration > 20/min. The PaCO2 < 32 mmHg
    alternative of the respiratory criterion and the white-cell criterion (WBC > 12,000 or
    < 4,000 /mm³ or > 10 % bands) need laboratory values that a vital-sign stream does not carry,
    so ``sirs`` (0–3) undercounts full SIRS and ``sirs_positive`` (≥ 2) is a lower bound.

MEWS (Subbe et al. 2001)
    Sub-scores ``mews_sbp, mews_hr, mews_rr, mews_temp, mews_avpu`` and ``mews_total``
    (plus ``mews_complete``). AVPU scores A 0, V 1, P 2, U 3. "C" (new confusion) is not an
    AVPU level; it is mapped to V = 1 in config, as the nearest AVPU equivalent (new confusion
    is the ACVPU extension of "responds to voice", and NEWS2 scores C like V).

Not for: deciding alerts from scores or choosing thresholds for the paper; this module only
computes the scores.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vitalstream.core.schema import CONSCIOUSNESS_LEVELS

if TYPE_CHECKING:
    from pyspark.sql import Column

# Output column kinds: "int" (pandas Int64 / Spark bigint, null = missing), "bool" (pandas
# boolean / Spark boolean, never null) and "str" (pandas string / Spark string, never null).
PANDAS_DTYPES: dict[str, str] = {"int": "Int64", "bool": "boolean", "str": "string"}
SPARK_TYPES: dict[str, str] = {"int": "bigint", "bool": "boolean", "str": "string"}

# The parameters of each score, in output order, and the kind of table each one is. The keys
# are fixed because they name output columns (news2_<key>, mews_<key>).
NEWS2_PARAMETERS: dict[str, str] = {
    "rr": "numeric",
    "spo2": "numeric",
    "o2": "flag",
    "sbp": "numeric",
    "hr": "numeric",
    "consciousness": "category",
    "temp": "numeric",
}
QSOFA_PARAMETERS: dict[str, str] = {"rr": "numeric", "sbp": "numeric", "mentation": "category"}
SIRS_PARAMETERS: dict[str, str] = {"temp": "numeric", "hr": "numeric", "rr": "numeric"}
MEWS_PARAMETERS: dict[str, str] = {
    "sbp": "numeric",
    "hr": "numeric",
    "rr": "numeric",
    "temp": "numeric",
    "avpu": "category",
}

SCORE_COLUMNS: dict[str, str] = {
    **{f"news2_{name}": "int" for name in NEWS2_PARAMETERS},
    "news2_total": "int",
    "news2_complete": "bool",
    "news2_single3": "bool",
    "news2_risk": "str",
    "qsofa": "int",
    "qsofa_positive": "bool",
    "qsofa_complete": "bool",
    "sirs": "int",
    "sirs_positive": "bool",
    "sirs_complete": "bool",
    **{f"mews_{name}": "int" for name in MEWS_PARAMETERS},
    "mews_total": "int",
    "mews_complete": "bool",
}
"""Every column :func:`score_frame` adds and :func:`score_columns` produces, in order, by kind."""

RISK_LEVELS: tuple[str, ...] = ("low", "low_medium", "medium", "high")

# Human-readable parameter names for the generated definition table in the paper.
PARAMETER_LABELS: dict[str, str] = {
    "rr": "respiration rate (/min)",
    "spo2": "SpO2, scale 1 (%)",
    "o2": "supplemental oxygen",
    "sbp": "systolic blood pressure (mmHg)",
    "hr": "pulse (/min)",
    "consciousness": "consciousness (ACVPU)",
    "temp": "temperature (°C)",
    "mentation": "altered mentation (ACVPU)",
    "avpu": "AVPU",
}


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _decimal(value: float) -> Decimal:
    """Exact decimal of a number as written in config (``repr`` is the shortest round trip)."""
    return Decimal(repr(value))


def _decimals(resolution: float) -> int:
    """Digits after the point a charted value of this resolution shows (1 → 0, 0.1 → 1)."""
    exponent = _decimal(resolution).normalize().as_tuple().exponent
    return max(0, -int(exponent))


@dataclass(frozen=True)
class Band:
    """Points for charted values up to and including ``upto`` (None: no upper bound)."""

    upto: float | None
    points: int


@dataclass(frozen=True)
class ParameterTable:
    """A numeric parameter: ascending bands over the charted values of one window column.

    ``resolution`` is the charting resolution (1 for integers, 0.1 for temperature); it turns
    each inclusive charted bound into a half-step cut point (see the module docstring).
    """

    name: str
    column: str
    resolution: float
    bands: tuple[Band, ...]

    def __post_init__(self) -> None:
        where = f"{self.name}"
        if not self.resolution > 0:
            raise ValueError(f"{where}/resolution: must be > 0, got {self.resolution!r}")
        if not self.bands:
            raise ValueError(f"{where}/bands: at least one band is needed")
        if self.bands[-1].upto is not None:
            raise ValueError(f"{where}/bands: the last band must be open (upto: null)")
        previous: float | None = None
        for i, band in enumerate(self.bands[:-1]):
            if band.upto is None:
                raise ValueError(f"{where}/bands/{i}/upto: only the last band may be open")
            if _decimal(band.upto) % _decimal(self.resolution) != 0:
                raise ValueError(
                    f"{where}/bands/{i}/upto: {band.upto!r} is not a multiple of the "
                    f"resolution {self.resolution!r}"
                )
            if previous is not None and not band.upto > previous:
                raise ValueError(
                    f"{where}/bands/{i}/upto: uptos must ascend ({band.upto!r} after {previous!r})"
                )
            previous = band.upto

    @property
    def uptos(self) -> tuple[float, ...]:
        """The inclusive charted upper bounds of all bands but the open last one."""
        return tuple(b.upto for b in self.bands if b.upto is not None)

    @property
    def cuts(self) -> tuple[float, ...]:
        """Half-step cut points: band i holds ``cuts[i-1] <= v < cuts[i]``."""
        half = _decimal(self.resolution) / 2
        return tuple(float(_decimal(upto) + half) for upto in self.uptos)

    def charted_ranges(self) -> list[tuple[str, str]]:
        """(charted range, window-mean range) text of each band, e.g. ("9–11", "8.5 ≤ v < 11.5")."""
        digits = _decimals(self.resolution)
        step = _decimal(self.resolution)

        def fmt(value: Decimal | float) -> str:
            return f"{float(value):.{digits}f}"

        cut_digits = digits + 2
        cuts = [f"{c:.{cut_digits}f}".rstrip("0").rstrip(".") for c in self.cuts]
        lows = [None, *(_decimal(upto) + step for upto in self.uptos)]
        out = []
        for i, (low, band) in enumerate(zip(lows, self.bands, strict=True)):
            high = band.upto
            if low is None:
                out.append(("any", "any") if high is None else (f"≤{fmt(high)}", f"v < {cuts[i]}"))
            elif high is None:
                out.append((f"≥{fmt(low)}", f"v ≥ {cuts[i - 1]}"))
            else:
                charted = fmt(low) if low == _decimal(high) else f"{fmt(low)}–{fmt(high)}"
                out.append((charted, f"{cuts[i - 1]} ≤ v < {cuts[i]}"))
        return out

    def score_pandas(self, frame: pd.DataFrame) -> pd.arrays.IntegerArray:
        values = pd.to_numeric(frame[self.column]).to_numpy(dtype="float64", na_value=np.nan)
        index = np.searchsorted(np.asarray(self.cuts, dtype="float64"), values, side="right")
        points = np.asarray([b.points for b in self.bands], dtype="int64")[index]
        return pd.arrays.IntegerArray(points, np.isnan(values))

    def score_spark(self) -> Column:
        from pyspark.sql import functions as F

        value = F.col(self.column).cast("double")
        # NaN compares greater than every double in Spark, so it must be caught before the chain.
        expr = F.when(value.isNull() | F.isnan(value), F.lit(None))
        for cut, band in zip(self.cuts, self.bands[:-1], strict=True):
            expr = expr.when(value < F.lit(cut), F.lit(band.points))
        return expr.otherwise(F.lit(self.bands[-1].points)).cast(SPARK_TYPES["int"])

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"column": self.column, "charted": charted, "window_mean": mean, "points": b.points}
            for (charted, mean), b in zip(self.charted_ranges(), self.bands, strict=True)
        ]


@dataclass(frozen=True)
class CategoryTable:
    """Points per consciousness level (ACVPU); any other value or null scores null."""

    name: str
    column: str
    points: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        levels = [level for level, _ in self.points]
        for level in levels:
            if level not in CONSCIOUSNESS_LEVELS:
                raise ValueError(f"{self.name}/points/{level}: unknown consciousness level")
        for level in CONSCIOUSNESS_LEVELS:
            if level not in levels:
                raise ValueError(f"{self.name}/points/{level}: level has no points")

    def score_pandas(self, frame: pd.DataFrame) -> pd.arrays.IntegerArray:
        levels = [level for level, _ in self.points]
        codes = pd.Categorical(frame[self.column], categories=levels).codes
        table = np.asarray([p for _, p in self.points], dtype="int64")
        missing = codes < 0
        return pd.arrays.IntegerArray(table[np.where(missing, 0, codes)], missing)

    def score_spark(self) -> Column:
        from pyspark.sql import functions as F

        level = F.col(self.column).cast("string")
        # No "otherwise": a level outside the table (or null) stays null, as in pandas.
        expr = F.when(F.lit(False), F.lit(None))
        for name, points in self.points:
            expr = expr.when(level == F.lit(name), F.lit(points))
        return expr.cast(SPARK_TYPES["int"])

    def rows(self) -> list[dict[str, Any]]:
        groups: dict[int, list[str]] = {}
        for level, points in self.points:
            groups.setdefault(points, []).append(level)
        return [
            {
                "column": self.column,
                "charted": ", ".join(levels),
                "window_mean": "worst level " + " or ".join(levels),
                "points": points,
            }
            for points, levels in groups.items()
        ]


@dataclass(frozen=True)
class FlagTable:
    """Points for a boolean column (NEWS2 supplemental oxygen); null scores null."""

    name: str
    column: str
    if_true: int
    if_false: int

    def score_pandas(self, frame: pd.DataFrame) -> pd.arrays.IntegerArray:
        flags = frame[self.column].astype("boolean")
        missing = flags.isna().to_numpy(dtype=bool)
        on = flags.to_numpy(dtype=bool, na_value=False)
        return pd.arrays.IntegerArray(np.where(on, self.if_true, self.if_false), missing)

    def score_spark(self) -> Column:
        from pyspark.sql import functions as F

        flag = F.col(self.column).cast("boolean")
        expr = F.when(flag.isNull(), F.lit(None)).when(flag, F.lit(self.if_true))
        return expr.otherwise(F.lit(self.if_false)).cast(SPARK_TYPES["int"])

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "column": self.column,
                "charted": "yes",
                "window_mean": "any reading on oxygen",
                "points": self.if_true,
            },
            {
                "column": self.column,
                "charted": "no (air)",
                "window_mean": "all readings on air",
                "points": self.if_false,
            },
        ]


Parameter = ParameterTable | CategoryTable | FlagTable


@dataclass(frozen=True)
class RiskThresholds:
    """NEWS2 clinical-response bands: total ≥ high_at, ≥ medium_at, or one parameter = single."""

    medium_at: int
    high_at: int
    single_parameter: int

    def __post_init__(self) -> None:
        if not 0 < self.medium_at < self.high_at:
            raise ValueError(
                f"news2/risk: need 0 < medium_at < high_at, got {self.medium_at}, {self.high_at}"
            )


@dataclass(frozen=True)
class ScoreSpec:
    """All four scores: parameter tables in output order, plus their thresholds."""

    news2: tuple[Parameter, ...]
    news2_risk: RiskThresholds
    qsofa: tuple[Parameter, ...]
    qsofa_positive_at: int
    sirs: tuple[Parameter, ...]
    sirs_positive_at: int
    mews: tuple[Parameter, ...]


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _keys(value: Mapping[str, Any], where: str, required: Sequence[str]) -> None:
    """Unknown keys and missing keys are errors naming the key (a typo never falls back)."""
    for key in value:
        if key not in required:
            raise ValueError(f"{where}/{key}: unknown key (expected {', '.join(required)})")
    for key in required:
        if key not in value:
            raise ValueError(f"{where}/{key}: required key is missing")


def _integer(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}: expected an integer ≥ {minimum}, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _column(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a column name, got {value!r}")
    return value


def _numeric_table(name: str, raw: Any, where: str) -> ParameterTable:
    raw = _mapping(raw, where)
    _keys(raw, where, ("column", "resolution", "bands"))
    if not isinstance(raw["bands"], list):
        raise ValueError(f"{where}/bands: expected a list of {{upto, points}}")
    bands = []
    for i, item in enumerate(raw["bands"]):
        at = f"{where}/bands/{i}"
        item = _mapping(item, at)
        _keys(item, at, ("upto", "points"))
        upto = None if item["upto"] is None else _number(item["upto"], f"{at}/upto")
        bands.append(Band(upto, _integer(item["points"], f"{at}/points")))
    column = _column(raw["column"], f"{where}/column")
    resolution = _number(raw["resolution"], f"{where}/resolution")
    try:
        return ParameterTable(name, column, resolution, tuple(bands))
    except ValueError as exc:  # the dataclass names the table; give the full key path
        raise ValueError(f"{where.rsplit('/', 1)[0]}/{exc}") from exc


def _category_table(name: str, raw: Any, where: str) -> CategoryTable:
    raw = _mapping(raw, where)
    _keys(raw, where, ("column", "points"))
    column = _column(raw["column"], f"{where}/column")
    points = tuple(
        (str(level), _integer(p, f"{where}/points/{level}"))
        for level, p in _mapping(raw["points"], f"{where}/points").items()
    )
    try:
        return CategoryTable(name, column, points)
    except ValueError as exc:  # the dataclass names the table; give the full key path
        raise ValueError(f"{where.rsplit('/', 1)[0]}/{exc}") from exc


def _flag_table(name: str, raw: Any, where: str) -> FlagTable:
    raw = _mapping(raw, where)
    _keys(raw, where, ("column", "if_true", "if_false"))
    return FlagTable(
        name,
        _column(raw["column"], f"{where}/column"),
        _integer(raw["if_true"], f"{where}/if_true"),
        _integer(raw["if_false"], f"{where}/if_false"),
    )


_BUILDERS = {"numeric": _numeric_table, "category": _category_table, "flag": _flag_table}


def _parameters(
    raw: Mapping[str, Any], layout: Mapping[str, str], where: str
) -> tuple[Parameter, ...]:
    return tuple(
        _BUILDERS[kind](name, raw[name], f"{where}/{name}") for name, kind in layout.items()
    )


def score_spec_from_config(mapping: Mapping[str, Any]) -> ScoreSpec:
    """The ``diagnostics.scores`` mapping of the config → a validated :class:`ScoreSpec`.

    Checks what the JSON schema cannot (uptos ascend, only the last band is open, uptos are
    multiples of the resolution, every ACVPU level has points) and repeats its key checks, so
    a spec built outside the workflow is just as strict. Raises ValueError naming the key path.
    """
    where = "scores"
    raw = _mapping(mapping, where)
    _keys(raw, where, ("news2", "qsofa", "sirs", "mews"))

    news2 = _mapping(raw["news2"], f"{where}/news2")
    _keys(news2, f"{where}/news2", (*NEWS2_PARAMETERS, "risk"))
    risk = _mapping(news2["risk"], f"{where}/news2/risk")
    at = f"{where}/news2/risk"
    _keys(risk, at, ("medium_at", "high_at", "single_parameter"))
    thresholds = RiskThresholds(
        _integer(risk["medium_at"], f"{at}/medium_at", 1),
        _integer(risk["high_at"], f"{at}/high_at", 1),
        _integer(risk["single_parameter"], f"{at}/single_parameter", 1),
    )

    qsofa = _mapping(raw["qsofa"], f"{where}/qsofa")
    _keys(qsofa, f"{where}/qsofa", (*QSOFA_PARAMETERS, "positive_at"))
    sirs = _mapping(raw["sirs"], f"{where}/sirs")
    _keys(sirs, f"{where}/sirs", (*SIRS_PARAMETERS, "positive_at"))
    mews = _mapping(raw["mews"], f"{where}/mews")
    _keys(mews, f"{where}/mews", tuple(MEWS_PARAMETERS))

    return ScoreSpec(
        news2=_parameters(news2, NEWS2_PARAMETERS, f"{where}/news2"),
        news2_risk=thresholds,
        qsofa=_parameters(qsofa, QSOFA_PARAMETERS, f"{where}/qsofa"),
        qsofa_positive_at=_integer(qsofa["positive_at"], f"{where}/qsofa/positive_at", 1),
        sirs=_parameters(sirs, SIRS_PARAMETERS, f"{where}/sirs"),
        sirs_positive_at=_integer(sirs["positive_at"], f"{where}/sirs/positive_at", 1),
        mews=_parameters(mews, MEWS_PARAMETERS, f"{where}/mews"),
    )


# --------------------------------------------------------------------------------------------
# pandas
# --------------------------------------------------------------------------------------------


def _sum_available(parts: Sequence[pd.arrays.IntegerArray]) -> np.ndarray:
    return functools.reduce(operator.add, [p.to_numpy(dtype="int64", na_value=0) for p in parts])


def _all_available(parts: Sequence[pd.arrays.IntegerArray]) -> np.ndarray:
    return functools.reduce(operator.and_, [~p.isna() for p in parts])


def score_frame(windows: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    """A copy of ``windows`` with every column of :data:`SCORE_COLUMNS` added (the batch side).

    Vectorised: one :func:`numpy.searchsorted` per numeric parameter, no loop over rows.
    """
    out: dict[str, Any] = {}
    news2 = [p.score_pandas(windows) for p in spec.news2]
    for table, part in zip(spec.news2, news2, strict=True):
        out[f"news2_{table.name}"] = part
    total = _sum_available(news2)
    single = spec.news2_risk.single_parameter
    single3 = functools.reduce(
        operator.or_, [p.to_numpy(dtype="int64", na_value=-1) == single for p in news2]
    )
    out["news2_total"] = total
    out["news2_complete"] = _all_available(news2)
    out["news2_single3"] = single3
    out["news2_risk"] = np.select(
        [
            total >= spec.news2_risk.high_at,
            total >= spec.news2_risk.medium_at,
            single3,
        ],
        ["high", "medium", "low_medium"],
        "low",
    )
    for score, positive_at in (("qsofa", spec.qsofa_positive_at), ("sirs", spec.sirs_positive_at)):
        parts = [p.score_pandas(windows) for p in getattr(spec, score)]
        count = _sum_available(parts)
        out[score] = count
        out[f"{score}_positive"] = count >= positive_at
        out[f"{score}_complete"] = _all_available(parts)
    mews = [p.score_pandas(windows) for p in spec.mews]
    for table, part in zip(spec.mews, mews, strict=True):
        out[f"mews_{table.name}"] = part
    out["mews_total"] = _sum_available(mews)
    out["mews_complete"] = _all_available(mews)

    result = windows.copy()
    for name, kind in SCORE_COLUMNS.items():
        result[name] = pd.array(out[name], dtype=PANDAS_DTYPES[kind])
    return result


# --------------------------------------------------------------------------------------------
# Spark
# --------------------------------------------------------------------------------------------


def score_columns(spec: ScoreSpec) -> list[Column]:
    """The columns of :data:`SCORE_COLUMNS` as Spark expressions (the streaming side).

    Use as ``windows.select("*", *score_columns(spec))``. Built from the same tables as
    :func:`score_frame`: a ``when`` chain over the cut points per parameter. pyspark is imported
    here, not at module level, so that pandas users need no JVM.
    """
    from pyspark.sql import functions as F

    def total(parts: Sequence[Column]) -> Column:
        summed = functools.reduce(operator.add, [F.coalesce(p, F.lit(0)) for p in parts])
        return summed.cast(SPARK_TYPES["int"])

    def complete(parts: Sequence[Column]) -> Column:
        return functools.reduce(operator.and_, [p.isNotNull() for p in parts])

    out: dict[str, Column] = {}
    news2 = [p.score_spark() for p in spec.news2]
    for table, part in zip(spec.news2, news2, strict=True):
        out[f"news2_{table.name}"] = part
    news2_total = total(news2)
    single = spec.news2_risk.single_parameter
    single3 = functools.reduce(
        operator.or_, [F.coalesce(p == F.lit(single), F.lit(False)) for p in news2]
    )
    out["news2_total"] = news2_total
    out["news2_complete"] = complete(news2)
    out["news2_single3"] = single3
    out["news2_risk"] = (
        F.when(news2_total >= spec.news2_risk.high_at, F.lit("high"))
        .when(news2_total >= spec.news2_risk.medium_at, F.lit("medium"))
        .when(single3, F.lit("low_medium"))
        .otherwise(F.lit("low"))
    )
    for score, positive_at in (("qsofa", spec.qsofa_positive_at), ("sirs", spec.sirs_positive_at)):
        parts = [p.score_spark() for p in getattr(spec, score)]
        count = total(parts)
        out[score] = count
        out[f"{score}_positive"] = count >= F.lit(positive_at)
        out[f"{score}_complete"] = complete(parts)
    mews = [p.score_spark() for p in spec.mews]
    for table, part in zip(spec.mews, mews, strict=True):
        out[f"mews_{table.name}"] = part
    out["mews_total"] = total(mews)
    out["mews_complete"] = complete(mews)
    return [out[name].cast(SPARK_TYPES[kind]).alias(name) for name, kind in SCORE_COLUMNS.items()]


# --------------------------------------------------------------------------------------------
# Documentation (the paper prints the definitions as a generated table)
# --------------------------------------------------------------------------------------------


def score_table_rows(spec: ScoreSpec) -> list[dict[str, Any]]:
    """One row per band: score, parameter, label, column, charted range, window-mean range, points.

    ``charted`` is the range as the published table writes it (e.g. "9–11", "≤8", "≥25");
    ``window_mean`` is the half-open interval of window means that falls into it.
    """
    rows = []
    for score, parameters in (
        ("NEWS2", spec.news2),
        ("qSOFA", spec.qsofa),
        ("SIRS", spec.sirs),
        ("MEWS", spec.mews),
    ):
        for parameter in parameters:
            for row in parameter.rows():
                rows.append(
                    {
                        "score": score,
                        "parameter": parameter.name,
                        "label": PARAMETER_LABELS.get(parameter.name, parameter.name),
                        **row,
                    }
                )
    return rows
