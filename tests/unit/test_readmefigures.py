"""The README's measured figures: rendered from a run's macros and origin, spliced between
their markers, and every macro they name one the paper's notebooks or macros define."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from vitalstream.__main__ import main
from vitalstream.paper import archive, readmefigures

ROOT = Path(__file__).resolve().parents[2]

ORIGIN = {
    "origin": {
        "git": {"short": "abc1234", "dirty": False},
        "machine": {"hostname": "h", "cpu": "c", "cores": 2, "memory_gib": 24},
        "date_utc": "2026-12-07T23:00:00Z",
    }
}


def values(**extra):
    base = {
        "RqFiveCeiling": 158000.4,
        "RqFiveTunedSustainable": 16000.0,
        "RqFiveTunedSustainableMin": 14000.0,
        "RqFiveTunedSustainableMax": 18500.0,
        "RqFiveReps": 3.0,
        "RqFiveTunedSpreadPercent": 15.6,
        "BreakdownHighLargestStage": "aggregation",
        "BreakdownHighLargestPercent": 39.9,
    }
    return base | extra


def test_numbers_take_their_format_and_text_and_missing_values_print_as_they_are():
    origin = readmefigures.origin_values(archive.origin_tex(ORIGIN, None))
    block = readmefigures.render(values(RqOneLargestHeld="n/a"), origin, "full")
    assert "commit `abc1234`, 2026-12-07, on 2 cores and 24 GiB" in block
    assert "uncommitted" not in block
    assert "| 158,000 messages/s |" in block
    assert "16,000 readings/s (14,000–18,500, 3 repetitions; widest ±16 % from the median)" in block
    assert "aggregation 40 %" in block
    assert "| n/a patients at 1 reading/s |" in block  # the run lacks it: not a stale number
    assert "n/a mismatches in order" in block  # absent from macros.json altogether
    assert block.count("\n| ") == len(readmefigures.FIGURES) + 1  # header + one row each


def test_a_dirty_checkout_is_named():
    dirty = {"origin": ORIGIN["origin"] | {"git": {"short": "abc1234", "dirty": True}}}
    origin = readmefigures.origin_values(archive.origin_tex(dirty, None))
    assert "with uncommitted changes" in readmefigures.render(values(), origin, "quick")


def test_the_command_rewrites_only_the_block(tmp_path):
    macros = tmp_path / "macros.json"
    macros.write_text(json.dumps([{"name": k, "value": v} for k, v in values().items()]))
    origin = tmp_path / "origin.tex"
    origin.write_text(archive.origin_tex(ORIGIN, None))
    readme = tmp_path / "README.md"
    readme.write_text(
        f"before\n{readmefigures.README_START}\nold\n{readmefigures.README_END}\nafter\n"
    )
    argv = ["readme-figures", "--macros", str(macros), "--origin", str(origin)]
    assert main([*argv, "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n") and "old" not in text
    assert "| 158,000 messages/s |" in text


def test_every_macro_a_figure_names_is_one_the_workflow_defines():
    """Each is a macro the paper prints (its build fails on an undefined one) or a value a
    notebook writes; a renamed value would otherwise print n/a in the README for ever."""
    paper = "".join(p.read_text() for p in (ROOT / "paper").rglob("*.tex"))
    notebooks = "".join(p.read_text() for p in (ROOT / "notebooks").glob("*.ipynb"))
    named = {
        name
        for label, template in readmefigures.FIGURES
        for name in re.findall(r"\{(\w+)", label + template)
    }
    missing = sorted(
        name
        for name in named
        if not re.search(rf"\\{name}\b", paper) and f'\\"{name}\\"' not in notebooks
    )
    assert named and not missing, missing


def test_the_readme_has_the_block_and_names_a_commit_of_this_repository():
    readme = (ROOT / "README.md").read_text()
    start = readme.index(readmefigures.README_START)
    block = readme[start : readme.index(readmefigures.README_END)]
    (commit,) = re.findall(r"at commit `([0-9a-f]{7,40})`", block)
    if (ROOT / ".git").exists():
        done = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], check=False
        )
        assert done.returncode == 0, f"README's figures name {commit}, not a commit here"
    assert block.count("\n| ") == len(readmefigures.FIGURES) + 1


def test_make_readme_figures_reads_what_the_workflow_writes():
    """The target's command names the files the paper's rules write, and the full profile."""
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "readme-figures"],
        capture_output=True,
        text=True,
        check=True,
    )
    command = " ".join(done.stdout.replace("\\\n", " ").split())
    assert "-m vitalstream readme-figures --macros results/paper/macros.json" in command
    assert "--origin results/paper/origin.tex --profile full --readme README.md" in command
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert '"results/paper/macros.json"' in rules and '"results/paper/origin.tex"' in rules
