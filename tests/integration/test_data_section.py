"""The Data section's notebook (notebooks/data_overview.ipynb), executed with papermill on small
inputs made here: a generated cohort and the fixture PhysioNet subset, fetched from the fixture
mirror and converted as the workflow does. Checks every output exists and is well formed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from vitalstream.core.schema import VITAL_NAMES
from vitalstream.data import physionet as ph
from vitalstream.data import realism
from vitalstream.data.cohort import CohortParams, generate_cohort, write_cohort
from vitalstream.paper import macros

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "data" / "fixtures" / "physionet"
NOTEBOOK = REPO / "notebooks" / "data_overview.ipynb"
TABLES = ("tab_cohort.tex", "tab_realism.tex", "tab_schema.tex", "tab_generator.tex")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data_section")
    cohort = generate_cohort(CohortParams(patients=30, hours=0.25, prevalence=0.2, seed=11))
    write_cohort(cohort, root / "cohorts" / "main")
    for source in ph.SOURCES:
        out = root / "physionet" / source
        ph.fetch(source, FIXTURE, out, offline=True)
        ph.convert(source, out / "fetched.json", out)
    out_dir = root / "out"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    # The summaries the notebook reads (rule summarise_data), then the notebook itself.
    # fmt: off
    summarise = [
        sys.executable, "-m", "vitalstream", "data-summary",
        "--cohort-events", str(root / "cohorts" / "main" / "events.parquet"),
        "--cohort-labels", str(root / "cohorts" / "main" / "labels.parquet"),
        "--physionet-dir", str(root / "physionet"), "--sources", ",".join(ph.SOURCES),
        "--summary-json", str(out_dir / "data_summary.json"),
        "--realism-json", str(out_dir / "realism.json"),
        "--trajectories", str(out_dir / "trajectories.parquet"),
    ]
    command = [
        sys.executable, "-m", "papermill", str(NOTEBOOK), str(out_dir / "executed.ipynb"),
        "-k", "python3", "--cwd", str(REPO), "--no-progress-bar",
        "-p", "data_summary", str(out_dir / "data_summary.json"),
        "-p", "realism_json", str(out_dir / "realism.json"),
        "-p", "trajectories", str(out_dir / "trajectories.parquet"),
        "-p", "physionet_dir", str(root / "physionet"),
        "-p", "sources", ",".join(ph.SOURCES),
        "-p", "out_dir", str(out_dir),
    ]
    # fmt: on
    for step in (summarise, command):
        result = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-4000:]
    return out_dir


def test_every_output_exists(outputs):
    names = ("realism.json", "data_overview_values.json", "fig_trajectories.pdf", *TABLES)
    for name in names:
        assert (outputs / name).stat().st_size > 0, name
    assert (outputs / "fig_trajectories.pdf").read_bytes()[:5] == b"%PDF-"
    executed = json.loads((outputs / "executed.ipynb").read_text())
    errors = [
        o
        for c in executed["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors


def test_realism_json_has_every_vital_with_a_verdict(outputs):
    result = json.loads((outputs / "realism.json").read_text())
    assert set(result["vitals"]) == set(VITAL_NAMES)
    for name, v in result["vitals"].items():
        assert isinstance(v["median_within_iqr"], bool), name
        for side in ("synthetic", "reference"):
            for key in ("median", "q25", "q75", "p5", "p95", "missing_share"):
                assert isinstance(v[side][key], float), (name, side, key)
        assert v["w1_iqr"] >= 0 and 0 <= v["ks"] <= 1
    # The small generated cohort is as realistic as the workflow's on the fixture subset.
    assert realism.failing_vitals(result) == []
    assert result["synthetic"]["stable_patients"] == 24


def _cells(line: str) -> int:
    return len(re.split(r"(?<!\\)&", line))


def _columns(align: str) -> int:
    # l, c, r and p{...} columns, the latter possibly with a >{...} prefix (the schema table's
    # ragged-right description).
    return len(re.sub(r"p\{[^}]*\}", "p", re.sub(r">\{[^}]*\}", "", align)))


@pytest.mark.parametrize("name", TABLES)
def test_tables_are_booktabs_tabulars_with_consistent_rows(outputs, name):
    lines = (outputs / name).read_text().splitlines()
    begin = re.fullmatch(r"\\begin\{tabular\}\{(.+)\}", lines[0])
    assert begin, lines[0]
    assert lines[-1] == r"\end{tabular}"
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert lines.count(rule) == 1, rule
    columns = _columns(begin.group(1))
    body = lines[lines.index(r"\midrule") + 1 : lines.index(r"\bottomrule")]
    assert body
    header = lines[lines.index(r"\midrule") - 1]
    for line in [header, *body]:
        assert line.endswith(r"\\"), line
        assert _cells(line) == columns, line


def test_cohort_table_has_one_row_per_source(outputs):
    text = (outputs / "tab_cohort.tex").read_text()
    body = text.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert [line.split(" & ")[0] for line in body] == [
        r"Synthetic, \texttt{main}",
        "PhysioNet 2019 set A",
        "MIMIC-II numerics",
        "BIDMC",
    ]
    assert r"\num{30}" in body[0] and r"\num{285}" in body[1]
    assert body[2].split(" & ")[5] == "---"  # no prevalence without outcome labels


def test_values_are_valid_macros_with_sources(outputs):
    path = outputs / "data_overview_values.json"
    rows = macros.read_values(path)
    names = {row["name"] for row in rows}
    expected = {
        "SetAPatients",
        "SetARows",
        "SetASeptic",
        "SetASepticPercent",
        "SetAQuarantined",
        "CohortPatients",
        "CohortReadings",
        "CohortPrevalencePercent",
        "RealismVitalsWithinIqr",
    }
    assert expected <= names
    values = json.loads(path.read_text())
    for name, spec in values.items():
        # Each macro names the result file (and key) it was computed from.
        assert ":" in spec["source"] and spec["description"], name
    assert values["SetAPatients"]["value"] == 285
    assert values["CohortPatients"]["value"] == 30
    assert values["RealismVitalsWithinIqr"]["value"] == 5
    for name in ("TrajStablePatient", "TrajDeterioratingPatient"):
        assert re.fullmatch(r"P\d{6}", values[name]["value"]), name
