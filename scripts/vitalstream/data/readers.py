"""PhysioNet records → canonical event and label frames: one reader per source.

What it is for: turning the files of each PhysioNet source into the ``events`` / ``labels``
frames of :mod:`vitalstream.core.schema`, so the replay, the Spark job and the notebooks treat
real patients exactly like generated ones. Every row is validated on the way out and the rows
the schema rejects are kept with their reason (:class:`SourceData`), never silently dropped.
Lines a reader cannot even parse (a truncated row, a cell that is not a number, a record wfdb
cannot read) are quarantined the same way, with the file and line they came from, and never
stop the other rows and files:

* ``sepsis2019``: PhysioNet/CinC Challenge 2019, training set A (hourly ICU rows, PSV files);
* ``mimic2_numerics``: MIMIC-II matched-subset monitor numerics (WFDB, one sample a minute);
* ``bidmc``: BIDMC PPG and Respiration numerics (CSV export, one sample a second).

Time: the sources' real dates are shifted or absent, so every source is laid on the timeline
``start`` (default :data:`DEFAULT_START`) + the source's own offset (ICU hour, sample index or
seconds).

Not for: finding or verifying the files (:mod:`vitalstream.data.mirror`), writing them
(:func:`vitalstream.data.physionet.convert`), nor cleaning, imputation or feature engineering
(the sepsis models work on ``hourly``); de-duplication and lateness belong to the stream job, as
for synthetic data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core import schema
from vitalstream.core.schema import EVENT_COLUMNS, LABEL_COLUMNS, VITAL_NAMES
from vitalstream.data.canonical import start_ms
from vitalstream.data.mirror import SPECS
from vitalstream.data.psvfiles import (
    MAX_ICULOS_H,
    PSV_INT_COLUMNS,
    BadLine,
    read_psv_dir,
    row_reasons,
)

DEFAULT_START = "2026-01-01T00:00:00Z"


# --------------------------------------------------------------------------------------------
# Result of a reader
# --------------------------------------------------------------------------------------------


@dataclass
class SourceData:
    """One source in canonical form.

    ``events`` are the rows :func:`vitalstream.core.schema.validate_events` accepts (canonical
    columns and dtypes); ``quarantined`` the rest, same columns plus ``reason``; together they
    are every row read. ``hourly`` is the source's native table where it has one (sepsis2019).
    """

    events: pd.DataFrame
    labels: pd.DataFrame
    quarantined: pd.DataFrame
    summary: dict[str, Any]
    hourly: pd.DataFrame | None = field(default=None)


def _string_column(values: object, n: int | None = None) -> pd.arrays.StringArray:
    """A canonical string column; a scalar is repeated ``n`` times."""
    if n is not None:
        values = np.full(n, values, dtype=object)
    return pd.array(values, dtype=schema.STRING_DTYPE)


def _canonical_events(
    patient_id: pd.arrays.StringArray,
    device_id: str,
    event_ms: np.ndarray,
    vitals: Mapping[str, np.ndarray],
    o2_supplemental: pd.arrays.BooleanArray | None = None,
) -> pd.DataFrame:
    """Build an event frame; real data carries no generator effects (artefact "none", 0 ms)."""
    n = len(event_ms)
    columns: dict[str, Any] = {
        "patient_id": patient_id,
        "device_id": _string_column(device_id, n),
        "event_time": schema.timestamps_from_ms(np.asarray(event_ms, dtype="int64")),
    }
    for name in VITAL_NAMES:
        columns[name] = np.asarray(vitals.get(name, np.full(n, np.nan)), dtype="float64")
    if o2_supplemental is None:
        o2_supplemental = pd.array([pd.NA] * n, dtype="boolean")
    columns["o2_supplemental"] = o2_supplemental
    columns["consciousness"] = pd.array([pd.NA] * n, dtype=schema.STRING_DTYPE)
    columns["artefact"] = _string_column("none", n)
    columns["clock_skew_ms"] = np.zeros(n, dtype="int64")
    columns["network_delay_ms"] = np.zeros(n, dtype="int64")
    assert tuple(columns) == EVENT_COLUMNS  # built in order: no reindexing copy
    return pd.DataFrame(columns, copy=False)


def _labels(rows: Mapping[str, Sequence[Any]], source: str) -> pd.DataFrame:
    """Label frame in canonical order/dtypes; onset and ramp are null unless given."""
    n = len(rows["patient_id"])
    onset = rows.get("onset_ms")
    onset_time = (
        pd.Series(pd.NaT, index=range(n), dtype=schema.TIMESTAMP_DTYPE)
        if onset is None
        else schema.timestamps_from_ms(np.nan_to_num(onset).astype("int64")).where(
            ~np.isnan(np.asarray(onset, dtype="float64")), pd.NaT
        )
    )
    labels = pd.DataFrame(
        {
            "patient_id": _string_column(list(rows["patient_id"])),
            "age": np.asarray(rows["age"], dtype="float64"),
            "sex": pd.array(list(rows["sex"]), dtype=schema.STRING_DTYPE),
            "deteriorates": np.asarray(rows.get("deteriorates", np.zeros(n, bool)), dtype=bool),
            "onset_time": onset_time,
            "ramp_minutes": np.full(n, np.nan),
            "source": _string_column(source, n),
        }
    )
    return labels[list(LABEL_COLUMNS)]


MAX_BAD_LINES_SHOWN = 20  # summary["bad_lines"]: enough to find the files, never a flood


def _split(
    events: pd.DataFrame,
    labels: pd.DataFrame,
    summary: dict[str, Any],
    hourly: pd.DataFrame | None = None,
    where: pd.DataFrame | None = None,
    set_aside: pd.DataFrame | None = None,
) -> SourceData:
    """Validate every row and count the outcome, so nothing leaves a reader unaccounted for.

    ``where`` (``file``, ``line`` per event row) tells the quarantine where each rejected row
    came from; ``set_aside`` holds rows the reader already rejected (lines that did not parse,
    impossible or repeated hours), in quarantine form, which join the schema's rejects.
    """
    valid, quarantined = schema.validate_events(events)
    if where is None:
        where = _where(None, None, len(events))
    quarantined = quarantined.join(where.loc[quarantined.index])
    if set_aside is not None and len(set_aside):
        quarantined = pd.concat([quarantined, set_aside], ignore_index=True)
    reasons = quarantined["reason"].value_counts()
    summary.update(
        rows=len(events) + (0 if set_aside is None else len(set_aside)),
        valid_rows=len(valid),
        quarantined_rows=len(quarantined),
        quarantine_reasons={str(k): int(v) for k, v in sorted(reasons.items())},
    )
    return SourceData(
        events=valid.reset_index(drop=True),
        labels=labels,
        quarantined=quarantined.reset_index(drop=True),
        summary=summary,
        hourly=hourly,
    )


def _where(files: object, lines: object, n: int) -> pd.DataFrame:
    """The quarantine's ``file`` and ``line`` columns (null where unknown)."""
    if files is None or isinstance(files, str):
        files = np.full(n, files, dtype=object)
    if lines is None:
        lines = np.full(n, None, dtype=object)
    return pd.DataFrame(
        {
            "file": pd.array(files, dtype=schema.STRING_DTYPE),
            "line": pd.array(lines, dtype="Int64"),
        }
    )


def _patient_of_file(name: str) -> str:
    """The patient id a source file stands for: ``p000002.psv`` → ``p000002``,
    ``bidmc_01_Numerics.csv`` → ``bidmc_01``, ``s00001-…n.hea`` → its record name."""
    for suffix in ("_Numerics.csv", ".psv", ".hea"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _bad_line_rows(bad: Sequence[BadLine], device_id: str) -> pd.DataFrame:
    """Quarantine rows for lines that never became rows: identity, reason, file and line."""
    n = len(bad)
    events = _canonical_events(
        _string_column([_patient_of_file(b.file) for b in bad]),
        device_id,
        np.zeros(n, dtype="int64"),
        {},
    )
    events["event_time"] = pd.Series(pd.NaT, index=events.index, dtype=schema.TIMESTAMP_DTYPE)
    events["reason"] = _string_column([b.reason for b in bad])
    return events.join(_where([b.file for b in bad], [b.line for b in bad], n))


# --------------------------------------------------------------------------------------------
# PhysioNet/CinC Challenge 2019 (sepsis), training set A
# --------------------------------------------------------------------------------------------

PSV_TO_VITAL: dict[str, str] = {
    "HR": "hr",
    "O2Sat": "spo2",
    "Temp": "temp",
    "SBP": "sbp",
    "MAP": "map",
    "DBP": "dbp",
    "Resp": "rr",
}
# Challenge documentation: "Gender: Female (0) or Male (1)".
SEPSIS_GENDER = {0: "F", 1: "M"}
# t_sepsis = first hour labelled 1 + 6 h (labels are shifted 6 h early; the scorer undoes it).
SEPSIS_LABEL_SHIFT_H = 6
ROOM_AIR_FIO2 = 0.21
HOUR_MS = 3_600_000


@dataclass
class _Hours:
    """The hourly table split into ICU hours and the rows that cannot be one."""

    hourly: pd.DataFrame  # good rows; integer columns are int64
    stems: list[str]
    where: pd.DataFrame  # file, line of each good row
    rejected: pd.DataFrame  # rows that parsed but are not an ICU hour (float columns)
    rejected_reasons: np.ndarray
    rejected_where: pd.DataFrame
    bad_lines: list[BadLine]


def _read_hours(psv_dir: Path) -> _Hours:
    """Parse the PSV files and set aside what cannot be an ICU hour (never fatal)."""
    read = read_psv_dir(psv_dir)
    reasons = row_reasons(read.hourly, read.file)
    ok = reasons == ""
    names = np.asarray([f"{stem}.psv" for stem in read.stems], dtype=object)[read.file]
    where = _where(names, read.line, len(names))
    hourly = read.hourly
    rejected = hourly[~ok].reset_index(drop=True)
    if not ok.all():
        hourly = hourly[ok].reset_index(drop=True)
    for name in PSV_INT_COLUMNS:
        hourly[name] = hourly[name].to_numpy().astype("int64")
    return _Hours(
        hourly,
        read.stems,
        where[ok].reset_index(drop=True),
        rejected,
        reasons[~ok],
        where[~ok].reset_index(drop=True),
        read.bad_lines,
    )


def read_hourly(psv_dir: Path) -> pd.DataFrame:
    """Every PSV file of ``psv_dir`` as one hourly table (patient_id + the 41 columns).

    Only rows that are ICU hours; :func:`read_sepsis2019` quarantines and counts the rest.
    """
    return _read_hours(psv_dir).hourly


def _o2_from_fio2(fio2: np.ndarray) -> pd.arrays.BooleanArray:
    """Supplemental O2 = FiO2 above room air (0.21); unknown where FiO2 was not charted."""
    missing = np.isnan(fio2)
    with np.errstate(invalid="ignore"):
        return pd.arrays.BooleanArray(fio2 > ROOM_AIR_FIO2, missing)


def _sepsis_labels(hourly: pd.DataFrame, stems: Sequence[str], origin_ms: int) -> pd.DataFrame:
    """One label row per file: age, sex, any SepsisLabel, and t_sepsis as onset.

    The challenge labels hours from t_sepsis − 6 h on, so onset (t_sepsis) is the first hour
    labelled 1 plus 6 h; the utility score is defined relative to this time.
    """
    by_patient = hourly.groupby("patient_id", sort=False)
    first = by_patient[["Age", "Gender"]].first().reindex(stems)
    positive = hourly[hourly["SepsisLabel"] == 1]
    first_label_h = positive.groupby("patient_id", sort=False)["ICULOS"].min().reindex(stems)
    onset_ms = (
        origin_ms + (first_label_h.to_numpy(dtype="float64") + SEPSIS_LABEL_SHIFT_H) * HOUR_MS
    )
    sex = first["Gender"].map(SEPSIS_GENDER)
    return _labels(
        {
            "patient_id": stems,
            "age": first["Age"].to_numpy(dtype="float64"),
            "sex": [s if isinstance(s, str) else pd.NA for s in sex],
            "deteriorates": first_label_h.notna().to_numpy(),
            "onset_ms": onset_ms,
        },
        SPECS["sepsis2019"].label_source,
    )


def _sepsis_events(hourly: pd.DataFrame, origin_ms: int, known_hour: np.ndarray) -> pd.DataFrame:
    """Canonical events of hourly rows; ``event_time`` is null where the hour is unusable."""
    iculos = np.where(known_hour, hourly["ICULOS"].to_numpy(), 0).astype("int64")
    events = _canonical_events(
        hourly["patient_id"].array,
        SPECS["sepsis2019"].device_id,
        origin_ms + iculos * HOUR_MS,
        {v: hourly[c].to_numpy(dtype="float64") for c, v in PSV_TO_VITAL.items()},
        _o2_from_fio2(hourly["FiO2"].to_numpy(dtype="float64")),
    )
    if not known_hour.all():
        events["event_time"] = events["event_time"].where(known_hour, pd.NaT)
    return events


def _set_aside(hours: _Hours, origin_ms: int) -> pd.DataFrame:
    """Quarantine rows for the hours the reader rejected and the lines that did not parse."""
    rejected = hours.rejected
    with np.errstate(invalid="ignore"):
        iculos = rejected["ICULOS"].to_numpy(dtype="float64")
        known = (
            np.isfinite(iculos)
            & (iculos >= 0)
            & (iculos <= MAX_ICULOS_H)
            & (iculos == np.round(iculos))
        )
    rows = _sepsis_events(rejected, origin_ms, known)
    rows["reason"] = _string_column(list(hours.rejected_reasons))
    rows = rows.join(hours.rejected_where)
    lines = _bad_line_rows(hours.bad_lines, SPECS["sepsis2019"].device_id)
    return pd.concat([rows, lines], ignore_index=True) if len(lines) else rows


def read_sepsis2019(psv_dir: Path, start: str = DEFAULT_START) -> SourceData:
    """Read a folder of challenge PSV files (one per ICU stay) into canonical tables.

    ``event_time`` = ``start`` + ICULOS hours. Vitals map HR→hr, O2Sat→spo2, Temp→temp,
    SBP→sbp, MAP→map, DBP→dbp, Resp→rr (EtCO2 has no canonical column). ``o2_supplemental`` is
    FiO2 > 0.21 (null when FiO2 is not charted); consciousness is never recorded. Hours with
    no vital at all are real (labs-only hours) and end up quarantined as
    ``missing:all_vitals``; ``hourly`` keeps every hour for the sepsis models.

    A corrupt file stops nothing: its lines that do not parse (a truncated row, a cell that is
    not a number) and its rows that cannot be an ICU hour (an impossible or repeated ICULOS)
    are quarantined with their reason, file and line (:mod:`vitalstream.data.psvfiles`), kept
    out of ``hourly``, counted in the summary, and the other rows and files go on.
    """
    hours = _read_hours(psv_dir)
    hourly, stems = hours.hourly, hours.stems
    origin_ms = start_ms(start)
    events = _sepsis_events(hourly, origin_ms, np.ones(len(hourly), dtype=bool))
    labels = _sepsis_labels(hourly, stems, origin_ms)
    summary: dict[str, Any] = {
        "source": SPECS["sepsis2019"].name,
        "start": start,
        "patients": len(stems),
        "septic_patients": int(labels["deteriorates"].sum()),
        "septic_rows": int((hourly["SepsisLabel"] == 1).sum()),
        "bad_lines": _bad_lines_shown(hours),
    }
    return _split(events, labels, summary, hourly, hours.where, _set_aside(hours, origin_ms))


def _bad_lines_shown(hours: _Hours) -> list[str]:
    """The first few rejected lines as ``file:line: reason (detail)``, for people to look at."""
    shown = [b.describe() for b in hours.bad_lines[:MAX_BAD_LINES_SHOWN]]
    where = hours.rejected_where
    for i in range(min(len(where), MAX_BAD_LINES_SHOWN - len(shown))):
        shown.append(f"{where['file'][i]}:{where['line'][i]}: {hours.rejected_reasons[i]}")
    return shown


# --------------------------------------------------------------------------------------------
# MIMIC-II matched subset: monitor numerics (WFDB)
# --------------------------------------------------------------------------------------------

# Invasive (arterial line) pressure when the monitor has a reading, else the cuff.
MIMIC2_PRESSURES: dict[str, tuple[str, str]] = {
    "sbp": ("ABPSys", "NBPSys"),
    "dbp": ("ABPDias", "NBPDias"),
    "map": ("ABPMean", "NBPMean"),
}
MIMIC2_DIRECT: dict[str, str] = {"hr": "HR", "spo2": "SpO2", "rr": "RESP"}
_AGE_SEX = re.compile(r"<age>:\s*(\S+)\s*<sex>:\s*(\S+)")


def _channel(signals: np.ndarray, names: Sequence[str], name: str) -> np.ndarray:
    """One channel in physical units; 0 means "no reading" on these monitors, so it is NaN."""
    if name not in names:
        return np.full(signals.shape[0], np.nan)
    values = signals[:, list(names).index(name)].astype("float64")
    values[values == 0] = np.nan
    return values


def mimic2_vitals(signals: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Canonical vitals of one record's numerics: the invasive pressure where the arterial
    line has a reading, else the cuff's; 0 ("no reading") is NaN, an absent channel all NaN."""
    vitals = {v: _channel(signals, names, c) for v, c in MIMIC2_DIRECT.items()}
    for vital, (invasive, cuff) in MIMIC2_PRESSURES.items():
        art = _channel(signals, names, invasive)
        vitals[vital] = np.where(np.isnan(art), _channel(signals, names, cuff), art)
    return vitals


def _header_age_sex(comments: Iterable[str]) -> tuple[float, object]:
    """Age and sex from a MIMIC-II header comment ``<age>: 60 <sex>: F``; ``??``/``?`` = null."""
    for comment in comments:
        match = _AGE_SEX.search(comment)
        if match:
            age_text, sex = match.groups()
            age = float(age_text) if re.fullmatch(r"\d+(\.\d+)?", age_text) else np.nan
            return age, sex if sex in schema.SEXES else pd.NA
    return np.nan, pd.NA


def read_mimic2_numerics(record_dir: Path, start: str = DEFAULT_START) -> SourceData:
    """Read every MIMIC-II numerics record (``*n.hea`` under ``record_dir``) with wfdb.

    HR→hr, SpO2→spo2, RESP→rr; sbp/dbp/map from ABPSys/ABPDias/ABPMean where non-zero, else
    from NBPSys/NBPDias/NBPMean. A 0 is the monitor's "no reading" and becomes NaN (as do the
    format's invalid samples). Samples are 1/60 Hz: ``event_time`` = ``start`` + index / fs.
    The records' dates are shifted (e.g. year 2896, beyond pandas' timestamps), so each
    record's base date/time is kept as text in ``summary["base_datetime"]``. Age/sex come
    from the header comment when given; there are no outcome labels (deteriorates False).
    """
    import wfdb  # lazy: importing wfdb costs ~1 s and only this reader needs it

    headers = sorted(Path(record_dir).rglob("*n.hea"))
    if not headers:
        raise FileNotFoundError(f"{record_dir}: no numerics records (*n.hea)")
    spec = SPECS["mimic2_numerics"]
    origin_ms = start_ms(start)
    frames, wheres, bad, ids, ages, sexes, base, fs_hz = [], [], [], [], [], [], {}, {}
    for header in headers:
        try:
            record = wfdb.rdrecord(str(header.with_suffix("")))
        except Exception as exc:  # any failure to read one record is that record's problem
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
            bad.append(BadLine(header.name, None, "malformed:record", first))
            continue
        signals = np.atleast_2d(record.p_signal)
        n = signals.shape[0]
        wheres.append(_where(header.name, None, n))  # a sample has no line: its file only
        offsets = np.round(np.arange(n) / float(record.fs) * 1000.0).astype("int64")
        frames.append(
            _canonical_events(
                _string_column(record.record_name, n),
                spec.device_id,
                origin_ms + offsets,
                mimic2_vitals(signals, record.sig_name),
            )
        )
        age, sex = _header_age_sex(record.comments or ())
        ids.append(record.record_name)
        ages.append(age)
        sexes.append(sex)
        base[record.record_name] = f"{record.base_date} {record.base_time}"
        fs_hz[record.record_name] = float(record.fs)
    events = (
        pd.concat(frames, ignore_index=True)
        if frames
        else _canonical_events(_string_column([]), spec.device_id, np.zeros(0, dtype="int64"), {})
    )
    labels = _labels({"patient_id": ids, "age": ages, "sex": sexes}, spec.label_source)
    summary: dict[str, Any] = {
        "source": spec.name,
        "start": start,
        "patients": len(ids),
        "septic_patients": None,  # no sepsis labels in this source
        "base_datetime": base,
        "fs_hz": fs_hz,
        "bad_lines": [b.describe() for b in bad[:MAX_BAD_LINES_SHOWN]],
    }
    where = pd.concat(wheres, ignore_index=True) if wheres else None
    return _split(events, labels, summary, None, where, _bad_line_rows(bad, spec.device_id))


# --------------------------------------------------------------------------------------------
# BIDMC PPG and Respiration Dataset: 1 Hz numerics (CSV export)
# --------------------------------------------------------------------------------------------

BIDMC_COLUMNS: tuple[str, ...] = ("Time [s]", "HR", "PULSE", "RESP", "SpO2")
# HR comes from the ECG; PULSE (from the PPG) has no canonical column of its own.
BIDMC_TO_VITAL: dict[str, str] = {"HR": "hr", "RESP": "rr", "SpO2": "spo2"}


# A recording's own time axis: anything beyond a year of seconds is a corrupt cell.
MAX_BIDMC_SECONDS = 366 * 86_400


def _bidmc_cell(text: str) -> float | None:
    """One numeric cell (empty or "NaN" = NaN); None when it is not a number."""
    text = text.strip()
    if text in ("", "NaN", "nan"):
        return np.nan
    try:
        return float(text)
    except ValueError:
        return None


def _bidmc_line_problem(cells: Sequence[str], values: Sequence[float | None]) -> str | None:
    if len(cells) != len(BIDMC_COLUMNS):
        return "malformed:fields"
    for name, value in zip(BIDMC_COLUMNS, values, strict=True):
        if value is None:
            return f"bad_type:{name}"
    seconds = values[0]
    if seconds is None or not np.isfinite(seconds):
        return f"missing:{BIDMC_COLUMNS[0]}"
    if abs(seconds) > MAX_BIDMC_SECONDS:
        return f"out_of_range:{BIDMC_COLUMNS[0]}"
    return None


def _bidmc_numerics(path: Path) -> tuple[pd.DataFrame, list[int], list[BadLine]]:
    """One numerics file: its good rows, their line numbers, and the lines set aside.

    Read line by line (53 files of 481 lines), so one truncated row or bad cell is one
    quarantined line naming the file, not an exception that stops every recording.
    """
    lines = path.read_text(errors="replace").splitlines()
    header = tuple(c.strip() for c in lines[0].split(",")) if lines else ()
    rows: list[list[float | None]] = []
    numbers: list[int] = []
    bad: list[BadLine] = []
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        cells = text.split(",")
        values = [_bidmc_cell(c) for c in cells]
        problem = (
            _bidmc_line_problem(cells, values) if header == BIDMC_COLUMNS else "malformed:header"
        )
        if problem is None:
            rows.append(values)
            numbers.append(number)
        else:
            bad.append(BadLine(path.name, number, problem, text.strip()[:60]))
    frame = pd.DataFrame(rows, columns=list(BIDMC_COLUMNS), dtype="float64")
    return frame, numbers, bad


def _bidmc_fixed(path: Path) -> tuple[float, object]:
    """Age and sex from ``bidmc_NN_Fix.txt``; "90+" is read as 90 (ages above are censored)."""
    if not path.is_file():  # a lost Fix file costs the demographics, not the recording
        return np.nan, pd.NA
    fields = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    age_text = fields.get("Age", "").rstrip("+")
    age = float(age_text) if re.fullmatch(r"\d+(\.\d+)?", age_text) else np.nan
    sex = fields.get("Gender", "")
    return age, sex if sex in schema.SEXES else pd.NA


def read_bidmc(csv_dir: Path, start: str = DEFAULT_START) -> SourceData:
    """Read ``bidmc_NN_Numerics.csv`` (+ ``bidmc_NN_Fix.txt``) of every BIDMC recording.

    HR→hr, RESP→rr, SpO2→spo2 at 1 Hz; ``event_time`` = ``start`` + the file's own ``Time [s]``.
    The file's time axis is kept as is, not renumbered from 0, so events stay aligned with the
    recording's signals and breath annotations; one official file (bidmc_23) starts at −1 s,
    so its first event lies 1 s before ``start``. Values are not altered: a RESP of 0 is
    quarantined as out of range. No outcome labels (deteriorates False).
    """
    files = sorted(Path(csv_dir).glob("bidmc_*_Numerics.csv"))
    if not files:
        raise FileNotFoundError(f"{csv_dir}: no bidmc_*_Numerics.csv files")
    spec = SPECS["bidmc"]
    origin_ms = start_ms(start)
    frames, wheres, bad, ids, ages, sexes, first_s = [], [], [], [], [], [], {}
    for path in files:
        patient = path.name.removesuffix("_Numerics.csv")
        numerics, numbers, bad_here = _bidmc_numerics(path)
        wheres.append(_where(path.name, numbers, len(numbers)))
        bad += bad_here
        seconds = numerics["Time [s]"].to_numpy(dtype="float64")
        frames.append(
            _canonical_events(
                _string_column(patient, len(numerics)),
                spec.device_id,
                origin_ms + np.round(seconds * 1000.0).astype("int64"),
                {v: numerics[c].to_numpy(dtype="float64") for c, v in BIDMC_TO_VITAL.items()},
            )
        )
        age, sex = _bidmc_fixed(path.with_name(f"{patient}_Fix.txt"))
        ids.append(patient)
        ages.append(age)
        sexes.append(sex)
        first_s[patient] = float(seconds[0]) if len(seconds) else None
    events = pd.concat(frames, ignore_index=True)
    labels = _labels({"patient_id": ids, "age": ages, "sex": sexes}, spec.label_source)
    summary: dict[str, Any] = {
        "source": spec.name,
        "start": start,
        "patients": len(ids),
        "septic_patients": None,  # no sepsis labels in this source
        "recordings_not_starting_at_0s": {k: v for k, v in first_s.items() if v != 0.0},
        "bad_lines": [b.describe() for b in bad[:MAX_BAD_LINES_SHOWN]],
    }
    where = pd.concat(wheres, ignore_index=True)
    return _split(events, labels, summary, None, where, _bad_line_rows(bad, spec.device_id))


READERS: dict[str, Callable[[Path, str], SourceData]] = {
    "sepsis2019": read_sepsis2019,
    "mimic2_numerics": read_mimic2_numerics,
    "bidmc": read_bidmc,
}
