"""Repository conventions a user relies on: the CLI, notebooks, ignored outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_cli_help_lists_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "vitalstream", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "scripts"), "PATH": "/usr/bin:/bin"},
    ).stdout
    for command in ("cohort", "broker", "replay", "run", "macros"):
        assert command in out


def test_notebooks_have_a_parameters_cell_first_and_no_outputs():
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert "parameters" in code[0].get("metadata", {}).get("tags", []), path.name
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
            f"{path.name} is committed with outputs"
        )


def test_generated_paths_are_ignored():
    for path in (
        "results/paper.pdf",
        "results/runs/x/metrics.json",
        "data/cohorts/main/x",
        ".cache/jars/kafka/a.jar",
        ".venv/bin/python",
    ):
        result = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", path])
        assert result.returncode == 0, f"{path} is not git-ignored"


def test_the_appendix_prints_the_generated_map_and_the_results_origin():
    # The map itself is generated from the workflow's rules (vitalstream.paper.papermap).
    rules = (REPO / "workflow" / "rules" / "paper.smk").read_text()
    assert '"results/paper/tab_provenance.tex"' in rules
    assert '"results/paper/origin.tex"' in rules
    appendix = (REPO / "paper" / "sections" / "appendix_reproducibility.tex").read_text()
    assert r"\input{tab_provenance.tex}" in appendix
    main = (REPO / "paper" / "main.tex").read_text()
    assert r"\input{origin.tex}" in main and r"\input{macros.tex}" in main


def test_the_readme_map_lists_exactly_the_generated_paper_inputs():
    """The README's figure/table → rule map (written by `make readme-map`) names every figure,
    table and macro file the rules write into results/paper/ (build_paper's inputs, common.smk:
    paper_outputs), and nothing else: a new notebook rule, or a removed one, shows here."""
    import re

    rules = "\n".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    generated = set(re.findall(r'"results/paper/([\w.-]+\.(?:tex|pdf))"', rules))
    assert {"macros.tex", "tab_validation.tex", "fig_rq1_scaling.pdf"} <= generated
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("<!-- paper-map:start -->") : readme.index("<!-- paper-map:end")]
    listed = set(re.findall(r"`([\w.-]+\.(?:pdf|tex))`", section))
    assert generated <= listed, (
        f"not in the README's map (make readme-map): {sorted(generated - listed)}"
    )
    assert listed <= generated, (
        f"in the README's map but made by no rule: {sorted(listed - generated)}"
    )
