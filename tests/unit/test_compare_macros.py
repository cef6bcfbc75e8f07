"""scripts/compare_macros.py: two builds' macros.tex, the differences that matter, exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import compare_macros
import pytest
from vitalstream.paper import macros

SCRIPT = Path(compare_macros.__file__)
BODIES = {
    "RunWindows": "12000",
    "RunLatencyPfifty": "812",
    "GitCommit": "abcdef12",
    "FaultSparkLost": "0",
    "RqtwoBestCondition": r"coalesce\_10",
    "RqthreeMissingEqualsDropped": "every",
    "Percent": r"50\%",
    "Verdict": r"\textbf{no}",
}


def write_tex(path: Path, bodies: dict[str, str]) -> Path:
    """A macros.tex as the paper's writer renders it, so the parser reads the real format."""
    rows = [{"name": n, "body": b, "file": "results/x.json", "key": n} for n, b in bodies.items()]
    path.write_text(macros.render(rows))
    return path


@pytest.fixture
def old(tmp_path: Path) -> Path:
    return write_tex(tmp_path / "old.tex", BODIES)


def run(old: Path, new: Path, *extra: str) -> int:
    return compare_macros.main([str(old), str(new), *extra])


def test_the_parser_reads_bodies_with_braces_escapes_and_the_source(old):
    read = compare_macros.read_macros(old)
    assert len(read) == len(BODIES)
    assert {n: m.body for n, m in read.items()} == BODIES
    assert read["Verdict"].source == "results/x.json:Verdict"


def test_identical_files_exit_0_and_print_nothing(old, tmp_path, capsys):
    new = write_tex(tmp_path / "new.tex", BODIES)
    assert run(old, new) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{len(BODIES)} macros in" in err and "0 untolerated" in err


def test_an_untolerated_change_exits_1_with_one_line(old, tmp_path, capsys):
    new = write_tex(tmp_path / "new.tex", BODIES | {"RunWindows": "12001", "GitCommit": "0ff1ce"})
    assert run(old, new) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        r"changed \RunWindows: '12000' -> '12001'  % results/x.json:RunWindows"
    ]


def test_a_tolerated_change_exits_0(old, tmp_path, capsys):
    new = write_tex(tmp_path / "new.tex", BODIES | {"RunLatencyPfifty": "790", "GitCommit": "0ff1"})
    assert run(old, new) == 0  # the committed list: timing and provenance
    assert capsys.readouterr().out == ""
    listed = tmp_path / "tolerated.txt"
    listed.write_text("# why: measured in wall time\nRunLatency\\w+  # latency\n")
    assert run(old, new, "--tolerance-list", str(listed)) == 1  # GitCommit is not listed here
    assert capsys.readouterr().out.startswith(r"changed \GitCommit: 'abcdef12' -> '0ff1'")


def test_nothing_is_tolerated_with_an_empty_list(old, tmp_path, capsys):
    new = write_tex(tmp_path / "new.tex", BODIES | {"RunLatencyPfifty": "790"})
    assert run(old, new, "--tolerance-list", "/dev/null") == 1
    assert "RunLatencyPfifty" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["added", "removed"])
def test_an_added_or_removed_macro_exits_1_even_if_its_name_is_tolerated(
    old, tmp_path, capsys, kind
):
    bodies = dict(BODIES)
    if kind == "added":
        bodies["RunSparkRate"] = "11000"
    else:
        del bodies["GitCommit"]
    new = write_tex(tmp_path / "new.tex", bodies)
    assert run(old, new) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{kind} \\{'RunSparkRate' if kind == 'added' else 'GitCommit'}: ")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["only-one.tex"],
        ["missing.tex", "old.tex"],
        ["old.tex", "old.tex", "--tolerance-list", "bad.txt"],
        ["old.tex", "empty.tex"],
        ["old.tex", "twice.tex"],
        ["old.tex", "old.tex", "--no-such-option"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(old, tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.txt").write_text("Run(Latency\n")
    (tmp_path / "empty.tex").write_text("% no macros here\n")
    (tmp_path / "twice.tex").write_text(old.read_text() + "\\newcommand{\\RunWindows}{1} % x\n")
    assert compare_macros.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_an_unclosed_body_names_the_file_and_line(tmp_path, capsys):
    broken = tmp_path / "broken.tex"
    broken.write_text("% header\n\\newcommand{\\A}{\\textbf{1} % x\n")
    assert compare_macros.main([str(broken), str(broken)]) == 2
    assert f"{broken}:2: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "tolerated"),
    [
        ("GitCommit", True),
        ("RunDate", True),
        ("MachineMemoryGiB", True),
        ("RunLatencyPninetynine", True),
        ("RqFiveTunedSustainable", True),
        ("RqFiveBlueprintEventAlertPninetynine", True),
        ("FaultKillPause", True),
        ("RqthreeLateExpTenWZeroStateMB", True),
        ("ServingIndexLatencyPfifty", True),
        ("RunWindows", False),
        ("RunWindowSeconds", False),
        ("RqFiveRampFirst", False),
        ("FaultSparkLost", False),
        ("FaultKillDuplicated", False),
        ("RqthreeLateExpTenWZeroCompleteness", False),
        ("RqfourStreamAuroc", False),
        ("CohortDelayMeanMs", False),  # a property of the generated data, not of the machine
    ],
)
def test_the_committed_list_tolerates_timing_and_provenance_only(name, tolerated):
    patterns = compare_macros.read_tolerance_list(compare_macros.DEFAULT_TOLERANCE_LIST)
    old = compare_macros.Macro(name, "1", "")
    changed = compare_macros.Difference(name, old, compare_macros.Macro(name, "2", ""))
    assert compare_macros.is_tolerated(changed, patterns) is tolerated


def test_the_script_runs_from_the_command_line(old, tmp_path):
    new = write_tex(tmp_path / "new.tex", BODIES | {"FaultSparkLost": "3"})
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(old), str(new)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stdout == "changed \\FaultSparkLost: '0' -> '3'  % results/x.json:FaultSparkLost\n"
