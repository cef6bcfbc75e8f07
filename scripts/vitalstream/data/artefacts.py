"""What goes wrong between a patient and the stream: device artefacts and network delay.

What it is for: corrupting the clean vitals of :mod:`vitalstream.data.physiology` the way bedside
devices do (motion spikes, frozen displays, missing sensors, impossible values), with one
ground-truth ``artefact`` code per reading, and drawing each message's network delay. When
effects collide on a reading the precedence is ``impossible > missing > flatline > motion_spike
> none``; the generator (:mod:`vitalstream.data.cohort`) adds duplicates and clock skew when it
lays out the rows.

Not for: cleaning or detecting artefacts (the stream job and the batch reference do that from
the data alone, never from these labels), nor for reordering rows by arrival: a delay is only
written down, the replay decides what to do with it.
"""

from __future__ import annotations

import numpy as np

from vitalstream.core import schema
from vitalstream.core.schema import ARTEFACTS, VITAL_NAMES
from vitalstream.data.cohortparams import CohortParams
from vitalstream.data.physiology import segments

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

# The uint8 code of each artefact label (its index in ARTEFACTS), as the rows carry it.
ARTEFACT_CODES: dict[str, np.uint8] = {name: np.uint8(i) for i, name in enumerate(ARTEFACTS)}


def sparse_positions(rng: np.random.Generator, n_cells: int, rate: float) -> np.ndarray:
    """Cells hit by an independent Bernoulli(rate) each, drawn sparsely (sorted flat indices)."""
    k = rng.binomial(n_cells, rate) if rate > 0 else 0
    return np.sort(rng.choice(n_cells, size=k, replace=False)) if k else np.zeros(0, np.int64)


def apply_artefacts(
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
    pos = sparse_positions(r, n, p.flatline_rate)
    length = np.maximum(2, np.round(r.uniform(*FLATLINE_SECONDS, len(pos)) / p.sample_period_s))
    t, seg, k = segments(pos // n_pat, length, n_time)
    frozen = k > 0
    flat_cell = (t * n_pat + (pos % n_pat)[seg])[frozen]
    flat_src = pos[seg][frozen]
    frozen_values = {name: flat[name][flat_src] for name in VITAL_NAMES}

    # Motion spikes: HR jumps for 1–3 samples of the same patient.
    r = rng["motion_spike"]
    pos = sparse_positions(r, n, p.motion_spike_rate)
    length = r.integers(MOTION_SPIKE_SAMPLES[0], MOTION_SPIKE_SAMPLES[1] + 1, len(pos))
    jump = r.integers(MOTION_SPIKE_BPM[0], MOTION_SPIKE_BPM[1] + 1, len(pos)).astype(float)
    t, seg, _ = segments(pos // n_pat, length, n_time)
    cell = t * n_pat + (pos % n_pat)[seg]
    flat["hr"][cell] = np.minimum(flat["hr"][cell] + jump[seg], schema.valid_range("hr")[1])
    label[cell] = ARTEFACT_CODES["motion_spike"]

    for name in VITAL_NAMES:
        flat[name][flat_cell] = frozen_values[name]
    label[flat_cell] = ARTEFACT_CODES["flatline"]

    # Missing: either every vital (drop-out) or one sensor group.
    r = rng["missing"]
    pos = sparse_positions(r, n, p.missing_rate)
    drop_all = r.random(len(pos)) < p.missing_all_fraction
    group = r.integers(0, len(SENSOR_GROUPS), len(pos))
    for g, names in enumerate(SENSOR_GROUPS):
        cells = pos[drop_all | (group == g)]
        for name in names:
            flat[name][cells] = np.nan
    label[pos] = ARTEFACT_CODES["missing"]
    all_missing = np.zeros(n, dtype=bool)
    all_missing[pos[drop_all]] = True

    # Impossible: one vital replaced by a value outside its valid range.
    r = rng["impossible"]
    pos = sparse_positions(r, n, p.impossible_rate)
    which = r.integers(0, len(VITAL_NAMES), len(pos))
    kind = r.integers(0, 2, len(pos))
    for i, name in enumerate(VITAL_NAMES):
        sel = which == i
        flat[name][pos[sel]] = np.asarray(IMPOSSIBLE_VALUES[name])[kind[sel]]
    label[pos] = ARTEFACT_CODES["impossible"]
    all_missing[pos] = False
    return label, all_missing


def network_delays(
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
