"""The signal model of the synthetic cohort: who the patients are and their clean vital signs.

What it is for: drawing each patient (age, sex, whether and when they deteriorate, which device
they wear) and the vitals a bedside monitor would display for them before anything goes wrong
with the device: per-patient baselines, circadian rhythm, a shared stress factor, OU noise,
sepsis-like deterioration with fever coupling, benign SpO2 dips, and the clinical context
(supplemental oxygen, consciousness) that deterioration brings. The constants are calibrated
against PhysioNet 2019 set A (:mod:`vitalstream.data.realism` checks the result) and are the
ones the paper's generator table quotes.

Not for: device artefacts, clock skew or network delay (:mod:`vitalstream.data.artefacts`), nor
for assembling rows and labels (:mod:`vitalstream.data.cohort`). Every function takes the
random sub-streams it uses by name from the generator's ``STREAMS``, so a change here moves no
other effect's draws.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from vitalstream.core import schema
from vitalstream.core.schema import CONSCIOUSNESS_LEVELS, VITAL_NAMES
from vitalstream.data.canonical import start_ms
from vitalstream.data.cohortparams import CohortParams


@dataclass(frozen=True)
class OUNoise:
    """Ornstein–Uhlenbeck noise of one vital: stationary SD and correlation time."""

    sd: float
    tau_s: float


# Within-patient variability. Slow processes (BP, temperature) get long correlation times.
NOISE: dict[str, OUNoise] = {
    "hr": OUNoise(3.0, 30.0),
    "spo2": OUNoise(0.7, 20.0),
    "sbp": OUNoise(4.0, 120.0),
    "dbp": OUNoise(2.5, 120.0),
    "rr": OUNoise(1.5, 20.0),
    "temp": OUNoise(0.08, 600.0),
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


def _ou(
    rng: np.random.Generator, shape: tuple[int, int], sd: float, tau_s: float, dt_s: float
) -> np.ndarray:
    """Stationary OU process sampled every ``dt_s`` (exact AR(1)), axis 0 = time."""
    phi = math.exp(-dt_s / tau_s)
    eps = rng.standard_normal(shape)
    eps *= sd * math.sqrt(1.0 - phi * phi)
    eps[0] *= 1.0 / math.sqrt(1.0 - phi * phi)  # start in the stationary distribution
    # C order matters: callers modify flat views in place.
    # Imported here: scipy.signal costs about a second, which `cohort --help` need not pay.
    from scipy.signal import lfilter

    return np.ascontiguousarray(lfilter([1.0], [1.0, -phi], eps, axis=0))


@dataclass(frozen=True)
class Patients:
    """Per-patient draws, one array entry per patient (index = patient number − 1)."""

    age: np.ndarray
    female: np.ndarray
    deteriorates: np.ndarray
    onset_s: np.ndarray  # NaN for stable patients
    device_number: np.ndarray


def draw_patients(p: CohortParams, rng: dict[str, np.random.Generator]) -> Patients:
    """Demographics, who deteriorates and when, and each patient's device number."""
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
    return Patients(age, female, det, onset_s, device_number)


def _baselines(pt: Patients, rng: np.random.Generator) -> dict[str, np.ndarray]:
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


def _progress(p: CohortParams, pt: Patients, t_s: np.ndarray) -> np.ndarray:
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


def segments(
    starts: np.ndarray, lengths: np.ndarray, n_time: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand (start time index, length) segments → (time index, segment index, offset)."""
    lengths = lengths.astype(np.int64)
    seg = np.repeat(np.arange(len(lengths)), lengths)
    offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    t = starts[seg] + offset
    keep = t < n_time
    return t[keep], seg[keep], offset[keep]


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
    t, seg, k = segments(start, length, n_time)
    dip = depth[seg] * np.sin(np.pi * (k + 0.5) / length[seg]) ** 2
    np.subtract.at(spo2.reshape(-1), t * n_pat + patient[seg], dip)


def clean_vitals(
    p: CohortParams, pt: Patients, rng: dict[str, np.random.Generator]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Clean displayed vitals, (time, patient) float64 each, and the ramp progress."""
    n_time, n_pat = p.samples_per_patient, p.patients
    shape = (n_time, n_pat)
    dt = p.sample_period_s
    t_s = np.arange(n_time) * dt
    base = _baselines(pt, rng["baseline"])

    start_hour = (start_ms(p.start) / 3_600_000.0) % 24.0
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


def clinical_context(
    p: CohortParams, pt: Patients, progress: np.ndarray, rng: np.random.Generator
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
