"""Which rule, code and result files made each figure and table of the paper.

The workflow knows it (each rule's outputs, its notebook or ``python -m vitalstream`` command
and its inputs); workflow/rules/archive.smk builds the map with :func:`build` and passes it to
``paper-map``, which renders it twice: the paper's appendix table (``tab_provenance.tex``)
and the README's map (between the markers ``<!-- paper-map:start -->`` and
``<!-- paper-map:end -->``, rewritten by ``make readme-map``), so neither is typed by hand.

Not for: finding the rules (the workflow does) or checksums (vitalstream.paper.archive).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from vitalstream.core.cliargs import existing_file, json_argument, json_file, writable_file
from vitalstream.core.tables import escape, longtable_head

README_START = "<!-- paper-map:start -->"
README_END = "<!-- paper-map:end -->"
_COMMAND = re.compile(r"python -m vitalstream ([\w-]+)")


def rule_records(rules: Iterable[Any], prefix: str = "results/paper") -> list[dict[str, Any]]:
    """The rules (Snakemake ``Rule`` objects) that write under ``prefix``, as plain records:
    ``{"name", "inputs": {name: path or [paths], "_all": [every input]}, "outputs",
    "shellcmd", "dynamic_inputs"}``. These are the paper rules: what a results archive
    rebuilds. Input functions cannot be listed before the DAG exists: ``dynamic_inputs`` counts
    them (vitalstream.paper.archive refuses to archive such a rule's inputs)."""
    records = []
    for rule in rules:
        outputs = [str(f) for f in rule.output]
        if not any(f.startswith(prefix) for f in outputs):
            continue
        inputs: dict[str, Any] = {
            name: str(value) if isinstance(value, str) else [str(f) for f in value]
            for name, value in rule.input.items()
            if not callable(value)
        }
        inputs["_all"] = [str(f) for f in rule.input if not callable(f)]
        records.append(
            {
                "name": rule.name,
                "inputs": inputs,
                "outputs": outputs,
                "shellcmd": rule.shellcmd,
                "dynamic_inputs": sum(callable(f) for f in rule.input),
            }
        )
    return records


def made_by(inputs: Mapping[str, Any], shellcmd: str) -> str:
    """The notebook a rule executes (its ``notebook`` input), else its vitalstream command."""
    if "notebook" in inputs:
        return str(inputs["notebook"])
    match = _COMMAND.search(shellcmd or "")
    return f"vitalstream {match.group(1)}" if match else "(shell)"


def patterns(paths: Iterable[str]) -> list[str]:
    """Paths folded into glob patterns: files that differ only in some directory levels (runs,
    conditions, repetitions) become one pattern with ``*`` at those levels."""
    groups: dict[tuple[int, str, str], list[tuple[str, ...]]] = {}
    for path in sorted(set(paths)):
        parts = PurePosixPath(path).parts
        groups.setdefault((len(parts), parts[0], parts[-1]), []).append(parts)
    folded = []
    for members in groups.values():
        columns = zip(*members, strict=True)
        folded.append("/".join(c[0] if len(set(c)) == 1 else "*" for c in columns))
    return sorted(set(folded))


def build(
    generated: Sequence[str], rules: Sequence[Mapping[str, Any]], paper_dir: str = "results/paper"
) -> list[dict[str, Any]]:
    """One row per generated paper input: file, rule, code, result files read.

    ``rules``: ``{"name", "inputs": {name: path or [paths]}, "outputs": [paths], "shellcmd"}``
    of every rule that writes one of ``generated``. Inputs that are code (scripts/, notebooks/)
    or other paper files are left out of "read from".
    """
    rows = []
    for path in generated:
        rule = next((r for r in rules if path in r["outputs"]), None)
        if rule is None:
            raise ValueError(f"no rule writes {path}")
        read = []
        for value in rule["inputs"].values():
            for item in [value] if isinstance(value, str) else value:
                if item.startswith(("results/", "data/")) and not item.startswith(paper_dir):
                    read.append(item)
        rows.append(
            {
                "file": path.removeprefix(paper_dir + "/"),
                "rule": rule["name"],
                "made_by": made_by(rule["inputs"], rule.get("shellcmd", "")),
                "reads": patterns(read),
            }
        )
    return rows


def _label(file: str) -> str:
    """The LaTeX label of a figure or table file (fig_rq1_cdf.pdf → fig:rq1-cdf)."""
    stem = Path(file).stem
    kind, _, rest = stem.partition("_")
    return f"{kind}:{rest.replace('_', '-')}" if kind in ("fig", "tab") else ""


def by_rule(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows grouped by rule, in the order the rules first appear."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = groups.setdefault(
            row["rule"], {"files": [], "made_by": row["made_by"], "reads": row["reads"]}
        )
        entry["files"].append(row["file"])
    return groups


def to_latex(rows: Sequence[Mapping[str, Any]]) -> str:
    """The appendix's table, one row per rule: a ``longtable``, which breaks across pages (it
    grows with every figure; as a float it outgrew the page). Its caption stays in the paper,
    which defines ``\\ProvenanceCaption`` before the input."""

    def code(text: str) -> str:
        return rf"\path{{{text}}}" if "/" in text else rf"\texttt{{{escape(text)}}}"

    def column(width: str) -> str:
        return rf">{{\raggedright\arraybackslash}}p{{{width}\linewidth}}"

    header = r"Figure or table & Rule and code & Result files read \\"
    columns = f"@{{}}{column('0.3')}{column('0.3')}{column('0.34')}@{{}}"
    lines = longtable_head(columns, r"\ProvenanceCaption", "tab:provenance", header)
    for number, (rule, entry) in enumerate(by_rule(rows).items()):
        if number:
            lines.append(r"\addlinespace")
        files = []
        for file in entry["files"]:
            label = _label(file)
            files.append(rf"\path{{{file}}}" + (rf" (\cref{{{label}}})" if label else ""))
        reads = r"\newline ".join(rf"\path{{{p}}}" for p in entry["reads"]) or "---"
        lines.append(
            r"\newline ".join(files)
            + rf" & \texttt{{{escape(rule)}}}\newline {code(entry['made_by'])} & {reads} \\"
        )
    lines += [r"\end{longtable}"]
    return "\n".join(lines) + "\n"


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The README's map: one row per rule, with the files it makes."""
    lines = ["| paper input | rule | made by |", "|---|---|---|"]
    for rule, entry in by_rule(rows).items():
        files = ", ".join(f"`{f}`" for f in entry["files"])
        lines.append(f"| {files} | `{rule}` | `{entry['made_by']}` |")
    return "\n".join(lines) + "\n"


def splice_readme(readme: str, table: str, start: str = README_START, end: str = README_END) -> str:
    """``readme`` with the text between the markers ``start`` and ``end`` (the map's unless
    given) replaced by ``table``."""
    if start not in readme or end not in readme:
        raise ValueError(f"README has no {start} ... {end} markers")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}{end}{tail}"


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "paper-map", help="the figure/table → rule map: appendix table, README section"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--rows", type=json_argument, help="the map as JSON (rows of build())")
    source.add_argument("--rows-file", type=json_file, help="the map as a JSON file (--out-json)")
    parser.add_argument("--table", type=writable_file, help="write the appendix table here")
    parser.add_argument("--out-json", type=writable_file, help="write the rows as JSON here")
    parser.add_argument("--readme", type=existing_file, help="rewrite this README's map section")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    rows = args.rows if args.rows is not None else json.loads(args.rows_file.read_text())
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(to_latex(rows))
    if args.out_json:
        args.out_json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.readme:
        args.readme.write_text(splice_readme(args.readme.read_text(), to_markdown(rows)))
    print(json.dumps({"rows": len(rows)}))
    return 0
