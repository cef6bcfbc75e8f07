"""Streaming vs batch reference: the comparison behind the paper's validation table.

For one run it compares the windows and alerts the Spark job wrote with those the batch
reference (vitalstream.reference.batch) computes from the same events and the same definitions:

* windows: every (patient, window) of the reference is looked up in the stream; a window is
  *complete* when the stream counted as many events as the reference, and a complete window
  *matches* when every shared column agrees (floats to 1e-9 relative, nulls alike);
* events missing from the stream (reference count minus stream count, over all windows) must
  equal the rows the job itself reports as dropped behind the watermark, less the late
  duplicates: a repeat of a reading that arrives behind the watermark is dropped by the stream
  as late (before its duplicate check) but was never counted by the reference, which drops
  every repeat. Their number is the reference's duplicates minus the stream's
  (``windows.attrs["duplicates"]`` of the reference's windows.parquet; every repeat the stream
  counts as a duplicate is one the reference dropped too), so the check stays exact;
* alerts: ids and suppression flags of the alerts of complete windows.

Not for: running either side (vitalstream.experiments.run, vitalstream.reference.batch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import existing_dir, writable_file
from vitalstream.measure import metrics

KEYS = ["patient_id", "window_start"]
NS_UTC = "datetime64[ns, UTC]"
IGNORED = {"last_event_time", "last_send_wall_ns", "batch_id", "query", "window_end"}


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True).astype(NS_UTC)
    frame["patient_id"] = frame["patient_id"].astype(str)
    return frame.set_index(KEYS).sort_index()


def _equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise agreement: nulls alike, numbers to 1e-9 relative, the rest as text."""
    a_null, b_null = a.isna().to_numpy(), b.isna().to_numpy()
    same = a_null == b_null
    both = ~a_null & ~b_null
    if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
        x, y = a.to_numpy(float), b.to_numpy(float)
        close = np.isclose(x, y, rtol=1e-9, atol=1e-12)
        return same & (~both | close)
    text_equal = a.astype(str).to_numpy() == b.astype(str).to_numpy()
    return same & (~both | text_equal)


# Window values whose error late data causes is reported (RQ3): two vitals and NEWS2.
ERROR_COLUMNS = ("hr_mean", "spo2_mean", "news2_total")


def value_errors(stream: pd.DataFrame, ref: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """Per column, over windows both sides wrote: mean and largest absolute difference, and
    how many windows differ (a window that missed late readings has other values)."""
    errors: dict[str, dict[str, float | int]] = {}
    for column in ERROR_COLUMNS:
        if column not in stream or column not in ref:
            continue
        diff = (stream[column].astype(float) - ref[column].astype(float)).abs()
        diff = diff[diff.notna()]
        errors[column] = {
            "mae": float(diff.mean()) if len(diff) else 0.0,
            "max": float(diff.max()) if len(diff) else 0.0,
            "windows_differing": int((diff > 1e-9).sum()),
        }
    return errors


def compare_windows(stream: pd.DataFrame, ref: pd.DataFrame) -> dict[str, Any]:
    """Counts of compared, complete, matching and mismatching windows, and missing events."""
    stream, ref = _keyed(stream), _keyed(ref)
    joined = ref[["n"]].join(stream[["n"]], rsuffix="_stream", how="left")
    joined["n_stream"] = joined["n_stream"].fillna(0).astype(int)
    complete = joined.index[joined["n"] == joined["n_stream"]]
    columns = [c for c in ref.columns if c in stream.columns and c not in IGNORED]
    agree = np.ones(len(complete), dtype=bool)
    mismatched_columns: dict[str, int] = {}
    for column in columns:
        ok = _equal(stream.loc[complete, column], ref.loc[complete, column])
        if not ok.all():
            mismatched_columns[column] = int((~ok).sum())
        agree &= ok
    present = ref.index.intersection(stream.index)
    return {
        "events_reference": int(joined["n"].sum()),
        # Share of the reference's events that reached their window (RQ3's completeness).
        "completeness": float(joined["n_stream"].sum() / joined["n"].sum()) if len(joined) else 1.0,
        "windows_missing": len(ref.index.difference(stream.index)),
        "value_error": value_errors(stream.loc[present], ref.loc[present]),
        "windows_reference": len(ref),
        "windows_stream": len(stream),
        "windows_extra_in_stream": len(stream.index.difference(ref.index)),
        "windows_complete": len(complete),
        "windows_incomplete": int(len(joined) - len(complete)),
        "windows_matching": int(agree.sum()),
        "windows_mismatching": int((~agree).sum()),
        "mismatched_columns": mismatched_columns,
        "columns_compared": len(columns),
        "events_missing": int((joined["n"] - joined["n_stream"]).sum()),
        "complete_keys": complete,
    }


def compare_alerts(stream: pd.DataFrame, ref: pd.DataFrame, complete: pd.Index) -> dict:
    """Alert ids and suppression of the stream against the reference.

    Window alerts are compared on complete windows only; reading alerts on all.
    """

    def pairs(frame: pd.DataFrame) -> set[tuple[str, bool]]:
        if frame.empty:
            return set()
        keys = pd.MultiIndex.from_arrays(
            [
                frame["patient_id"].astype(str),
                pd.to_datetime(frame["window_start"], utc=True).astype(NS_UTC),
            ]
        )
        keep = (frame["kind"] == "reading").to_numpy() | keys.isin(complete)
        return set(
            zip(
                frame.loc[keep, "alert_id"], frame.loc[keep, "suppressed"].astype(bool), strict=True
            )
        )

    got, want = pairs(stream), pairs(ref)
    return {
        "alerts_reference": len(want),
        "alerts_stream": len(got),
        "alerts_missing": len(want - got),
        "alerts_extra": len(got - want),
    }


def _late_duplicates(reference_dir: Path, run_metrics: dict[str, Any]) -> int:
    """Repeats the reference dropped that the stream dropped as late (see the module
    docstring); 0 for a reference windows file without its duplicate count."""
    attrs = pd.read_parquet(reference_dir / "windows.parquet", columns=["n"]).attrs
    if "duplicates" not in attrs:
        return 0
    return int(attrs["duplicates"]) - int(run_metrics.get("dropped_duplicates", 0))


def validate_run(run_dir: Path, reference_dir: Path) -> dict[str, Any]:
    """validation.json of one run."""
    run_metrics = json.loads((run_dir / "metrics.json").read_text())
    windows = compare_windows(
        metrics.read_parquet_dir(run_dir / "windows"),
        pd.read_parquet(reference_dir / "windows.parquet"),
    )
    complete = windows.pop("complete_keys")
    alerts = compare_alerts(
        metrics.read_parquet_dir(run_dir / "alerts"),
        pd.read_parquet(reference_dir / "alerts.parquet"),
        complete,
    )
    dropped = run_metrics["dropped_by_watermark"]
    late_duplicates = _late_duplicates(reference_dir, run_metrics)
    return {
        **windows,
        **alerts,
        "dropped_by_watermark": dropped,
        "dropped_duplicates": run_metrics.get("dropped_duplicates", 0),
        "late_duplicates": late_duplicates,
        "dropped_state_rows": run_metrics.get("dropped_state_rows"),
        "missing_equals_dropped": dropped is not None
        and windows["events_missing"] == dropped - late_duplicates,
        "events_processed": run_metrics["events_processed"],
        "quarantined": run_metrics["quarantined"],
    }


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    register_table_cli(subparsers)
    parser = subparsers.add_parser("validate", help="compare a run with the batch reference")
    parser.add_argument("--run-dir", type=existing_dir, required=True)
    parser.add_argument("--reference-dir", type=existing_dir, required=True)
    parser.add_argument("--out", type=writable_file, required=True, help="validation.json")
    parser.set_defaults(func=_cli_validate)


def _cli_validate(args: argparse.Namespace) -> int:
    result = validate_run(args.run_dir, args.reference_dir)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result))
    return 0


def _num(value: Any) -> str:
    """A table cell: siunitx number, or a dash where a count is not defined (sliding windows)."""
    return "--" if value is None else f"\\num{{{value}}}"


def table(
    results: dict[str, dict[str, Any]], paths: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """The paper's validation table (one column per run) and its macro values."""
    from vitalstream.core.tables import escape

    rows = [
        ("Windows in the reference", "windows_reference"),
        ("Windows written by the stream", "windows_stream"),
        ("Complete windows (all events counted)", "windows_complete"),
        ("Complete windows that differ", "windows_mismatching"),
        ("Events missing from stream windows", "events_missing"),
        ("Rows the job dropped behind the watermark", "dropped_by_watermark"),
        # Repeats the reference never counted (module docstring): missing = dropped - these.
        ("Of them, late repeats of counted readings", "late_duplicates"),
        ("Repeated readings the job dropped and counted", "dropped_duplicates"),
        ("Alerts in the reference (complete windows)", "alerts_reference"),
        ("Alerts missing / extra in the stream", None),
    ]
    names = list(results)
    lines = [
        rf"\begin{{tabular}}{{l{'r' * len(names)}}}",
        r"\toprule",
        " & ".join(["Quantity", *(escape(n.replace("_", " ")) for n in names)]) + r" \\",
        r"\midrule",
    ]
    for label, key in rows:
        if key is None:
            cells = [
                f"{_num(r['alerts_missing'])} / {_num(r['alerts_extra'])}" for r in results.values()
            ]
        else:
            cells = [_num(r.get(key)) for r in results.values()]
        lines.append(" & ".join([label, *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    values = {}
    for name, r in results.items():
        prefix = "Validation" + "".join(part.capitalize() for part in name.split("_"))
        prefix = "".join(ch for ch in prefix if ch.isalpha())
        for key, suffix in (
            ("windows_reference", "Windows"),
            ("windows_mismatching", "Mismatches"),
            ("events_missing", "MissingEvents"),
            ("dropped_by_watermark", "Dropped"),
            ("late_duplicates", "LateDuplicates"),
            ("dropped_duplicates", "Duplicates"),
            ("alerts_reference", "Alerts"),
            ("alerts_missing", "AlertsMissing"),
        ):
            if key not in r:  # a validation.json written before the key existed
                continue
            source = f"{(paths or {}).get(name, name)}:{key}"
            values[prefix + suffix] = {"value": r[key], "decimals": 0, "source": source}
    return "\n".join(lines) + "\n", values


def register_table_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validation-table", help="the paper's validation table")
    parser.add_argument(
        "--run", nargs=2, action="append", metavar=("NAME", "VALIDATION_JSON"), required=True
    )
    parser.add_argument("--out", type=writable_file, required=True, help="tab_validation.tex")
    parser.add_argument("--values", type=writable_file, required=True, help="macro values JSON")
    parser.set_defaults(func=_cli_table)


def _cli_table(args: argparse.Namespace) -> int:
    results = {name: json.loads(Path(path).read_text()) for name, path in args.run}
    text, values = table(results, dict(args.run))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.values.write_text(json.dumps(values, indent=2) + "\n")
    return 0
