"""Realism check: the synthetic cohort's vitals beside real ICU vitals (PhysioNet 2019 set A).

What it is for: the generator's baselines were calibrated against set A
(:mod:`vitalstream.data.physiology`). This module measures whether a generated cohort still looks
like set A, vital by vital, so that a generator change drifting away from real physiology fails a
test and shows in the paper instead of passing silently. It also holds the small descriptive
helpers the paper's cohort table needs (missingness, sampling interval, a deterministic choice of
example patients).

Who is compared. Synthetic side: *stable* patients only (``labels.deteriorates`` is False), since
a deteriorating patient is abnormal on purpose; distributions use readings whose ``artefact`` is
"none" (device faults are not physiology), missingness uses every schema-valid reading. Real
side: every valid hourly row of set A, as converted by :mod:`vitalstream.data.physionet`; it
includes septic patients' hours, because set A is the ICU population the generator was calibrated
on.

Unit of comparison. Set A stores one value per vital and ICU hour, and almost all of them are
whole numbers: a charted reading taken at one moment, not an average over the hour. A synthetic
1 Hz reading is the same kind of observation (one displayed value at one instant), and every
synthetic stay has the same length and sampling rate, so pooling all clean readings weighs each
patient-hour equally, as set A does. Averaging the synthetic readings to hourly means first would
remove the within-hour variability that a charted value keeps and make the synthetic spread look
narrower than it is; :func:`hourly_means` exists only as a sensitivity check of that choice.

Distance. The main measure is the 1-Wasserstein distance (mean absolute difference between the
two quantile functions, in the vital's unit) divided by set A's interquartile range: a
dimensionless "how far, in IQRs, must the probability mass move", comparable across vitals, that
grows with both a shift of location and a mismatch of spread or tails, and is robust to the ties
of whole-number data. The Kolmogorov–Smirnov statistic (largest gap between the two empirical
CDFs, 0–1) is reported beside it as a scale-free second view; its p-value is not used, because
with hundreds of thousands of values any difference is "significant".

Acceptance: for HR, SpO2, SBP, RR and temperature (:data:`ACCEPTANCE_VITALS`), the stable
patients' median lies inside set A's IQR (inclusive). DBP and MAP are reported but not judged
(set A charts DBP in fewer than two of three hours).

Not for: fitting or tuning the generator, nor statistical tests of equality.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from vitalstream.core import schema
from vitalstream.core.schema import VITAL_NAMES

# The vitals whose synthetic median must lie inside set A's IQR.
ACCEPTANCE_VITALS: tuple[str, ...] = ("hr", "spo2", "sbp", "rr", "temp")
HOUR_MS = 3_600_000
# Vitals a monitor or chart shows as whole numbers (see :func:`whole_number_share`).
WHOLE_NUMBER_VITALS: tuple[str, ...] = ("hr", "spo2", "sbp", "dbp", "rr")


@dataclass(frozen=True)
class Summary:
    """Distribution of one vital in one data set.

    ``n`` counts present values; ``missing_share`` is the share of rows without a value (None
    when it was not computed). Quantiles are NaN when no value is present.
    """

    n: int
    missing_share: float | None
    p5: float
    q25: float
    median: float
    q75: float
    p95: float

    @property
    def iqr(self) -> float:
        """Interquartile range, q75 − q25."""
        return self.q75 - self.q25

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN → None), with the IQR included."""
        return {k: _json_float(v) for k, v in {**asdict(self), "iqr": self.iqr}.items()}


def _json_float(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


def _values(values: Iterable[float] | pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")


def summarize(
    values: Iterable[float] | pd.Series | np.ndarray, missing_share: float | None = None
) -> Summary:
    """Median, quartiles and 5th/95th percentiles of the present values (NaN are skipped).

    ``missing_share`` defaults to the NaN share of ``values`` themselves; pass it explicitly
    when the values were filtered (e.g. artefact-free readings) but missingness should describe
    all valid rows.
    """
    x = _values(values)
    present = x[~np.isnan(x)]
    if missing_share is None and len(x):
        missing_share = float(1.0 - len(present) / len(x))
    if len(present):
        p5, q25, median, q75, p95 = np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95])
    else:
        p5 = q25 = median = q75 = p95 = math.nan
    return Summary(
        len(present), missing_share, float(p5), float(q25), float(median), float(q75), float(p95)
    )


def _epoch_ms(times: pd.Series) -> np.ndarray:
    """Epoch milliseconds of a datetime column, whatever its unit (ms, ns) or time zone."""
    return times.dt.as_unit("ms").astype("int64").to_numpy()


def _present(values: Iterable[float] | pd.Series | np.ndarray) -> np.ndarray:
    x = _values(values)
    return x[~np.isnan(x)]


def wasserstein(sample: Iterable[float], reference: Iterable[float]) -> float:
    """1-Wasserstein distance between two samples, in the vitals' unit (NaN are skipped)."""
    a, b = _present(sample), _present(reference)
    if not len(a) or not len(b):
        return math.nan
    return float(stats.wasserstein_distance(a, b))


def wasserstein_iqr(sample: Iterable[float], reference: Iterable[float]) -> float:
    """W1(sample, reference) divided by the reference's IQR: distance in reference IQRs.

    Scaling by the real data's IQR makes vitals with different units and spreads comparable;
    a value of 0.1 means the mass moves a tenth of set A's IQR on average. NaN if the
    reference has no spread (a constant), where the scale is undefined.
    """
    ref = summarize(reference)
    distance = wasserstein(sample, reference)
    if not ref.iqr > 0:
        return math.nan
    return distance / ref.iqr


def ks_statistic(sample: Iterable[float], reference: Iterable[float]) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = _present(sample), _present(reference)
    if not len(a) or not len(b):
        return math.nan
    return float(stats.ks_2samp(a, b, method="asymp").statistic)


def median_within_iqr(sample: Summary, reference: Summary) -> bool:
    """Whether the sample's median lies in [q25, q75] of the reference (False if undefined)."""
    return bool(reference.q25 <= sample.median <= reference.q75)


# --------------------------------------------------------------------------------------------
# Selecting what is compared
# --------------------------------------------------------------------------------------------


def stable_readings(
    events: pd.DataFrame, labels: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows, clean rows) of the synthetic cohort's stable patients.

    Valid rows are those :func:`vitalstream.core.schema.validate_events` accepts (impossible values
    and complete drop-outs are quarantined, as the stream job would): their NaNs are the
    missingness a consumer of the stream sees. Clean rows are the valid rows whose ``artefact``
    is "none": the generator's physiology without device faults, whose distribution is compared.
    """
    stable = labels.loc[~labels["deteriorates"].astype(bool), "patient_id"]
    rows = events[events["patient_id"].isin(stable)]
    valid, _ = schema.validate_events(rows)
    clean = valid[valid["artefact"] == "none"]
    return valid, clean


def hourly_means(readings: pd.DataFrame, vitals: Sequence[str] = VITAL_NAMES) -> pd.DataFrame:
    """Mean of each vital per patient and hour of stay (hour 0 = the patient's first reading).

    Hours are taken on true time (``event_time`` minus the device's ``clock_skew_ms``), so a
    skewed clock does not move readings between hours. For the sensitivity check only (see the
    module docstring for why the main comparison uses readings).
    """
    true_ms = _epoch_ms(readings["event_time"]) - readings["clock_skew_ms"].to_numpy("int64")
    frame = pd.DataFrame({"patient_id": readings["patient_id"].to_numpy(), "true_ms": true_ms})
    frame["hour"] = (
        frame["true_ms"] - frame.groupby("patient_id")["true_ms"].transform("min")
    ) // HOUR_MS
    for name in vitals:
        frame[name] = readings[name].to_numpy(dtype="float64")
    return frame.groupby(["patient_id", "hour"], sort=True)[list(vitals)].mean().reset_index()


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


def compare_vital(
    name: str,
    synthetic: Iterable[float],
    reference: Iterable[float],
    synthetic_missing: float | None = None,
    reference_missing: float | None = None,
) -> dict[str, Any]:
    """Summaries of both sides, W1/IQR, KS and the median-in-IQR verdict for one vital."""
    syn = _values(synthetic)
    ref = _values(reference)
    s_syn = summarize(syn, synthetic_missing)
    s_ref = summarize(ref, reference_missing)
    w1 = wasserstein(syn, ref)
    return {
        "unit": schema.VITALS[VITAL_NAMES.index(name)].unit,
        "synthetic": s_syn.to_dict(),
        "reference": s_ref.to_dict(),
        "w1": _json_float(w1),
        "w1_iqr": _json_float(w1 / s_ref.iqr if s_ref.iqr > 0 else math.nan),
        "ks": _json_float(ks_statistic(syn, ref)),
        "median_within_iqr": median_within_iqr(s_syn, s_ref),
        "acceptance": name in ACCEPTANCE_VITALS,
    }


def _missing_shares(valid: pd.DataFrame, vitals: Sequence[str]) -> dict[str, float | None]:
    if not len(valid):
        return dict.fromkeys(vitals)
    return {v: float(valid[v].isna().mean()) for v in vitals}


def compare(
    synthetic_events: pd.DataFrame,
    synthetic_labels: pd.DataFrame,
    reference_events: pd.DataFrame,
    vitals: Sequence[str] = VITAL_NAMES,
    acceptance: Sequence[str] = ACCEPTANCE_VITALS,
) -> dict[str, Any]:
    """The realism check as a JSON-ready dict (the content of ``results/data/realism.json``).

    ``reference_events`` are set A's valid rows (``events.parquet`` of the sepsis2019
    conversion); the synthetic side is selected with :func:`stable_readings`. Per vital: both
    summaries (missingness over valid rows), ``w1``, ``w1_iqr``, ``ks`` and
    ``median_within_iqr``; ``hourly_mean`` repeats the distance and verdict with synthetic
    hourly means instead of readings (sensitivity check). ``all_within_iqr`` is the verdict
    over ``acceptance``.
    """
    valid, clean = stable_readings(synthetic_events, synthetic_labels)
    syn_missing = _missing_shares(valid, vitals)
    ref_missing = _missing_shares(reference_events, vitals)
    hourly = hourly_means(clean, vitals) if len(clean) else pd.DataFrame(columns=list(vitals))
    per_vital, per_vital_hourly = {}, {}
    for name in vitals:
        ref_values = reference_events[name]
        per_vital[name] = compare_vital(
            name, clean[name], ref_values, syn_missing[name], ref_missing[name]
        )
        per_vital[name]["acceptance"] = name in acceptance
        h = compare_vital(name, hourly[name], ref_values)
        per_vital_hourly[name] = {
            "median": h["synthetic"]["median"],
            "w1_iqr": h["w1_iqr"],
            "ks": h["ks"],
            "median_within_iqr": h["median_within_iqr"],
        }
    judged = [v for v in vitals if v in acceptance]
    within = [v for v in judged if per_vital[v]["median_within_iqr"]]
    within_hourly = [v for v in judged if per_vital_hourly[v]["median_within_iqr"]]
    return {
        "synthetic": {
            "selection": "stable patients (labels.deteriorates False); distributions from valid "
            "readings with artefact 'none', missingness over all valid readings",
            "stable_patients": int(valid["patient_id"].nunique()),
            "valid_readings": len(valid),
            "clean_readings": len(clean),
            "patient_hours": len(hourly),
        },
        "reference": {
            "selection": "valid hourly rows of PhysioNet 2019 training set A (all patients)",
            "patients": int(reference_events["patient_id"].nunique()),
            "rows": len(reference_events),
            "whole_number_share": whole_number_share(reference_events),
        },
        "unit_of_comparison": "one synthetic reading vs one set-A charted hour; "
        "hourly_mean: synthetic hourly means per patient",
        "distance": "w1_iqr = 1-Wasserstein distance / IQR of set A; ks = two-sample KS statistic",
        "acceptance_vitals": judged,
        "vitals_judged": len(judged),
        "vitals_within_iqr": len(within),
        "all_within_iqr": len(within) == len(judged),
        "hourly_mean_vitals_within_iqr": len(within_hourly),
        "vitals": per_vital,
        "hourly_mean": per_vital_hourly,
    }


def whole_number_share(
    events: pd.DataFrame, vitals: Sequence[str] = WHOLE_NUMBER_VITALS
) -> float | None:
    """Share of present values of ``vitals`` that are whole numbers.

    Evidence for the unit of comparison: a value averaged over an hour of monitoring would
    rarely be whole, a single charted reading of these vitals always is. MAP (often computed
    from SBP and DBP) and temperature (often converted from Fahrenheit) are left out.
    """
    x = events[list(vitals)].to_numpy(dtype="float64", na_value=np.nan).ravel()
    x = x[~np.isnan(x)]
    return float(np.mean(x == np.round(x))) if len(x) else None


def failing_vitals(result: Mapping[str, Any]) -> list[str]:
    """Acceptance vitals of a :func:`compare` result whose median lies outside set A's IQR."""
    return [
        name
        for name in result["acceptance_vitals"]
        if not result["vitals"][name]["median_within_iqr"]
    ]


# --------------------------------------------------------------------------------------------
# Describing a data set (the paper's cohort table)
# --------------------------------------------------------------------------------------------


def recorded_vitals(events: pd.DataFrame) -> list[str]:
    """The vitals a source records at all (at least one value among its rows)."""
    return [v for v in VITAL_NAMES if v in events.columns and events[v].notna().any()]


def missing_share(events: pd.DataFrame, vitals: Sequence[str] | None = None) -> float:
    """Share of vital values missing among ``events`` (valid rows), over ``vitals``.

    By default over the vitals the source records, so a source without a temperature probe is
    not called 100 % missing on temperature: it never claimed to measure it.
    """
    vitals = recorded_vitals(events) if vitals is None else list(vitals)
    if not vitals or not len(events):
        return math.nan
    return float(events[list(vitals)].isna().to_numpy().mean())


def median_interval_s(events: pd.DataFrame) -> float:
    """Median time between a patient's consecutive distinct time stamps, in seconds.

    Describes the sampling of a source from its data (1 s, 1 min, 1 h) rather than from its
    documentation; repeated time stamps (duplicates) are skipped.
    """
    frame = pd.DataFrame(
        {
            "patient_id": events["patient_id"].to_numpy(),
            "ms": _epoch_ms(events["event_time"]),
        }
    ).sort_values(["patient_id", "ms"], kind="stable")
    step = frame.groupby("patient_id", sort=False)["ms"].diff().to_numpy()
    step = step[step > 0]
    return float(np.median(step) / 1000.0) if len(step) else math.nan


def first_patient(labels: pd.DataFrame, deteriorates: bool, events: pd.DataFrame) -> str:
    """The first patient id (sorted) with the given outcome, for example figures.

    A deteriorating (septic) patient qualifies only if their onset lies within their recorded
    stay, so the onset can be drawn on their trajectory; a stable one only if they have rows.
    The choice is a rule, not a look at the data, so the figure cannot be cherry-picked.
    """
    times = pd.Series(_epoch_ms(events["event_time"]), index=events.index)
    span = times.groupby(events["patient_id"].astype(str).to_numpy()).agg(["min", "max"])
    ids = labels["patient_id"].astype(str)
    candidates = labels[
        (labels["deteriorates"].astype(bool) == deteriorates) & ids.isin(span.index)
    ]
    if deteriorates:
        onset = candidates["onset_time"]
        first = span["min"].reindex(candidates["patient_id"].astype(str)).to_numpy()
        last = span["max"].reindex(candidates["patient_id"].astype(str)).to_numpy()
        onset_ms = _epoch_ms(onset.fillna(pd.Timestamp(0, tz="UTC")))
        inside = onset.notna().to_numpy() & (onset_ms >= first) & (onset_ms <= last)
        candidates = candidates[inside]
    if not len(candidates):
        kind = "deteriorating" if deteriorates else "stable"
        raise ValueError(f"no {kind} patient qualifies")
    return str(sorted(candidates["patient_id"].astype(str))[0])
