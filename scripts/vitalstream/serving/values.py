"""Serving in the paper: what the indexed run says about the search index, as macro values.

The indexed run (config ``paper.serving_run``, a condition with ``sinks.search_index``) writes
its alerts to Parquet and to the index in one run, so the two latencies are measured on the
same alerts, the same replay and the same load: the blueprint's event → visible-in-index
latency beside the Parquet sink's, and their ratio. The headline run (same condition without
the index) shows what indexing costs the Parquet path. ``check.json`` (search-export) says
whether the index holds exactly the Parquet sink's alerts; the Hyper summary (hyper-extract)
how many rows the Tableau extract holds.

Not for: indexing (vitalstream.sinks.search) or any figure.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vitalstream.core.cliargs import json_file, writable_file
from vitalstream.core.values import macro_value


def _ms(summary: dict[str, Any] | None, key: str) -> float | None:
    return (summary or {}).get(key)


ENGINES = {"opensearch": "OpenSearch", "elasticsearch": "Elasticsearch"}


def paper_values(
    indexed: dict[str, Any],
    headline: dict[str, Any],
    check: dict[str, Any],
    hyper: dict[str, Any],
    sources: dict[str, str],
    server: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Macro values (``Serving…``): index latency P50/P90/P99 and the Parquet sink's in the
    same run (ms), their ratio at the median, the headline run's Parquet P50 if it indexes nothing,
    documents indexed and refused, the index check, the extract's row counts, and which
    search engine (``server``: the indexed run's provenance ``search``) answered."""
    search = indexed.get("search") or {}
    engine = None
    if server:
        name = ENGINES.get(server.get("distribution", ""), server.get("distribution"))
        engine = f"{name}~{server.get('version')}"
    visible = search.get("visible_latency_ms")
    parquet = indexed.get("alert_latency_ms")
    src_run, src_head = sources["indexed"], sources["headline"]
    out = {}
    for stem, key in (("Pfifty", "p50"), ("Pninety", "p90"), ("Pninetynine", "p99")):
        out[f"ServingIndexLatency{stem}"] = macro_value(_ms(visible, key), 0, src_run)
        out[f"ServingParquetLatency{stem}"] = macro_value(_ms(parquet, key), 0, src_run)
    ratio = None
    if visible and parquet and visible.get("p50") and parquet.get("p50"):
        ratio = visible["p50"] / parquet["p50"]
    out["ServingIndexOverParquet"] = macro_value(ratio, 2, src_run)
    # The same condition without the index: n/a when the headline run indexes too (quick).
    unindexed = None if headline.get("search") else _ms(headline.get("alert_latency_ms"), "p50")
    out["ServingUnindexedLatencyPfifty"] = macro_value(unindexed, 0, src_head)
    out["ServingAlertsIndexed"] = macro_value(search.get("alerts_indexed"), 0, src_run)
    out["ServingWindowsIndexed"] = macro_value(search.get("windows_indexed"), 0, src_run)
    out["ServingIndexErrors"] = macro_value(search.get("errors"), 0, src_run)
    out["ServingCheckAlerts"] = macro_value(check.get("index_alerts"), 0, sources["check"])
    out["ServingDuplicateRows"] = macro_value(check.get("duplicate_sink_rows"), 0, sources["check"])
    out["ServingCheckVerdict"] = macro_value(
        "exactly" if check.get("equal") and check.get("windows_equal") else "not exactly",
        None,
        sources["check"],
    )
    tables = hyper.get("rows", {})
    out["ServingHyperAlerts"] = macro_value(tables.get("alerts"), 0, sources["hyper"])
    out["ServingHyperHours"] = macro_value(tables.get("hourly"), 0, sources["hyper"])
    out["ServingEngine"] = macro_value(engine, None, sources.get("provenance", src_run))
    return out


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serving-values", help="macro values of the indexed run (search index, Hyper extract)"
    )
    parser.add_argument(
        "--indexed", type=json_file, required=True, help="metrics.json, indexed run"
    )
    parser.add_argument(
        "--headline", type=json_file, required=True, help="metrics.json, headline run"
    )
    parser.add_argument(
        "--check", type=json_file, required=True, help="check.json of search-export"
    )
    parser.add_argument("--hyper", type=json_file, required=True, help="summary of hyper-extract")
    parser.add_argument(
        "--provenance", type=json_file, required=True, help="provenance.json, indexed run"
    )
    parser.add_argument("--out", type=writable_file, required=True)
    parser.set_defaults(func=_cli_values)


def _cli_values(args: argparse.Namespace) -> int:
    paths = {
        "indexed": args.indexed,
        "headline": args.headline,
        "check": args.check,
        "hyper": args.hyper,
    }
    data = {name: json.loads(path.read_text()) for name, path in paths.items()}
    server = json.loads(args.provenance.read_text()).get("search")
    sources = {name: str(path) for name, path in paths.items()}
    sources["provenance"] = f"{args.provenance}: search"
    values = paper_values(**data, sources=sources, server=server)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    return 0
