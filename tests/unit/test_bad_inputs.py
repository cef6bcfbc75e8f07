"""The bad-input table (vitalstream.paper.badinputs) against the tests it names and the docs.

A row may only promise what its test asserts: the test function must exist, and the reason the
row names must be written in that test's file. Every reason the adversarial stream test's
generator expects must have a row, and docs/bad-inputs.md must hold the generated table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from vitalstream.paper import badinputs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bad-inputs.md"
START, END = "<!-- bad-input-table:start -->", "<!-- bad-input-table:end -->"
REASON = re.compile(r"^[a-z_]+(:[a-z_]+)?$")


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


@pytest.mark.parametrize("row", badinputs.ROWS, ids=lambda r: r.name)
def test_each_row_names_a_test_that_exists_and_asserts_its_reason(row):
    path, _, name = row.test.partition("::")
    file = ROOT / path
    assert file.is_file(), row.test
    if name:
        assert name.split("[")[0] in _functions(file), row.test
    if row.reason:
        text = file.read_text()
        assert f'"{row.reason}"' in text or f"'{row.reason}'" in text, (row.reason, row.test)


def test_every_reason_the_adversarial_generator_expects_has_a_row():
    tree = ast.parse((ROOT / "tests/integration/test_adversarial.py").read_text())
    # Each generator function returns (payload, reason): the reason is the tuple's last item.
    expected = {
        node.value.elts[-1].value
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("_bad_")
        for node in ast.walk(fn)
        if isinstance(node, ast.Return)
        and isinstance(node.value, ast.Tuple)
        and isinstance(node.value.elts[-1], ast.Constant)
    }
    assert all(REASON.match(reason) for reason in expected), expected
    assert len(expected) >= 12, expected
    assert expected <= {row.reason for row in badinputs.ROWS}


def test_the_docs_hold_the_generated_table():
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC} lost its markers"
    inside = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert inside == badinputs.markdown().strip(), (
        "docs/bad-inputs.md is stale: python -m vitalstream bad-input-table > the section"
    )


def test_the_latex_table_has_a_line_per_row():
    tex = badinputs.latex()
    assert tex.count(r"\\") == len(badinputs.ROWS) + 3  # the caption and two headers
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    body = re.sub(r"\\detokenize\{[^}]*\}", "", body).replace(r"\_", "")
    assert "_" not in body, "an unescaped underscore would break the paper's build"
