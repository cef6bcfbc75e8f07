"""Dashboards for Kibana 8 and OpenSearch Dashboards: a saved-objects export (NDJSON).

The blueprint shows alerts in Kibana. Importing one file (Stack Management → Saved objects →
Import, or ``POST /api/saved_objects/_import``) gives the three views it names, over the
indices vitalstream.sinks.search fills:

* alert counts over time, stacked by severity (index ``<prefix>-alerts``);
* a per-patient drill-down of heart rate and SpO2 (window means, index ``<prefix>-windows``),
  with a patient selector (input control);
* a heat map of alerts per bed over time. The blueprint's heat map is per ward; the cohorts
  have no wards, so the rows are patients (``HEATMAP_FIELD``); a deployment with a ``ward``
  field would put it there.

Both products read the same legacy saved-object shapes (index-pattern, aggregation-based
visualization, dashboard); the two files differ only in their migration stamps, so each
product imports its file without conversion. Every field a visualization names is checked
against the index template (tests/unit/test_kibana.py), so a view never points at nothing.

Not for: the data (sinks.search) or the self-contained HTML page (vitalstream.serving.dashboard).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import writable_dir
from vitalstream.sinks.search import ALERTS, FIELDS, TIME_FIELD, WINDOWS, index_name, index_template

HEATMAP_FIELD = "patient_id"
# What each product's importer expects to find on an object (it migrates older ones).
PRODUCTS: dict[str, dict[str, Any]] = {
    "kibana8": {
        "file": "kibana8.ndjson",
        "stamp": lambda kind: {
            "coreMigrationVersion": "8.8.0",
            "typeMigrationVersion": {
                "index-pattern": "8.0.0",
                "visualization": "8.5.0",
                "dashboard": "8.7.0",
            }[kind],
        },
    },
    "opensearch-dashboards": {
        "file": "opensearch-dashboards.ndjson",
        "stamp": lambda kind: {
            "migrationVersion": {
                kind: {"index-pattern": "7.6.0", "visualization": "7.10.0", "dashboard": "7.9.3"}[
                    kind
                ]
            }
        },
    },
}
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _id(prefix: str, name: str) -> str:
    return f"{prefix}-{name}"


def index_pattern(prefix: str, kind: str) -> dict[str, Any]:
    return {
        "type": "index-pattern",
        "id": _id(prefix, f"{kind}-pattern"),
        "attributes": {
            "title": f"{index_name(prefix, kind)}*",
            "timeFieldName": TIME_FIELD[kind],
        },
        "references": [],
    }


def _search_source(query: str = "") -> str:
    return json.dumps(
        {"query": {"query": query, "language": "kuery"}, "filter": [], "indexRefName": INDEX_REF}
    )


def visualization(
    prefix: str,
    name: str,
    kind: str,
    title: str,
    vis_type: str,
    params: Mapping[str, Any],
    aggs: list,
) -> dict[str, Any]:
    """An aggregation-based visualization of one index pattern."""
    state = {"title": title, "type": vis_type, "params": dict(params), "aggs": aggs}
    return {
        "type": "visualization",
        "id": _id(prefix, name),
        "attributes": {
            "title": title,
            "description": "VitalStream (vitalstream.serving.kibana)",
            "visState": json.dumps(state),
            "uiStateJSON": "{}",
            "version": 1,
            "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source()},
        },
        "references": [
            {"name": INDEX_REF, "type": "index-pattern", "id": _id(prefix, f"{kind}-pattern")}
        ],
    }


def _agg(agg_id: str, agg_type: str, schema: str, **params: Any) -> dict[str, Any]:
    return {"id": agg_id, "enabled": True, "type": agg_type, "schema": schema, "params": params}


def _date_histogram(agg_id: str, field: str) -> dict[str, Any]:
    return _agg(
        agg_id,
        "date_histogram",
        "segment",
        field=field,
        interval="auto",
        min_doc_count=1,
        extended_bounds={},
    )


def _axes(mode: str, series: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "histogram" if mode == "stacked" else "line",
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": "bottom",
                "show": True,
                "labels": {"show": True},
                "title": {},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": "left",
                "show": True,
                "labels": {"show": True},
                "title": {},
                "scale": {"type": "linear", "mode": "normal"},
            }
        ],
        "seriesParams": series,
        "grid": {"categoryLines": False},
        "times": [],
    }


def _series(agg_id: str, chart: str, mode: str) -> dict[str, Any]:
    return {
        "show": True,
        "type": chart,
        "mode": mode,
        "data": {"id": agg_id},
        "valueAxis": "ValueAxis-1",
        "drawLinesBetweenPoints": True,
        "showCircles": True,
    }


def objects(prefix: str) -> list[dict[str, Any]]:
    """Index patterns, the three views, a patient selector and one dashboard holding them."""
    alerts_over_time = visualization(
        prefix,
        "alerts-over-time",
        ALERTS,
        "VitalStream: alerts over time by severity",
        "histogram",
        _axes("stacked", [_series("1", "histogram", "stacked")]),
        [
            _agg("1", "count", "metric"),
            _date_histogram("2", TIME_FIELD[ALERTS]),
            _agg("3", "terms", "group", field="severity", size=3, order="desc", orderBy="1"),
        ],
    )
    patient_vitals = visualization(
        prefix,
        "patient-vitals",
        WINDOWS,
        "VitalStream: heart rate and SpO2 per patient",
        "line",
        _axes("normal", [_series("1", "line", "normal"), _series("2", "line", "normal")]),
        [
            _agg("1", "avg", "metric", field="hr_mean"),
            _agg("2", "avg", "metric", field="spo2_mean"),
            _date_histogram("3", TIME_FIELD[WINDOWS]),
            _agg("4", "terms", "group", field="patient_id", size=5, order="desc", orderBy="_key"),
        ],
    )
    heatmap = visualization(
        prefix,
        "alert-heatmap",
        ALERTS,
        f"VitalStream: alerts per {HEATMAP_FIELD} over time",
        "heatmap",
        {
            "type": "heatmap",
            "addTooltip": True,
            "addLegend": True,
            "enableHover": False,
            "legendPosition": "right",
            "colorsNumber": 5,
            "colorSchema": "Reds",
            "setColorRange": False,
            "invertColors": False,
            "percentageMode": False,
            "valueAxes": [
                {
                    "show": False,
                    "id": "ValueAxis-1",
                    "type": "value",
                    "scale": {"type": "linear", "defaultYExtents": False},
                    "labels": {"show": False, "rotate": 0, "color": "black"},
                }
            ],
        },
        [
            _agg("1", "count", "metric"),
            _date_histogram("2", TIME_FIELD[ALERTS]),
            _agg("3", "terms", "group", field=HEATMAP_FIELD, size=20, order="desc", orderBy="1"),
        ],
    )
    selector = visualization(
        prefix,
        "patient-selector",
        WINDOWS,
        "VitalStream: choose a patient",
        "input_control_vis",
        {
            "controls": [
                {
                    "id": "1",
                    "fieldName": "patient_id",
                    "label": "Patient",
                    "type": "list",
                    "options": {
                        "type": "terms",
                        "multiselect": False,
                        "dynamicOptions": True,
                        "size": 50,
                        "order": "desc",
                    },
                    "parent": "",
                    "indexPatternRefName": "control_0_index_pattern",
                }
            ],
            "updateFiltersOnChange": True,
            "useTimeFilter": False,
            "pinFilters": False,
        },
        [],
    )
    selector["references"].append(
        {
            "name": "control_0_index_pattern",
            "type": "index-pattern",
            "id": _id(prefix, f"{WINDOWS}-pattern"),
        }
    )
    views = [alerts_over_time, selector, patient_vitals, heatmap]
    return [
        index_pattern(prefix, ALERTS),
        index_pattern(prefix, WINDOWS),
        *views,
        dashboard(prefix, views),
    ]


def dashboard(prefix: str, views: list[dict[str, Any]]) -> dict[str, Any]:
    """The views on one page, two per row."""
    panels = []
    for i in range(len(views)):
        panels.append(
            {
                "panelIndex": str(i + 1),
                "gridData": {
                    "x": 24 * (i % 2),
                    "y": 15 * (i // 2),
                    "w": 24,
                    "h": 15,
                    "i": str(i + 1),
                },
                "embeddableConfig": {},
                "panelRefName": f"panel_{i}",
            }
        )
    return {
        "type": "dashboard",
        "id": _id(prefix, "dashboard"),
        "attributes": {
            "title": "VitalStream: patient monitoring alerts",
            "description": "Alerts of the streaming job (vitalstream.serving.kibana)",
            "panelsJSON": json.dumps(panels),
            "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
            "timeRestore": False,
            "version": 1,
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps(
                    {"query": {"query": "", "language": "kuery"}, "filter": []}
                )
            },
        },
        "references": [
            {"name": f"panel_{i}", "type": "visualization", "id": view["id"]}
            for i, view in enumerate(views)
        ],
    }


def export_lines(prefix: str, product: str) -> Iterator[str]:
    """The NDJSON lines of one product's import file."""
    stamp = PRODUCTS[product]["stamp"]
    for obj in objects(prefix):
        yield json.dumps({**obj, **stamp(obj["type"])}, sort_keys=True)


def referenced_fields(obj: Mapping[str, Any]) -> list[str]:
    """Every index field a visualization names (aggregation fields and control fields)."""
    state = json.loads(obj["attributes"]["visState"])
    fields = [a["params"]["field"] for a in state.get("aggs", []) if "field" in a.get("params", {})]
    fields += [c["fieldName"] for c in state.get("params", {}).get("controls", [])]
    return fields


def missing_fields(saved: list[Mapping[str, Any]], prefix: str) -> dict[str, set[str]]:
    """Per visualization, the fields it names that its index patterns' templates lack
    (empty: every view can be drawn from the indices vitalstream.sinks.search fills)."""
    kinds = {f"{index_name(prefix, kind)}*": kind for kind in FIELDS}
    patterns = {
        o["id"]: kinds.get(o["attributes"]["title"]) for o in saved if o["type"] == "index-pattern"
    }
    missing: dict[str, set[str]] = {}
    for obj in saved:
        if obj["type"] != "visualization":
            continue
        known: set[str] = set()
        for ref in obj["references"]:
            kind = patterns.get(ref["id"]) if ref["type"] == "index-pattern" else None
            if kind is not None:
                known |= set(index_template(prefix, kind)["template"]["mappings"]["properties"])
        lacking = set(referenced_fields(obj)) - known
        if lacking:
            missing[obj["id"]] = lacking
    return missing


def write(prefix: str, out_dir: Path) -> list[Path]:
    """Both products' files; refuses to write views that name fields the templates lack."""
    missing = missing_fields(objects(prefix), prefix)
    if missing:
        raise ValueError(f"visualizations name fields missing from the index templates: {missing}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for product, spec in PRODUCTS.items():
        path = out_dir / spec["file"]
        path.write_text("\n".join(export_lines(prefix, product)) + "\n")
        paths.append(path)
    return paths


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kibana-objects",
        help="write the saved-objects exports (NDJSON) for Kibana 8 and OpenSearch Dashboards",
    )
    parser.add_argument(
        "--prefix", default="vitalstream", help="index prefix (search.index_prefix)"
    )
    parser.add_argument("--out-dir", type=writable_dir, required=True)
    parser.set_defaults(func=_cli_write)


def _cli_write(args: argparse.Namespace) -> int:
    for path in write(args.prefix, args.out_dir):
        print(path)
    return 0
