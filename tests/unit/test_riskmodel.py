"""Window risk model: the logit, missing values, labels, the patient split, the threshold, and
its place among the diagnostics (a window rule on the logit, applied by the reference)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core import riskspec
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.models import riskmodel
from vitalstream.reference.batch import compute


def _model(**changes) -> riskspec.WindowRiskModel:
    base = dict(
        name="risk_model",
        severity="medium",
        features=("hr_mean", "news2_total"),
        centre=(80.0, 2.0),
        scale=(10.0, 2.0),
        weights=(1.5, 0.5),
        intercept=-2.0,
        threshold=0.5,
    )
    return riskspec.WindowRiskModel(**{**base, **changes})


def test_logit_by_hand_and_missing_values_count_as_the_centre():
    frame = pd.DataFrame(
        {"hr_mean": [100.0, np.nan, None], "news2_total": pd.array([4, 2, None], dtype="Int64")}
    )
    logit = _model().logit_values(frame)
    # -2 + 1.5 * (100 - 80) / 10 + 0.5 * (4 - 2) / 2 = -2 + 3 + 0.5
    assert logit[0] == pytest.approx(1.5)
    assert logit[1] == pytest.approx(-2.0)  # hr missing (NaN), news2 at its centre
    assert logit[2] == pytest.approx(-2.0)  # both missing (null)
    assert _model().probability(frame)[0] == pytest.approx(1 / (1 + math.exp(-1.5)))


def test_the_alert_is_a_window_rule_on_the_logit():
    rule = _model(threshold=0.8).rule()
    assert (rule.name, rule.column, rule.op) == ("risk_model", riskspec.LOGIT_COLUMN, ">=")
    assert rule.threshold == pytest.approx(math.log(4))
    cut = rule.threshold
    assert list(rule.holds(np.array([math.nextafter(cut, -math.inf), cut]))) == [False, True]


@pytest.mark.parametrize(
    "changes",
    [
        {"scale": (0.0, 1.0)},
        {"weights": (1.0,)},
        {"threshold": 1.0},
        {"intercept": math.nan},
        {"severity": "urgent"},
    ],
)
def test_a_broken_model_is_refused(changes):
    with pytest.raises(ValueError):
        _model(**changes)


def test_json_round_trip(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(_model().to_json())
    assert riskspec.load(path) == _model()
    with pytest.raises(FileNotFoundError, match="snakemake"):
        riskspec.load(tmp_path / "missing.json")


def test_labels_start_horizon_minutes_before_onset():
    onset = pd.Timestamp("2026-01-01 01:00", tz="UTC")
    labels = pd.DataFrame(
        {
            "patient_id": ["a", "b"],
            "deteriorates": [True, False],
            "onset_time": [onset, pd.NaT],
        }
    )
    ends = [onset - pd.Timedelta(minutes=m) for m in (20, 10, 0, -5)]
    windows = pd.DataFrame({"patient_id": ["a"] * 4 + ["b"] * 4, "window_end": ends + ends})
    at_onset = riskmodel.labelled_windows(windows, labels, 0)["label"].tolist()
    assert at_onset == [False, False, True, True] + [False] * 4
    early = riskmodel.labelled_windows(windows, labels, 10)["label"].tolist()
    assert early == [False, True, True, True] + [False] * 4


def test_patients_split_disjoint_and_seeded():
    patients = [f"P{i:03d}" for i in range(50)] * 3
    fitting, holdout = riskmodel.split_patients(patients, 0.3, seed=1)
    assert not fitting & holdout and len(fitting | holdout) == 50 and len(holdout) == 15
    assert riskmodel.split_patients(patients, 0.3, seed=1) == (fitting, holdout)
    assert riskmodel.split_patients(patients, 0.3, seed=2) != (fitting, holdout)


def test_best_f1_threshold_by_hand():
    labels = np.array([1, 1, 0, 1, 0, 0])
    probability = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    # Cuts: 0.9 → F1 2/4; 0.8 → 4/5; 0.7 → 4/6; 0.6 → 6/7; 0.2 → 6/8; 0.1 → 6/9.
    cut, f1 = riskmodel.best_f1_threshold(labels, probability)
    assert (cut, f1) == (0.6, pytest.approx(6 / 7))
    # Ties: a cut keeps every window of equal probability together.
    cut, _ = riskmodel.best_f1_threshold(np.array([1, 0, 1]), np.array([0.5, 0.5, 0.1]))
    assert cut in (0.5, 0.1)


def _synthetic_windows(n_patients: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        sick = p % 3 == 0
        for w in range(30):
            late = sick and w >= 15
            rows.append(
                {
                    "patient_id": f"P{p:03d}",
                    "hr_mean": rng.normal(110 if late else 80, 8),
                    "news2_total": int(rng.integers(4, 8) if late else rng.integers(0, 3)),
                    "label": late,
                }
            )
    return pd.DataFrame(rows)


def test_fit_learns_the_signal_and_chooses_its_threshold_on_other_patients():
    table = _synthetic_windows()
    model = riskmodel.fit(table, features=("hr_mean", "news2_total"), seed=3)
    assert all(w > 0 for w in model.weights)
    assert 0 < model.threshold < 1
    assert model.training["fitting_patients"] + model.training["holdout_patients"] == 60
    assert model.training["holdout_window_f1"] > 0.9
    fired = model.rule().holds(model.logit_values(table))
    assert fired[table["label"]].mean() > 0.9 and fired[~table["label"]].mean() < 0.1


def test_fit_refuses_missing_columns_and_one_class():
    table = _synthetic_windows()
    with pytest.raises(ValueError, match="no column"):
        riskmodel.fit(table, features=("hr_mean", "lactate"))
    with pytest.raises(ValueError, match="both"):
        riskmodel.fit(table.assign(label=False), features=("hr_mean",))


def test_diagnostics_load_the_model_and_the_reference_applies_it(tmp_path):
    diagnostics = vsconfig.load_config()["diagnostics"]
    path = tmp_path / "model.json"
    path.write_text(_model(features=("hr_mean", "spo2_mean"), centre=(80.0, 96.0)).to_json())
    spec = DiagnosticsSpec.from_config({**diagnostics, "risk_model": str(path)})
    assert spec.risk_model is not None and spec.window_rules[-1].name == "risk_model"
    times = pd.date_range("2026-01-01", periods=180, freq="1s", tz="UTC")
    events = pd.DataFrame(
        {
            "patient_id": "P1",
            "device_id": "D1",
            "event_time": times,
            "hr": np.r_[np.full(120, 75.0), np.full(60, 130.0)],
            "spo2": 97.0,
            "sbp": 120.0,
            "dbp": 80.0,
            "map": 93.0,
            "rr": 16.0,
            "temp": 37.0,
            "o2_supplemental": False,
            "consciousness": "A",
        }
    )
    result = compute(events, spec, 60)
    logits = result["windows"][riskspec.LOGIT_COLUMN].to_numpy()
    assert logits == pytest.approx(spec.risk_model.logit_values(result["windows"]))
    fired = result["alerts"].query("rule == 'risk_model'")
    assert len(fired) == 1  # the third window only (hr 130)
    duplicate = tmp_path / "duplicate.json"
    duplicate.write_text(_model(name="tachycardia").to_json())
    with pytest.raises(ValueError, match="repeats"):
        DiagnosticsSpec.from_config({**diagnostics, "risk_model": str(duplicate)})


def test_paper_values_read_training_accuracy_and_latency_or_say_n_a():
    model = json.loads(_model().to_json()) | {
        "training": {
            "windows": 900,
            "fitting_patients": 7,
            "holdout_patients": 3,
            "holdout_fraction": 0.3,
            "holdout_window_f1": 0.8123,
        }
    }
    accuracy = {"groups": {"risk": {"precision": 0.5, "recall": 0.75, "f1": 0.6}}}
    metrics = {"window_alert_latency_ms_by_rule": {"risk_model": {"p50": 800.0, "count": 4}}}
    sources = {"model": "m.json", "accuracy": "a.json", "metrics": "x.json"}
    values = riskmodel.paper_values(model, accuracy, metrics, group="risk", sources=sources)
    assert values["RiskTrainPatients"]["value"] == 10
    assert values["RiskHoldoutPercent"]["value"] == pytest.approx(30)
    assert values["RiskStreamRecall"]["value"] == 0.75
    assert values["RiskLatencyPfifty"]["value"] == 800.0
    assert values["RiskLatencyPninetynine"]["value"] is None  # not measured: n/a
    assert values["RiskStreamDelay"]["source"] == "a.json"
    empty = riskmodel.paper_values(model, {}, {}, group="risk", sources=sources)
    assert empty["RiskStreamFOne"]["value"] is None and empty["RiskLatencyCount"]["value"] is None


def test_the_paper_names_the_feature_kinds_of_the_model_file():
    features = ["hr_mean", "rr_mean", "news2_total", "hr_min", "hr_max", "hr_n", "spo2_n"]
    text = riskmodel.describe_features(features)
    assert (
        text == "means (2 vitals), minima (1), maxima (1), reading counts (2) and the NEWS2 total"
    )
    assert riskmodel.describe_features(["news2_total"]) == "the NEWS2 total"
    assert (
        riskmodel.describe_features(["hr_mean", "lactate_last"])
        == "means (1 vital) and lactate last"
    )


def test_a_presence_indicator_comes_from_the_count_and_ignores_the_rate():
    frame = pd.DataFrame({"hr_n": [0, 1, 12, None], "hr_mean": [None, 80.0, 90.0, None]})
    assert riskspec.feature_values(frame, "hr_present").tolist() == [0.0, 1.0, 1.0, 0.0]
    assert (
        riskmodel.describe_features(["hr_present", "rr_present"])
        == "presence indicators (2 vitals)"
    )
