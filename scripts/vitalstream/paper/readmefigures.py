"""The README's measured figures: the headline numbers of a run, with the commit they came from.

A stranger deciding whether to use this pipeline reads the README, not the paper, and wants
this machine's figures there: what a plain consumer reads, what the tuned job sustains and how
far its repetitions spread, what the top of RQ1's grid did. Typed by hand they go stale the
day the job changes, and nothing says which commit they belong to. So the block between
``<!-- figures:start -->`` and ``<!-- figures:end -->`` is rewritten by ``make readme-figures``
from the values the paper prints (``results/paper/macros.json``) and the commit, machine and
date of the run that made them (``results/paper/origin.tex``). A figure the run lacks prints
as ``n/a``, never as a stale number.

Not for: computing any figure (the notebooks and ``vitalstream.paper.macros``).
"""

from __future__ import annotations

import argparse
import json
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

from vitalstream.core.cliargs import UsageError, existing_file, json_file
from vitalstream.paper.papermap import splice_readme

README_START = "<!-- figures:start -->"
README_END = "<!-- figures:end -->"

# (what the figure is, how it prints): ``{Name}`` is a macro of macros.json, with a Python
# format spec for a number (a text value or ``n/a`` prints as it is).
FIGURES: tuple[tuple[str, str], ...] = (
    ("Raw consumer ceiling (plain Kafka consumer, same run)", "{RqFiveCeiling:,.0f} messages/s"),
    (
        "Tuned job's sustainable rate (search; median, range)",
        "{RqFiveTunedSustainable:,.0f} readings/s "
        "({RqFiveTunedSustainableMin:,.0f}–{RqFiveTunedSustainableMax:,.0f}, "
        "{RqFiveReps:.0f} repetitions; widest ±{RqFiveTunedSpreadPercent:.0f} % from the median)",
    ),
    (
        "Its share of the ceiling; window-alert P99 at that rate",
        "{RqFiveCeilingShare:.0f} % (target ≥ 90 %); {RqFiveTunedWindowAtRatePninetynine:.2f} s "
        "(target ≤ 2 s)",
    ),
    (
        "Blueprint's configuration, same run",
        "batches of {RqFiveBlueprintBatchPfifty:.1f} s at the median",
    ),
    (
        "RQ1: largest load held in every repetition (target 100,000; n/a: none held)",
        "{RqOneLargestHeld:,.0f} patients at 1 reading/s",
    ),
    (
        "Where a batch's time goes ({BreakdownHighMessages:,.0f} messages)",
        "{BreakdownHighLargestStage} {BreakdownHighLargestPercent:.0f} %, "
        "planning {BreakdownHighPlanningPercent:.0f} %",
    ),
    (
        "Cost model's sustainable rate on 16 and 64 cores (a prediction)",
        "{CostRateSixteen:,.0f} and {CostRateSixtyFour:,.0f} readings/s",
    ),
    (
        "Validation: stream against the batch reference",
        "{ValidationInOrderMismatches:.0f} mismatches in order, "
        "{ValidationLateMismatches:.0f} with late data",
    ),
)

_ORIGIN_LINE = re.compile(r"\\newcommand\{\\(\w+)\}\{(.*)\}\s*$")


class _MacroFormatter(string.Formatter):
    """str.format over macro values, where a text value (``n/a``, a stage's name) ignores the
    number's format spec instead of raising."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, str):
            return value
        return super().format_field(value, format_spec)


def macro_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{name: value}`` from macros.json's rows."""
    return {row["name"]: row["value"] for row in rows}


def origin_values(tex: str) -> dict[str, str]:
    """``{name: body}`` of origin.tex's ``\\newcommand`` lines."""
    return {m[1]: m[2] for line in tex.splitlines() if (m := _ORIGIN_LINE.match(line))}


class _Missing(dict):
    """A macro the run lacks formats as ``n/a``."""

    def __missing__(self, key: str) -> str:
        return "n/a"


def render(values: Mapping[str, Any], origin: Mapping[str, str], profile: str) -> str:
    """The README block: where the figures come from, then one table row per figure."""
    known = _Missing(values)
    formatter = _MacroFormatter()
    dirty = ", with uncommitted changes" if origin.get("OriginDirty") == "yes" else ""
    lines = [
        f"Measured by `make paper` (profile {profile}) at commit "
        f"`{origin.get('OriginCommit', 'n/a')}`{dirty}, {origin.get('OriginDate', 'n/a')}, on "
        f"{origin.get('OriginCores', 'n/a')} cores and {origin.get('OriginMemoryGiB', 'n/a')} "
        "GiB; `make readme-figures` rewrites this table from `results/paper/macros.json`.",
        "",
        "| figure | measured |",
        "|---|---|",
    ]
    for label, template in FIGURES:
        lines.append(
            f"| {formatter.vformat(label, (), known)} | {formatter.vformat(template, (), known)} |"
        )
    return "\n".join(lines) + "\n"


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "readme-figures", help="the README's measured figures, from a run's macros"
    )
    parser.add_argument("--macros", type=json_file, required=True, help="results/paper/macros.json")
    parser.add_argument("--origin", type=existing_file, required=True, help="origin.tex")
    parser.add_argument("--profile", default="full", help="the profile the run used")
    parser.add_argument("--readme", type=existing_file, required=True, help="rewrite its block")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    values = macro_values(json.loads(args.macros.read_text()))
    block = render(values, origin_values(args.origin.read_text()), args.profile)
    try:
        text = splice_readme(args.readme.read_text(), block, README_START, README_END)
    except ValueError as exc:  # the README given has no block to rewrite: a bad argument
        raise UsageError(f"--readme {args.readme}: {exc}") from exc
    args.readme.write_text(text)
    print(json.dumps({"figures": len(FIGURES), "readme": str(args.readme)}))
    return 0
