"""Alerts from a micro-batch on the driver: threshold rows reshaped, the sequential rules
(change, EWMA) in window order per patient, and suppression, with per-patient state saved
per batch so that a restarted job rebuilds it.

Not for: writing alerts anywhere (vitalstream.sinks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from vitalstream.core.diagnostics import (
    PatientState,
    alert_id,
    sequential_alerts,
    suppressed,
)

if TYPE_CHECKING:
    pass

from vitalstream.stream.spec import (
    ALERT_COLUMNS,
    JobSpec,
)


def threshold_alerts(rows: pd.DataFrame, rules: Iterable[Any], kind: str) -> pd.DataFrame:
    """One alert row per (row, fired rule), reshaping Spark's ``fired_rules``.

    ``rows`` are windows (kind "window") or readings (kind "reading"); a reading's time is its
    event time, a window's its start.
    """
    parts = []
    for rule in rules:
        mask = rows["fired_rules"].map(lambda names, name=rule.name: name in list(names))
        fired = rows.loc[mask]
        if fired.empty:
            continue
        parts.append(
            _alert_frame(
                fired,
                kind,
                rule.name,
                rule.severity,
                rule.column,
                fired[rule.column].astype("float64"),
                float(rule.threshold),
            )
        )
    return concat_alerts(parts)


def _alert_frame(
    rows: pd.DataFrame,
    kind: str,
    rule: str,
    severity: str,
    column: str,
    value: Any,
    threshold: float,
) -> pd.DataFrame:
    """Alert rows in ALERT_COLUMNS order (``suppressed`` decided later)."""
    if kind == "window":
        time_col, start, end = rows["window_start"], rows["window_start"], rows["window_end"]
        last_event = rows["last_event_time"]
        send = rows["last_send_wall_ns"]
    else:
        time_col = start = end = last_event = rows["event_time"]
        send = rows["send_wall_ns"]
    frame = pd.DataFrame(
        {
            "patient_id": rows["patient_id"].astype(str).to_numpy(),
            "kind": kind,
            "rule": rule,
            "severity": severity,
            "column": column,
            "value": pd.Series(value).to_numpy(dtype="float64"),
            "threshold": threshold,
            "time": pd.to_datetime(time_col, utc=True).to_numpy(),
            "window_start": pd.to_datetime(start, utc=True).to_numpy(),
            "window_end": pd.to_datetime(end, utc=True).to_numpy(),
            "last_event_time": pd.to_datetime(last_event, utc=True).to_numpy(),
            "last_send_wall_ns": pd.Series(send).to_numpy(dtype="int64"),
            "suppressed": False,
        }
    )
    for col in ("time", "window_start", "window_end", "last_event_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    time_ms = frame["time"].astype("datetime64[ms, UTC]").astype("int64")
    frame.insert(
        0,
        "alert_id",
        [alert_id(p, rule, int(t)) for p, t in zip(frame["patient_id"], time_ms, strict=True)],
    )
    return frame


def concat_alerts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=_ALERT_DTYPES[c]) for c in ALERT_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(ALERT_COLUMNS)]


_ALERT_DTYPES = {
    "alert_id": "object",
    "patient_id": "object",
    "kind": "object",
    "rule": "object",
    "severity": "object",
    "column": "object",
    "value": "float64",
    "threshold": "float64",
    "time": "datetime64[ns, UTC]",
    "window_start": "datetime64[ns, UTC]",
    "window_end": "datetime64[ns, UTC]",
    "last_event_time": "datetime64[ns, UTC]",
    "last_send_wall_ns": "int64",
    "suppressed": "bool",
}


class SinkState:
    """Per-patient state of one sink, saved per batch so that a restart can rebuild it.

    Each batch writes the patients it touched to ``state/<query>/batch_id=<n>.json``. Before
    the first batch after a (re)start, the state is rebuilt from every saved batch before it;
    later saves of a re-run batch overwrite the earlier attempt's file.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.patients: dict[str, PatientState] = {}
        self._restored = False

    def patient(self, patient_id: str) -> PatientState:
        return self.patients.setdefault(patient_id, PatientState())

    def restore(self, before_batch: int) -> None:
        if self._restored:
            return
        self._restored = True
        files = sorted(
            self.directory.glob("batch_id=*.json"), key=lambda p: int(p.stem.split("=")[1])
        )
        for path in files:
            if int(path.stem.split("=")[1]) >= before_batch:
                break
            for pid, data in json.loads(path.read_text()).items():
                self.patients[pid] = PatientState.from_json(data)

    def save(self, batch_id: int, touched: Iterable[str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {
            pid: self.patients[pid].to_json()
            for pid in sorted(set(touched))
            if pid in self.patients
        }
        tmp = self.directory / f"batch_id={batch_id}.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.directory / f"batch_id={batch_id}.json")


def apply_sequential(windows: pd.DataFrame, spec: JobSpec, state: SinkState) -> pd.DataFrame:
    """Change and EWMA alerts of a batch of windows, in window order per patient."""
    rules = spec.diagnostics
    if not rules.sequential_rules or windows.empty:
        return concat_alerts([])
    columns = sorted({r.column for r in rules.sequential_rules})
    ordered = windows.sort_values(["patient_id", "window_start"], kind="stable")
    ends = pd.to_datetime(ordered["window_end"], utc=True).astype("datetime64[ms, UTC]")
    ends_ms = ends.astype("int64").to_numpy()
    parts = []
    for i, (pid, end_ms) in enumerate(zip(ordered["patient_id"].astype(str), ends_ms, strict=True)):
        values = {
            c: float(ordered[c].iat[i]) if pd.notna(ordered[c].iat[i]) else float("nan")
            for c in columns
        }
        fired = sequential_alerts(state.patient(pid), int(end_ms), spec.window_ms, values, rules)
        for rule, severity, value, threshold in fired:
            column = next(r.column for r in rules.sequential_rules if r.name == rule)
            parts.append(
                _alert_frame(
                    ordered.iloc[[i]], "window", rule, severity, column, [value], threshold
                )
            )
    return concat_alerts(parts)


def apply_suppression(alerts: pd.DataFrame, spec: JobSpec, state: SinkState) -> pd.DataFrame:
    """Mark repeats of one rule for one patient within ``suppression_s`` as suppressed."""
    if alerts.empty or spec.diagnostics.suppression_s <= 0:
        return alerts
    alerts = alerts.sort_values(["patient_id", "time", "rule"], kind="stable")
    time_ms = alerts["time"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    flags = [
        suppressed(state.patient(pid), rule, int(t), spec.diagnostics.suppression_s)
        for pid, rule, t in zip(alerts["patient_id"], alerts["rule"], time_ms, strict=True)
    ]
    return alerts.assign(suppressed=flags).reset_index(drop=True)
