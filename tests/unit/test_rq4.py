"""RQ4 model comparison on small synthetic hourly stays: splits never share a patient, the stream
scores every hour before it trains on it, the rule baselines are vitalstream.core.scores', and the
evaluation's numbers agree with scikit-learn and the utility module (vitalstream.models.rq4,
vitalstream.models.riskeval)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from vitalstream.core import config, scores
from vitalstream.models import riskeval, rq4, sepsis, streamlearn, utility

COLUMNS = (*sepsis.VITALS, *sepsis.LABS, "Age", "Gender", "Unit1", "Unit2", "HospAdmTime")


def synthetic_hourly(patients: int = 60, seed: int = 0) -> pd.DataFrame:
    """Stays of 8–40 hours; a third septic, whose heart and breathing rates climb before the
    labels turn positive; about a quarter of the vitals missing."""
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(patients):
        hours = int(rng.integers(8, 41))
        septic = p % 3 == 0
        first_label = int(rng.integers(hours // 2, hours)) if septic else hours
        t = np.arange(hours)
        drift = np.clip(t - (first_label - 4), 0, None) if septic else np.zeros(hours)
        frame = pd.DataFrame({c: np.full(hours, np.nan) for c in COLUMNS})
        frame["HR"] = 80 + 4 * drift + rng.normal(0, 5, hours)
        frame["Resp"] = 16 + 1.5 * drift + rng.normal(0, 2, hours)
        frame["O2Sat"] = 97 - 0.5 * drift + rng.normal(0, 1, hours)
        frame["SBP"] = 120 - 3 * drift + rng.normal(0, 8, hours)
        frame["DBP"] = frame["SBP"] - 40
        frame["MAP"] = frame["SBP"] - 30
        frame["Temp"] = 37 + 0.1 * drift + rng.normal(0, 0.3, hours)
        frame["FiO2"] = np.where(rng.random(hours) < 0.2, 0.4, np.nan)
        for vital in sepsis.VITALS:
            frame.loc[rng.random(hours) < 0.25, vital] = np.nan
        frame["Age"], frame["Gender"] = 60.0, p % 2
        frame["ICULOS"] = t + 1
        frame["SepsisLabel"] = (t >= first_label).astype(int)
        frame.insert(0, "patient_id", f"p{p:05d}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return sepsis.features(synthetic_hourly())


@pytest.fixture(scope="module")
def spec() -> scores.ScoreSpec:
    return scores.score_spec_from_config(config.load_config()["diagnostics"]["scores"])


def test_sets_never_share_a_patient_and_respect_the_split_hour(table):
    stays, split_h = rq4.assign_sets(rq4.schedule(table, 0.5, seed=3), 0.5, 0.25)
    assert stays.index.is_unique and set(stays["set"]) == set(rq4.SETS)
    history = stays[stays["set"].isin(["train", "validation"])]
    assert (history["discharge_h"] < split_h).all()
    assert (stays.loc[stays["set"] == "test", "admission_h"] >= split_h).all()
    straddle = stays[stays["set"] == "straddle"]
    assert ((straddle["admission_h"] < split_h) & (straddle["discharge_h"] >= split_h)).all()
    # Validation is the last of history by arrival.
    assert history.loc[history["set"] == "validation", "arrival"].min() > (
        history.loc[history["set"] == "train", "arrival"].max()
    )
    rows = rq4.on_clock(table, stays)
    assert rows.groupby("patient_id")["set"].nunique().max() == 1


def test_the_stream_scores_every_hour_before_it_trains_on_it(table):
    stays, _ = rq4.assign_sets(rq4.schedule(table, 0.5, seed=1), 0.5, 0.2)
    rows = rq4.on_clock(table, stays)
    columns = [c for c in sepsis.feature_columns(table) if rows[c].nunique() >= 2]
    result = streamlearn.replay(
        rq4.numeric_matrix(rows, columns),
        rows[sepsis.LABEL].to_numpy(),
        rows["clock_h"].to_numpy(),
        rows["discharge_h"].to_numpy(),
        {"alpha": 1e-4, "random_state": 0},
    )
    assert (result.trained_in > 0).all()  # every stay is discharged within the replay
    assert (result.scored_after >= 0).all()
    assert (result.scored_after < result.trained_in).all()
    # Rows scored before the first update have no probability, all later ones do.
    assert np.isnan(result.probability[result.scored_after == 0]).all()
    assert np.isfinite(result.probability[result.scored_after > 0]).all()
    assert result.updates == stays["discharge_h"].nunique()


def test_a_row_is_trained_on_when_its_stay_is_discharged(table):
    stays, _ = rq4.assign_sets(rq4.schedule(table, 0.5, seed=2), 0.5, 0.2)
    rows = rq4.on_clock(table, stays)
    columns = ["HR_last", "Resp_last"]
    result = streamlearn.replay(
        rq4.numeric_matrix(rows, columns),
        rows[sepsis.LABEL].to_numpy(),
        rows["clock_h"].to_numpy(),
        rows["discharge_h"].to_numpy(),
        {"random_state": 0},
    )
    per_stay = pd.Series(result.trained_in).groupby(rows["patient_id"].to_numpy()).nunique()
    assert (per_stay == 1).all()


def test_rule_baselines_are_the_scores_of_the_carried_forward_vitals(table, spec):
    rules = rq4.rule_scores(table, spec)
    windows = pd.DataFrame(
        {
            "hr_mean": table["HR_last"],
            "rr_mean": table["Resp_last"],
            "spo2_mean": table["O2Sat_last"],
            "sbp_mean": table["SBP_last"],
            "temp_mean": table["Temp_last"],
            "o2_any": pd.array(
                [pd.NA if np.isnan(f) else f > 0.21 for f in table["FiO2_last"]], dtype="boolean"
            ),
            "consciousness_worst": pd.array([pd.NA] * len(table), dtype="string"),
        }
    )
    expected = scores.score_frame(windows, spec)
    total = expected["news2_total"].to_numpy(dtype=float)
    np.testing.assert_array_equal(rules["news2_ge5"][0], total)
    np.testing.assert_array_equal(rules["news2_ge5"][1], total >= 5)
    np.testing.assert_array_equal(rules["news2_ge7"][1], total >= 7)
    np.testing.assert_array_equal(rules["qsofa_ge2"][0], expected["qsofa"].to_numpy(dtype=float))
    np.testing.assert_array_equal(
        rules["qsofa_ge2"][1], expected["qsofa_positive"].to_numpy(dtype=bool)
    )
    assert not expected["news2_complete"].any()  # consciousness is never charted
    assert rules["news2_ge5"][1].any() and not rules["news2_ge5"][1].all()


def test_an_hour_without_a_new_reading_keeps_the_last_one(spec):
    hourly = synthetic_hourly(patients=1, seed=5)
    hourly.loc[:, "HR"] = np.nan
    hourly.loc[0, "HR"] = 135.0  # NEWS2 pulse ≥ 131: 3 points, carried through the stay
    news2 = scores.score_frame(rq4.rule_windows(sepsis.features(hourly)), spec)["news2_hr"]
    assert (news2.to_numpy(dtype=float) == 3).all()


def weighted_case(seed: int = 0, n: int = 400) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.2).astype(int)
    risk = np.round(rng.random(n) + labels * 0.5, 1)  # rounded: ties
    weights = rng.integers(0, 4, n).astype(float)
    return labels, risk, weights


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_auroc_and_auprc_equal_scikit_learn(seed):
    labels, risk, weights = weighted_case(seed)
    levels = riskeval.risk_levels(risk)
    assert riskeval.auroc(levels, labels, weights) == pytest.approx(
        roc_auc_score(labels, risk, sample_weight=weights)
    )
    assert riskeval.auprc(levels, labels, weights) == pytest.approx(
        average_precision_score(labels, risk, sample_weight=weights)
    )


def test_top_k_shares_tied_places_evenly():
    risk = np.array([5.0, 3.0, 3.0, 1.0, 2.0, 2.0])
    clock = np.array([0, 0, 0, 0, 1, 1])
    share = riskeval.top_k_share(risk, clock, k=2)
    np.testing.assert_allclose(share, [1.0, 0.5, 0.5, 0.0, 1.0, 1.0])
    assert share[clock == 0].sum() == 2


def evaluation_case(seed: int = 0) -> tuple[riskeval.Hours, list[riskeval.Scorer], pd.DataFrame]:
    hourly = synthetic_hourly(patients=80, seed=seed)
    frame = hourly[["patient_id", "ICULOS", "SepsisLabel"]].rename(columns={"SepsisLabel": "label"})
    frame["clock_h"] = frame["ICULOS"] + frame["patient_id"].str[1:].astype(int) % 7
    rng = np.random.default_rng(seed)
    probability = np.clip(0.1 + 0.5 * frame["label"] + rng.normal(0, 0.2, len(frame)), 0, 1)
    frame["prediction"] = (probability >= 0.4).astype(int)
    hours = riskeval.Hours.from_frame(frame)
    scorers = [
        riskeval.Scorer("model", probability.to_numpy(), frame["prediction"].to_numpy(), True),
        riskeval.Scorer("rule", np.round(probability.to_numpy() * 4), probability >= 0.5, False),
    ]
    return hours, scorers, frame


def test_bootstrap_intervals_contain_the_point_estimates():
    hours, scorers, _ = evaluation_case()
    result = riskeval.evaluate(hours, scorers, k=3, replicates=50, seed=0)
    for name, metrics in result.items():
        for metric, entry in metrics.items():
            if name == "rule" and metric == "brier":
                assert np.isnan(entry["value"])  # a score is not a probability
                continue
            assert entry["ci_low"] <= entry["value"] <= entry["ci_high"], (name, metric)
            assert entry["ci_low"] < entry["ci_high"], (name, metric)


def test_bootstrap_is_seeded():
    hours, scorers, _ = evaluation_case()
    first = riskeval.evaluate(hours, scorers, k=3, replicates=20, seed=7)
    again = riskeval.evaluate(hours, scorers, k=3, replicates=20, seed=7)
    other = riskeval.evaluate(hours, scorers, k=3, replicates=20, seed=8)
    assert repr(first) == repr(again) != repr(other)


def test_point_estimates_agree_with_their_definitions():
    hours, scorers, frame = evaluation_case(seed=3)
    model = riskeval.evaluate(hours, scorers, k=3, replicates=0, seed=0)["model"]
    labels, alert = frame["label"].to_numpy(), frame["prediction"].to_numpy()
    assert model["utility"]["value"] == pytest.approx(
        utility.score_frame(frame, hour="ICULOS").normalised
    )
    assert model["auroc"]["value"] == pytest.approx(roc_auc_score(labels, scorers[0].risk))
    tp = (labels & alert).sum()
    assert model["f1"]["value"] == pytest.approx(2 * tp / (labels.sum() + alert.sum()))
    assert model["alert_rate"]["value"] == pytest.approx(alert.mean())
    assert model["brier"]["value"] == pytest.approx(((scorers[0].risk - labels) ** 2).mean())


def test_hours_must_be_sorted_by_patient_and_stay_hour():
    frame = pd.DataFrame(
        {"patient_id": ["a", "b", "a"], "ICULOS": [1, 1, 2], "clock_h": [1, 1, 2], "label": 0}
    )
    with pytest.raises(ValueError, match="sorted"):
        riskeval.Hours.from_frame(frame)


def test_reliability_bins_hold_equal_counts_and_the_observed_share():
    probability = np.linspace(0, 1, 100)
    labels = (probability > 0.5).astype(int)
    curve = riskeval.reliability(probability, labels, bins=4)
    assert curve["hours"].tolist() == [25, 25, 25, 25]
    assert curve["observed"].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_unknown_settings_are_errors():
    with pytest.raises(ValueError, match="unknown keys"):
        rq4.Settings.from_mapping({"admission_per_hour": 4})
