"""``search-export``: read a run's alerts and windows back from the search index and check
that the index holds exactly the run's Parquet sink (rule export_search_index).

Not for: indexing (vitalstream.sinks.search) or drawing (vitalstream.serving.dashboard).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import UsageError, existing_dir, writable_dir
from vitalstream.measure.metrics import read_parquet_dir
from vitalstream.sinks.search import (
    ALERTS,
    WINDOWS,
    compare_alerts,
    export,
    resolve_url,
    wait_until_up,
)


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search-export",
        help="read a run's alerts and windows back from the search index and check them "
        "against the run's Parquet sink",
    )
    parser.add_argument("--url", default=None, help="search server (else --search-state)")
    parser.add_argument("--search-state", type=Path, default=None)
    parser.add_argument("--prefix", default="vitalstream")
    parser.add_argument("--run", required=True, help="<experiment>/<condition>/rep<k>")
    parser.add_argument("--run-dir", type=existing_dir, required=True)
    parser.add_argument("--out-dir", type=writable_dir, required=True)
    parser.set_defaults(func=_cli_export)


def _cli_export(args: argparse.Namespace) -> int:
    if not args.url and not (args.search_state and args.search_state.is_file()):
        raise UsageError(
            "arguments --url/--search-state: no search server; give --url, or --search-state "
            "naming an existing state file"
        )
    url = args.url or resolve_url({}, args.search_state)
    wait_until_up(url)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    alerts = export(url, args.prefix, ALERTS, args.run)
    windows = export(url, args.prefix, WINDOWS, args.run)
    parquet = read_parquet_dir(args.run_dir / "alerts")
    check = compare_alerts(alerts, parquet, args.run)
    check["index_windows"] = len(windows)
    check["parquet_windows"] = len(read_parquet_dir(args.run_dir / "windows"))
    check["windows_equal"] = check["index_windows"] == check["parquet_windows"]
    alerts.to_parquet(args.out_dir / "index_alerts.parquet", index=False)
    windows.to_parquet(args.out_dir / "index_windows.parquet", index=False)
    (args.out_dir / "check.json").write_text(json.dumps(check, indent=2) + "\n")
    print(json.dumps({k: v for k, v in check.items() if k != "examples"}))
    if not (check["equal"] and check["windows_equal"]):
        raise SystemExit(
            f"the index does not hold the run's Parquet output: {json.dumps(check)} "
            f"(see {args.out_dir / 'check.json'} and {args.run_dir / 'search_errors.jsonl'})"
        )
    return 0
