"""A Tableau Hyper extract of a run's alerts and hourly vitals, for analysts who use Tableau.

The extract holds two tables in Tableau's conventional ``Extract`` schema:

* ``Extract.alerts``: one row per row of the alert sink (alert id, patient, kind, rule,
  severity, vital, value, threshold, ``time`` as TIMESTAMP_TZ, ``suppressed``);
* ``Extract.hourly``: one row per patient and UTC hour that has windows or alerts: the number
  of windows, the mean of the window means of HR, SpO2, SBP, RR and temperature, the highest
  NEWS2 total, and the number of alerts and of emitted (unsuppressed) alerts in that hour.

The hourly table is computed by Hyper's SQL from the inserted rows, not copied from pandas, so
:func:`hourly_aggregates` (pure pandas) is an independent reference the tests compare it with.
Rows reach Hyper through staging Parquet files that Hyper reads itself (``external()``):
row-by-row insertion from Python would take seconds per hundred thousand alerts.

The Hyper API runs a ``hyperd`` server process: every use here goes through
:func:`hyper_process`, which stops it on exit, never sends usage data, and writes the server's
log to a temporary directory instead of the current working directory (its default).

Input frames are the alert and window sinks of a run directory, or the Parquet dumps of a
run's search index (same columns plus ``run`` and ``indexed_at``); extra columns are ignored.
Alerts are not de-duplicated: the extract has as many rows as the frame it was given.

Not for: reading a run's sinks (measure.metrics), the HTML dashboard (serving.dashboard).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vitalstream.core.cliargs import (
    UsageError,
    existing_dir,
    parquet_input,
    writable_dir,
    writable_file,
)

if TYPE_CHECKING:  # the Hyper API (90 MB) is imported only when an extract is written or read
    from tableauhyperapi import HyperProcess, SqlType, TableDefinition, TableName

SCHEMA = "Extract"
VITALS = ("hr_mean", "spo2_mean", "sbp_mean", "rr_mean", "temp_mean")

# Columns of Extract.alerts: name → (Arrow type of the staging file, Hyper type, nullable).
ALERT_COLUMNS: dict[str, tuple[pa.DataType, str, bool]] = {
    "alert_id": (pa.string(), "text", False),
    "patient_id": (pa.string(), "text", False),
    "kind": (pa.string(), "text", False),
    "rule": (pa.string(), "text", False),
    "severity": (pa.string(), "text", False),
    "column": (pa.string(), "text", True),
    "value": (pa.float64(), "double", True),
    "threshold": (pa.float64(), "double", True),
    "time": (pa.timestamp("us", tz="UTC"), "timestamp_tz", False),
    "suppressed": (pa.bool_(), "bool", False),
}
# The window columns the hourly table needs (the staging file holds only these).
WINDOW_COLUMNS: dict[str, pa.DataType] = {
    "patient_id": pa.string(),
    "window_start": pa.timestamp("us", tz="UTC"),
    **dict.fromkeys(VITALS, pa.float64()),
    "news2_total": pa.int64(),
}
# Columns of Extract.hourly, in order: name → (Hyper type, nullable). Means and the NEWS2
# maximum are NULL in an hour that has alerts but no windows.
HOURLY_COLUMNS: dict[str, tuple[str, bool]] = {
    "patient_id": ("text", False),
    "hour": ("timestamp_tz", False),
    "windows": ("big_int", False),
    **dict.fromkeys(VITALS, ("double", True)),
    "news2_max": ("big_int", True),
    "alerts": ("big_int", False),
    "emitted_alerts": ("big_int", False),
}
# Row order of read_table (and of hourly_aggregates), so that reads are deterministic.
ORDER_BY = {"alerts": ("time", "alert_id"), "hourly": ("patient_id", "hour")}


def default_log_dir() -> Path:
    """Where ``hyperd.log`` goes: a fixed folder under the system's temporary directory."""
    return Path(tempfile.gettempdir()) / "vitalstream-hyperd"


@contextmanager
def hyper_process(log_dir: Path | None = None) -> Iterator[HyperProcess]:
    """A running Hyper server, stopped on exit; no telemetry, log outside the working directory.

    hyperd refuses to start when its log directory does not exist, so it is created first.
    """
    from tableauhyperapi import HyperProcess, Telemetry

    log_dir = log_dir or default_log_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    with HyperProcess(
        Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
        user_agent="vitalstream",
        parameters={"log_dir": str(log_dir)},
    ) as hyper:
        yield hyper


def _required(frame: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    """``frame`` restricted to ``columns``; an empty frame without them counts as no rows."""
    missing = [c for c in columns if c not in frame.columns]
    if missing and len(frame):
        raise ValueError(f"{what} frame lacks column(s): {', '.join(missing)}")
    if missing:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return frame[columns]


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as UTC, to the microsecond Hyper stores (naive ones are taken as UTC).

    The unit is set to ns: sinks write µs or ns, and equal values must compare equal.
    """
    return pd.to_datetime(values, utc=True).dt.floor("us").astype("datetime64[ns, UTC]")


def _flag(values: pd.Series) -> pd.Series:
    """A boolean column; a missing flag counts as False."""
    return values.astype("boolean").fillna(False).astype(bool)


def _text(values: pd.Series) -> pd.Series:
    """Strings, keeping missing values missing (``astype(str)`` would write 'nan')."""
    return values.astype("string").astype(object).where(values.notna(), None)


def normalise_alerts(alerts: pd.DataFrame) -> pd.DataFrame:
    """The alert columns of the extract with the types it stores."""
    frame = _required(alerts, list(ALERT_COLUMNS), "alerts").copy()
    for name, (arrow_type, _, _) in ALERT_COLUMNS.items():
        if pa.types.is_string(arrow_type):
            frame[name] = _text(frame[name])
        elif pa.types.is_floating(arrow_type):
            frame[name] = pd.to_numeric(frame[name]).astype("float64")
    frame["time"] = _utc(frame["time"])
    frame["suppressed"] = _flag(frame["suppressed"])
    return frame.reset_index(drop=True)


def normalise_windows(windows: pd.DataFrame) -> pd.DataFrame:
    """The window columns the hourly table needs, with the types it stores."""
    frame = _required(windows, list(WINDOW_COLUMNS), "windows").copy()
    frame["patient_id"] = _text(frame["patient_id"])
    frame["window_start"] = _utc(frame["window_start"])
    for name in VITALS:
        frame[name] = pd.to_numeric(frame[name]).astype("float64")
    frame["news2_total"] = pd.to_numeric(frame["news2_total"]).astype("Int64")
    return frame.reset_index(drop=True)


def hourly_aggregates(alerts: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``Extract.hourly`` computed with pandas (the reference for the extract).

    An hour of a patient appears when it has a window or an alert; counts are then 0, not
    missing, while the means and ``news2_max`` are missing in an hour with alerts only.
    """
    a, w = normalise_alerts(alerts), normalise_windows(windows)
    a["hour"] = a["time"].dt.floor("h")
    w["hour"] = w["window_start"].dt.floor("h")
    keys = ["patient_id", "hour"]
    per_window = w.groupby(keys).agg(
        windows=("window_start", "size"),
        **{name: (name, "mean") for name in VITALS},
        news2_max=("news2_total", "max"),
    )
    a["emitted_alerts"] = ~a["suppressed"]
    per_alert = a.groupby(keys).agg(
        alerts=("alert_id", "size"), emitted_alerts=("emitted_alerts", "sum")
    )
    hourly = per_window.join(per_alert, how="outer").reset_index()
    for name in ("windows", "alerts", "emitted_alerts"):
        hourly[name] = hourly[name].fillna(0).astype("int64")
    hourly["news2_max"] = hourly["news2_max"].astype("Int64")
    hourly["hour"] = hourly["hour"].astype("datetime64[ns, UTC]")
    ordered = hourly[list(HOURLY_COLUMNS)].sort_values(list(ORDER_BY["hourly"]))
    return ordered.reset_index(drop=True)


def _stage(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> str:
    """Write ``frame`` as Parquet with an explicit schema; return the path as a SQL literal.

    The explicit schema keeps the Hyper column types fixed even for an empty frame (whose
    object columns Arrow would otherwise type as null).
    """
    from tableauhyperapi import escape_string_literal

    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)
    return escape_string_literal(str(path))


def _definition(name: str, columns: dict[str, tuple[str, bool]]) -> TableDefinition:
    """A table of the Extract schema; each type is named by its ``SqlType`` factory."""
    from tableauhyperapi import NOT_NULLABLE, NULLABLE, SqlType, TableDefinition, TableName

    return TableDefinition(
        TableName(SCHEMA, name),
        [
            TableDefinition.Column(
                col, getattr(SqlType, kind)(), NULLABLE if null else NOT_NULLABLE
            )
            for col, (kind, null) in columns.items()
        ],
    )


def _q(name: str) -> str:
    from tableauhyperapi import escape_name

    return escape_name(name)


def _hourly_sql(windows_literal: str) -> str:
    """INSERT of Extract.hourly: windows and alerts per patient and hour, full outer joined."""
    alerts_table = f"{_q(SCHEMA)}.{_q('alerts')}"
    hourly_table = f"{_q(SCHEMA)}.{_q('hourly')}"
    means = ", ".join(f"AVG({_q(v)}) AS {_q(v)}" for v in VITALS)
    w_means = ", ".join(f"w.{_q(v)}" for v in VITALS)
    columns = ", ".join(_q(c) for c in HOURLY_COLUMNS)
    return f"""
        INSERT INTO {hourly_table} ({columns})
        SELECT COALESCE(w.patient_id, a.patient_id), COALESCE(w.hr, a.hr),
               COALESCE(w.n, 0), {w_means}, w.news2_max,
               COALESCE(a.n, 0), COALESCE(a.emitted, 0)
        FROM (
            SELECT patient_id, DATE_TRUNC('hour', window_start) AS hr, COUNT(*) AS n, {means},
                   MAX(news2_total) AS news2_max
            FROM external({windows_literal}) GROUP BY 1, 2
        ) AS w
        FULL OUTER JOIN (
            SELECT patient_id, DATE_TRUNC('hour', {_q("time")}) AS hr, COUNT(*) AS n,
                   COUNT(*) FILTER (WHERE NOT suppressed) AS emitted
            FROM {alerts_table} GROUP BY 1, 2
        ) AS a
        ON w.patient_id = a.patient_id AND w.hr = a.hr
    """


def write_extract(
    alerts: pd.DataFrame, windows: pd.DataFrame, path: Path, *, log_dir: Path | None = None
) -> dict[str, int]:
    """Write the .hyper file (replacing it); return the row counts of its two tables.

    Hyper's session time zone is UTC, so its ``DATE_TRUNC('hour', …)`` on TIMESTAMP_TZ
    gives the same UTC hours as pandas' ``dt.floor('h')``.
    """
    from tableauhyperapi import Connection, CreateMode

    alerts_frame, windows_frame = normalise_alerts(alerts), normalise_windows(windows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    alert_schema = pa.schema([(name, t) for name, (t, _, _) in ALERT_COLUMNS.items()])
    window_schema = pa.schema(list(WINDOW_COLUMNS.items()))
    with tempfile.TemporaryDirectory(prefix="vitalstream-hyper-") as tmp:
        alerts_literal = _stage(alerts_frame, alert_schema, Path(tmp) / "alerts.parquet")
        windows_literal = _stage(windows_frame, window_schema, Path(tmp) / "windows.parquet")
        alert_columns = ", ".join(_q(c) for c in ALERT_COLUMNS)
        with (
            hyper_process(log_dir) as hyper,
            Connection(hyper.endpoint, path, CreateMode.CREATE_AND_REPLACE) as connection,
        ):
            connection.catalog.create_schema_if_not_exists(SCHEMA)
            alert_types = {name: (kind, null) for name, (_, kind, null) in ALERT_COLUMNS.items()}
            connection.catalog.create_table(_definition("alerts", alert_types))
            connection.catalog.create_table(_definition("hourly", HOURLY_COLUMNS))
            n_alerts = connection.execute_command(
                f"INSERT INTO {_q(SCHEMA)}.{_q('alerts')} ({alert_columns}) "
                f"SELECT {alert_columns} FROM external({alerts_literal})"
            )
            n_hourly = connection.execute_command(_hourly_sql(windows_literal))
    return {"alerts": int(n_alerts or 0), "hourly": int(n_hourly or 0)}


def _table_name(name: str) -> TableName:
    """``alerts`` or ``Extract.alerts`` as a Hyper table name."""
    from tableauhyperapi import TableName

    schema, _, table = name.rpartition(".")
    return TableName(schema or SCHEMA, table)


def read_counts(path: Path, *, log_dir: Path | None = None) -> dict[str, int]:
    """Row count of every table of the extract's ``Extract`` schema, by table name."""
    from tableauhyperapi import Connection

    with hyper_process(log_dir) as hyper, Connection(hyper.endpoint, Path(path)) as connection:
        return {
            table.name.unescaped: int(
                connection.execute_scalar_query(f"SELECT COUNT(*) FROM {table}")
            )
            for table in connection.catalog.get_table_names(SCHEMA)
        }


def _column(values: list[Any], kind: SqlType, nullable: bool) -> pd.Series:
    """One column read from Hyper as the pandas type that :func:`hourly_aggregates` uses."""
    from tableauhyperapi import TypeTag

    tag = kind.tag
    if tag in (TypeTag.TIMESTAMP_TZ, TypeTag.TIMESTAMP):
        stamps = [None if v is None else v.to_datetime() for v in values]
        series = pd.Series(pd.to_datetime(stamps, utc=tag == TypeTag.TIMESTAMP_TZ))
        return series.astype("datetime64[ns, UTC]" if tag == TypeTag.TIMESTAMP_TZ else "M8[ns]")
    if tag in (TypeTag.BIG_INT, TypeTag.INT, TypeTag.SMALL_INT):
        return pd.Series(values, dtype="Int64" if nullable else "int64")
    if tag in (TypeTag.DOUBLE, TypeTag.FLOAT):
        return pd.Series([float("nan") if v is None else v for v in values], dtype="float64")
    if tag == TypeTag.BOOL:
        return pd.Series(values, dtype="boolean" if nullable else "bool")
    return pd.Series(values, dtype="object")


def read_table(path: Path, name: str, *, log_dir: Path | None = None) -> pd.DataFrame:
    """A table of the extract (``alerts``, ``hourly`` or a qualified name) as a DataFrame.

    Rows come in the order of :data:`ORDER_BY` for the extract's own tables.
    """
    from tableauhyperapi import Connection, Nullability

    table = _table_name(name)
    with hyper_process(log_dir) as hyper, Connection(hyper.endpoint, Path(path)) as connection:
        definition = connection.catalog.get_table_definition(table)
        keys = ORDER_BY.get(table.name.unescaped, ())
        order = f" ORDER BY {', '.join(_q(k) for k in keys)}" if keys else ""
        rows = connection.execute_list_query(f"SELECT * FROM {table}{order}")
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(definition.columns)
    return pd.DataFrame(
        {
            column.name.unescaped: _column(
                list(values), column.type, column.nullability == Nullability.NULLABLE
            )
            for column, values in zip(definition.columns, columns, strict=True)
        }
    )


def read_run_dir(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The alert and window sinks of a streaming run directory."""
    from vitalstream.measure import metrics

    return (
        metrics.read_parquet_dir(run_dir / "alerts"),
        metrics.read_parquet_dir(run_dir / "windows", query="windows"),
    )


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a command reads alerts and windows: a run directory, or two Parquet files (the
    search index's read-back); shared by hyper-extract and dashboard."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--run-dir", type=existing_dir, help="a run directory (its alerts/, windows/)"
    )
    source.add_argument("--alerts", type=parquet_input, help="alerts Parquet file or dataset")
    parser.add_argument(
        "--windows", type=parquet_input, help="windows Parquet file (with --alerts)"
    )


def read_sources(
    args: argparse.Namespace, command: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Alerts, windows and what they were read from, per :func:`add_source_arguments`."""
    if args.run_dir is not None:
        if args.windows is not None:
            raise UsageError("argument --windows: goes with --alerts, not --run-dir")
        alerts, windows = read_run_dir(args.run_dir)
        return alerts, windows, {"run_dir": str(args.run_dir)}
    if args.windows is None:
        raise UsageError("argument --alerts: needs --windows")
    inputs = {"alerts": str(args.alerts), "windows": str(args.windows)}
    return pd.read_parquet(args.alerts), pd.read_parquet(args.windows), inputs


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hyper-extract", help="write a Tableau .hyper extract of a run's alerts and hourly vitals"
    )
    add_source_arguments(parser)
    parser.add_argument("--out", type=writable_file, required=True, help="the .hyper file to write")
    parser.add_argument("--summary", type=writable_file, help="JSON file for the row counts")
    parser.add_argument(
        "--log-dir", type=writable_dir, help=f"hyperd log folder ({default_log_dir()})"
    )
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    alerts, windows, inputs = read_sources(args, "hyper-extract")
    counts = write_extract(alerts, windows, args.out, log_dir=args.log_dir)
    summary = {"out": str(args.out), "rows": counts, "bytes": args.out.stat().st_size, **inputs}
    if args.summary is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0
