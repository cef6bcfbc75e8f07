"""Values as the paper prints them: a key path into a result file, a number with its decimals,
a table cell, an entry of a values file and the file itself. Used by the paper's macros, the
notebooks and every stage that writes values for the text, so they all format a number the
same way and a notebook defines no formatting of its own.

Not for: the paper's macro table (vitalstream.paper.macros), LaTeX tables as a whole
(vitalstream.core.tables).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def lookup(data: Mapping[str, Any], key: str) -> Any:
    """Value at a dot path; a segment may itself contain dots (Spark conf keys), and in a list
    ``k=v`` selects the item whose ``k`` is ``v`` (``window_rules.name=tachycardia``)."""
    if isinstance(data, list):
        head, _, rest = key.partition(".")
        field_name, _, wanted = head.partition("=")
        for item in data:
            if isinstance(item, Mapping) and str(item.get(field_name)) == wanted:
                return lookup(item, rest) if rest else item
        raise KeyError(key)
    if not isinstance(data, Mapping):
        raise KeyError(key)
    if key in data:
        return data[key]
    head, _, rest = key.partition(".")
    while rest:
        if head in data and isinstance(data[head], Mapping | list):
            try:
                return lookup(data[head], rest)
            except KeyError:
                pass
        part, _, rest = rest.partition(".")
        head = f"{head}.{part}"
    if head in data:
        return data[head]
    raise KeyError(key)


def format_value(value: Any, decimals: int | None) -> str:
    """The macro body: a plain number (siunitx formats it in the text) or escaped text."""
    if value is None:
        return "n/a"
    if decimals is None:
        text = str(value)
        if "T" in text and text[:4].isdigit():  # an ISO timestamp: the date is enough
            text = text.split("T")[0]
        return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
    return f"{float(value):.{decimals}f}"


def macro_value(raw: Any, decimals: int | None, source: str) -> dict[str, Any]:
    """One entry of a values file (see :func:`read_values`): a value a run lacks prints as
    ``n/a`` instead of failing the paper."""
    if raw is None:
        return {"value": "n/a", "decimals": None, "source": source}
    return {"value": raw, "decimals": decimals, "source": source}


def is_missing(value: Any) -> bool:
    """Whether a number is one a run lacks: ``None``, NaN or an infinity (a median of no
    samples, a ratio over zero). Integers are never missing; they need no finiteness check."""
    if value is None:
        return True
    if isinstance(value, numbers.Integral):
        return False
    return isinstance(value, numbers.Real) and not math.isfinite(value)


def num(value: Any, decimals: int = 0, scale: float = 1.0) -> str:
    r"""A table cell: ``\num{...}`` with ``decimals`` places, so that siunitx typesets it as it
    does the text's macros; ``n/a`` for a value a run lacks (:func:`is_missing`) rather than a
    LaTeX error. ``scale`` divides first (1000 turns milliseconds into seconds)."""
    if is_missing(value):
        return "n/a"
    return f"\\num{{{value / scale:.{decimals}f}}}"


def num_range(middle: Any, low: Any, high: Any, decimals: int = 0, scale: float = 1.0) -> str:
    """A median with the range over repetitions, ``m (lo--hi)``, each as :func:`num`: the form
    every performance table uses for a value measured more than once."""
    cells = [num(v, decimals, scale) for v in (middle, low, high)]
    return f"{cells[0]} ({cells[1]}--{cells[2]})"


def duration_label(seconds: float) -> str:
    """A window or watermark length as the tables and figures name it: ``90 s``, ``5 min``.
    Minutes from one minute up, where a reader thinks in minutes."""
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def write_values(values: Mapping[str, Any], path: str | Path) -> Path:
    """Write a values file (``{Name: {"value", "decimals", "source", ...}}``) that
    vitalstream.paper.macros reads; one layout for every notebook so that a rebuild's files
    compare line by line."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(values, indent=2) + "\n")
    return out
