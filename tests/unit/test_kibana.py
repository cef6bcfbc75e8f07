"""The saved-objects exports: valid NDJSON, every reference resolves, every field exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vitalstream.serving import kibana
from vitalstream.sinks import search


@pytest.fixture(scope="module", params=sorted(kibana.PRODUCTS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list:
    out = tmp_path_factory.mktemp(request.param)
    kibana.write("vitalstream", out)
    path = out / kibana.PRODUCTS[request.param]["file"]
    return [json.loads(line) for line in path.read_text().splitlines()]


def _kind_of_pattern(objects: list, pattern_id: str) -> str:
    pattern = next(o for o in objects if o["id"] == pattern_id)
    title = pattern["attributes"]["title"]
    return next(k for k in search.FIELDS if title == f"{search.index_name('vitalstream', k)}*")


def test_every_visualisation_names_only_fields_of_its_index_template(exported: list) -> None:
    visualisations = [o for o in exported if o["type"] == "visualization"]
    assert len(visualisations) == 4
    assert all(kibana.referenced_fields(v) for v in visualisations)
    assert all(any(r["type"] == "index-pattern" for r in v["references"]) for v in visualisations)
    assert kibana.missing_fields(exported, "vitalstream") == {}


def test_time_fields_are_dates_in_the_template(exported: list) -> None:
    for pattern in (o for o in exported if o["type"] == "index-pattern"):
        kind = _kind_of_pattern(exported, pattern["id"])
        field = pattern["attributes"]["timeFieldName"]
        assert search.FIELDS[kind][field]["type"] == "date"


def test_every_reference_resolves_and_ids_are_unique(exported: list) -> None:
    ids = [(o["type"], o["id"]) for o in exported]
    assert len(ids) == len(set(ids))
    for obj in exported:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, (obj["id"], ref)
    board = next(o for o in exported if o["type"] == "dashboard")
    panels = json.loads(board["attributes"]["panelsJSON"])
    names = {r["name"] for r in board["references"]}
    assert {p["panelRefName"] for p in panels} == names


def test_a_misnamed_field_is_caught(exported: list) -> None:
    """The field check can fail: a visualisation naming a field the template lacks."""
    broken = []
    for obj in exported:
        if obj["id"].endswith("patient-vitals"):
            state = json.loads(obj["attributes"]["visState"])
            state["aggs"][0]["params"]["field"] = "heart_rate"
            obj = {**obj, "attributes": {**obj["attributes"], "visState": json.dumps(state)}}
        broken.append(obj)
    assert kibana.missing_fields(broken, "vitalstream") == {
        "vitalstream-patient-vitals": {"heart_rate"}
    }


def test_cli_writes_both_files(tmp_path: Path) -> None:
    from vitalstream.__main__ import main

    assert main(["kibana-objects", "--out-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        spec["file"] for spec in kibana.PRODUCTS.values()
    )
