"""LaTeX tables for the paper: booktabs tabulars written from data frames.

Notebooks build a small frame of what a table shows and call ``to_booktabs``; the paper wraps
the tabular in its own table float, so captions stay in the paper and numbers stay generated.

Not for: choosing what goes in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
}


def escape(text: object) -> str:
    """Text safe for LaTeX (cells that are already LaTeX should not go through this)."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


def to_booktabs(
    frame: pd.DataFrame, align: str | None = None, escape_cells: Sequence[str] = ()
) -> str:
    """A booktabs ``tabular`` of ``frame``; columns in ``escape_cells`` are LaTeX-escaped."""
    align = align or "l" + "r" * (len(frame.columns) - 1)
    lines = [
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(escape(c) for c in frame.columns) + r" \\",
        r"\midrule",
    ]
    for _, row in frame.iterrows():
        cells = [escape(v) if c in escape_cells else str(v) for c, v in row.items()]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def longtable_head(columns: str, caption: str, label: str, header: str) -> list[str]:
    """The opening lines of a booktabs ``longtable`` (a table that breaks across pages, for
    tables too long for a float) whose header repeats on every page. ``caption`` is LaTeX,
    usually a macro the paper defines, so that the caption's text stays in the paper."""
    return [
        rf"\begin{{longtable}}{{{columns}}}",
        rf"\caption{{{caption}}}\label{{{label}}}\\",
        r"\toprule",
        header,
        r"\midrule\endfirsthead",
        r"\toprule",
        header,
        r"\midrule\endhead",
        r"\bottomrule\endlastfoot",
    ]


def write(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
