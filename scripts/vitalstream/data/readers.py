"""PhysioNet records → canonical event and label frames: one reader per source.

What it is for: turning the files of each PhysioNet source into the ``events`` / ``labels``
frames of :mod:`vitalstream.core.schema`, so the replay, the Spark job and the notebooks treat
real patients exactly like generated ones. Every row is validated on the way out and the rows
the schema rejects are kept with their reason (:class:`SourceData`), never silently dropped:

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
import pyarrow as pa

from vitalstream.core import schema
from vitalstream.core.schema import EVENT_COLUMNS, LABEL_COLUMNS, VITAL_NAMES
from vitalstream.data.canonical import start_ms
from vitalstream.data.mirror import SPECS

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


def _split(
    events: pd.DataFrame,
    labels: pd.DataFrame,
    summary: dict[str, Any],
    hourly: pd.DataFrame | None = None,
) -> SourceData:
    """Validate every row and count the outcome, so nothing leaves a reader unaccounted for."""
    valid, quarantined = schema.validate_events(events)
    reasons = quarantined["reason"].value_counts()
    summary.update(
        rows=len(events),
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


# --------------------------------------------------------------------------------------------
# PhysioNet/CinC Challenge 2019 (sepsis), training set A
# --------------------------------------------------------------------------------------------

PSV_COLUMNS: tuple[str, ...] = (
    *("HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp", "EtCO2"),
    *("BaseExcess", "HCO3", "FiO2", "pH", "PaCO2", "SaO2", "AST", "BUN", "Alkalinephos"),
    *("Calcium", "Chloride", "Creatinine", "Bilirubin_direct", "Glucose", "Lactate"),
    *("Magnesium", "Phosphate", "Potassium", "Bilirubin_total", "TroponinI", "Hct", "Hgb"),
    *("PTT", "WBC", "Fibrinogen", "Platelets"),
    *("Age", "Gender", "Unit1", "Unit2", "HospAdmTime", "ICULOS", "SepsisLabel"),
)
PSV_HEADER = "|".join(PSV_COLUMNS).encode()
# Columns that are integers in every file; any other column may be NaN.
PSV_INT_COLUMNS: tuple[str, ...] = ("Gender", "ICULOS", "SepsisLabel")
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


def _psv_bodies(files: Sequence[Path]) -> tuple[bytearray, np.ndarray]:
    """All files' data lines concatenated (headers dropped) and each file's row count.

    One parse over one buffer is what makes 20,336 files load in seconds: per-file
    ``read_csv`` calls cost ~1 ms each in overhead alone. Every header must be exactly the
    challenge's, or the columns of the concatenation would silently mean different things.
    """
    data = bytearray()  # one growing buffer, not a list + join: half the peak memory
    counts = np.zeros(len(files), dtype=np.int64)
    for i, path in enumerate(files):
        raw = path.read_bytes()
        header, _, body = raw.partition(b"\n")
        if header.rstrip(b"\r") != PSV_HEADER:
            raise ValueError(f"{path}: unexpected header (expected the 41 challenge columns)")
        if body and not body.endswith(b"\n"):
            body += b"\n"
        counts[i] = body.count(b"\n")
        data += body
    return data, counts


def _parse_psv(data: bytearray) -> pa.Table:
    import pyarrow.csv as pacsv  # lazy: only this reader needs the CSV module

    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=list(PSV_COLUMNS)),
        parse_options=pacsv.ParseOptions(delimiter="|"),
        convert_options=pacsv.ConvertOptions(
            null_values=["NaN"],
            strings_can_be_null=False,
            column_types={c: pa.float64() for c in PSV_COLUMNS},
        ),
        # The system allocator hands the table's memory back once pandas owns the data.
        memory_pool=pa.system_memory_pool(),
    )


def _read_hourly(psv_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The native hourly table: patient_id + the 41 PSV columns, one row per ICU hour."""
    files = sorted(Path(psv_dir).glob("*.psv"))
    if not files:
        raise FileNotFoundError(f"{psv_dir}: no *.psv files")
    data, counts = _psv_bodies(files)
    table = _parse_psv(data)
    del data
    if table.num_rows != int(counts.sum()):  # blank lines would shift the patient column
        raise ValueError(f"{psv_dir}: {table.num_rows} parsed rows but {counts.sum()} lines")
    stems = [f.stem for f in files]
    # self_destruct frees each Arrow column once converted (peak ~1x the table, not 2x).
    hourly = table.to_pandas(
        split_blocks=True, self_destruct=True, memory_pool=pa.system_memory_pool()
    )
    del table
    for name in PSV_INT_COLUMNS:
        values = hourly[name].to_numpy()
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if len(bad):
            patient = np.repeat(stems, counts)[bad[0]]
            raise ValueError(f"{psv_dir}/{patient}.psv: {name} must be an integer in every row")
        hourly[name] = values.astype("int64")
    hourly.insert(0, "patient_id", _string_column(np.repeat(np.asarray(stems, object), counts)))
    return hourly, stems


def read_hourly(psv_dir: Path) -> pd.DataFrame:
    """Every PSV file of ``psv_dir`` as one hourly table (patient_id + the 41 columns)."""
    return _read_hourly(psv_dir)[0]


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


def read_sepsis2019(psv_dir: Path, start: str = DEFAULT_START) -> SourceData:
    """Read a folder of challenge PSV files (one per ICU stay) into canonical tables.

    ``event_time`` = ``start`` + ICULOS hours. Vitals map HR→hr, O2Sat→spo2, Temp→temp,
    SBP→sbp, MAP→map, DBP→dbp, Resp→rr (EtCO2 has no canonical column). ``o2_supplemental`` is
    FiO2 > 0.21 (null when FiO2 is not charted); consciousness is never recorded. Hours with
    no vital at all are real (labs-only hours) and end up quarantined as
    ``missing:all_vitals``; ``hourly`` keeps every hour for the sepsis models.
    """
    hourly, stems = _read_hourly(psv_dir)
    origin_ms = start_ms(start)
    event_ms = origin_ms + hourly["ICULOS"].to_numpy() * HOUR_MS
    vitals = {v: hourly[c].to_numpy() for c, v in PSV_TO_VITAL.items()}
    spec = SPECS["sepsis2019"]
    events = _canonical_events(
        hourly["patient_id"].array,
        spec.device_id,
        event_ms,
        vitals,
        _o2_from_fio2(hourly["FiO2"].to_numpy()),
    )
    labels = _sepsis_labels(hourly, stems, origin_ms)
    summary: dict[str, Any] = {
        "source": spec.name,
        "start": start,
        "patients": len(stems),
        "septic_patients": int(labels["deteriorates"].sum()),
        "septic_rows": int((hourly["SepsisLabel"] == 1).sum()),
    }
    return _split(events, labels, summary, hourly)


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
    frames, ids, ages, sexes, base, fs_hz = [], [], [], [], {}, {}
    for header in headers:
        record = wfdb.rdrecord(str(header.with_suffix("")))
        signals = np.atleast_2d(record.p_signal)
        n = signals.shape[0]
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
    events = pd.concat(frames, ignore_index=True)
    labels = _labels({"patient_id": ids, "age": ages, "sex": sexes}, spec.label_source)
    summary: dict[str, Any] = {
        "source": spec.name,
        "start": start,
        "patients": len(ids),
        "septic_patients": None,  # no sepsis labels in this source
        "base_datetime": base,
        "fs_hz": fs_hz,
    }
    return _split(events, labels, summary)


# --------------------------------------------------------------------------------------------
# BIDMC PPG and Respiration Dataset: 1 Hz numerics (CSV export)
# --------------------------------------------------------------------------------------------

BIDMC_COLUMNS: tuple[str, ...] = ("Time [s]", "HR", "PULSE", "RESP", "SpO2")
# HR comes from the ECG; PULSE (from the PPG) has no canonical column of its own.
BIDMC_TO_VITAL: dict[str, str] = {"HR": "hr", "RESP": "rr", "SpO2": "spo2"}


def _bidmc_numerics(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, skipinitialspace=True)
    frame.columns = [c.strip() for c in frame.columns]
    if tuple(frame.columns) != BIDMC_COLUMNS:
        raise ValueError(f"{path}: columns {list(frame.columns)}, expected {list(BIDMC_COLUMNS)}")
    return frame


def _bidmc_fixed(path: Path) -> tuple[float, object]:
    """Age and sex from ``bidmc_NN_Fix.txt``; "90+" is read as 90 (ages above are censored)."""
    fields = {}
    for line in path.read_text().splitlines():
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
    frames, ids, ages, sexes, first_s = [], [], [], [], {}
    for path in files:
        patient = path.name.removesuffix("_Numerics.csv")
        numerics = _bidmc_numerics(path)
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
    }
    return _split(events, labels, summary)


READERS: dict[str, Callable[[Path, str], SourceData]] = {
    "sepsis2019": read_sepsis2019,
    "mimic2_numerics": read_mimic2_numerics,
    "bidmc": read_bidmc,
}
