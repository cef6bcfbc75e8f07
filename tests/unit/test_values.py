"""Numbers as the paper prints them, and notebooks that take their formatting from the package.

The three copies of ``num`` the notebooks used to define are kept below verbatim as the
reference: the shared one must print what each printed, or the tables would change.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from vitalstream.core import values
from vitalstream.measure import faultsummary
from vitalstream.paper import macros

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# Stages that start brokers, Spark jobs or search nodes: a notebook only reads their results.
PROCESS_STAGES = ("experiments", "services", "stream", "sinks")


def num_finite_floats(value, decimals=0):
    """ablation_windows, rq2_bandwidth, rq3_lateness."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"\\num{{{value:.{decimals}f}}}"


def num_finite(value, decimals=0):
    """faults; rq4_models with ``decimals=2`` by default (every call there passes it)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"\\num{{{value:.{decimals}f}}}"


def num_scaled(value, decimals=0, scale=1.0):
    """rq1_scaling, rq5_tuning."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"\\num{{{value / scale:.{decimals}f}}}"


def fmt(value, decimals=0):
    """run_overview (named ``fmt``): metrics.json numbers, never NaN there."""
    return "n/a" if value is None else f"\\num{{{value:.{decimals}f}}}"


CASES = [
    None,
    0,
    7,
    -3,
    12_000,
    0.0,
    -0.0,
    0.5,
    1.5,
    2.5,
    2.675,
    2**60 + 1,
    1234.5678,
    -0.004,
    1e-7,
    98_765.4321,
    float("nan"),
    float("inf"),
    float("-inf"),
    np.float64(3.14159),
    np.float64("nan"),
    np.int64(42),
    True,
]


@pytest.mark.parametrize("value", CASES)
@pytest.mark.parametrize("decimals", [0, 1, 2, 3, 4])
def test_num_prints_what_every_notebook_variant_printed(value, decimals):
    shared = values.num(value, decimals)
    assert shared == num_finite_floats(value, decimals)
    assert shared == num_finite(value, decimals)
    assert shared == num_scaled(value, decimals)
    if not values.is_missing(value):
        assert shared == fmt(value, decimals)


@pytest.mark.parametrize("value", CASES)
@pytest.mark.parametrize(("decimals", "scale"), [(2, 1000.0), (2, 1000), (0, 60.0), (1, 0.5)])
def test_num_scales_as_the_performance_tables_did(value, decimals, scale):
    assert values.num(value, decimals, scale) == num_scaled(value, decimals, scale)


@pytest.mark.parametrize(
    ("value", "decimals", "scale", "cell"),
    [
        (1234.5678, 0, 1.0, r"\num{1235}"),
        (812.4, 2, 1000.0, r"\num{0.81}"),
        (0.25, 1, 1.0, r"\num{0.2}"),  # round half to even, as Python formats
        (11, 1, 1.0, r"\num{11.0}"),
        (None, 2, 1000.0, "n/a"),
        (float("nan"), 1, 1.0, "n/a"),
        (np.float32("nan"), 1, 1.0, "n/a"),  # numpy's other floats are missing too
        (float("inf"), 0, 1.0, "n/a"),
    ],
)
def test_num_cells(value, decimals, scale, cell):
    assert values.num(value, decimals, scale) == cell


def test_num_range_is_the_median_with_the_repetitions_range():
    assert values.num_range(1500.0, 1200.0, 2100.0, 1, 1000.0) == (
        r"\num{1.5} (\num{1.2}--\num{2.1})"
    )
    assert values.num_range(3.0, None, float("nan")) == r"\num{3} (n/a--n/a)"


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0, "0 s"), (30.0, "30 s"), (59.5, "59.5 s"), (60, "1 min"), (90, "1.5 min"), (600, "10 min")],
)
def test_duration_label(seconds, label):
    assert values.duration_label(seconds) == label


def test_write_values_gives_the_file_the_paper_reads(tmp_path):
    entries = {
        "RqOneRuns": {"value": 12.0, "decimals": 0, "source": "runs/*/metrics.json"},
        "RqOneBest": values.macro_value("tuned_a", None, "runs"),
    }
    path = values.write_values(entries, tmp_path / "paper" / "x_values.json")
    assert path.read_text() == json.dumps(entries, indent=2) + "\n"
    bodies = {row["name"]: row["body"] for row in macros.read_values(path)}
    assert bodies == {"RqOneRuns": "12", "RqOneBest": r"tuned\_a"}


def test_fault_runs_are_ordered_job_broker_node():
    runs = {
        "b": {"kind": "broker_kill"},
        "a": {"kind": "broker_restart"},
        "c": {"kind": "spark_kill"},
    }
    assert faultsummary.in_fault_order(runs) == ["c", "a", "b"]
    with pytest.raises(ValueError, match=r"'x'.*'power_cut'"):
        faultsummary.in_fault_order({"x": {"kind": "power_cut"}})


def code_of(notebook: Path) -> ast.Module:
    """The notebook's code cells as one module (IPython magics, if any, left out)."""
    cells = json.loads(notebook.read_text())["cells"]
    source = "\n".join(
        "".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!")))
        for cell in cells
        if cell["cell_type"] == "code"
    )
    return ast.parse(source, filename=str(notebook))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_take_number_formatting_from_the_package(notebook):
    defined = {
        node.name for node in ast.walk(code_of(notebook)) if isinstance(node, ast.FunctionDef)
    }
    assert not defined & {"num", "fmt", "num_range", "duration_label", "write_values"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_no_stage_that_starts_processes(notebook):
    imported = []
    for node in ast.walk(code_of(notebook)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
    forbidden = tuple(f"vitalstream.{stage}" for stage in PROCESS_STAGES)
    assert [m for m in imported if m == "vitalstream" or m.startswith(forbidden)] == []


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 9
