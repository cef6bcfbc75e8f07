"""The parameters of a synthetic cohort: one frozen, validated record of everything that defines it.

What it is for: :class:`CohortParams`, built from defaults, a YAML mapping or the command line,
with every field checked once, when the record is made, so that the generator
(:mod:`vitalstream.data.cohort`) can trust it and an invalid configuration fails with every
problem named before any data is drawn.

Not for: the signal model's calibrated constants (:mod:`vitalstream.data.physiology`,
:mod:`vitalstream.data.artefacts`), which are part of the model rather than of an experiment's
settings, nor for reading the workflow's config (the CLI passes a mapping in).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vitalstream.data.canonical import start_ms

NETWORK_DELAY_MODELS = ("none", "exponential", "pareto")


@dataclass(frozen=True)
class CohortParams:
    """Everything that defines a cohort. Units are in the names; rates are per reading.

    Fields:
        patients: number of patients (one bedside device each).
        hours: length of every stay, hours.
        sample_period_s: seconds between readings of one device.
        seed: root seed; all randomness derives from it.
        start: ISO-8601 UTC time of the first reading.
        prevalence: share of patients who deteriorate (rounded to a whole number of patients).
        ramp_minutes: duration of the deterioration ramp from onset to full effect.
        onset_window: onset falls uniformly in this (from, to) fraction of the stay.
        benign_desaturations_per_hour: Poisson rate of benign SpO2 dips, per patient.
        missing_rate: probability that a reading loses vitals (see ``missing_all_fraction``).
        missing_all_fraction: share of missing readings in which *all* vitals are NaN (sensor
            drop-out); the others lose one sensor group (HR, SpO2, the BP triple, RR or temp).
        motion_spike_rate: probability that a reading starts a 1–3 sample HR spike (+40–80).
        flatline_rate: probability that a reading starts a ~30 s (20–40 s) frozen display.
        impossible_rate: probability that one vital of a reading is impossible (hr=0, spo2=130…).
        duplicate_rate: probability that a clean reading is sent twice.
        clock_skew_ms_sd: SD of the constant per-device clock offset, ms (0 = synchronised).
        network_delay: delay model, "none" | "exponential" | "pareto" (Lomax, heavy tail).
        network_delay_mean_ms: mean of the delay model, ms.
        network_delay_pareto_shape: Lomax tail index α (> 2 keeps the variance finite).
        very_late_fraction: share of messages delayed by an extra ``very_late_ms``.
        very_late_ms: extra delay of very late messages, ms.
    """

    patients: int = 100
    hours: float = 1.0
    sample_period_s: float = 1.0
    seed: int = 42
    start: str = "2026-01-01T00:00:00Z"
    prevalence: float = 0.2
    ramp_minutes: float = 30.0
    onset_window: tuple[float, float] = (0.2, 0.6)
    benign_desaturations_per_hour: float = 0.5
    missing_rate: float = 0.01
    missing_all_fraction: float = 0.5
    motion_spike_rate: float = 0.002
    flatline_rate: float = 0.0005
    impossible_rate: float = 0.0005
    duplicate_rate: float = 0.001
    clock_skew_ms_sd: float = 0.0
    network_delay: str = "none"
    network_delay_mean_ms: float = 0.0
    network_delay_pareto_shape: float = 2.5
    very_late_fraction: float = 0.0
    very_late_ms: float = 600000.0

    def __post_init__(self) -> None:
        problems = list(_param_problems(self))
        if problems:
            raise ValueError("invalid CohortParams: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> CohortParams:
        """Build from a plain mapping (YAML/CLI); ValueError names unknown keys or bad values."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(m) - set(known))
        if unknown:
            raise ValueError(
                f"unknown CohortParams key(s): {', '.join(map(str, unknown))}; "
                f"known: {', '.join(known)}"
            )
        defaults = cls()
        kwargs = {k: _coerce(k, v, getattr(defaults, k)) for k, v in m.items()}
        return cls(**kwargs)

    @property
    def samples_per_patient(self) -> int:
        return max(1, round(self.hours * 3600.0 / self.sample_period_s))


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of the field's default, rejecting lossy conversions."""
    try:
        if isinstance(default, bool):  # no bool fields today; keep ints from swallowing them
            raise TypeError
        if isinstance(default, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if isinstance(default, tuple):
            items = tuple(float(x) for x in value)
            if len(items) != len(default):
                raise TypeError
            return items
        if isinstance(default, str):
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError):
        pass
    raise ValueError(f"CohortParams.{key}: cannot use {value!r} as {type(default).__name__}")


def _param_problems(p: CohortParams) -> list[str]:
    problems = []
    if p.patients < 1:
        problems.append("patients must be >= 1")
    if p.patients > 999_999:
        problems.append("patients must be < 1,000,000 (ids are P + 6 digits)")
    for name in ("hours", "sample_period_s", "ramp_minutes", "network_delay_pareto_shape"):
        if not getattr(p, name) > 0:
            problems.append(f"{name} must be > 0")
    rates = (
        "prevalence",
        "missing_rate",
        "missing_all_fraction",
        "motion_spike_rate",
        "flatline_rate",
        "impossible_rate",
        "duplicate_rate",
        "very_late_fraction",
    )
    for name in rates:
        if not 0.0 <= getattr(p, name) <= 1.0:
            problems.append(f"{name} must be in [0, 1]")
    for name in (
        "benign_desaturations_per_hour",
        "clock_skew_ms_sd",
        "network_delay_mean_ms",
        "very_late_ms",
    ):
        if not getattr(p, name) >= 0:
            problems.append(f"{name} must be >= 0")
    lo, hi = p.onset_window
    if not 0.0 <= lo <= hi <= 1.0:
        problems.append("onset_window must satisfy 0 <= from <= to <= 1")
    if p.network_delay not in NETWORK_DELAY_MODELS:
        problems.append(f"network_delay must be one of {NETWORK_DELAY_MODELS}")
    if p.network_delay == "pareto" and p.network_delay_pareto_shape <= 1:
        problems.append("network_delay_pareto_shape must be > 1 for a finite mean")
    try:
        start_ms(p.start)
    except ValueError as exc:
        problems.append(f"start: {exc}")
    return problems
