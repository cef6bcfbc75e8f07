"""The one canonical event and label schema of VitalStream.

Every component that touches a vital-sign reading (cohort generator, replay producer, Spark job,
batch reference, validation, paper tables) imports its column names, units, valid ranges and
types from here, so a change is made once. The module defines:

* the seven vitals (:data:`VITALS`) with units and physiologically valid ranges;
* the event table (:data:`EVENT_COLUMNS`): identity/time columns, vitals, clinical context and
  the generator's ground-truth annotations (``artefact``, ``clock_skew_ms``, ``network_delay_ms``);
* the per-patient label table (:data:`LABEL_COLUMNS`);
* their Arrow schemas (Parquet files), canonical pandas dtypes, the Kafka JSON field list and a
  Spark DDL string for parsing those messages;
* :func:`validate_events`, which splits a frame into valid rows and quarantined rows with a reason.

It is not the place for clinical scoring (NEWS2 etc.), windowing, de-duplication or any I/O
beyond building schemas: validation checks one row at a time and never drops duplicates or late
rows, which are the stream job's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

# --------------------------------------------------------------------------------------------
# Vitals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VitalField:
    """One vital sign: column name, unit and the range outside which a value is impossible."""

    name: str
    unit: str
    description: str
    valid_min: float
    valid_max: float
    dtype: str = "float64"


# Valid ranges are "physiologically possible on a monitor", not "normal": values outside them
# are device/transmission faults and get quarantined; abnormal-but-possible values must pass.
VITALS: tuple[VitalField, ...] = (
    VitalField("hr", "bpm", "heart rate", 20.0, 250.0),
    VitalField("spo2", "%", "peripheral oxygen saturation", 50.0, 100.0),
    VitalField("sbp", "mmHg", "systolic blood pressure", 40.0, 260.0),
    VitalField("dbp", "mmHg", "diastolic blood pressure", 20.0, 160.0),
    VitalField("map", "mmHg", "mean arterial pressure", 30.0, 200.0),
    VitalField("rr", "/min", "respiration rate", 3.0, 60.0),
    VitalField("temp", "°C", "body temperature", 30.0, 43.0),
)
VITAL_NAMES: tuple[str, ...] = tuple(v.name for v in VITALS)
_VITALS_BY_NAME = {v.name: v for v in VITALS}

# Decimal places a bedside monitor displays; generated values are rounded to these so that
# NEWS2 band edges (defined on charted values) behave as on a ward.
DISPLAY_DECIMALS: dict[str, int] = {
    "hr": 0,
    "spo2": 0,
    "sbp": 0,
    "dbp": 0,
    "map": 0,
    "rr": 0,
    "temp": 1,
}


def charted_scale(name: str) -> int:
    """10 ** the displayed decimals of a vital: window means are computed from the readings as
    charted, in integer units of this scale, so that every engine gets the same mean (see
    vitalstream.stream.job.window_aggregates)."""
    return 10 ** DISPLAY_DECIMALS[name]


def valid_range(name: str) -> tuple[float, float]:
    """Return the inclusive (min, max) valid range of vital ``name``; KeyError if unknown."""
    vital = _VITALS_BY_NAME[name]
    return vital.valid_min, vital.valid_max


# --------------------------------------------------------------------------------------------
# Categories
# --------------------------------------------------------------------------------------------

# ACVPU: Alert, new Confusion, responds to Voice, to Pain, Unresponsive (NEWS2 scores any non-A).
CONSCIOUSNESS_LEVELS: tuple[str, ...] = ("A", "C", "V", "P", "U")

# Generator ground truth, one label per row. "none" also describes real (non-synthetic) data.
ARTEFACTS: tuple[str, ...] = (
    "none",
    "missing",
    "motion_spike",
    "flatline",
    "impossible",
    "duplicate",
)
SEXES: tuple[str, ...] = ("F", "M")

# --------------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------------

STRING_DTYPE = "string"  # pandas StringDtype; pd.read_parquet restores it from pandas metadata
TIMESTAMP_DTYPE = "datetime64[ms, UTC]"
TIMESTAMP_ARROW = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One column of a table: Arrow type (files), pandas dtype (memory) and documentation."""

    name: str
    arrow_type: pa.DataType
    pandas_dtype: str
    nullable: bool
    unit: str
    description: str
    role: str  # "identity", "vital", "context", "annotation" or "label"


def _vital_column(v: VitalField) -> Column:
    return Column(
        v.name,
        pa.float64(),
        v.dtype,
        True,
        v.unit,
        f"{v.description}; valid {v.valid_min:g}–{v.valid_max:g}; NaN if not measured",
        "vital",
    )


EVENT_SCHEMA: tuple[Column, ...] = (
    Column(
        "patient_id",
        pa.string(),
        STRING_DTYPE,
        False,
        "",
        'patient identifier, e.g. "P000001"',
        "identity",
    ),
    Column(
        "device_id", pa.string(), STRING_DTYPE, False, "", "bedside monitor identifier", "identity"
    ),
    Column(
        "event_time",
        TIMESTAMP_ARROW,
        TIMESTAMP_DTYPE,
        False,
        "ms, UTC",
        "time stamped by the device clock (includes its skew); integer event_time_ms in Kafka",
        "identity",
    ),
    *(_vital_column(v) for v in VITALS),
    Column(
        "o2_supplemental",
        pa.bool_(),
        "boolean",
        True,
        "",
        "patient on supplemental oxygen (NEWS2); null if unknown",
        "context",
    ),
    Column(
        "consciousness",
        pa.string(),
        STRING_DTYPE,
        True,
        "",
        "ACVPU level, one of " + ",".join(CONSCIOUSNESS_LEVELS) + "; null if unknown",
        "context",
    ),
    Column(
        "artefact",
        pa.string(),
        STRING_DTYPE,
        False,
        "",
        "generator ground truth, one of " + ",".join(ARTEFACTS),
        "annotation",
    ),
    Column(
        "clock_skew_ms",
        pa.int64(),
        "int64",
        False,
        "ms",
        "device clock offset added to event_time (true time = event_time - skew)",
        "annotation",
    ),
    Column(
        "network_delay_ms",
        pa.int64(),
        "int64",
        False,
        "ms",
        "delay from creation to arrival at the gateway; replay uses it for lateness",
        "annotation",
    ),
)
EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in EVENT_SCHEMA)
EVENT_DTYPES: dict[str, str] = {c.name: c.pandas_dtype for c in EVENT_SCHEMA}

# Kafka JSON messages carry the same fields, except that the timestamp travels as epoch ms.
EVENT_TIME_MS = "event_time_ms"
KAFKA_JSON_FIELDS: tuple[str, ...] = tuple(
    EVENT_TIME_MS if name == "event_time" else name for name in EVENT_COLUMNS
)

LABEL_SCHEMA: tuple[Column, ...] = (
    Column("patient_id", pa.string(), STRING_DTYPE, False, "", "patient identifier", "label"),
    Column("age", pa.float64(), "float64", False, "years", "age at admission", "label"),
    Column("sex", pa.string(), STRING_DTYPE, False, "", "F or M", "label"),
    Column("deteriorates", pa.bool_(), "bool", False, "", "patient deteriorates", "label"),
    Column(
        "onset_time",
        TIMESTAMP_ARROW,
        TIMESTAMP_DTYPE,
        True,
        "ms, UTC",
        "true (unskewed) start of deterioration; NaT if none",
        "label",
    ),
    Column(
        "ramp_minutes",
        pa.float64(),
        "float64",
        True,
        "min",
        "duration of the deterioration ramp; NaN if none",
        "label",
    ),
    Column("source", pa.string(), STRING_DTYPE, False, "", 'origin, e.g. "synthetic"', "label"),
)
LABEL_COLUMNS: tuple[str, ...] = tuple(c.name for c in LABEL_SCHEMA)
LABEL_DTYPES: dict[str, str] = {c.name: c.pandas_dtype for c in LABEL_SCHEMA}


def _arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in columns])


def event_arrow_schema() -> pa.Schema:
    """Arrow schema of the event table (Parquet files), in :data:`EVENT_COLUMNS` order."""
    return _arrow_schema(EVENT_SCHEMA)


def label_arrow_schema() -> pa.Schema:
    """Arrow schema of the per-patient label table, in :data:`LABEL_COLUMNS` order."""
    return _arrow_schema(LABEL_SCHEMA)


_SPARK_TYPES = {
    pa.string(): "STRING",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
}


def kafka_json_ddl() -> str:
    """Spark DDL of one Kafka JSON message (``from_json`` schema); time is BIGINT epoch ms."""
    parts = []
    for c in EVENT_SCHEMA:
        if c.name == "event_time":
            parts.append(f"{EVENT_TIME_MS} BIGINT")
        else:
            parts.append(f"{c.name} {_SPARK_TYPES[c.arrow_type]}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Documentation helpers (the paper prints the schema as a generated table)
# --------------------------------------------------------------------------------------------


def to_records(columns: Sequence[Column] = EVENT_SCHEMA) -> list[dict[str, str]]:
    """One plain dict per column (name, type, unit, valid range, role, description)."""
    records = []
    for c in columns:
        vital = _VITALS_BY_NAME.get(c.name) if c.role == "vital" else None
        records.append(
            {
                "name": c.name,
                "type": str(c.arrow_type),
                "unit": c.unit,
                "valid_range": f"{vital.valid_min:g}–{vital.valid_max:g}" if vital else "",
                "nullable": "yes" if c.nullable else "no",
                "role": c.role,
                "description": c.description,
            }
        )
    return records


def to_markdown_table(columns: Sequence[Column] = EVENT_SCHEMA) -> str:
    """The schema as a Markdown table, one row per column."""
    records = to_records(columns)
    header = list(records[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r[h].replace("|", "\\|") for h in header) + " |" for r in records]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------------


def empty_events() -> pd.DataFrame:
    """A zero-row event frame with the canonical column order and dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in EVENT_DTYPES.items()})


def empty_labels() -> pd.DataFrame:
    """A zero-row label frame with the canonical column order and dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in LABEL_DTYPES.items()})


# The event times every engine can hold: pandas' datetime64[ns] ends on 2262-04-11, and
# times before the epoch are device faults, not readings. The stream checks the integer millis
# against these before converting them (a Spark ANSI cast of a huge value fails the batch) and
# the batch reference uses the same bounds, so both quarantine the same messages.
EVENT_TIME_MIN_MS = 0  # 1970-01-01T00:00:00Z, inclusive
EVENT_TIME_END_MS = 9_223_286_400_000  # 2262-04-11T00:00:00Z, exclusive


def timestamps_from_ms(ms: np.ndarray | pd.Series) -> pd.Series:
    """Epoch milliseconds (int64) → ``datetime64[ms, UTC]`` series (Kafka → pandas)."""
    values = np.asarray(ms, dtype="int64").astype("datetime64[ms]")
    return pd.Series(values).dt.tz_localize("UTC")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

# Reasons are checked in this order and the first failing one is recorded, so every quarantined
# row carries exactly one reason: identity → time → vital types → all-missing → infinities →
# vital ranges → context → annotations.
_OPTIONAL_DEFAULTS: dict[str, object] = {
    "o2_supplemental": pd.NA,
    "consciousness": pd.NA,
    # Absent annotations mean "the generator applied no effect", which is true of real data.
    "artefact": "none",
    "clock_skew_ms": 0,
    "network_delay_ms": 0,
}


class _Reasons:
    """First-failure-wins reason bookkeeping for a vectorised validation pass."""

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int32)  # 0 = still valid
        self.texts: list[str] = [""]

    def flag(self, mask: np.ndarray, text: str) -> None:
        mask = np.asarray(mask, dtype=bool) & (self.code == 0)
        if mask.any():
            self.texts.append(text)
            self.code[mask] = len(self.texts) - 1

    def strings(self, mask: np.ndarray) -> np.ndarray:
        return np.asarray(self.texts, dtype=object)[self.code[mask]]


def _is_missing(col: pd.Series) -> np.ndarray:
    return col.isna().to_numpy(dtype=bool)


def _per_row(codes: np.ndarray, per_unique: np.ndarray, if_missing: bool) -> np.ndarray:
    """Broadcast a per-unique-value flag to rows; factorize marks missing values with -1."""
    return np.append(per_unique, if_missing)[codes]


def _check_id(
    col: pd.Series | None, name: str, reasons: _Reasons, max_length: int | None = None
) -> None:
    if col is None:
        reasons.flag(np.ones(len(reasons.code), dtype=bool), f"missing:{name}")
        return
    # Ids repeat a lot: judge each distinct value once instead of every row.
    codes, uniques = pd.factorize(col)
    is_str = np.array([isinstance(u, str) for u in uniques], dtype=bool)
    blank = np.array([isinstance(u, str) and not u.strip() for u in uniques], dtype=bool)
    reasons.flag(_per_row(codes, blank, True), f"missing:{name}")
    reasons.flag(~_per_row(codes, is_str, True), f"bad_type:{name}")
    if max_length is not None:
        # An id is a key of state and of index documents: an unbounded one is an attack.
        long = np.array([isinstance(u, str) and len(u) > max_length for u in uniques], dtype=bool)
        reasons.flag(_per_row(codes, long, False), f"too_long:{name}")


def _parse_event_time(df: pd.DataFrame, reasons: _Reasons) -> pd.Series:
    n = len(df)
    if "event_time" in df.columns:
        col = df["event_time"].reset_index(drop=True)
        missing = _is_missing(col)
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            parsed = col.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(col.dtype):
            parsed = col.dt.tz_localize("UTC")  # naive times are taken to be UTC
        elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            # A bare number is ambiguous (s? ms? ns?); numbers must use event_time_ms.
            parsed = pd.Series(pd.NaT, index=col.index, dtype=TIMESTAMP_DTYPE)
        else:
            parsed = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
        bad = ~missing & parsed.isna().to_numpy(dtype=bool)
        epoch = pd.Timestamp(EVENT_TIME_MIN_MS, unit="ms", tz="UTC")
        outside = ~missing & ~bad & (parsed < epoch).to_numpy(dtype=bool)
    elif EVENT_TIME_MS in df.columns:
        col = df[EVENT_TIME_MS].reset_index(drop=True)
        missing = _is_missing(col)
        numeric = _to_float(col)
        ok = np.isfinite(numeric) & (np.floor(numeric) == numeric)
        bad = ~missing & ~ok
        # Checked on the number, before any conversion can overflow (the stream does the same).
        with np.errstate(invalid="ignore"):
            inside = (numeric >= EVENT_TIME_MIN_MS) & (numeric < EVENT_TIME_END_MS)
        outside = ok & ~inside
        parsed = timestamps_from_ms(np.where(ok & inside, numeric, 0).astype("int64"))
    else:
        reasons.flag(np.ones(n, dtype=bool), "missing:event_time")
        return pd.Series(pd.NaT, index=range(n), dtype=TIMESTAMP_DTYPE)
    reasons.flag(missing, "missing:event_time")
    reasons.flag(bad, "bad_type:event_time")
    reasons.flag(np.asarray(outside, dtype=bool), "out_of_range:event_time")
    if str(parsed.dtype) != TIMESTAMP_DTYPE:
        parsed = parsed.dt.as_unit("ms")
    return parsed


def _to_float(col: pd.Series) -> np.ndarray:
    """Numeric view of ``col``; non-numeric entries become NaN (callers detect them)."""
    if pd.api.types.is_bool_dtype(col.dtype):
        return np.full(len(col), np.nan)  # True/False is never a measurement
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype="float64", na_value=np.nan)
    as_bool = col.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    numeric = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    numeric[as_bool] = np.nan
    return numeric


def _check_vitals(df: pd.DataFrame, reasons: _Reasons) -> dict[str, np.ndarray]:
    n = len(df)
    values = {}
    for name in VITAL_NAMES:
        if name not in df.columns:
            values[name] = np.full(n, np.nan)
            continue
        col = df[name]
        numeric = _to_float(col)
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            reasons.flag(~_is_missing(col) & np.isnan(numeric), f"bad_type:{name}")
        values[name] = numeric
    all_missing = np.logical_and.reduce([np.isnan(v) for v in values.values()])
    reasons.flag(all_missing, "missing:all_vitals")
    # NaN is a missing vital in a Parquet file; an infinity is a device fault.
    for name, v in values.items():
        reasons.flag(np.isinf(v), f"not_finite:{name}")
    for name, v in values.items():
        lo, hi = valid_range(name)
        with np.errstate(invalid="ignore"):
            reasons.flag(~np.isnan(v) & ~((v >= lo) & (v <= hi)), f"out_of_range:{name}")
    return values


def _check_o2(col: pd.Series, reasons: _Reasons) -> None:
    if pd.api.types.is_bool_dtype(col.dtype):
        return
    codes, uniques = pd.factorize(col)
    is_bool = np.array([isinstance(u, (bool, np.bool_)) for u in uniques], dtype=bool)
    reasons.flag(~_per_row(codes, is_bool, True), "bad_type:o2_supplemental")


def _check_category(
    col: pd.Series, name: str, allowed: Sequence[str], nullable: bool, reasons: _Reasons
) -> None:
    codes, uniques = pd.factorize(col)
    ok = np.array([isinstance(u, str) and u in allowed for u in uniques], dtype=bool)
    if not nullable:
        reasons.flag(codes < 0, f"missing:{name}")
    reasons.flag(~_per_row(codes, ok, nullable), f"bad_value:{name}")


def _check_int(col: pd.Series, name: str, min_value: float, reasons: _Reasons) -> np.ndarray:
    numeric = _to_float(col)
    reasons.flag(_is_missing(col), f"missing:{name}")
    integral = np.isfinite(numeric) & (np.floor(numeric) == numeric)
    reasons.flag(~integral, f"bad_type:{name}")
    reasons.flag(integral & (numeric < min_value), f"out_of_range:{name}")
    return np.where(integral, numeric, 0).astype("int64")


def _canonical(values: object, dtype: str, keep: np.ndarray | None) -> object:
    """Rows ``keep`` of ``values`` in the canonical pandas dtype (no copy when possible)."""
    if isinstance(values, pd.Series):
        values = values.array
    if keep is not None:
        values = values[keep]
    if str(getattr(values, "dtype", "")) == dtype:
        return values
    return pd.array(values, dtype=dtype) if dtype in (STRING_DTYPE, "boolean") else values


def validate_events(
    df: pd.DataFrame, patient_id_max_length: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into (valid rows, quarantined rows); every input row lands in exactly one.

    Accepts canonical frames and loosely typed ones (e.g. decoded Kafka JSON, with
    ``event_time_ms`` instead of ``event_time``). Rules, first failure wins:

    * ``patient_id``/``device_id``: non-empty strings (``missing:``/``bad_type:``); a
      ``patient_id`` longer than ``patient_id_max_length`` (None: any length) →
      ``too_long:patient_id``, as the stream (config ``checks``);
    * ``event_time``: a timestamp or ISO-8601 string (naive = UTC), or integral
      ``event_time_ms``; before 1970 or from 2262-04-11 on (:data:`EVENT_TIME_MIN_MS`,
      :data:`EVENT_TIME_END_MS`) → ``out_of_range:event_time``;
    * vitals: numeric (numeric strings accepted, booleans not) → ``bad_type:<vital>``; all seven
      missing → ``missing:all_vitals``; single missing vitals stay NaN; ±infinity →
      ``not_finite:<vital>``; outside :func:`valid_range` → ``out_of_range:<vital>``;
    * ``o2_supplemental`` boolean or null; ``consciousness`` in ACVPU or null; ``artefact`` in
      :data:`ARTEFACTS` (``bad_value:``); ``clock_skew_ms`` integral, ``network_delay_ms``
      integral and ≥ 0. Absent optional columns get defaults (null, "none", 0).

    Valid rows come back in :data:`EVENT_COLUMNS` order with canonical dtypes (extra columns
    dropped); quarantined rows keep their original columns and values plus a ``reason`` column.
    Both keep the input index. Duplicates and late rows are not this function's concern.
    """
    n = len(df)
    reasons = _Reasons(n)
    frame = df.reset_index(drop=True)
    _check_id(frame.get("patient_id"), "patient_id", reasons, patient_id_max_length)
    _check_id(frame.get("device_id"), "device_id", reasons)
    out: dict[str, object] = {"event_time": _parse_event_time(frame, reasons)}
    out.update(_check_vitals(frame, reasons))
    for name, default in _OPTIONAL_DEFAULTS.items():
        if name not in frame.columns:
            frame[name] = pd.Series([default] * n, dtype=EVENT_DTYPES[name])
    _check_o2(frame["o2_supplemental"], reasons)
    _check_category(frame["consciousness"], "consciousness", CONSCIOUSNESS_LEVELS, True, reasons)
    _check_category(frame["artefact"], "artefact", ARTEFACTS, False, reasons)
    out["clock_skew_ms"] = _check_int(frame["clock_skew_ms"], "clock_skew_ms", -np.inf, reasons)
    out["network_delay_ms"] = _check_int(frame["network_delay_ms"], "network_delay_ms", 0, reasons)

    ok = reasons.code == 0
    keep = None if ok.all() else ok
    columns = {}
    for name in EVENT_COLUMNS:
        source = out[name] if name in out else frame.get(name)
        if source is None:  # a missing identity column: every row is quarantined
            source = pd.Series([pd.NA] * n, dtype=EVENT_DTYPES[name])
        columns[name] = _canonical(source, EVENT_DTYPES[name], keep)
    valid = pd.DataFrame(columns, index=df.index[ok], copy=False)
    quarantined = df[~ok].copy()
    quarantined["reason"] = pd.array(reasons.strings(~ok), dtype=STRING_DTYPE)
    return valid, quarantined
