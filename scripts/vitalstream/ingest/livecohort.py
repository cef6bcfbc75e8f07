"""Live vital signs for the device simulator: the synthetic cohort's physiology on a live clock.

What it is for: the values :mod:`vitalstream.ingest.simulate` sends, for N patients, one reading
per patient every ``1 / rate_hz`` seconds, for as long as the simulator runs. The signal model is
the cohort generator's own (:func:`vitalstream.data.physiology.clean_vitals`: baselines from age
and sex, circadian rhythm, shared stress, OU noise, sepsis-like deterioration with fever
coupling, benign SpO2 dips), so the live stream looks like the paper's cohorts. What differs:

* **Chunks.** The generator works on a whole stay at once; a live run has no end. The trajectory
  is generated ``chunk_s`` seconds at a time (memory stays bounded whatever the run length). A
  patient's fixed draws (age, sex, baseline, circadian acrophase, deterioration targets) come
  from random streams that are re-seeded identically for every chunk, so a patient stays the
  same patient; the noise, stress and dip streams carry on, so no chunk repeats another.
* **Seams.** Each chunk's noise starts afresh; left alone, every vital would jump at a seam. The
  offset between the previous chunk's last value and the new chunk's first decays with the
  vital's own correlation times (the conditional mean of the OU processes), so the seam is
  invisible and the marginal distribution unchanged.
* **Already on the ward.** Each patient enters the live run at a random point of a
  ``LIVE_STAY_HOURS`` stay, so at start some deteriorating patients are mid-ramp or fully
  deteriorated and alerts appear within the first minute; others deteriorate later. After the
  stay's end a patient simply stays in the state reached (no discharge).
* **An opening episode.** Every patient already fully deteriorated when the run starts has one
  desaturation dip of the cohort's shape and depth within the first ``OPENING_DIP_WITHIN_S``
  seconds: hypoxaemic patients dip below the critical SpO2 threshold, so a viewer of
  ``up --simulate 200`` sees reading alerts within a minute, as on a ward one joins mid-shift.
* **Injected load** (the live benchmark): ``tachycardic_per_mille`` patients per 1,000 keep a
  heart rate above the tachycardia window rule's threshold in every reading, and
  :class:`CriticalSchedule` chooses which readings are made critical (SpO2 below the critical
  reading rule's threshold); both thresholds are read from the configured diagnostics.

Not for: Kafka or timing (vitalstream.ingest.simulate), device artefacts or network delay (a live
device is clean; artefacts belong to the replay experiments).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vitalstream.core import schema
from vitalstream.core.rules import ThresholdRule
from vitalstream.data.cohortparams import CohortParams
from vitalstream.data.physiology import (
    DESATURATION_DEPTH,
    DESATURATION_SECONDS,
    NOISE,
    STRESS_LOADING,
    STRESS_TAU_S,
    segments,
)
from vitalstream.data.physiology import clean_vitals as cohort_clean_vitals
from vitalstream.data.physiology import draw_patients as cohort_draw_patients

# What a device following the blueprint sends (plus rr and temp, which NEWS2 needs).
DEVICE_VITALS: tuple[str, ...] = ("hr", "spo2", "sbp", "rr", "temp")
# A patient's stay: onset of deterioration falls in the cohort's onset window of it.
LIVE_STAY_HOURS = 2.0
# Readings (patients × samples) per generated chunk: bounds memory to a few MB per vital.
CHUNK_READINGS = 600_000
CHUNK_S_RANGE = (10.0, 600.0)
# Injected values sit clearly beyond the rules' thresholds, not on their edges.
CRITICAL_SPO2_MARGIN = 4.0
TACHYCARDIA_FLOOR_MARGIN_BPM = 10.0
TACHYCARDIA_SHIFT_BPM = 5.0
OPENING_DIP_WITHIN_S = 40.0

# Random sub-streams. FIXED ones are re-seeded identically for every chunk (who a patient is);
# the others carry on from chunk to chunk (what happens to them).
FIXED_STREAMS: tuple[str, ...] = (
    "demographics",
    "devices",
    "baseline",
    "circadian",
    "deterioration",
    "phase",
    "tachycardic",
    "opening",
)
CARRIED_STREAMS: tuple[str, ...] = (
    "stress",
    *(f"noise_{v}" for v in NOISE),
    "desaturation",
)


@dataclass(frozen=True)
class SimulatorSpec:
    """What the simulator sends: how many patients, how often, and the injected load.

    Fields:
        patients: simulated bedside devices (patient ids ``P000001``…).
        rate_hz: readings per patient per second.
        seed: root seed; the vitals of a reading depend only on it, the patient and the
            reading's number (and the wall clock through the circadian rhythm).
        seconds: stop after this long (None: until stopped).
        critical_per_mille: readings per 1,000 made critical (SpO2 below the critical rule).
        tachycardic_per_mille: patients per 1,000 whose every window fires the tachycardia rule.
        natural_alerts: False turns off deterioration and benign dips, so that only the
            injected load fires alerts (a clean latency sample for the live benchmark).
        prevalence: share of patients who deteriorate during their stay (the cohort's).
    """

    patients: int
    rate_hz: float = 1.0
    seed: int = 20261207
    seconds: float | None = None
    critical_per_mille: int = 0
    tachycardic_per_mille: int = 0
    natural_alerts: bool = True
    prevalence: float = 0.2

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.patients <= 999_999:
            problems.append("patients must be in [1, 999999] (ids are P + 6 digits)")
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            problems.append("rate_hz must be > 0")
        if self.seconds is not None and not self.seconds > 0:
            problems.append("seconds must be > 0")
        for name in ("critical_per_mille", "tachycardic_per_mille"):
            if not 0 <= getattr(self, name) <= 1000:
                problems.append(f"{name} must be in [0, 1000]")
        if not 0.0 <= self.prevalence <= 1.0:
            problems.append("prevalence must be in [0, 1]")
        if problems:
            raise ValueError("invalid SimulatorSpec: " + "; ".join(problems))

    @property
    def chunk_samples(self) -> int:
        """Samples per patient in one generated chunk."""
        lo, hi = CHUNK_S_RANGE
        seconds = min(hi, max(lo, CHUNK_READINGS / (self.patients * self.rate_hz)))
        return max(1, round(seconds * self.rate_hz))


@dataclass(frozen=True)
class InjectionValues:
    """The injected readings' values, derived from the configured rules (never hard-coded)."""

    critical_spo2: float
    critical_rule: str
    tachycardia_threshold_bpm: float
    tachycardia_rule: str

    @classmethod
    def from_rules(
        cls, reading_rules: Iterable[ThresholdRule], window_rules: Iterable[ThresholdRule]
    ) -> InjectionValues:
        """Critical SpO2 below the reading rule on ``spo2``; tachycardia above the window rule
        on ``hr_mean``. ValueError names the missing rule."""
        critical = _rule(reading_rules, "spo2", ("<", "<="), "diagnostics.reading_rules")
        tachy = _rule(window_rules, "hr_mean", (">", ">="), "diagnostics.window_rules")
        lo, _ = schema.valid_range("spo2")
        return cls(
            critical_spo2=max(lo, round(critical.threshold - CRITICAL_SPO2_MARGIN)),
            critical_rule=critical.name,
            tachycardia_threshold_bpm=float(tachy.threshold),
            tachycardia_rule=tachy.name,
        )


def _rule(
    rules: Iterable[ThresholdRule], column: str, ops: tuple[str, ...], where: str
) -> ThresholdRule:
    for rule in rules:
        if rule.column == column and rule.op in ops:
            return rule
    raise ValueError(f"{where} has no rule '{column} {ops[0]} threshold' to inject load against")


def patient_ids(patients: int) -> list[str]:
    """The cohort's ids: ``P000001`` … (1-based)."""
    return [f"P{i:06d}" for i in range(1, patients + 1)]


def _iso_utc(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return np.datetime_as_string(np.datetime64(seconds, "s"), unit="s") + f".{millis:03d}Z"


class LiveCohort:
    """The live trajectory of every patient, generated chunk by chunk, in order.

    ``next_chunk()`` returns the following ``spec.chunk_samples`` readings of every patient as
    ``{vital: (samples, patients) float64}``, displayed values (rounded as a monitor shows
    them). ``start_ms`` sets the circadian clock (the wall time of the first reading).
    """

    def __init__(self, spec: SimulatorSpec, injection: InjectionValues, start_ms: int) -> None:
        self.spec = spec
        self.injection = injection
        self.start_ms = start_ms
        seeds = np.random.SeedSequence(spec.seed).spawn(len(FIXED_STREAMS) + len(CARRIED_STREAMS))
        self._fixed_seeds = dict(zip(FIXED_STREAMS, seeds, strict=False))
        carried_seeds = seeds[len(FIXED_STREAMS) :]
        self._carried = {
            name: np.random.default_rng(s)
            for name, s in zip(CARRIED_STREAMS, carried_seeds, strict=True)
        }
        fixed = self._fixed()
        stay = self._params(LIVE_STAY_HOURS, 0)
        self.patients = cohort_draw_patients(stay, fixed)
        if not spec.natural_alerts:
            self.patients = dataclasses.replace(
                self.patients,
                deteriorates=np.zeros(spec.patients, dtype=bool),
                onset_s=np.full(spec.patients, np.nan),
            )
        # Seconds of its stay each patient has already spent on the ward when the run starts.
        self.phase_s = fixed["phase"].uniform(0.0, LIVE_STAY_HOURS * 3600.0, spec.patients)
        self.tachycardic = tachycardic_patients(spec, fixed["tachycardic"])
        self.chunks_made = 0
        self._last: dict[str, np.ndarray] | None = None

    def _fixed(self) -> dict[str, np.random.Generator]:
        """Fresh generators of the fixed draws: the same numbers for every chunk."""
        return {name: np.random.default_rng(s) for name, s in self._fixed_seeds.items()}

    def _params(self, hours: float, offset_ms: int) -> CohortParams:
        return CohortParams(
            patients=self.spec.patients,
            hours=hours,
            sample_period_s=1.0 / self.spec.rate_hz,
            seed=self.spec.seed,
            start=_iso_utc(self.start_ms + offset_ms),
            prevalence=self.spec.prevalence,
            benign_desaturations_per_hour=(
                CohortParams.benign_desaturations_per_hour if self.spec.natural_alerts else 0.0
            ),
        )

    def next_chunk(self) -> dict[str, np.ndarray]:
        """The next chunk of displayed device vitals, ``(samples, patients)`` each."""
        n = self.spec.chunk_samples
        period_s = 1.0 / self.spec.rate_hz
        chunk_start_s = self.chunks_made * n * period_s
        params = self._params(n * period_s / 3600.0, round(chunk_start_s * 1000.0))
        # The generator's clock starts at the chunk: shift every onset into it.
        local = dataclasses.replace(
            self.patients, onset_s=self.patients.onset_s - self.phase_s - chunk_start_s
        )
        vitals, _ = cohort_clean_vitals(params, local, {**self._fixed(), **self._carried})
        chunk = {name: vitals[name] for name in DEVICE_VITALS}
        if self._last is not None:
            smooth_seam(chunk, self._last, period_s)
        elif self.spec.natural_alerts:
            self._opening_dips(chunk["spo2"], period_s)
        self._last = {name: values[-1].copy() for name, values in chunk.items()}
        if len(self.tachycardic):
            chunk["hr"][:, self.tachycardic] = tachycardic_hr(
                chunk["hr"][:, self.tachycardic], self.injection.tachycardia_threshold_bpm
            )
        self.chunks_made += 1
        return chunk

    def deteriorated_at_start(self) -> np.ndarray:
        """Indices of the patients whose deterioration ramp is complete when the run starts."""
        ramp_s = self._params(LIVE_STAY_HOURS, 0).ramp_minutes * 60.0
        into_ramp_s = self.phase_s - self.patients.onset_s  # NaN (never) for stable patients
        return np.flatnonzero(np.nan_to_num(into_ramp_s, nan=-1.0) >= ramp_s)

    def _opening_dips(self, spo2: np.ndarray, period_s: float) -> None:
        """One cohort-shaped dip per patient deteriorated at start (see the module doc)."""
        who = self.deteriorated_at_start()
        rng = self._fixed()["opening"]
        start = np.floor(rng.uniform(0.0, OPENING_DIP_WITHIN_S, len(who)) / period_s)
        length = np.maximum(1, np.round(rng.uniform(*DESATURATION_SECONDS, len(who)) / period_s))
        depth = rng.uniform(*DESATURATION_DEPTH, len(who))
        t, seg, k = segments(start.astype(np.int64), length, len(spo2))
        dip = depth[seg] * np.sin(np.pi * (k + 0.5) / length[seg]) ** 2
        np.subtract.at(spo2, (t, who[seg]), dip)
        display(spo2, "spo2")


def seam_weights(name: str, samples: int, period_s: float) -> np.ndarray:
    """How much of a seam's offset is left at sample ``k`` of the new chunk, for vital ``name``.

    The offset is a sum of the vital's OU noise and (for loaded vitals) the shared stress
    factor; each part decays with its own correlation time, weighted by its variance. Sample
    0 is one period after the previous chunk's last, so it already moves on.
    """
    t_s = np.arange(1, samples + 1) * period_s
    noise = NOISE[name]
    loading = STRESS_LOADING.get(name, 0.0)
    a, b = noise.sd**2, loading**2
    return (a * np.exp(-t_s / noise.tau_s) + b * np.exp(-t_s / STRESS_TAU_S)) / (a + b)


def smooth_seam(chunk: dict[str, np.ndarray], last: dict[str, np.ndarray], period_s: float) -> None:
    """Carry the previous chunk's last values into ``chunk`` in place (see the module doc)."""
    for name, values in chunk.items():
        offset = last[name] - values[0]
        values += seam_weights(name, len(values), period_s)[:, None] * offset[None, :]
        display(values, name)


def display(values: np.ndarray, name: str) -> np.ndarray:
    """Clip to the vital's valid range and round as a monitor displays it, in place."""
    lo, hi = schema.valid_range(name)
    np.clip(values, lo, hi, out=values)
    np.round(values, schema.DISPLAY_DECIMALS[name], out=values)
    return values


def tachycardic_hr(hr: np.ndarray, threshold_bpm: float) -> np.ndarray:
    """Heart rates that keep every reading, hence every window mean, above the threshold,
    with the patient's own variability where it already runs high."""
    floor = threshold_bpm + TACHYCARDIA_FLOOR_MARGIN_BPM
    return display(np.maximum(hr, floor) + TACHYCARDIA_SHIFT_BPM, "hr")


def tachycardic_patients(spec: SimulatorSpec, rng: np.random.Generator) -> np.ndarray:
    """Indices of the injected tachycardic patients: ``tachycardic_per_mille`` per 1,000."""
    count = round(spec.patients * spec.tachycardic_per_mille / 1000)
    return np.sort(rng.permutation(spec.patients)[:count])


class CriticalSchedule:
    """Which messages carry an injected critical reading.

    Message ``i`` is patient ``i % patients``'s reading number ``i // patients`` (the send
    order). The stream is cut into consecutive windows of ``1000 / per_mille`` messages and
    one message of each window is made critical: exactly ``per_mille`` per 1,000. Within a
    window the patient whose last critical reading is oldest is chosen, so criticals rotate
    over the patients and a repeat for one patient comes as late as the load allows (the
    job suppresses repeats of a rule for a patient within ``suppression_s``). Patients in
    ``avoid`` (the deteriorating ones, whose own critical readings would suppress an injected
    one) are chosen only when a window has no other candidate.
    """

    def __init__(self, per_mille: int, patients: int, avoid: np.ndarray | None = None) -> None:
        self.every = 1000.0 / per_mille if per_mille else math.inf
        self.patients = patients
        self.last_used = np.full(patients, -1, dtype=np.int64)
        self.avoided = np.zeros(patients, dtype=bool)
        if avoid is not None:
            self.avoided[avoid] = True
            self.last_used[avoid] = np.iinfo(np.int64).max  # last in every choice
        self.window = 0
        self.pending: list[int] = []

    def _window_start(self, j: int) -> int:
        return math.ceil(j * self.every - 1e-9)

    def criticals(self, lo: int, hi: int) -> list[int]:
        """Critical message indices in ``[lo, hi)``; calls must come in send order."""
        if math.isinf(self.every):
            return []
        while self._window_start(self.window) < hi:
            start, end = self._window_start(self.window), self._window_start(self.window + 1)
            candidates = np.arange(start, end, dtype=np.int64)
            patients = candidates % self.patients
            k = int(np.argmin(self.last_used[patients]))
            if not self.avoided[patients[k]]:
                self.last_used[patients[k]] = candidates[k]
            self.pending.append(int(candidates[k]))
            self.window += 1
        due = [i for i in self.pending if lo <= i < hi]
        self.pending = [i for i in self.pending if i >= hi]
        return due
