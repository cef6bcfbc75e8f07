"""Sepsis features are causal, splits are by patient, and ``score-sepsis`` on PSV files the
model never saw prints the utility its output file gives back (committed PhysioNet subset)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vitalstream import physionet, sepsis, utility
from vitalstream.__main__ import main

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
