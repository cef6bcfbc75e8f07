"""Sepsis features are causal, splits are by patient, and ``score-sepsis`` on PSV files the
model never saw prints the utility its output file gives back (committed PhysioNet subset)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vitalstream.__main__ import main
from vitalstream.data import physionet
from vitalstream.models import sepsis, utility

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "fixtures" / "physionet"
PSV_DIR = FIXTURE / "sepsis2019" / "training_setA"
PARAMS = {"max_iter": 40, "learning_rate": 0.1, "random_state": 0}


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return physionet.read_hourly(PSV_DIR)


def test_features_of_an_hour_use_only_that_hour_and_earlier(hourly):
    patient = hourly[hourly["patient_id"] == hourly["patient_id"].iloc[0]]
    full = sepsis.features(patient).drop(columns=[sepsis.LABEL])
    for cut in (1, 5, len(patient) // 2):
        truncated = sepsis.features(patient.iloc[:cut]).drop(columns=[sepsis.LABEL])
        pd.testing.assert_frame_equal(truncated, full.iloc[:cut].reset_index(drop=True))


def test_the_label_is_never_a_feature(hourly):
    table = sepsis.features(hourly.head(500))
    assert sepsis.LABEL in table and sepsis.LABEL not in sepsis.feature_columns(table)


def test_folds_split_patients_not_rows(hourly):
    table = sepsis.features(hourly)
    scored, cv = sepsis.cross_validate(table, PARAMS, folds=3, seed=1)
    assert scored.groupby("patient_id")["fold"].nunique().max() == 1
    assert len(cv["thresholds"]) == 3 and len(scored) == len(table)
    assert cv["utility"] == pytest.approx(utility.score_frame(scored, hour="ICULOS").normalised)


def test_score_sepsis_on_unseen_files_prints_the_utility_of_its_output(hourly, tmp_path):
    patients = sorted(hourly["patient_id"].unique())
    seen, unseen = patients[:200], patients[200:]
    sepsis.train(hourly[hourly["patient_id"].isin(seen)], tmp_path / "model", PARAMS, folds=3)
    psv_dir = tmp_path / "unseen"
    psv_dir.mkdir()
    for patient in unseen:
        shutil.copy(PSV_DIR / f"{patient}.psv", psv_dir)
    out = tmp_path / "scored.parquet"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            ["score-sepsis", "--psv-dir", str(psv_dir), "--model", str(tmp_path / "model"),
             "--out", str(out)]
        )  # fmt: skip
    assert code == 0
    scores = json.loads(printed.getvalue())
    scored = pd.read_parquet(out)
    assert set(scored["patient_id"]) == set(unseen)
    assert list(scored.columns[:5]) == [
        "patient_id",
        "iculos",
        "label",
        "probability",
        "prediction",
    ]
    assert scores["utility"] == pytest.approx(utility.score_frame(scored).normalised)
    assert scores["hours"] == len(scored) and np.isfinite(scores["auroc"])


def test_a_sample_keeps_whole_stays_and_is_seeded(hourly):
    ids = hourly["patient_id"].unique()
    sample = sepsis.sample_stays(hourly, len(ids) - 1, seed=4)
    assert sample["patient_id"].nunique() == len(ids) - 1
    for patient, stay in sample.groupby("patient_id"):
        assert len(stay) == (hourly["patient_id"] == patient).sum()  # whole stays only
    again = sepsis.sample_stays(hourly, len(ids) - 1, seed=4)
    assert set(again["patient_id"]) == set(sample["patient_id"])
    assert sepsis.sample_stays(hourly, None, seed=4) is hourly
    assert sepsis.sample_stays(hourly, len(ids) + 5, seed=4) is hourly


def test_folds_are_scored_alone_and_their_range_reaches_the_paper(hourly):
    table = sepsis.features(hourly)
    scored, cv = sepsis.cross_validate(table, PARAMS, folds=3, seed=1)
    assert len(cv["per_fold"]) == 3
    for k, fold in enumerate(cv["per_fold"]):
        alone = scored[scored["fold"] == k]
        assert fold["hours"] == len(alone)
        assert fold["utility"] == pytest.approx(
            utility.score_frame(alone, hour="ICULOS").normalised
        )
    card = {"cv": cv, "features": ["a", "b"], "seconds": 90.0}
    values = sepsis.paper_values(card, "model.json: cv")
    utilities = [f["utility"] for f in cv["per_fold"]]
    assert values["SepsisCvUtility"]["value"] == cv["utility"]
    assert values["SepsisCvUtilityLow"]["value"] == min(utilities)
    assert values["SepsisCvUtilityHigh"]["value"] == max(utilities)
    assert values["SepsisCvPatients"]["value"] == hourly["patient_id"].nunique()
    assert values["SepsisTrainMinutes"]["value"] == pytest.approx(1.5)
    table_tex = sepsis.latex_table(card)
    assert f"{cv['utility']:.3f} ({min(utilities):.3f}--{max(utilities):.3f})" in table_tex
    assert "0.360" in table_tex and r"\toprule" in table_tex


def test_a_card_without_cv_gives_na_not_a_crash():
    values = sepsis.paper_values({}, "model.json: cv")
    assert values["SepsisCvUtility"]["value"] == "n/a"
    assert values["SepsisCvUtilityLow"]["value"] == "n/a"
    assert "n/a" in sepsis.latex_table({})


def test_the_paper_says_when_the_model_saw_a_sample_of_the_stays(hourly, tmp_path):
    total = hourly["patient_id"].nunique()
    card = sepsis.train(hourly, tmp_path / "model", PARAMS, folds=3, max_patients=total - 20)
    assert card.available_patients == total and card.trained_patients == total - 20
    values = sepsis.paper_values(json.loads((tmp_path / "model" / "model.json").read_text()), "")
    assert values["SepsisCvScope"]["value"] == "a seeded sample of"
    whole = sepsis.train(hourly, tmp_path / "whole", PARAMS, folds=3)
    assert sepsis.paper_values(asdict(whole), "")["SepsisCvScope"]["value"] == "all"
