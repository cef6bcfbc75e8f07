"""Diagnostic rule definitions, written once and applied by Spark and by the batch reference.

A rule is data (from ``diagnostics.window_rules`` in config): which vital's window mean it
looks at, the comparison, the threshold and a severity. Spark turns a rule into a column
expression (``spark_condition``); pandas code calls ``holds`` on arrays. Both use the same
operator table, so the two implementations cannot drift apart.

Not for: clinical scores (NEWS2, qSOFA, MEWS), which get their own module.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vitalstream.schema import VITAL_NAMES

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class WindowRule:
    """Alert when ``mean(vital) <op> threshold`` over one window of one patient."""

    name: str
    vital: str
    op: str
    threshold: float
    severity: str

    def __post_init__(self) -> None:
        if self.vital not in VITAL_NAMES:
            raise ValueError(f"rule {self.name}: unknown vital {self.vital!r}")
        if self.op not in OPERATORS:
            raise ValueError(f"rule {self.name}: unknown operator {self.op!r}")

    @property
    def mean_column(self) -> str:
        return f"{self.vital}_mean"

    def holds(self, values: Any) -> Any:
        """The rule on a scalar or array of window means (NaN never fires)."""
        return OPERATORS[self.op](values, self.threshold)

    def describe(self) -> str:
        return f"mean {self.vital} {self.op} {self.threshold:g}"


def rules_from_config(items: Iterable[Mapping[str, Any]]) -> list[WindowRule]:
    """Rules from the config's ``diagnostics.window_rules`` list."""
    return [WindowRule(**dict(item)) for item in items]


def alert_id(patient_id: str, rule: str, window_start_ms: int) -> str:
    """Deterministic alert id: the same alert gets the same id in every run and every engine.

    Spark computes the same digest with ``sha2(concat_ws('|', ...), 256)``; see
    vitalstream.streaming.
    """
    text = f"{patient_id}|{rule}|{window_start_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
