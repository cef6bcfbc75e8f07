"""Challenge PSV files → one hourly table, without letting one corrupt file stop the others.

What it is for: :func:`read_psv_dir`, the parsing half of the sepsis2019 reader
(:func:`vitalstream.data.readers.read_sepsis2019`). Every file is still parsed in one pass over
one buffer (what makes 20,336 files load in seconds), but a file that breaks that pass no longer
breaks the conversion: the broken files are found by bisection, their lines are checked one by
one, and each line that cannot be a row is kept as a :class:`BadLine` (file, line, reason) while
its good lines and all the other files go on. :func:`row_reasons` then names the rows that parse
but cannot be an ICU hour (an impossible or repeated ``ICULOS``, a Gender or SepsisLabel that is
not 0/1), so the reader can quarantine them instead of dying on them.

Reasons (the quarantine's ``reason`` column; first failure wins):

* ``malformed:header``: the file's header is not the challenge's 41 columns, so none of its
  lines can be read safely (every data line is quarantined);
* ``malformed:fields``: a line without exactly 41 ``|``-separated fields (a truncated row);
* ``bad_type:<column>``: a cell that is not a number (nor ``NaN``);
* ``missing:<column>``, ``out_of_range:ICULOS``, ``not_integral:ICULOS``,
  ``bad_value:Gender``/``bad_value:SepsisLabel``, ``duplicate:ICULOS``: see :func:`row_reasons`.

Not for: canonical events, labels or validation of vitals (the reader and
:func:`vitalstream.core.schema.validate_events`), nor other sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

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
# ICULOS is hours since ICU admission. No stay lasts a (leap) year: set A's longest is 336 h,
# so a larger value (e.g. 1e12, which would also overflow the event time) is a corrupt cell.
MAX_ICULOS_H = 366 * 24
_FIELDS = len(PSV_COLUMNS)
_COLUMN_NUMBER = re.compile(r"column #(\d+)")


@dataclass(frozen=True)
class BadLine:
    """One line of a source file that could not become a row: where it is and why (the
    BIDMC and MIMIC-II readers use it too)."""

    file: str  # file name, e.g. "p000002.psv"
    line: int | None  # 1-based physical line (the header is line 1); None for a whole record
    reason: str
    detail: str

    def describe(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason} ({self.detail})"


@dataclass
class PsvRead:
    """What :func:`read_psv_dir` parsed.

    ``hourly`` holds every row that parsed (patient_id + the 41 columns, all float64: the
    integer columns are checked by :func:`row_reasons` before they are cast); ``file`` and
    ``line`` say where each of its rows comes from; ``bad_lines`` the lines that did not parse.
    """

    hourly: pd.DataFrame
    stems: list[str]
    file: np.ndarray  # index into ``stems`` of each row
    line: np.ndarray  # physical line number of each row
    bad_lines: list[BadLine]


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def parse_psv(data: bytes | bytearray) -> pa.Table:
    """Parse header-less PSV lines; raises ``pyarrow.ArrowInvalid`` on any bad line."""
    import pyarrow.csv as pacsv  # lazy: only this reader needs the CSV module

    if not data:  # every line of every file set aside: an empty table, not "Empty CSV file"
        return pa.table({c: pa.array([], pa.float64()) for c in PSV_COLUMNS})

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


def _read_bodies(files: Sequence[Path]) -> tuple[bytearray, list[int], dict[int, str]]:
    """All files' data lines in one buffer, each file's end offset, and the suspect files.

    One growing buffer, not a list + join: half the peak memory. A file is suspect when its
    header is not the challenge's (``"header"``) or when counting bytes already shows a line
    without 41 fields or a blank line (``"lines"``): both would shift or break the one parse.
    """
    data = bytearray()
    ends: list[int] = []
    suspects: dict[int, str] = {}
    for i, path in enumerate(files):
        header, _, body = path.read_bytes().partition(b"\n")
        if body and not body.endswith(b"\n"):
            body += b"\n"
        if header.rstrip(b"\r") != PSV_HEADER:
            suspects[i] = "header"
        elif body.count(b"|") != (_FIELDS - 1) * body.count(b"\n") or _has_blank_line(body):
            suspects[i] = "lines"
        data += body
        ends.append(len(data))
    return data, ends, suspects


def _has_blank_line(body: bytes) -> bool:
    return body.startswith((b"\n", b"\r\n")) or b"\n\n" in body or b"\n\r\n" in body


def _piece(data: bytearray, ends: Sequence[int], indices: Sequence[int]) -> bytes:
    view = memoryview(data)
    return b"".join(view[(ends[i - 1] if i else 0) : ends[i]] for i in indices)


def _unparseable(data: bytearray, ends: Sequence[int], indices: Sequence[int]) -> set[int]:
    """The files among ``indices`` whose lines break the parse, found by bisection.

    A handful of bad files among 20,000 costs a few parses of halving size, not 20,000 calls.
    """
    if not indices:
        return set()
    try:
        parse_psv(_piece(data, ends, indices))
        return set()
    except pa.ArrowInvalid:
        if len(indices) == 1:
            return {indices[0]}
    middle = len(indices) // 2
    return _unparseable(data, ends, indices[:middle]) | _unparseable(data, ends, indices[middle:])


def _line_problem(text: bytes) -> tuple[str, str] | None:
    """(reason, detail) if one data line cannot be a row, else None."""
    fields = text.split(b"|")
    if len(fields) != _FIELDS:
        return "malformed:fields", f"{len(fields)} of {_FIELDS} fields"
    try:
        parse_psv(text + b"\n")
    except pa.ArrowInvalid as exc:
        match = _COLUMN_NUMBER.search(str(exc))
        if match is None:
            return "malformed:fields", str(exc).splitlines()[0]
        index = int(match.group(1))
        value = fields[index].decode(errors="replace")[:40]
        return f"bad_type:{PSV_COLUMNS[index]}", f"not a number: {value!r}"
    return None


def _clean_body(name: str, body: bytes, header_ok: bool) -> tuple[bytes, list[int], list[BadLine]]:
    """A suspect file's good lines (as one body), their line numbers, and its bad lines.

    Blank lines are skipped (they are not rows). A wrong header condemns every line.
    """
    kept: list[bytes] = []
    numbers: list[int] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(body.split(b"\n"), start=2):
        text = raw.rstrip(b"\r")
        if not text.strip():
            continue
        problem = (
            _line_problem(text)
            if header_ok
            else ("malformed:header", "not the 41 challenge columns")
        )
        if problem is None:
            kept.append(text)
            numbers.append(number)
        else:
            bad.append(BadLine(name, number, *problem))
    return b"".join(t + b"\n" for t in kept), numbers, bad


def _repaired(
    files: Sequence[Path], data: bytearray, ends: Sequence[int], suspects: dict[int, str]
) -> tuple[bytearray, np.ndarray, np.ndarray, list[BadLine]]:
    """Rebuild the buffer with every broken file reduced to its good lines.

    Only run when the one-pass parse cannot work; returns the new buffer, the file and the
    line number of each of its rows, and every bad line.
    """
    good = [i for i in range(len(files)) if i not in suspects]
    broken = {**{i: "lines" for i in _unparseable(data, ends, good)}, **suspects}
    out = bytearray()
    lines: list[np.ndarray] = []
    bad: list[BadLine] = []
    for i, path in enumerate(files):
        body = _piece(data, ends, [i])
        if i in broken:
            body, numbers, bad_here = _clean_body(path.name, body, broken[i] != "header")
            bad += bad_here
            lines.append(np.asarray(numbers, dtype=np.int64))
        else:
            lines.append(np.arange(2, 2 + body.count(b"\n"), dtype=np.int64))
        out += body
    file_index = np.repeat(np.arange(len(files)), [len(x) for x in lines])
    return out, file_index, np.concatenate(lines), bad


def _rows_of_clean_files(data: bytearray, ends: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """File and line of each row when every file parsed: lines 2, 3, … (no blank lines, as
    checked when read)."""
    starts = [0, *ends[:-1]]
    counts = [data.count(b"\n", s, e) for s, e in zip(starts, ends, strict=True)]
    lines = [np.arange(2, 2 + c, dtype=np.int64) for c in counts]
    return np.repeat(np.arange(len(ends)), counts), np.concatenate(lines)


def read_psv_dir(psv_dir: Path) -> PsvRead:
    """Parse every ``*.psv`` of ``psv_dir``; bad lines are set aside, never fatal."""
    files = sorted(Path(psv_dir).glob("*.psv"))
    if not files:
        raise FileNotFoundError(f"{psv_dir}: no *.psv files")
    data, ends, suspects = _read_bodies(files)
    table = None
    bad: list[BadLine] = []
    if not suspects:
        try:
            table = parse_psv(data)
            file_index, lines = _rows_of_clean_files(data, ends)
        except pa.ArrowInvalid:
            table = None
    if table is None:
        data, file_index, lines, bad = _repaired(files, data, ends, suspects)
        table = parse_psv(data)
    del data
    if table.num_rows != len(lines):  # would shift the patient column: a bug, not bad data
        raise AssertionError(f"{psv_dir}: {table.num_rows} parsed rows but {len(lines)} lines")
    # self_destruct frees each Arrow column once converted (peak ~1x the table, not 2x).
    hourly = table.to_pandas(
        split_blocks=True, self_destruct=True, memory_pool=pa.system_memory_pool()
    )
    del table
    stems = [f.stem for f in files]
    patient = np.asarray(stems, dtype=object)[file_index]
    hourly.insert(0, "patient_id", pd.array(patient, dtype="string"))
    return PsvRead(hourly, stems, file_index, lines, bad)


# --------------------------------------------------------------------------------------------
# Rows that parse but cannot be an ICU hour
# --------------------------------------------------------------------------------------------


def row_reasons(hourly: pd.DataFrame, file_index: np.ndarray) -> np.ndarray:
    """Why each row cannot be an ICU hour ("" when it can); first failure wins.

    ICULOS must be present, whole, and in [0, :data:`MAX_ICULOS_H`] (``missing:``,
    ``not_integral:``, ``out_of_range:ICULOS``); Gender and SepsisLabel must be 0 or 1
    (``missing:``/``bad_value:``); and one record cannot hold the same ICU hour twice: every
    repeat after the first is ``duplicate:ICULOS`` (the hour is the hourly table's key).
    """
    reasons = np.full(len(hourly), "", dtype=object)

    def flag(mask: np.ndarray, reason: str) -> None:
        reasons[mask & (reasons == "")] = reason

    iculos = hourly["ICULOS"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        flag(np.isnan(iculos), "missing:ICULOS")
        flag(~np.isnan(iculos) & ((iculos < 0) | (iculos > MAX_ICULOS_H)), "out_of_range:ICULOS")
        flag(np.isfinite(iculos) & (iculos != np.round(iculos)), "not_integral:ICULOS")
        for name in ("Gender", "SepsisLabel"):
            values = hourly[name].to_numpy(dtype="float64")
            flag(np.isnan(values), f"missing:{name}")
            flag(~np.isin(values, (0.0, 1.0)), f"bad_value:{name}")
    ok = np.flatnonzero(reasons == "")
    keys = pd.DataFrame({"file": file_index[ok], "hour": iculos[ok].astype(np.int64)})
    flag(_positions(ok[keys.duplicated(keep="first").to_numpy()], len(reasons)), "duplicate:ICULOS")
    return reasons


def _positions(index: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[index] = True
    return mask
