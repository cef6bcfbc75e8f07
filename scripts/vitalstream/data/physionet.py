"""Real PhysioNet data in the canonical event schema (the same tables as the synthetic cohorts).

What it is for: the ``physionet`` command and :func:`convert`, which turn three public PhysioNet
sources into ``events`` / ``labels`` / ``quarantine`` Parquet files of
:mod:`vitalstream.core.schema`, so the replay, the Spark job and the notebooks treat real
patients exactly like generated ones, and every row the schema rejects is kept with its reason
instead of silently disappearing. The work is done beside it:

* :mod:`vitalstream.data.mirror`: the sources, and :func:`fetch`, which decides where the data
  comes from (the verified local mirror, else a download of the pinned version,
  :mod:`vitalstream.data.download`) and records it in ``fetched.json``;
* :mod:`vitalstream.data.readers`: one reader per source, files → canonical frames;
* :mod:`vitalstream.data.psvfiles`: the challenge's PSV files, parsed so that a corrupt file
  (a truncated row, a cell that is not a number, an impossible or repeated ICU hour) costs its
  bad rows, quarantined with reason, file and line, and never the whole conversion.

The names callers use (``SOURCES``, :func:`fetch`, :func:`resolve_mirror`, the readers, the
challenge's constants…) are importable from here as before.

Not for: cleaning, imputation or feature engineering (the sepsis models work on ``hourly``), nor
for de-duplication of readings or lateness, which belong to the stream job like for synthetic
data (a PSV file holding the same ICU hour twice is a corrupt record, not a resent reading: the
hour is the key of ``hourly``, so the repeat is quarantined here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from vitalstream.core import schema
from vitalstream.core.cliargs import UsageError, json_file, utc_time, writable_dir
from vitalstream.data.canonical import write_parquet
from vitalstream.data.download import DownloadSettings, http_url, read_settings_file
from vitalstream.data.mirror import (
    MANIFEST_NAME,
    MIRROR_ENV,
    MIRROR_SUBPATHS,
    OFFLINE_ENV,
    SOURCES,
    FetchError,
    ManifestError,
    download_settings,
    fetch,
    read_manifest,
    resolve_mirror,
    source_spec,
    verify_manifest,
)
from vitalstream.data.psvfiles import MAX_ICULOS_H, PSV_COLUMNS, PSV_INT_COLUMNS
from vitalstream.data.readers import (
    DEFAULT_START,
    PSV_TO_VITAL,
    READERS,
    ROOM_AIR_FIO2,
    SEPSIS_LABEL_SHIFT_H,
    SourceData,
    read_bidmc,
    read_hourly,
    read_mimic2_numerics,
    read_sepsis2019,
)

# Public names of PhysioNet access; most are defined in mirror and readers and imported from
# here by their callers (the workflow, the models, the notebooks, the tests).
__all__ = [
    "DEFAULT_START",
    "MANIFEST_NAME",
    "MAX_ICULOS_H",
    "MIRROR_ENV",
    "MIRROR_SUBPATHS",
    "OFFLINE_ENV",
    "PSV_COLUMNS",
    "PSV_TO_VITAL",
    "ROOM_AIR_FIO2",
    "SEPSIS_LABEL_SHIFT_H",
    "SOURCES",
    "FetchError",
    "ManifestError",
    "SourceData",
    "convert",
    "fetch",
    "read_bidmc",
    "read_hourly",
    "read_manifest",
    "read_mimic2_numerics",
    "read_sepsis2019",
    "register_cli",
    "resolve_mirror",
    "run_cli",
    "verify_manifest",
]


# --------------------------------------------------------------------------------------------
# Convert
# --------------------------------------------------------------------------------------------


def _labels_arrow_schema() -> pa.Schema:
    """The canonical label schema, but age and sex may be null: real records do not always
    state them (MIMIC-II "??", BIDMC "NaN"/"?"), and guessing would be worse than null."""
    base = schema.label_arrow_schema()
    return pa.schema(
        [f.with_nullable(True) if f.name in ("age", "sex") else f for f in base],
    )


def _quarantine_arrow_schema() -> pa.Schema:
    """The event schema, every field nullable (a line that did not parse has no event time or
    vitals to keep), plus why the row was rejected and where it was read (file, line)."""
    fields = [f.with_nullable(True) for f in schema.event_arrow_schema()]
    fields += [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("file", pa.string()),
        pa.field("line", pa.int64()),
    ]
    return pa.schema(fields)


def _hourly_arrow_schema() -> pa.Schema:
    fields = [pa.field("patient_id", pa.string(), nullable=False)]
    fields += [
        pa.field(c, pa.int64(), nullable=False)
        if c in PSV_INT_COLUMNS
        else pa.field(c, pa.float64())
        for c in PSV_COLUMNS
    ]
    return pa.schema(fields)


def convert(
    source: str, fetched_json: Path, out_dir: Path, start: str = DEFAULT_START
) -> dict[str, Any]:
    """Read ``source`` from where :func:`fetch` recorded it and write its canonical tables.

    Writes ``events.parquet`` (valid rows), ``labels.parquet``, ``quarantine.parquet`` (the
    rest, with ``reason``, ``file`` and ``line``), ``hourly.parquet`` for sepsis2019, and
    ``summary.json`` (rows quarantined per reason in ``quarantine_reasons``); returns the
    summary. Same input → same bytes (no timings or clocks in any file). A corrupt file does
    not stop the conversion: its bad rows are quarantined and the rest goes on.
    """
    spec = source_spec(source)
    fetched = json.loads(Path(fetched_json).read_text())
    if fetched.get("source") != source:
        raise ValueError(f"{fetched_json} records source {fetched.get('source')!r}, not {source!r}")
    data = READERS[spec.name](Path(fetched["path"]), start)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(data.events, schema.event_arrow_schema(), out_dir / "events.parquet")
    write_parquet(data.labels, _labels_arrow_schema(), out_dir / "labels.parquet")
    write_parquet(data.quarantined, _quarantine_arrow_schema(), out_dir / "quarantine.parquet")
    if data.hourly is not None:
        write_parquet(data.hourly, _hourly_arrow_schema(), out_dir / "hourly.parquet")
    summary = {**data.summary, "origin": fetched["origin"], "files": fetched["files"]}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def run_cli(args: argparse.Namespace) -> int:
    """Fetch and/or convert one source; print one JSON line (exit 1 with the reason if the
    data is unavailable or fails its manifest, without a traceback: it is not a bug)."""
    try:
        line = _run(args)
    except (FetchError, ManifestError) as exc:
        print(f"vitalstream physionet: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(line))
    return 0


def _run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = Path(args.out)
    line: dict[str, Any] = {"source": args.source}
    if args.step in ("all", "fetch"):
        # An explicit --mirror wins; without one, $VITALSTREAM_PHYSIONET_MIRROR applies.
        mirror = Path(args.mirror).expanduser().resolve() if args.mirror else resolve_mirror(None)
        offline = True if args.offline else None
        download = _download_settings(args)
        fetched = fetch(args.source, mirror, out, offline=offline, download=download)
        line.update(origin=fetched["origin"], files=fetched["files"])
    if args.step in ("all", "convert"):
        if not (out / "fetched.json").is_file():
            raise UsageError(
                f"argument --step: convert reads {out / 'fetched.json'}, which does not exist "
                "(run --step fetch first)"
            )
        summary = convert(args.source, out / "fetched.json", out, start=args.start)
        keys = ("patients", "rows", "septic_patients", "valid_rows", "quarantined_rows")
        line.update({k: summary[k] for k in keys}, origin=summary["origin"])
        line["quarantine_reasons"] = summary["quarantine_reasons"]
        _warn_bad_lines(summary)
    line["seconds"] = round(time.perf_counter() - t0, 3)
    return line


def _download_settings(args: argparse.Namespace) -> DownloadSettings | None:
    """The download settings the arguments name (--config-file, --base-url over it), or None:
    then fetch reads config/config.yaml's, and only if it has to download."""
    if not (args.config_file or args.base_url):
        return None
    if args.config_file:
        settings = read_settings_file(args.config_file, args.source)
    else:
        settings = download_settings(args.source)
    if args.base_url:
        settings = dataclasses.replace(settings, base_url=args.base_url)
    return settings


def _warn_bad_lines(summary: dict[str, Any]) -> None:
    """Name the files and lines that were quarantined unread, on stderr (stdout carries the
    one JSON line); the summary and quarantine.parquet hold them too."""
    shown = summary.get("bad_lines") or []
    for text in shown:
        print(f"vitalstream physionet: quarantined {text}", file=sys.stderr)


def register_cli(subparsers: Any) -> None:
    """Add the ``physionet`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "physionet",
        help="fetch a PhysioNet source (mirror or download) and convert it to the schema",
        description=(
            "Fetch one PhysioNet source from the local mirror (verified against its manifest) "
            "or PhysioNet's file server, and convert it to events/labels/quarantine Parquet files. "
            f"Without --mirror, ${MIRROR_ENV} names the mirror (the workflow resolves it into "
            f"--mirror); without a mirror the source's pinned version is downloaded "
            f"(verified, resumable) into OUT/raw/; ${OFFLINE_ENV}=1 forbids downloads."
        ),
    )
    parser.add_argument("source", choices=SOURCES, help="which source")
    parser.add_argument("--mirror", default=None, help="local mirror directory (physionet.mirror)")
    parser.add_argument(
        "--config-file",
        type=json_file,
        default=None,
        help="the physionet settings (JSON: base_url, versions, download; the workflow's "
        "results/configs/physionet/SOURCE.json); default: config/config.yaml's",
    )
    parser.add_argument(
        "--base-url", type=http_url, default=None, help="file server (physionet.base_url)"
    )
    parser.add_argument("--out", required=True, type=writable_dir, help="output directory")
    parser.add_argument(
        "--start", type=utc_time, default=DEFAULT_START, help="ISO-8601 UTC origin of time"
    )
    parser.add_argument(
        "--step",
        choices=("all", "fetch", "convert"),
        default="all",
        help="fetch only, convert only (reads OUT/fetched.json), or both",
    )
    parser.add_argument("--offline", action="store_true", help="never download")
    parser.set_defaults(func=run_cli)
