"""Seeded, vectorised synthetic cohort of monitored patients (events + ground-truth labels).

What it is for: producing the vital-sign event stream the experiments replay through Kafka and
score in Spark, with every effect that matters for stream analytics labelled as ground truth:
sepsis-like deterioration (onset time in the label table), benign transient desaturations,
device artefacts (``artefact`` column), device clock skew (``clock_skew_ms``) and network delay
(``network_delay_ms``). Same :class:`CohortParams` → identical frames and byte-identical files.

What it is not: a physiological simulator fit for clinical conclusions (the model is a few
additive, calibrated components; oxygen therapy does not raise SpO2, for example), nor a
replayer: it only *annotates* delay and lateness, it never reorders rows by arrival.

Signal model per patient and vital (``(time, patient)`` arrays, all numpy):

    value = baseline(age, sex) + circadian + coupling·stress + OU noise
            + deterioration(t) + benign desaturation (SpO2) [+ fever → HR coupling]

rounded as a monitor displays it (:data:`vitalstream.schema.DISPLAY_DECIMALS`), then device
artefacts are applied. One artefact label per row; when effects collide on a reading the
precedence is ``impossible > missing > flatline > motion_spike > none``; ``duplicate`` rows are
extra copies of clean (``none``) readings.

Time: readings sit on a grid of ``sample_period_s`` from ``start`` (true time). ``event_time`` is
true time plus the device's constant ``clock_skew_ms``; the label ``onset_time`` is in true time.
``network_delay_ms`` is drawn per message (a duplicate draws its own, as a resend travels
separately), so arrival at the gateway = true time + delay. Motion spikes last 1–3 *samples*;
flat-lines (20–40 s) and benign dips (20–60 s) are timed in seconds.

Random sub-streams come from ``SeedSequence(seed).spawn``, one per effect (see
:data:`STREAMS`), so changing one effect's rate does not move any other effect.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import lfilter

from vitalstream import schema
from vitalstream.schema import ARTEFACTS, CONSCIOUSNESS_LEVELS, VITAL_NAMES

# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

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
        _start_ms(p.start)
    except ValueError as exc:
        problems.append(f"start: {exc}")
    return problems


def _start_ms(start: str) -> int:
    ts = pd.Timestamp(start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


# --------------------------------------------------------------------------------------------
# Model constants (calibrated against PhysioNet 2019 set A, see module docstring)
# --------------------------------------------------------------------------------------------

# Append-only: each name is one independent random sub-stream (SeedSequence.spawn order).
STREAMS: tuple[str, ...] = (
    "demographics",
    "baseline",
    "circadian",
    "stress",
    *(f"noise_{v}" for v in ("hr", "spo2", "sbp", "dbp", "rr", "temp")),
    "deterioration",
    "desaturation",
    "motion_spike",
    "flatline",
    "missing",
    "impossible",
    "duplicate",
    "clock_skew",
    "network_delay",
    "very_late",
    "devices",
    "interventions",
)


@dataclass(frozen=True)
class _Noise:
    """Ornstein–Uhlenbeck noise of one vital: stationary SD and correlation time."""

    sd: float
    tau_s: float


# Within-patient variability. Slow processes (BP, temperature) get long correlation times.
NOISE: dict[str, _Noise] = {
    "hr": _Noise(3.0, 30.0),
    "spo2": _Noise(0.7, 20.0),
    "sbp": _Noise(4.0, 120.0),
    "dbp": _Noise(2.5, 120.0),
    "rr": _Noise(1.5, 20.0),
    "temp": _Noise(0.08, 600.0),
}
# Shared latent "stress" factor (OU, SD 1): loads make HR, RR and BP rise together.
STRESS_TAU_S = 300.0
STRESS_LOADING: dict[str, float] = {"hr": 4.0, "rr": 1.5, "sbp": 4.0, "dbp": 2.0, "spo2": -0.2}
# Circadian amplitudes (peak above the daily mean); acrophase ~ N(17 h, 2 h) per patient.
CIRCADIAN_AMPLITUDE: dict[str, float] = {"hr": 4.0, "sbp": 5.0, "dbp": 3.0, "rr": 0.8, "temp": 0.25}
CIRCADIAN_ACROPHASE_H = (17.0, 2.0)
FEVER_HR_BPM_PER_C = 10.0  # tachycardia of fever, ~10 bpm per °C above the patient's baseline
SPO2_BASELINE_CAP = 99.6

# Deterioration targets (full effect at the end of the ramp): uniform (low, high) per patient.
DETERIORATION_RANGE: dict[str, tuple[float, float]] = {
    "hr": (35.0, 50.0),  # total rise, including the fever coupling
    "rr": (10.0, 14.0),
    "temp": (1.5, 2.5),
    "sbp": (-45.0, -30.0),
    "dbp": (-25.0, -15.0),
    "spo2": (-10.0, -6.0),
}
HYPOTHERMIA_SHARE = 0.2
HYPOTHERMIA_RANGE_C = (-1.8, -1.2)
O2_SHARE, O2_PROGRESS = 0.5, 0.75  # share of deteriorating patients put on O2, and when
ALTERED_SHARE, ALTERED_PROGRESS = 0.3, 0.9  # share who become confused (C) or voice-only (V)
ALTERED_LEVELS, ALTERED_P = ("C", "V"), (0.6, 0.4)

DESATURATION_DEPTH = (5.0, 10.0)  # % at the nadir of a raised-cosine dip
DESATURATION_SECONDS = (20.0, 60.0)
MOTION_SPIKE_BPM = (40, 80)
MOTION_SPIKE_SAMPLES = (1, 3)
FLATLINE_SECONDS = (20.0, 40.0)
# Missing sensor groups when not all vitals drop out (the cuff yields SBP, DBP and MAP together).
SENSOR_GROUPS: tuple[tuple[str, ...], ...] = (
    ("hr",),
    ("spo2",),
    ("sbp", "dbp", "map"),
    ("rr",),
    ("temp",),
)
# Impossible values per vital (two kinds each: zero and a classic mis-scaled value).
IMPOSSIBLE_VALUES: dict[str, tuple[float, float]] = {
    "hr": (0.0, 300.0),
    "spo2": (0.0, 130.0),
    "sbp": (0.0, 300.0),
    "dbp": (0.0, 200.0),
    "map": (0.0, 250.0),
    "rr": (0.0, 99.0),
    "temp": (0.0, 99.9),  # Fahrenheit entered as Celsius
}

_ART = {name: np.uint8(i) for i, name in enumerate(ARTEFACTS)}

# --------------------------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """A generated cohort: events (``EVENT_COLUMNS``) and labels (``LABEL_COLUMNS``)."""

    params: CohortParams
    events: pd.DataFrame
    labels: pd.DataFrame

    @property
    def deteriorating_patients(self) -> int:
        return int(self.labels["deteriorates"].sum())


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


def _ou(
    rng: np.random.Generator, shape: tuple[int, int], sd: float, tau_s: float, dt_s: float
) -> np.ndarray:
    """Stationary OU process sampled every ``dt_s`` (exact AR(1)), axis 0 = time."""
    phi = math.exp(-dt_s / tau_s)
    eps = rng.standard_normal(shape)
    eps *= sd * math.sqrt(1.0 - phi * phi)
    eps[0] *= 1.0 / math.sqrt(1.0 - phi * phi)  # start in the stationary distribution
    # C order matters: callers modify flat views in place.
    return np.ascontiguousarray(lfilter([1.0], [1.0, -phi], eps, axis=0))


@dataclass(frozen=True)
class _Patients:
    age: np.ndarray
    female: np.ndarray
    deteriorates: np.ndarray
    onset_s: np.ndarray  # NaN for stable patients
    device_number: np.ndarray


def _draw_patients(p: CohortParams, rng: dict[str, np.random.Generator]) -> _Patients:
    n = p.patients
    demo = rng["demographics"]
    # ICU-like age: median ~64, clipped to the adult range of set A.
    age = np.round(np.clip(demo.normal(63.0, 17.0, n), 18.0, 90.0), 1)
    female = demo.random(n) < 0.42  # set A is 57.8 % male
    n_det = round(p.prevalence * n)
    det = np.zeros(n, dtype=bool)
    det[demo.permutation(n)[:n_det]] = True
    lo, hi = p.onset_window
    onset_s = np.where(det, demo.uniform(lo, hi, n) * p.hours * 3600.0, np.nan)
    device_number = rng["devices"].permutation(n) + 1  # device ids deliberately ≠ patient ids
    return _Patients(age, female, det, onset_s, device_number)


def _baselines(pt: _Patients, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-patient baseline of each vital; coefficients reproduce set-A medians and IQRs."""
    n = len(pt.age)
    z = rng.standard_normal((6, n))
    age = pt.age - 63.0
    fem = pt.female.astype(float)
    sbp = 120.0 + 0.25 * age - 4.0 * fem + 17.0 * z[2]
    return {
        "hr": 84.0 + 3.0 * fem - 0.08 * age + 12.5 * z[0],
        "spo2": np.minimum(97.6 - 0.02 * age + 1.6 * z[1], SPO2_BASELINE_CAP),
        "sbp": sbp,
        # Pulse pressure widens with age: DBP tracks SBP but falls with age.
        "dbp": 58.5 + 0.35 * (sbp - 120.0) - 0.12 * age + 7.0 * z[3],
        # Log-normal: set A's respiration rate is right-skewed (IQR 15–22 around 18).
        "rr": 18.2 * np.exp(0.24 * z[4]) + 0.03 * age,
        "temp": 37.05 + 0.1 * fem - 0.004 * age + 0.45 * z[5],
    }


def _progress(p: CohortParams, pt: _Patients, t_s: np.ndarray) -> np.ndarray:
    """Smooth-step ramp progress in [0, 1], shape (time, deteriorating patients)."""
    onset = pt.onset_s[pt.deteriorates]
    x = np.clip((t_s[:, None] - onset[None, :]) / (p.ramp_minutes * 60.0), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _deterioration_targets(n_det: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    targets = {k: rng.uniform(lo, hi, n_det) for k, (lo, hi) in DETERIORATION_RANGE.items()}
    hypo = rng.random(n_det) < HYPOTHERMIA_SHARE
    targets["temp"] = np.where(hypo, rng.uniform(*HYPOTHERMIA_RANGE_C, n_det), targets["temp"])
    # The HR target is the total rise; the fever coupling already supplies 10 bpm/°C of it.
    targets["hr"] = targets["hr"] - FEVER_HR_BPM_PER_C * targets["temp"]
    return targets


def _segments(
    starts: np.ndarray, lengths: np.ndarray, n_time: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand (start time index, length) segments → (time index, segment index, offset)."""
    lengths = lengths.astype(np.int64)
    seg = np.repeat(np.arange(len(lengths)), lengths)
    offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    t = starts[seg] + offset
    keep = t < n_time
    return t[keep], seg[keep], offset[keep]


def _sparse_positions(rng: np.random.Generator, n_cells: int, rate: float) -> np.ndarray:
    """Cells hit by an independent Bernoulli(rate) each, drawn sparsely (sorted flat indices)."""
    k = rng.binomial(n_cells, rate) if rate > 0 else 0
    return np.sort(rng.choice(n_cells, size=k, replace=False)) if k else np.zeros(0, np.int64)


def _add_desaturations(spo2: np.ndarray, p: CohortParams, rng: np.random.Generator) -> None:
    n_time, n_pat = spo2.shape
    counts = rng.poisson(p.benign_desaturations_per_hour * p.hours, n_pat)
    n = int(counts.sum())
    if n == 0:
        return
    patient = np.repeat(np.arange(n_pat), counts)
    start = rng.integers(0, n_time, n)
    length = np.maximum(1, np.round(rng.uniform(*DESATURATION_SECONDS, n) / p.sample_period_s))
    depth = rng.uniform(*DESATURATION_DEPTH, n)
    t, seg, k = _segments(start, length, n_time)
    dip = depth[seg] * np.sin(np.pi * (k + 0.5) / length[seg]) ** 2
    np.subtract.at(spo2.reshape(-1), t * n_pat + patient[seg], dip)


def _physiology(
    p: CohortParams, pt: _Patients, rng: dict[str, np.random.Generator]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Clean displayed vitals, (time, patient) float64 each, and the ramp progress."""
    n_time, n_pat = p.samples_per_patient, p.patients
    shape = (n_time, n_pat)
    dt = p.sample_period_s
    t_s = np.arange(n_time) * dt
    base = _baselines(pt, rng["baseline"])

    start_hour = (_start_ms(p.start) / 3_600_000.0) % 24.0
    acrophase = rng["circadian"].normal(*CIRCADIAN_ACROPHASE_H, n_pat)
    clock_h = start_hour + t_s / 3600.0
    circ = np.cos(2.0 * np.pi * (clock_h[:, None] - acrophase[None, :]) / 24.0)
    # The OU draws dominate the run time; numpy and scipy release the GIL, so threads give a
    # near-linear speed-up while every noise process keeps its own stream (deterministic).
    jobs = {"stress": (1.0, STRESS_TAU_S)}
    jobs.update({f"noise_{k}": (n.sd, n.tau_s) for k, n in NOISE.items()})
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        futures = {k: pool.submit(_ou, rng[k], shape, sd, tau, dt) for k, (sd, tau) in jobs.items()}
        ou = {k: f.result() for k, f in futures.items()}
    stress = ou["stress"]

    v: dict[str, np.ndarray] = {}
    for name in NOISE:
        x = ou[f"noise_{name}"]
        x += base[name][None, :]
        if name in CIRCADIAN_AMPLITUDE:
            x += CIRCADIAN_AMPLITUDE[name] * circ
        if name in STRESS_LOADING:
            x += STRESS_LOADING[name] * stress
        v[name] = x

    det = np.flatnonzero(pt.deteriorates)
    progress = _progress(p, pt, t_s)
    if len(det):
        targets = _deterioration_targets(len(det), rng["deterioration"])
        for name, delta in targets.items():
            v[name][:, det] += progress * delta[None, :]
    _add_desaturations(v["spo2"], p, rng["desaturation"])

    v["hr"] += FEVER_HR_BPM_PER_C * (v["temp"] - base["temp"][None, :])
    v["spo2"] = np.minimum(v["spo2"], 100.0)
    for name in NOISE:
        _display(v, name)
    # The monitor derives MAP from the displayed cuff values.
    v["map"] = v["dbp"] + (v["sbp"] - v["dbp"]) / 3.0
    _display(v, "map")
    return {name: v[name] for name in VITAL_NAMES}, progress


def _display(v: dict[str, np.ndarray], name: str) -> None:
    lo, hi = schema.valid_range(name)
    x = np.clip(v[name], lo, hi, out=v[name])
    np.round(x, schema.DISPLAY_DECIMALS[name], out=x)


def _context(
    p: CohortParams, pt: _Patients, progress: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """o2_supplemental (bool) and consciousness codes (index into ACVPU), (time, patient)."""
    shape = (p.samples_per_patient, p.patients)
    o2 = np.zeros(shape, dtype=bool)
    level = np.zeros(shape, dtype=np.uint8)
    det = np.flatnonzero(pt.deteriorates)
    if len(det):
        gets_o2 = rng.random(len(det)) < O2_SHARE
        altered = rng.random(len(det)) < ALTERED_SHARE
        which = rng.choice(len(ALTERED_LEVELS), size=len(det), p=ALTERED_P)
        codes = np.array([CONSCIOUSNESS_LEVELS.index(c) for c in ALTERED_LEVELS], np.uint8)
        o2[:, det] = (progress >= O2_PROGRESS) & gets_o2[None, :]
        level[:, det] = np.where(
            (progress >= ALTERED_PROGRESS) & altered[None, :], codes[which][None, :], 0
        )
    return o2, level


def _apply_artefacts(
    p: CohortParams, vitals: dict[str, np.ndarray], rng: dict[str, np.random.Generator]
) -> tuple[np.ndarray, np.ndarray]:
    """Apply device artefacts in place; return flat labels and the all-vitals-missing mask.

    Applied in increasing precedence so later effects overwrite earlier ones on collisions.
    """
    n_time, n_pat = vitals["hr"].shape
    n = n_time * n_pat
    flat = {k: x.reshape(-1) for k, x in vitals.items()}
    assert all(np.shares_memory(f, vitals[k]) for k, f in flat.items()), "need C-order arrays"
    label = np.zeros(n, dtype=np.uint8)

    # Flat-lines: the display freezes at the start reading; the start itself is genuine. The
    # frozen values are read now, before spikes touch them.
    r = rng["flatline"]
    pos = _sparse_positions(r, n, p.flatline_rate)
    length = np.maximum(2, np.round(r.uniform(*FLATLINE_SECONDS, len(pos)) / p.sample_period_s))
    t, seg, k = _segments(pos // n_pat, length, n_time)
    frozen = k > 0
    flat_cell = (t * n_pat + (pos % n_pat)[seg])[frozen]
    flat_src = pos[seg][frozen]
    frozen_values = {name: flat[name][flat_src] for name in VITAL_NAMES}

    # Motion spikes: HR jumps for 1–3 samples of the same patient.
    r = rng["motion_spike"]
    pos = _sparse_positions(r, n, p.motion_spike_rate)
    length = r.integers(MOTION_SPIKE_SAMPLES[0], MOTION_SPIKE_SAMPLES[1] + 1, len(pos))
    jump = r.integers(MOTION_SPIKE_BPM[0], MOTION_SPIKE_BPM[1] + 1, len(pos)).astype(float)
    t, seg, _ = _segments(pos // n_pat, length, n_time)
    cell = t * n_pat + (pos % n_pat)[seg]
    flat["hr"][cell] = np.minimum(flat["hr"][cell] + jump[seg], schema.valid_range("hr")[1])
    label[cell] = _ART["motion_spike"]

    for name in VITAL_NAMES:
        flat[name][flat_cell] = frozen_values[name]
    label[flat_cell] = _ART["flatline"]

    # Missing: either every vital (drop-out) or one sensor group.
    r = rng["missing"]
    pos = _sparse_positions(r, n, p.missing_rate)
    drop_all = r.random(len(pos)) < p.missing_all_fraction
    group = r.integers(0, len(SENSOR_GROUPS), len(pos))
    for g, names in enumerate(SENSOR_GROUPS):
        cells = pos[drop_all | (group == g)]
        for name in names:
            flat[name][cells] = np.nan
    label[pos] = _ART["missing"]
    all_missing = np.zeros(n, dtype=bool)
    all_missing[pos[drop_all]] = True

    # Impossible: one vital replaced by a value outside its valid range.
    r = rng["impossible"]
    pos = _sparse_positions(r, n, p.impossible_rate)
    which = r.integers(0, len(VITAL_NAMES), len(pos))
    kind = r.integers(0, 2, len(pos))
    for i, name in enumerate(VITAL_NAMES):
        sel = which == i
        flat[name][pos[sel]] = np.asarray(IMPOSSIBLE_VALUES[name])[kind[sel]]
    label[pos] = _ART["impossible"]
    all_missing[pos] = False
    return label, all_missing


def _delays(
    p: CohortParams, n: int, rng_delay: np.random.Generator, rng_late: np.random.Generator
) -> np.ndarray:
    """Per-message network delay (ms, int64) from the configured model plus very-late tail."""
    mean = p.network_delay_mean_ms
    if p.network_delay == "none" or mean == 0:
        delay = np.zeros(n)
    elif p.network_delay == "exponential":
        delay = rng_delay.exponential(mean, n)
    else:  # Lomax with the same mean: scale = mean·(α − 1)
        alpha = p.network_delay_pareto_shape
        delay = rng_delay.pareto(alpha, n) * mean * (alpha - 1.0)
    if p.very_late_fraction > 0:
        delay += np.where(rng_late.random(n) < p.very_late_fraction, p.very_late_ms, 0.0)
    return np.round(delay).astype(np.int64)


def _string_array(categories: Sequence[str], codes: np.ndarray, null: np.ndarray | None = None):
    values = np.asarray(categories, dtype=object)[codes]
    if null is not None and null.any():
        values[null] = None
    return pd.array(values, dtype=schema.STRING_DTYPE)


def generate_cohort(params: CohortParams) -> Cohort:
    """Generate events and labels for ``params`` (deterministic in ``params``)."""
    p = params
    rng = _streams(p.seed)
    pt = _draw_patients(p, rng)
    vitals, progress = _physiology(p, pt, rng)
    o2, level = _context(p, pt, progress, rng["interventions"])
    label, all_missing = _apply_artefacts(p, vitals, rng)

    n_time, n_pat = p.samples_per_patient, p.patients
    n = n_time * n_pat
    patient = np.tile(np.arange(n_pat, dtype=np.int64), n_time)
    true_ms = np.round(np.arange(n_time) * p.sample_period_s * 1000.0).astype(np.int64)
    skew_ms = np.round(rng["clock_skew"].normal(0.0, 1.0, n_pat) * p.clock_skew_ms_sd)
    skew_ms = skew_ms.astype(np.int64)
    event_ms = (true_ms[:, None] + skew_ms[None, :]).reshape(-1)
    delay_ms = _delays(p, n, rng["network_delay"], rng["very_late"])

    # Duplicates: extra copies of clean readings; a resent message travels with its own delay.
    r = rng["duplicate"]
    dup = _sparse_positions(r, n, p.duplicate_rate)
    dup = dup[label[dup] == _ART["none"]]
    rows = np.concatenate([np.arange(n), dup])
    row_label = np.concatenate([label, np.full(len(dup), _ART["duplicate"])])
    row_delay = np.concatenate([delay_ms, _delays(p, len(dup), r, r)])

    # Sort by (event_time, patient); stable, so an original precedes its duplicate.
    key = event_ms[rows] * n_pat + patient[rows]
    if len(dup) or np.any(key[1:] < key[:-1]):
        order = np.argsort(key, kind="stable")
        rows, row_label, row_delay = rows[order], row_label[order], row_delay[order]

    pat = patient[rows]
    null_ctx = all_missing[rows]
    o2_values = o2.reshape(-1)[rows]
    columns: dict[str, Any] = {
        "patient_id": _string_array(_patient_ids(n_pat), pat),
        "device_id": _string_array(_device_ids(pt.device_number), pat),
        "event_time": schema.timestamps_from_ms(event_ms[rows] + _start_ms(p.start)),
    }
    columns.update({name: vitals[name].reshape(-1)[rows] for name in VITAL_NAMES})
    columns["o2_supplemental"] = pd.arrays.BooleanArray(o2_values, null_ctx.copy())
    columns["consciousness"] = _string_array(
        CONSCIOUSNESS_LEVELS, level.reshape(-1)[rows], null_ctx
    )
    columns["artefact"] = _string_array(ARTEFACTS, row_label)
    columns["clock_skew_ms"] = skew_ms[pat]
    columns["network_delay_ms"] = row_delay
    events = pd.DataFrame(columns, copy=False)  # no copy: the arrays are fresh
    return Cohort(p, events, _labels(p, pt))


def _patient_ids(n: int) -> list[str]:
    return [f"P{i:06d}" for i in range(1, n + 1)]


def _device_ids(numbers: np.ndarray) -> list[str]:
    return [f"D{int(i):06d}" for i in numbers]


def _labels(p: CohortParams, pt: _Patients) -> pd.DataFrame:
    onset_ms = np.where(pt.deteriorates, np.nan_to_num(pt.onset_s) * 1000.0, 0.0)
    onset = schema.timestamps_from_ms(np.round(onset_ms).astype(np.int64) + _start_ms(p.start))
    labels = pd.DataFrame(
        {
            "patient_id": pd.array(_patient_ids(p.patients), dtype=schema.STRING_DTYPE),
            "age": pt.age,
            "sex": pd.array(np.where(pt.female, "F", "M"), dtype=schema.STRING_DTYPE),
            "deteriorates": pt.deteriorates,
            "onset_time": onset.where(pt.deteriorates, pd.NaT),
            "ramp_minutes": np.where(pt.deteriorates, p.ramp_minutes, np.nan),
            "source": pd.array(["synthetic"] * p.patients, dtype=schema.STRING_DTYPE),
        }
    )
    return labels.astype(schema.LABEL_DTYPES)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

ROW_GROUP_ROWS = 262_144  # ~14 row groups per 1,000 patient-hours: parallel reads, small footer
ZSTD_LEVEL = 3


def write_parquet(df: pd.DataFrame, arrow_schema: pa.Schema, path: Path) -> None:
    table = pa.Table.from_pandas(df, schema=arrow_schema, preserve_index=False)
    # The only schema metadata is pandas' dtype record (no clocks or paths, so the bytes are
    # deterministic); it lets a plain pd.read_parquet restore the canonical dtypes.
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=True,
        write_statistics=True,
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_cohort(cohort: Cohort, out_dir: Path) -> dict[str, Path]:
    """Write ``events.parquet`` and ``labels.parquet`` (byte-deterministic) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"events": out_dir / "events.parquet", "labels": out_dir / "labels.parquet"}
    write_parquet(cohort.events, schema.event_arrow_schema(), paths["events"])
    write_parquet(cohort.labels, schema.label_arrow_schema(), paths["labels"])
    return paths


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    import yaml  # lazy: only the CLI needs it

    return yaml.safe_load(text)


def params_from_args(args: argparse.Namespace) -> CohortParams:
    """Defaults < ``--config`` file < ``--param`` pairs < explicit flags."""
    mapping: dict[str, Any] = {}
    if args.config:
        import yaml

        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{args.config}: expected a mapping of CohortParams fields")
        mapping.update(loaded)
    for item in args.param or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        mapping[key.strip()] = _parse_value(value)
    for key in ("patients", "hours", "seed"):
        if getattr(args, key) is not None:
            mapping[key] = getattr(args, key)
    return CohortParams.from_mapping(mapping)


def run_cli(args: argparse.Namespace) -> int:
    """Generate, write and print one JSON summary line."""
    params = params_from_args(args)
    t0 = time.perf_counter()
    cohort = generate_cohort(params)
    seconds = time.perf_counter() - t0
    paths = write_cohort(cohort, Path(args.out))
    write_seconds = time.perf_counter() - t0 - seconds
    summary = {
        "patients": params.patients,
        "readings": len(cohort.events),
        "deteriorating_patients": cohort.deteriorating_patients,
        "seconds": round(seconds, 3),
        "readings_per_s": round(len(cohort.events) / seconds),
        "write_seconds": round(write_seconds, 3),
        "files": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in paths.items()},
    }
    print(json.dumps(summary))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``cohort`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "cohort",
        help="generate a synthetic cohort (events.parquet, labels.parquet)",
        description="Generate a seeded synthetic cohort and write it as Parquet.",
    )
    parser.add_argument("--patients", type=int, default=None, help="number of patients")
    parser.add_argument("--hours", type=float, default=None, help="stay length, hours")
    parser.add_argument("--seed", type=int, default=None, help="root random seed")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="any other CohortParams field (YAML value), repeatable",
    )
    parser.add_argument("--config", type=Path, help="YAML file with a mapping of CohortParams")
    parser.set_defaults(func=run_cli)
