"""Paper assets: the pipeline figure and the rule and score tables follow the configuration."""

from __future__ import annotations

import copy
import inspect
import re
import shutil
import subprocess

import pytest
from vitalstream.__main__ import main
from vitalstream.core.config import DEFAULT_CONFIG, RunId, load_config, load_config_json
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.scores import score_spec_from_config, score_table_rows
from vitalstream.experiments import run as experiment
from vitalstream.paper import assets as paper_tables
from vitalstream.sinks import batch as sinks
from vitalstream.stream import job as streaming
from vitalstream.stream import spec as stream_spec


@pytest.fixture(scope="module")
def config():
    return load_config()


def _headline(config):
    run, params = paper_tables.headline_condition(config)
    return run, params


def _with_headline(config, **changes):
    """A copy of ``config`` whose headline condition has ``changes``."""
    changed = copy.deepcopy(config)
    run, _ = _headline(config)
    changed["experiments"][run.experiment]["conditions"][run.condition].update(changes)
    return changed


def _uncommented(text):
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("%"))


def _body_rows(tabular):
    """The rows of a tabular between \\toprule and \\bottomrule (rules excluded)."""
    lines = tabular.splitlines()
    start, end = lines.index(r"\toprule"), lines.index(r"\bottomrule")
    return [ln for ln in lines[start + 1 : end] if ln.endswith(r"\tabularnewline")]


def _columns(tabular):
    spec = tabular.splitlines()[0]
    assert spec.startswith(r"\begin{tabular}")
    return spec.count("p{")


def _span(row):
    """Columns a row covers: cells, with a \\multicolumn{n} counting n (no nested &)."""
    spans = [int(n) for n in re.findall(r"\\multicolumn\{(\d+)\}", row)]
    return row.count("&") + 1 + sum(n - 1 for n in spans)


# --- structure mirrored from the streaming code -------------------------------------------------


def test_structure_matches_the_streaming_job():
    assert paper_tables.WINDOW_STATS == stream_spec.WINDOW_STATS
    assert set(paper_tables.OUTPUTS) <= set(experiment.RUN_OUTPUTS)
    source = inspect.getsource(streaming.start_job)
    for query in (paper_tables.WINDOWS_QUERY, paper_tables.READINGS_QUERY):
        assert f'queryName("{query}")' in source or f'"{query}": ' in source
    for output in ("windows", "alerts", "deadletter", "events"):
        assert f'path("{output}")' in inspect.getsource(sinks.Sinks)


# --- figure ---------------------------------------------------------------------------------------


def test_figure_is_a_bare_tikzpicture_with_config_values(config):
    _, params = _headline(config)
    spec = DiagnosticsSpec.from_config(config["diagnostics"])
    tikz = paper_tables.pipeline_tikz(config)
    body = _uncommented(tikz).strip()
    assert body.startswith(r"\begin{tikzpicture}") and body.endswith(r"\end{tikzpicture}")
    assert body.count(r"\begin{") == body.count(r"\end{")
    assert rf"$w = {params['window_s']:g}$" in tikz
    assert rf"$d = {params['watermark_s']:g}$" in tikz
    assert f"{params['kafka_partitions']} partition" in tikz
    assert rf"$s = {params['speedup']:g}$" in tikz
    assert f"{len(spec.window_rules)} threshold rule" in tikz
    assert f"{len(spec.reading_rules)} reading rule" in tikz
    assert f"{len(spec.change_rules)} change rule" in tikz
    assert f"{len(spec.anomaly)} EWMA detector" in tikz
    assert rf"suppression {spec.suppression_s:g}\,s" in tikz
    for query in ("windows", "readings"):
        assert rf"query \texttt{{{query}}}" in tikz
    for output in ("windows/", "alerts/", "deadletter/", "events/", "state/", "commits.jsonl"):
        assert rf"\texttt{{{output}}}" in tikz
    assert "alerts topic" in tikz or "topic: emitted" in tikz


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"window_s": 30}, r"$w = 30$"),
        ({"watermark_s": 45}, r"$d = 45$"),
        ({"slide_s": 15}, r"slide 15\,s"),
        ({"kafka_partitions": 8}, "8 partitions"),
        ({"trigger_ms": 500}, r"every 500\,ms"),
    ],
)
def test_a_config_change_changes_the_figure(config, changes, expected):
    before = paper_tables.pipeline_tikz(config)
    after = paper_tables.pipeline_tikz(_with_headline(config, **changes))
    assert after != before
    assert expected in after and expected not in before


def test_optional_sinks_are_drawn_off_when_disabled(config):
    off = _with_headline(config, sinks={"raw_events": False, "alerts_topic": False})
    on = _with_headline(config, sinks={"raw_events": True, "alerts_topic": True})
    assert r"\node[off" in paper_tables.pipeline_tikz(off)
    assert r"\node[off" not in paper_tables.pipeline_tikz(on)
    assert "topic: off" in paper_tables.pipeline_tikz(off)


def test_rule_counts_in_the_figure_follow_the_diagnostics(config):
    changed = copy.deepcopy(config)
    changed["diagnostics"]["reading_rules"].append(
        {"name": "critical_hypotension", "column": "sbp", "op": "<", "threshold": 70,
         "severity": "high"}
    )  # fmt: skip
    n = len(changed["diagnostics"]["reading_rules"])
    assert f"{n} reading rules" in paper_tables.pipeline_tikz(changed)


# --- tables ---------------------------------------------------------------------------------------


def test_rules_table_lists_every_rule_with_its_description(config):
    table = paper_tables.rules_table(config)
    spec = DiagnosticsSpec.from_config(config["diagnostics"])
    rules = (*spec.window_rules, *spec.reading_rules, *spec.change_rules, *spec.anomaly)
    assert rules
    for rule in rules:
        name = rule.name.replace("_", r"\_")
        row = next(r for r in _body_rows(table) if rf"\texttt{{{name}}}" in r)
        assert paper_tables.condition(rule) in row
        assert row.removesuffix(r" \tabularnewline").endswith(rule.severity)
    assert rf"{spec.suppression_s:g}\,s" in table


def test_scores_table_has_every_parameter_and_band(config):
    table = paper_tables.scores_table(config)
    spec = score_spec_from_config(config["diagnostics"]["scores"])
    for row in score_table_rows(spec):
        if row["parameter"] in ("consciousness", "mentation", "avpu", "o2"):
            continue  # category and flag rows are regrouped (see test below)
        cell = f"{paper_tables.latex_text(row['charted'])}: {row['points']}"
        assert cell in table, cell
    assert "A: 0; C, V, P, U: 3" in table  # NEWS2 consciousness, in ACVPU order
    for score in ("NEWS2", "qSOFA", "SIRS", "MEWS"):
        assert score in table
    assert r"$v < b + 0.5$" in table and r"$v < b + 0.05$" in table


def test_category_order_does_not_depend_on_the_json_key_order(config):
    shuffled = copy.deepcopy(config)
    points = shuffled["diagnostics"]["scores"]["mews"]["avpu"]["points"]
    shuffled["diagnostics"]["scores"]["mews"]["avpu"]["points"] = dict(sorted(points.items()))
    assert paper_tables.scores_table(shuffled) == paper_tables.scores_table(config)


@pytest.mark.parametrize("maker", [paper_tables.rules_table, paper_tables.scores_table])
def test_tables_are_balanced_booktabs_tabulars(config, maker):
    table = maker(config)
    lines = table.strip().splitlines()
    assert lines[0].startswith(r"\begin{tabular}") and lines[-1] == r"\end{tabular}"
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in lines
    columns = _columns(table)
    rows = _body_rows(table)
    assert len(rows) > 2
    for row in rows:
        assert _span(row) == columns, row


def test_names_are_escaped(config):
    changed = copy.deepcopy(config)
    changed["diagnostics"]["window_rules"].append(
        {"name": "my_odd_rule", "column": "rr_mean", "op": ">=", "threshold": 30,
         "severity": "low"}
    )  # fmt: skip
    table = paper_tables.rules_table(changed)
    assert r"\texttt{my\_odd\_rule}" in table
    assert r"\texttt{rr\_mean} $\ge$ 30" in table
    for text in (
        table,
        paper_tables.scores_table(changed),
        paper_tables.pipeline_tikz(changed),
    ):
        assert not re.search(r"(?<!\\)_", _uncommented(text))
        assert not re.search(r"[≤≥Δα–°×]", text)  # pdflatex knows none of them


def test_latex_text_turns_symbols_into_math():
    assert paper_tables.latex_text("≤8") == r"$\le$8"
    assert paper_tables.latex_text("9–11") == "9--11"
    assert paper_tables.latex_text("a >= b") == r"a $\ge$ b"
    assert paper_tables.latex_text("SpO2 (%)") == r"SpO\textsubscript{2} (\%)"


# --- command line and workflow slice ------------------------------------------------------------


def test_cli_writes_the_three_files(tmp_path, config):
    out = tmp_path / "paper"
    assert main(["paper-assets", "--config", str(DEFAULT_CONFIG), "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(paper_tables.FILES.values())
    assert (out / "fig_pipeline.tex").read_text() == paper_tables.pipeline_tikz(config)


def test_the_workflow_slice_gives_the_same_assets(config):
    """workflow/rules/common.smk (paper_assets_config) passes this slice as --config-json."""
    import json

    from vitalstream.core.config import run_config_subset

    run = RunId.parse(config["paper"]["headline_run"])
    subset = run_config_subset(config, run)
    subset.update(kafka={}, spark={}, paper={"headline_run": run.path})
    subset["physionet"] = {"sources": list(config["physionet"]["sources"])}
    sliced = load_config_json(json.dumps(subset, sort_keys=True))
    for maker in (paper_tables.pipeline_tikz, paper_tables.rules_table, paper_tables.scores_table):
        assert maker(sliced) == maker(config)


# --- LaTeX ----------------------------------------------------------------------------------------

_DOCUMENT = r"""\documentclass[11pt,a4paper]{article}
\usepackage[margin=25mm]{geometry}
\usepackage[T1]{fontenc}
\usepackage{lmodern}
\usepackage{microtype}
\usepackage{booktabs}
\usepackage{amsmath}
\usepackage{tikz}
\begin{document}
\begin{figure}[tb]\centering\input{fig_pipeline.tex}\caption{Pipeline.}\end{figure}
\begin{table}[tb]\centering\small\input{tab_rules.tex}\caption{Rules.}\end{table}
\begin{table}[tb]\centering\footnotesize\input{tab_scores.tex}\caption{Scores.}\end{table}
\end{document}
"""


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_assets_compile_within_the_text_width(tmp_path, config):
    """As the paper sets them (11pt a4, 25 mm margins): no error, nothing wider than a line."""
    paper_tables.write_assets(config, tmp_path)
    (tmp_path / "doc.tex").write_text(_DOCUMENT)
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert result.returncode == 0, log[-3000:]
    assert "Overfull" not in log, re.findall(r"Overfull.*", log)
