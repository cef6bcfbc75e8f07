"""Rule kinds: a threshold on a column, a change between windows, an EWMA detector.

Each rule evaluates through one operator table, on a Spark Column or a numpy array alike, so
the streaming job and the batch reference cannot drift apart. The rule *set* and the per-patient
state live in vitalstream.core.diagnostics; this module is below it so that the applied risk
model (vitalstream.core.riskspec) can become a threshold rule without an import cycle.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
SEVERITIES = ("low", "medium", "high")


def _as_double(values: Any) -> Any:
    """Booleans and integers compare as doubles in both engines (true → 1.0)."""
    cast = getattr(values, "cast", None)
    if callable(cast):  # a Spark Column
        return cast("double")
    astype = getattr(values, "astype", None)
    if callable(astype):  # a pandas Series or numpy array
        return astype("float64")
    return float("nan") if values is None else float(values)


@dataclass(frozen=True)
class ThresholdRule:
    """Alert when ``<column> <op> threshold`` (a window column, or a reading's vital)."""

    name: str
    column: str
    op: str
    threshold: float
    severity: str

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"rule {self.name}: unknown operator {self.op!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.name}: unknown severity {self.severity!r}")

    def holds(self, values: Any) -> Any:
        """The rule on a Spark Column, a pandas Series, an array or a scalar; null never fires."""
        return OPERATORS[self.op](_as_double(values), float(self.threshold))

    def describe(self) -> str:
        return f"{self.column} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class ChangeRule:
    """Alert when a window column moves by at least ``min_abs_change`` from the patient's
    previous window, if that window ended at most ``max_gap_windows`` windows earlier."""

    name: str
    column: str
    min_abs_change: float
    severity: str
    max_gap_windows: int = 1

    def describe(self) -> str:
        return f"|Δ {self.column}| ≥ {self.min_abs_change:g} between consecutive windows"


@dataclass(frozen=True)
class EwmaDetector:
    """Per-patient EWMA z-score of a window column; fires when |z| ≥ ``z_threshold`` after
    ``warmup_windows`` windows. The window's value updates the state after it is scored."""

    name: str
    column: str
    alpha: float
    z_threshold: float
    warmup_windows: int
    severity: str
    min_sd: float = 1.0

    def describe(self) -> str:
        return (
            f"EWMA (α = {self.alpha:g}) z-score of {self.column} ≥ {self.z_threshold:g} "
            f"after {self.warmup_windows} windows"
        )
