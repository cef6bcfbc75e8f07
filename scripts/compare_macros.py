"""Compare two builds' ``macros.tex``: which numbers of the paper changed, and may they?

A refactor, a dependency bump or a rebuild on another machine should leave every number the
paper states unchanged, except those measured in wall time or describing the build itself
(latencies, throughputs, durations, versions, the git commit, the machine). This reads the
``\\newcommand{\\Name}{body} % source`` lines that ``python -m vitalstream macros`` writes, and
reports every macro added, removed or changed. A tolerance list (one regular expression per
line, matched against the whole macro name; ``#`` starts a comment) names the macros that may
change; every other body must be identical, character for character.

    python scripts/compare_macros.py OLD/macros.tex NEW/macros.tex \\
        [--tolerance-list scripts/compare_macros_tolerated.txt] [--verbose]

Prints each untolerated difference on one line (stdout) and a summary (stderr). Exit status:
0 when every difference is tolerated, 1 when one is not, 2 for bad arguments or an unreadable
file. Without ``--tolerance-list`` the committed list next to this script is used; pass
``--tolerance-list /dev/null`` to tolerate nothing.

Not for: checking a value against its result file (the comment after each macro names it), or
comparing tables and figures.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

DEFAULT_TOLERANCE_LIST = Path(__file__).with_name("compare_macros_tolerated.txt")
_START = re.compile(r"\s*\\newcommand\{\\([A-Za-z]+)\}\{")
EXIT_SAME, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """An argument or input file the comparison cannot use: exit 2 with this one line."""


@dataclass(frozen=True)
class Macro:
    """One ``\\newcommand``: its body as the paper prints it, and the source its comment names."""

    name: str
    body: str
    source: str


@dataclass(frozen=True)
class Difference:
    """A macro that is not the same in both files; ``old``/``new`` is None where it is absent."""

    name: str
    old: Macro | None
    new: Macro | None

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        return "removed" if self.new is None else "changed"

    def line(self) -> str:
        """One line a reader can act on: what changed, from what to what, and where it came from."""
        if self.old is None or self.new is None:
            macro = self.new or self.old
            assert macro is not None
            return f"{self.kind} \\{self.name}: {macro.body!r}  % {macro.source}"
        return f"changed \\{self.name}: {self.old.body!r} -> {self.new.body!r}  % {self.new.source}"


def _body_end(line: str, start: int) -> int:
    """Index of the brace closing a body that opens just before ``start``. Escaped characters
    (``\\%``, ``\\{``) are skipped: format_value escapes ``%`` and text may hold braces."""
    depth, i = 1, start
    while i < len(line):
        char = line[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("the body's braces do not close on this line")


def parse_line(line: str) -> Macro | None:
    """The macro a line defines, or None for a line that defines none (comments, blank)."""
    match = _START.match(line)
    if match is None:
        return None
    end = _body_end(line, match.end())
    rest = line[end + 1 :].strip()
    source = rest[1:].strip() if rest.startswith("%") else rest
    return Macro(match.group(1), line[match.end() : end], source)


def read_macros(path: Path) -> dict[str, Macro]:
    """Every macro of a macros.tex, by name. A file that defines none, or one name twice, is
    not a macros.tex this script can compare."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    macros: dict[str, Macro] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            macro = parse_line(line)
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: {exc}") from exc
        if macro is None:
            continue
        if macro.name in macros:
            raise UsageError(f"{path}:{number}: \\{macro.name} is defined twice")
        macros[macro.name] = macro
    if not macros:
        raise UsageError(f"{path}: no \\newcommand lines; is it a macros.tex?")
    return macros


def read_tolerance_list(path: Path) -> list[re.Pattern[str]]:
    """The patterns of a tolerance list; ``#`` starts a comment (macro names are letters only,
    so a pattern never needs one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    patterns = []
    for number, line in enumerate(text.splitlines(), start=1):
        pattern = line.split("#", 1)[0].strip()
        if not pattern:
            continue
        try:
            patterns.append(re.compile(pattern))
        except re.error as exc:
            raise UsageError(f"{path}:{number}: bad regular expression {pattern!r}: {exc}") from exc
    return patterns


def differences(old: Mapping[str, Macro], new: Mapping[str, Macro]) -> list[Difference]:
    """Macros added, removed or with another body, in name order."""
    found = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before is None or after is None or before.body != after.body:
            found.append(Difference(name, before, after))
    return found


def is_tolerated(difference: Difference, patterns: Iterable[re.Pattern[str]]) -> bool:
    """A changed body whose name a pattern matches in full. A macro added or removed never is:
    the text would cite a macro that does not exist, or a new number nobody has read."""
    if difference.kind != "changed":
        return False
    return any(p.fullmatch(difference.name) for p in patterns)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the caller's log shows it whole)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="compare_macros", description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the reference build's macros.tex")
    parser.add_argument("new", type=Path, help="the build to check")
    parser.add_argument(
        "--tolerance-list",
        type=Path,
        default=DEFAULT_TOLERANCE_LIST,
        help=f"regexes of macros that may differ (default: {DEFAULT_TOLERANCE_LIST.name})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list tolerated ones too")
    return parser.parse_args(argv)


def compare(args: argparse.Namespace) -> int:
    """Print the untolerated differences and a summary; the exit status says whether any."""
    old, new = read_macros(args.old), read_macros(args.new)
    patterns = read_tolerance_list(args.tolerance_list)
    found = differences(old, new)
    tolerated = [d for d in found if is_tolerated(d, patterns)]
    untolerated = [d for d in found if not is_tolerated(d, patterns)]
    for difference in untolerated:
        print(difference.line())
    if args.verbose:
        for difference in tolerated:
            print(f"tolerated {difference.line()}", file=sys.stderr)
    print(
        f"compare_macros: {len(old)} macros in {args.old}, {len(new)} in {args.new}; "
        f"{len(tolerated)} tolerated and {len(untolerated)} untolerated differences",
        file=sys.stderr,
    )
    return EXIT_DIFFERENT if untolerated else EXIT_SAME


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return compare(parse_args(argv))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
