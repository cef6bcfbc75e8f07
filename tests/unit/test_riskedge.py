"""The risk model trained behind edge gateways: the forwarding gateway reproduces the deployed
model exactly, reduction shows in the message share, the paper's table and values follow the
rows (vitalstream.models.riskedge)."""

from __future__ import annotations

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.diagnostics import DiagnosticsSpec
from vitalstream.core.settings import RiskModelSettings
from vitalstream.data.cohort import CohortParams, generate_cohort
from vitalstream.models import riskedge, riskmodel
from vitalstream.reference.batch import compute

CONDITIONS = {
    "raw": {"mode": "forward", "group_size": 100},
    "coalesce30": {"mode": "coalesce", "seconds": 30, "group_size": 100},
    "sample5": {"mode": "sample", "every": 5, "group_size": 100},
}


@pytest.fixture(scope="module")
def study():
    config = vsconfig.load_config()
    settings = RiskModelSettings.from_config(config["risk_model"])
    diagnostics = DiagnosticsSpec.from_config(
        {k: v for k, v in config["diagnostics"].items() if k != "risk_model"}
    )
    cohort = generate_cohort(
        CohortParams(patients=30, hours=0.5, seed=7, prevalence=0.5, ramp_minutes=5)
    )
    windows = compute(cohort.events, diagnostics, float(settings.window_s))["windows"]
    table = riskmodel.labelled_windows(windows, cohort.labels, settings.horizon_min)
    deployed = riskmodel.fit_from_settings(table, settings)
    rows = riskedge.study(cohort.events, cohort.labels, CONDITIONS, settings, diagnostics, deployed)
    return rows, deployed


def test_the_forwarding_gateway_refits_the_deployed_model(study):
    rows, deployed = study
    raw = rows[0]
    assert raw["condition"] == "raw" and raw["message_share"] == 1.0
    assert raw["threshold"] == deployed.threshold
    assert raw["auroc"] == raw["deployed_auroc"] and raw["f1"] == raw["deployed_f1"]
    assert raw["auroc"] is not None and 0.5 < raw["auroc"] <= 1.0


def test_reduction_shows_in_the_message_share_and_every_row_is_scored(study):
    rows, _ = study
    shares = {r["condition"]: r["message_share"] for r in rows}
    assert shares["sample5"] == pytest.approx(0.2, abs=0.02)
    assert shares["coalesce30"] < 0.1
    for row in rows:
        assert row["holdout_patients"] == rows[0]["holdout_patients"]
        assert row["holdout_windows"] > 0 and row["holdout_positive_windows"] > 0
        for key in ("auroc", "auprc", "deployed_auroc"):
            assert row[key] is None or 0.0 <= row[key] <= 1.0


def test_the_table_and_values_follow_the_rows(study):
    rows, _ = study
    tex = riskedge.latex_table(rows)
    assert tex.count(r" \\") == len(rows) + 2  # two header lines
    assert "coalesce30" in tex and "sample5" in tex
    values = riskedge.paper_values(rows, "edge.json")
    worst = min(rows, key=lambda r: r["auroc"])
    assert values["RiskEdgeWorstCondition"]["value"] == worst["condition"]
    assert values["RiskEdgeWorstAuroc"]["value"] == worst["auroc"]
    assert values["RiskEdgeRawAuroc"]["value"] == rows[0]["auroc"]
    assert values["RiskEdgeConditions"]["value"] == 3
    drop = min(rows, key=lambda r: r["deployed_f1"])
    assert values["RiskEdgeDeployedWorstCondition"]["value"] == drop["condition"]
    assert values["RiskEdgeDeployedWorstFOne"]["value"] == drop["deployed_f1"]
    assert values["RiskEdgeRefitFOneThere"]["value"] == drop["f1"]
    assert values["RiskEdgeRawFOne"]["value"] == rows[0]["f1"]
