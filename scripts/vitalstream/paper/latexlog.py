"""The paper build is clean or it fails: LaTeX log problems that must not reach a reader.

latexmk exits 0 on a PDF with undefined references, undefined citations or overfull lines;
rule ``build_paper`` therefore runs ``python -m vitalstream latex-check`` on the log, which
lists every such problem and exits 1 when there is one:

* undefined references and citations (``Reference `x' ... undefined``, ``Citation `x' ...``,
  "There were undefined references");
* overfull boxes wider than ``max_overfull_pt`` (1 pt: narrower ones are invisible);
* every other ``LaTeX Warning`` and ``Package ... Warning`` (a changed label, a float too
  large, a font substitution), except the rerun hints latexmk acts on itself.

Not for: building the PDF (latexmk does) or producing its inputs (the notebook rules).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

from vitalstream.core.cliargs import existing_file, nonnegative_float

MAX_OVERFULL_PT = 1.0
_OVERFULL = re.compile(r"^Overfull \\[hv]box \((?P<pt>[\d.]+)pt too (?:wide|high)\)(?P<rest>.*)$")
_WARNING = re.compile(
    r"^(?:LaTeX(?: \w+)?|Package [\w-]+|Class [\w-]+) Warning: (?P<text>.*)$|^pdfTeX warning"
)
# Hints latexmk acts on by running LaTeX again; in a finished build they are stale.
_RERUN = re.compile(r"Rerun to get|Label\(s\) may have changed|rerunfilecheck")


@dataclass(frozen=True)
class Problem:
    """One line of the log a reader would see the effect of."""

    kind: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"log line {self.line}: {self.kind}: {self.text}"


def _joined(lines: list[str], start: int) -> str:
    """A warning's text with its continuation lines (TeX wraps the log at 79 columns and
    indents continuations of package warnings)."""
    text = lines[start].rstrip()
    for nxt in lines[start + 1 : start + 4]:
        if not nxt.strip() or not (nxt.startswith(" ") or nxt.startswith("(")):
            break
        text += " " + nxt.strip()
    return text


def problems(log: str, max_overfull_pt: float = MAX_OVERFULL_PT) -> list[Problem]:
    """Every problem in a LaTeX log, in log order."""
    lines = log.splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        overfull = _OVERFULL.match(line)
        if overfull:
            if float(overfull["pt"]) > max_overfull_pt:
                found.append(Problem("overfull box", number, line.strip()))
            continue
        warning = _WARNING.match(line)
        if warning and not _RERUN.search(_joined(lines, number - 1)):
            text = _joined(lines, number - 1)
            kind = "undefined" if "undefined" in text else "warning"
            found.append(Problem(kind, number, text))
    return found


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "latex-check", help="fail on undefined references/citations, overfull boxes, warnings"
    )
    parser.add_argument("log", type=existing_file, help="the LaTeX .log of the finished build")
    parser.add_argument("--max-overfull-pt", type=nonnegative_float, default=MAX_OVERFULL_PT)
    parser.set_defaults(func=_cli_check)


def _cli_check(args: argparse.Namespace) -> int:
    found = problems(args.log.read_text(errors="replace"), args.max_overfull_pt)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"{args.log}: {len(found)} problem(s); the paper build fails", file=sys.stderr)
        return 1
    print(f"{args.log}: clean")
    return 0
