"""The figure/table map: one row per generated paper input, from the rules that made it."""

from __future__ import annotations

import pytest
from vitalstream.paper import papermap

RULES = [
    {
        "name": "run_notebook_rq1_scaling",
        "inputs": {
            "notebook": "notebooks/rq1_scaling.ipynb",
            "metrics": [
                f"results/runs/rq1/p{p}_k1/rep{r}/metrics.json" for p in (1, 2) for r in (1, 2)
            ],
            "_all": [],
        },
        "outputs": ["results/paper/fig_rq1_cdf.pdf", "results/paper/rq1_values.json"],
        "shellcmd": "papermill ...",
    },
    {
        "name": "write_macros",
        "inputs": {"values": ["results/paper/rq1_values.json"], "_all": []},
        "outputs": ["results/paper/macros.tex"],
        "shellcmd": "python -m vitalstream macros --metrics x",
    },
]  # fmt: skip


def test_runs_fold_into_one_pattern_and_distinct_files_stay():
    assert papermap.patterns(
        ["results/runs/rq1/a/rep1/metrics.json", "results/runs/rq1/b/rep2/metrics.json"]
    ) == ["results/runs/rq1/*/*/metrics.json"]
    assert papermap.patterns(["results/perf/ceiling.json", "results/perf/producer.json"]) == [
        "results/perf/ceiling.json",
        "results/perf/producer.json",
    ]


def test_each_file_names_its_rule_code_and_result_files():
    rows = papermap.build(["results/paper/fig_rq1_cdf.pdf", "results/paper/macros.tex"], RULES)
    assert rows[0] == {
        "file": "fig_rq1_cdf.pdf",
        "rule": "run_notebook_rq1_scaling",
        "made_by": "notebooks/rq1_scaling.ipynb",
        "reads": ["results/runs/rq1/*/*/metrics.json"],
    }
    # Another paper file (the notebook's values) is not a result file the macros "read".
    assert rows[1]["made_by"] == "vitalstream macros" and rows[1]["reads"] == []
    with pytest.raises(ValueError, match="no rule writes"):
        papermap.build(["results/paper/fig_nobody.pdf"], RULES)


def test_latex_rows_reference_the_float_and_markdown_groups_by_rule():
    rows = papermap.build(["results/paper/fig_rq1_cdf.pdf", "results/paper/macros.tex"], RULES)
    latex = papermap.to_latex(rows)
    assert r"\path{fig_rq1_cdf.pdf} (\cref{fig:rq1-cdf})" in latex
    assert r"\texttt{run\_notebook\_rq1\_scaling}" in latex
    markdown = papermap.to_markdown(rows)
    assert "| `fig_rq1_cdf.pdf` | `run_notebook_rq1_scaling` | `notebooks/rq1_scaling.ipynb` |" in (
        markdown
    )


def test_the_readme_section_is_replaced_between_its_markers():
    readme = f"intro\n{papermap.README_START}\nold\n{papermap.README_END}\nrest\n"
    assert papermap.splice_readme(readme, "new\n") == (
        f"intro\n{papermap.README_START}\nnew\n{papermap.README_END}\nrest\n"
    )
    with pytest.raises(ValueError, match="markers"):
        papermap.splice_readme("no markers", "x")


def test_rule_records_keep_the_rules_that_write_the_paper():
    from types import SimpleNamespace

    class Files(list):
        def __init__(self, items, names):
            super().__init__(items)
            self.names = names

        def items(self):
            return self.names.items()

    paper = SimpleNamespace(
        name="run_notebook_x",
        input=Files(["notebooks/x.ipynb", "results/a.json"], {"notebook": "notebooks/x.ipynb"}),
        output=["results/paper/fig_x.pdf"],
        shellcmd="papermill ...",
    )
    other = SimpleNamespace(name="run_condition", input=Files([], {}), output=["results/runs/m"])
    records = papermap.rule_records([paper, other])
    assert [r["name"] for r in records] == ["run_notebook_x"]
    assert records[0]["inputs"]["_all"] == ["notebooks/x.ipynb", "results/a.json"]
    assert records[0]["inputs"]["notebook"] == "notebooks/x.ipynb"
    paper.input = Files([lambda wildcards: "x"], {})
    assert papermap.rule_records([paper])[0]["dynamic_inputs"] == 1
