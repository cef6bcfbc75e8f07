"""The realism check (vitalstream.data.realism) on small generated cohorts and the set-A fixture.

Fast: one small cohort, the fixture subset of set A (285 patients) read once per module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vitalstream.core import schema
from vitalstream.core.schema import VITAL_NAMES
from vitalstream.data import physionet as ph
from vitalstream.data import realism
from vitalstream.data.cohort import CohortParams, generate_cohort

REPO = Path(__file__).resolve().parents[2]
PSV_DIR = REPO / "data" / "fixtures" / "physionet" / ph.MIRROR_SUBPATHS["sepsis2019"]
RESULT = REPO / "results" / "data" / "realism.json"


@pytest.fixture(scope="module")
def set_a() -> ph.SourceData:
    return ph.read_sepsis2019(PSV_DIR)


@pytest.fixture(scope="module")
def small_cohort():
    return generate_cohort(CohortParams(patients=40, hours=0.25, prevalence=0.25, seed=7))


@pytest.fixture(scope="module")
def result(small_cohort, set_a) -> dict:
    return realism.compare(small_cohort.events, small_cohort.labels, set_a.events)


# --------------------------------------------------------------------------------------------
# Summary statistics and distances
# --------------------------------------------------------------------------------------------


def test_summary_skips_missing_values_and_counts_them():
    s = realism.summarize([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, np.nan, np.nan])
    assert s.n == 5
    assert s.missing_share == pytest.approx(3 / 8)
    assert (s.q25, s.median, s.q75, s.iqr) == (2.0, 3.0, 4.0, 2.0)
    assert s.p5 == pytest.approx(1.2) and s.p95 == pytest.approx(4.8)


def test_summary_of_no_values_is_nan_and_json_null():
    s = realism.summarize([np.nan, np.nan])
    assert s.n == 0 and s.missing_share == 1.0 and math.isnan(s.median)
    assert s.to_dict()["median"] is None
    assert json.dumps(s.to_dict())  # JSON-ready: no NaN tokens needed


def test_explicit_missing_share_wins():
    assert realism.summarize([1.0, 2.0], missing_share=0.25).missing_share == 0.25


def test_identical_samples_have_zero_distance():
    x = np.random.default_rng(1).normal(80, 12, 5000)
    assert realism.wasserstein_iqr(x, x) == pytest.approx(0.0, abs=1e-12)
    assert realism.ks_statistic(x, x) == pytest.approx(0.0, abs=1e-12)


def test_a_shifted_distribution_gets_a_larger_distance():
    rng = np.random.default_rng(2)
    reference = rng.normal(80, 12, 20_000)
    near = rng.normal(80, 12, 20_000)
    shifted = rng.normal(80 + 8, 12, 20_000)
    farther = rng.normal(80 + 16, 12, 20_000)
    d = [realism.wasserstein_iqr(x, reference) for x in (near, shifted, farther)]
    ks = [realism.ks_statistic(x, reference) for x in (near, shifted, farther)]
    assert d[0] < d[1] < d[2] and ks[0] < ks[1] < ks[2]
    # A pure shift moves every quantile by the shift: W1 = 8, in units of the IQR (~16.2).
    iqr = realism.summarize(reference).iqr
    assert d[1] == pytest.approx(8 / iqr, rel=0.1)


def test_a_wider_distribution_is_farther_though_its_median_agrees():
    rng = np.random.default_rng(3)
    reference = rng.normal(18, 3, 20_000)
    same = rng.normal(18, 3, 20_000)
    wide = rng.normal(18, 9, 20_000)
    assert realism.wasserstein_iqr(wide, reference) > 3 * realism.wasserstein_iqr(same, reference)
    assert realism.median_within_iqr(realism.summarize(wide), realism.summarize(reference))


def test_distance_is_nan_without_a_scale_or_values():
    assert math.isnan(realism.wasserstein_iqr([1.0, 2.0], [5.0, 5.0, 5.0]))
    assert math.isnan(realism.wasserstein([np.nan], [1.0]))
    assert math.isnan(realism.ks_statistic([], [1.0]))


def test_median_within_iqr_is_inclusive_and_false_outside():
    ref = realism.summarize([10.0, 20.0, 30.0, 40.0, 50.0])  # IQR 20–40
    assert realism.median_within_iqr(realism.summarize([20.0]), ref)
    assert realism.median_within_iqr(realism.summarize([40.0]), ref)
    assert not realism.median_within_iqr(realism.summarize([40.5]), ref)
    assert not realism.median_within_iqr(realism.summarize([np.nan]), ref)


# --------------------------------------------------------------------------------------------
# The comparison on a generated cohort and the set-A fixture
# --------------------------------------------------------------------------------------------


def test_stable_readings_are_stable_patients_without_artefacts(small_cohort):
    valid, clean = realism.stable_readings(small_cohort.events, small_cohort.labels)
    deteriorating = small_cohort.labels.loc[small_cohort.labels["deteriorates"], "patient_id"]
    assert len(deteriorating) == 10
    assert not valid["patient_id"].isin(deteriorating).any()
    assert valid["patient_id"].nunique() == 30
    assert (clean["artefact"] == "none").all()
    assert set(valid["artefact"]) > {"none", "missing"}  # missingness counts every valid row
    # Impossible values and complete drop-outs never reach the valid rows.
    assert "impossible" not in set(valid["artefact"])
    for name in VITAL_NAMES:
        lo, hi = schema.valid_range(name)
        assert valid[name].dropna().between(lo, hi).all()


def test_generated_stable_medians_lie_within_set_a_iqr(result):
    assert result["acceptance_vitals"] == list(realism.ACCEPTANCE_VITALS)
    for name in realism.ACCEPTANCE_VITALS:
        v = result["vitals"][name]
        assert v["reference"]["q25"] <= v["synthetic"]["median"] <= v["reference"]["q75"], name
        assert v["median_within_iqr"] is True
    assert realism.failing_vitals(result) == []
    assert result["all_within_iqr"] is True
    assert result["vitals_within_iqr"] == result["vitals_judged"] == 5


def test_result_has_every_vital_and_is_json(result, set_a):
    assert set(result["vitals"]) == set(VITAL_NAMES) == set(result["hourly_mean"])
    for name, v in result["vitals"].items():
        assert v["acceptance"] == (name in realism.ACCEPTANCE_VITALS)
        assert 0.0 <= v["ks"] <= 1.0 and v["w1_iqr"] >= 0.0
        assert v["synthetic"]["n"] > 0 and v["reference"]["n"] > 0
        assert 0.0 <= v["reference"]["missing_share"] < 1.0
    assert result["reference"]["rows"] == len(set_a.events)
    assert result["synthetic"]["stable_patients"] == 30
    # 0.25 h stays: one hour bin per stable patient.
    assert result["synthetic"]["patient_hours"] == 30
    assert 0.5 < result["reference"]["whole_number_share"] <= 1.0
    json.dumps(result, allow_nan=False)


def test_the_check_flags_a_median_outside_set_a_iqr(small_cohort, set_a):
    events = small_cohort.events.copy()
    events["hr"] = events["hr"] + 45.0  # every stable patient tachycardic
    events["temp"] = events["temp"] - 2.5  # and hypothermic
    shifted = realism.compare(events, small_cohort.labels, set_a.events)
    assert realism.failing_vitals(shifted) == ["hr", "temp"]
    assert shifted["vitals"]["hr"]["median_within_iqr"] is False
    assert shifted["all_within_iqr"] is False and shifted["vitals_within_iqr"] == 3
    base = realism.compare(small_cohort.events, small_cohort.labels, set_a.events)
    for name in ("hr", "temp"):
        assert shifted["vitals"][name]["w1_iqr"] > base["vitals"][name]["w1_iqr"] + 0.5
        assert shifted["vitals"][name]["ks"] > base["vitals"][name]["ks"]


def test_deteriorating_patients_do_not_enter_the_comparison(small_cohort, set_a):
    events = small_cohort.events.copy()
    deteriorating = small_cohort.labels.loc[small_cohort.labels["deteriorates"], "patient_id"]
    events.loc[events["patient_id"].isin(deteriorating), "hr"] = 200.0
    changed = realism.compare(events, small_cohort.labels, set_a.events)
    base = realism.compare(small_cohort.events, small_cohort.labels, set_a.events)
    assert changed["vitals"]["hr"] == base["vitals"]["hr"]


# --------------------------------------------------------------------------------------------
# Descriptive helpers
# --------------------------------------------------------------------------------------------


def _events(patient: list[str], ms: list[int], **vitals: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "patient_id": pd.array(patient, dtype="string"),
            "event_time": schema.timestamps_from_ms(np.array(ms) + 1_767_225_600_000),
            "clock_skew_ms": np.zeros(len(ms), dtype="int64"),
        }
    )
    for name in VITAL_NAMES:
        frame[name] = vitals.get(name, [np.nan] * len(ms))
    return frame


def test_hourly_means_bin_by_hour_of_stay_on_true_time():
    h = realism.HOUR_MS
    frame = _events(["a", "a", "a", "b"], [0, h - 1, h, 5 * h], hr=[60.0, 80.0, 100.0, 90.0])
    frame["clock_skew_ms"] = [0, 0, 0, 0]
    means = realism.hourly_means(frame)
    assert means[["patient_id", "hour"]].values.tolist() == [["a", 0], ["a", 1], ["b", 0]]
    assert means["hr"].tolist() == [70.0, 100.0, 90.0]
    # A device clock 2 s fast moves no reading into another hour.
    frame["clock_skew_ms"] = 2000
    frame["event_time"] = frame["event_time"] + pd.Timedelta(seconds=2)
    assert realism.hourly_means(frame)["hr"].tolist() == [70.0, 100.0, 90.0]


def test_missing_share_counts_only_recorded_vitals():
    frame = _events(["a"] * 4, [0, 1, 2, 3], hr=[60.0, np.nan, 70.0, 72.0], rr=[12.0] * 4)
    assert realism.recorded_vitals(frame) == ["hr", "rr"]
    assert realism.missing_share(frame) == pytest.approx(1 / 8)
    assert realism.missing_share(frame, ["hr"]) == pytest.approx(1 / 4)


def test_median_interval_skips_duplicates_and_patient_boundaries():
    frame = _events(["a", "a", "a", "a", "b", "b"], [0, 1000, 1000, 2000, 50_000, 51_000])
    assert realism.median_interval_s(frame) == 1.0


def test_whole_number_share():
    frame = _events(["a"] * 4, [0, 1, 2, 3], hr=[60.0, 60.5, 61.0, np.nan], temp=[37.1] * 4)
    assert realism.whole_number_share(frame) == pytest.approx(2 / 3)


def test_first_patient_is_a_rule_not_a_choice(small_cohort, set_a):
    labels, events = small_cohort.labels, small_cohort.events
    det = realism.first_patient(labels, True, events)
    stable = realism.first_patient(labels, False, events)
    assert det == min(labels.loc[labels["deteriorates"], "patient_id"])
    assert stable == min(labels.loc[~labels["deteriorates"], "patient_id"])
    septic = realism.first_patient(set_a.labels, True, set_a.events)
    row = set_a.labels.set_index("patient_id").loc[septic]
    times = set_a.events.loc[set_a.events["patient_id"] == septic, "event_time"]
    assert row["deteriorates"] and times.min() <= row["onset_time"] <= times.max()
    # Septic patients whose t_sepsis lies beyond their last row are passed over.
    earlier = set_a.labels[set_a.labels["deteriorates"] & (set_a.labels["patient_id"] < septic)]
    for pid, onset in zip(earlier["patient_id"], earlier["onset_time"], strict=True):
        last = set_a.events.loc[set_a.events["patient_id"] == pid, "event_time"].max()
        assert pd.isna(last) or onset > last


def test_first_patient_without_candidates_fails_loudly(small_cohort):
    stable_only = small_cohort.labels.assign(deteriorates=False, onset_time=pd.NaT)
    with pytest.raises(ValueError, match="no deteriorating patient"):
        realism.first_patient(stable_only, True, small_cohort.events)


# --------------------------------------------------------------------------------------------
# The workflow's own result (when it has been built)
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not RESULT.is_file(), reason="results/data/realism.json not built yet")
def test_workflow_realism_medians_lie_within_set_a_iqr():
    """Fails when the cohort the paper describes drifts out of set A's IQR on any judged vital."""
    built = json.loads(RESULT.read_text())
    assert set(built["vitals"]) == set(VITAL_NAMES)
    outside = {
        name: (
            built["vitals"][name]["synthetic"]["median"],
            built["vitals"][name]["reference"]["q25"],
            built["vitals"][name]["reference"]["q75"],
        )
        for name in realism.ACCEPTANCE_VITALS
        if not built["vitals"][name]["median_within_iqr"]
    }
    assert not outside, f"synthetic median outside set A's IQR (median, q25, q75): {outside}"
