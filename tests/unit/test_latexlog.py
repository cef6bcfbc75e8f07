"""The paper build's log check: what fails the build and what does not."""

from __future__ import annotations

from vitalstream.paper import latexlog

CLEAN = """This is pdfTeX, Version 3.141592653
Overfull \\hbox (0.4pt too wide) in paragraph at lines 10--12
Package rerunfilecheck Warning: File `main.out' has changed.
(rerunfilecheck)                Rerun to get outlines right
LaTeX Warning: Label(s) may have changed. Rerun to get cross-references right.
Output written on main.pdf (12 pages).
"""


def kinds(log: str) -> list[str]:
    return [p.kind for p in latexlog.problems(log)]


def test_a_clean_log_has_no_problems_even_with_tiny_overfulls_and_rerun_hints():
    assert latexlog.problems(CLEAN) == []


def test_undefined_references_and_citations_fail():
    log = CLEAN + (
        "LaTeX Warning: Reference `fig:nope' on page 3 undefined on input line 40.\n"
        "LaTeX Warning: Citation `smith2020' on page 1 undefined on input line 5.\n"
        "LaTeX Warning: There were undefined references.\n"
    )
    assert kinds(log) == ["undefined", "undefined", "undefined"]


def test_overfull_boxes_wider_than_a_point_fail_and_name_their_size():
    found = latexlog.problems("Overfull \\hbox (3.2pt too wide) in paragraph at lines 1--2\n")
    assert [p.kind for p in found] == ["overfull box"] and "3.2pt" in found[0].text
    assert latexlog.problems("Overfull \\hbox (3.2pt too wide)\n", max_overfull_pt=5) == []


def test_other_warnings_fail_with_their_continuation_lines():
    log = (
        "Package hyperref Warning: Token not allowed in a PDF string (Unicode):\n"
        "(hyperref)                removing `math shift' on input line 7.\n"
        "LaTeX Font Warning: Font shape `OT1/cmr/m/n' in size <5> not available\n"
    )
    found = latexlog.problems(log)
    assert [p.kind for p in found] == ["warning", "warning"]
    assert "removing `math shift'" in found[0].text
    assert found[1].line == 3


def test_the_cli_exits_one_on_problems(tmp_path, capsys):
    from vitalstream.__main__ import main

    log = tmp_path / "main.log"
    log.write_text(CLEAN)
    assert main(["latex-check", str(log)]) == 0
    log.write_text(CLEAN + "LaTeX Warning: There were undefined references.\n")
    assert main(["latex-check", str(log)]) == 1
    assert "undefined" in capsys.readouterr().err
