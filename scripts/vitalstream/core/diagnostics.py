"""Diagnostic rule definitions, written once and applied by Spark and by the batch reference.

Every rule is data (``diagnostics`` in config):

* threshold rules on a window column (``window_rules``: a vital's mean, a NEWS2 total, qSOFA)
  and on single readings (``reading_rules``: critical values that must not wait for a window);
* change rules: a sudden change of a window column between a patient's consecutive windows;
* an EWMA detector per patient: an unsupervised z-score of each window against the patient's
  own exponentially weighted history;
* suppression: repeated alerts of one rule for one patient within ``suppression_s`` seconds of
  event time are kept (raw count) but marked suppressed (not emitted) — alarm fatigue is a
  result of the paper, so both counts matter.

Spark turns a threshold rule into a column expression (``holds`` on a Column); pandas calls the
same ``holds`` on arrays, through the same operator table, so the two cannot drift apart. The
sequential rules (change, EWMA, suppression) keep per-patient state; their update functions are
written here once (``PatientState``) and used by the streaming sink; the batch reference
re-derives them independently with vectorised pandas (vitalstream.reference.batch).

Not for: clinical score tables (vitalstream.core.scores).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vitalstream.core.riskspec import WindowRiskModel, load
from vitalstream.core.rules import (
    OPERATORS,
    SEVERITIES,
    ChangeRule,
    EwmaDetector,
    ThresholdRule,
)

__all__ = [
    "OPERATORS",
    "SEVERITIES",
    "ChangeRule",
    "EwmaDetector",
    "ThresholdRule",
    "WindowRiskModel",
]


@dataclass(frozen=True)
class DiagnosticsSpec:
    """All diagnostics of a run, from config ``diagnostics``."""

    window_rules: tuple[ThresholdRule, ...] = ()
    reading_rules: tuple[ThresholdRule, ...] = ()
    change_rules: tuple[ChangeRule, ...] = ()
    anomaly: tuple[EwmaDetector, ...] = ()
    suppression_s: float = 0.0
    scores: Mapping[str, Any] = field(default_factory=dict)
    # vitalstream.models.riskmodel.WindowRiskModel: its logit is a window column, its alert one of
    # ``window_rules`` (added by from_config).
    risk_model: Any = None

    @classmethod
    def from_config(cls, diagnostics: Mapping[str, Any]) -> DiagnosticsSpec:
        """The spec of config ``diagnostics``; ``risk_model`` (a model file's path, or null)
        is loaded here, once, on the driver."""
        known = set(cls.__dataclass_fields__)
        unknown = set(diagnostics) - known
        if unknown:
            raise ValueError(f"unknown diagnostics keys: {sorted(unknown)}")
        risk_model = None
        if diagnostics.get("risk_model"):
            risk_model = load(diagnostics["risk_model"])
        window_rules = tuple(ThresholdRule(**r) for r in diagnostics.get("window_rules", []))
        if risk_model is not None:
            if any(rule.name == risk_model.name for rule in window_rules):
                raise ValueError(f"risk model {risk_model.name!r} repeats a window rule's name")
            window_rules += (risk_model.rule(),)
        return cls(
            window_rules=window_rules,
            reading_rules=tuple(ThresholdRule(**r) for r in diagnostics.get("reading_rules", [])),
            change_rules=tuple(ChangeRule(**r) for r in diagnostics.get("change_rules", [])),
            anomaly=tuple(EwmaDetector(**r) for r in diagnostics.get("anomaly", [])),
            suppression_s=float(diagnostics.get("suppression_s", 0.0)),
            scores=dict(diagnostics.get("scores", {})),
            risk_model=risk_model,
        )

    @property
    def sequential_rules(self) -> tuple[ChangeRule | EwmaDetector, ...]:
        return (*self.change_rules, *self.anomaly)


def rules_from_config(items: Iterable[Mapping[str, Any]]) -> list[ThresholdRule]:
    """Threshold rules from a config list."""
    return [ThresholdRule(**dict(item)) for item in items]


def alert_id(patient_id: str, rule: str, time_ms: int) -> str:
    """Deterministic alert id: the same alert gets the same id in every run and every engine.

    ``time_ms`` is the window start (window alerts) or the reading's event time.
    """
    text = f"{patient_id}|{rule}|{time_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- sequential per-patient state (used by the streaming sink) ---------------------------------


@dataclass
class EwmaState:
    """Exponentially weighted mean and variance (West's recursion) and the windows seen."""

    mean: float = 0.0
    var: float = 0.0
    count: int = 0

    def score(self, value: float, detector: EwmaDetector) -> float | None:
        """z of ``value`` against the state before it, or None during warm-up."""
        if self.count < detector.warmup_windows:
            return None
        sd = max(math.sqrt(self.var), detector.min_sd)
        return (value - self.mean) / sd

    def update(self, value: float, alpha: float) -> None:
        if self.count == 0:
            self.mean, self.var = value, 0.0
        else:
            delta = value - self.mean
            self.mean += alpha * delta
            self.var = (1 - alpha) * (self.var + alpha * delta * delta)
        self.count += 1


@dataclass
class PatientState:
    """What the sequential rules remember about one patient between micro-batches."""

    last_window_end_ms: int | None = None
    last_values: dict[str, float] = field(default_factory=dict)
    ewma: dict[str, EwmaState] = field(default_factory=dict)
    last_emitted_ms: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_window_end_ms": self.last_window_end_ms,
            "last_values": self.last_values,
            "ewma": {k: [v.mean, v.var, v.count] for k, v in self.ewma.items()},
            "last_emitted_ms": self.last_emitted_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PatientState:
        return cls(
            last_window_end_ms=data["last_window_end_ms"],
            last_values=dict(data["last_values"]),
            ewma={k: EwmaState(*v) for k, v in data["ewma"].items()},
            last_emitted_ms={k: int(v) for k, v in data["last_emitted_ms"].items()},
        )


def sequential_alerts(
    state: PatientState,
    window_end_ms: int,
    window_ms: int,
    values: Mapping[str, float],
    spec: DiagnosticsSpec,
) -> list[tuple[str, str, float, float]]:
    """Change and EWMA alerts of one window, updating the patient's state.

    Windows must arrive in window order per patient. Returns (rule, severity, value,
    threshold) tuples; the threshold is the change or |z| the rule asks for.
    """
    fired: list[tuple[str, str, float, float]] = []
    previous_end = state.last_window_end_ms
    for rule in spec.change_rules:
        value = values.get(rule.column, math.nan)
        before = state.last_values.get(rule.column, math.nan)
        close = previous_end is not None and (
            window_end_ms - previous_end <= (rule.max_gap_windows) * window_ms
        )
        if close and not math.isnan(value) and not math.isnan(before):
            change = value - before
            if abs(change) >= rule.min_abs_change:
                fired.append((rule.name, rule.severity, change, rule.min_abs_change))
    for detector in spec.anomaly:
        value = values.get(detector.column, math.nan)
        if math.isnan(value):
            continue
        ewma = state.ewma.setdefault(detector.column, EwmaState())
        z = ewma.score(value, detector)
        if z is not None and abs(z) >= detector.z_threshold:
            fired.append((detector.name, detector.severity, z, detector.z_threshold))
        ewma.update(value, detector.alpha)
    state.last_window_end_ms = window_end_ms
    state.last_values = {r.column: values.get(r.column, math.nan) for r in spec.change_rules}
    return fired


def suppressed(state: PatientState, rule: str, time_ms: int, suppression_s: float) -> bool:
    """Whether an alert of ``rule`` at ``time_ms`` falls within the suppression interval of the
    patient's last emitted alert of that rule; if not, it becomes the last emitted one."""
    last = state.last_emitted_ms.get(rule)
    if last is not None and 0 <= time_ms - last < suppression_s * 1000:
        return True
    state.last_emitted_ms[rule] = time_ms
    return False
