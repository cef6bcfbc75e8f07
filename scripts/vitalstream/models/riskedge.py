"""The window risk model trained on edge-reduced data: RQ2's bandwidth question asked of a
learned score (issue 7's "sampled" model; ``python -m vitalstream risk-edge``).

For each RQ2 gateway condition, the training cohort's readings pass through the same gateways
as RQ2's replays (vitalstream.data.gateway: coalesce over k s, or 1 reading in n per device), the
batch reference computes the windows of what arrives, and the risk model is fitted on the
fitting patients' windows with the deployed model's features and settings
(models.riskmodel.fit; same patient split, same seed). Both that model and the deployed one
(fitted on the full stream) are then scored on the held-out patients' windows of the same
reduced stream: what each would see behind those gateways.

Why the reference's windows and not a streaming run per condition: the job's windows equal the
reference's (the validation runs check it), and this is a training question; RQ2's runs answer
what the reduced stream does to the alerts themselves.

Not for: the model the job applies (models.riskmodel) or RQ2's runs (measure.robustness).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core import riskspec
from vitalstream.core.cliargs import (
    UsageError,
    json_file,
    json_object,
    parquet_input,
    require_keys,
    writable_file,
)
from vitalstream.core.settings import RiskModelSettings
from vitalstream.core.values import macro_value
from vitalstream.data.gateway import GatewaySpec, apply_gateway
from vitalstream.models import riskmodel


def _ranking(labels: np.ndarray, probability: np.ndarray) -> dict[str, float | None]:
    """AUROC and AUPRC of ``probability`` (None when the windows hold one class only)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if labels.all() or not labels.any():
        return {"auroc": None, "auprc": None}
    return {
        "auroc": float(roc_auc_score(labels, probability)),
        "auprc": float(average_precision_score(labels, probability)),
    }


def _f1(labels: np.ndarray, alert: np.ndarray) -> float | None:
    predicted, actual = int(alert.sum()), int(labels.sum())
    if predicted + actual == 0:
        return None
    return 2 * int((alert & labels).sum()) / (predicted + actual)


def condition_row(
    name: str,
    events: pd.DataFrame,
    labels: pd.DataFrame,
    gateway: Mapping[str, Any] | None,
    settings: RiskModelSettings,
    diagnostics: Any,
    deployed: riskspec.WindowRiskModel,
) -> dict[str, Any]:
    """One condition: reduce, window, fit on the fitting patients, score the held-out ones."""
    from vitalstream.reference.batch import compute

    reduced, report = apply_gateway(events, GatewaySpec.from_mapping(gateway))
    windows = compute(reduced, diagnostics, float(settings.window_s))["windows"]
    table = riskmodel.labelled_windows(windows, labels, settings.horizon_min)
    model = riskmodel.fit_from_settings(table, settings)
    _, holdout = riskmodel.split_patients(
        table["patient_id"].astype(str), settings.holdout_fraction, settings.seed
    )
    held = table[table["patient_id"].astype(str).isin(holdout)]
    y = held["label"].astype(bool).to_numpy()
    own, full = model.probability(held), deployed.probability(held)
    own_rank, full_rank = _ranking(y, own), _ranking(y, full)
    return {
        "condition": name,
        "gateway": report.spec,
        "readings_in": report.readings_in,
        "messages_out": report.messages_out,
        "message_share": report.messages_out / max(report.readings_in, 1),
        "holdout_windows": len(held),
        "holdout_positive_windows": int(y.sum()),
        "holdout_patients": len(holdout),
        "threshold": model.threshold,
        "auroc": own_rank["auroc"],
        "auprc": own_rank["auprc"],
        "f1": _f1(y, own >= model.threshold),
        "deployed_auroc": full_rank["auroc"],
        "deployed_auprc": full_rank["auprc"],
        "deployed_f1": _f1(y, full >= deployed.threshold),
    }


def study(
    events: pd.DataFrame,
    labels: pd.DataFrame,
    conditions: Mapping[str, Mapping[str, Any] | None],
    settings: RiskModelSettings,
    diagnostics: Any,
    deployed: riskspec.WindowRiskModel,
) -> list[dict[str, Any]]:
    """Every condition's row, in the order given."""
    return [
        condition_row(name, events, labels, gateway, settings, diagnostics, deployed)
        for name, gateway in conditions.items()
    ]


# --------------------------------------------------------------------------- the paper


def _cell(value: Any, decimals: int) -> str:
    return "n/a" if value is None else f"{value:.{decimals}f}"


def latex_table(rows: list[dict[str, Any]]) -> str:
    """The paper's table: one row per condition (booktabs; the caption is the paper's)."""
    lines = [
        r"\begin{tabular}{lrrrrrr}",
        r"\toprule",
        r" & & \multicolumn{3}{c}{trained on the reduced stream} "
        r"& \multicolumn{2}{c}{trained on the full stream} \\",
        r"\cmidrule(lr){3-5}\cmidrule(lr){6-7}",
        r"condition & messages (\%) & AUROC & AUPRC & F1 & AUROC & F1 \\",
        r"\midrule",
    ]
    for row in rows:
        name = str(row["condition"]).replace("_", r"\_")
        lines.append(
            " & ".join(
                [
                    name,
                    f"{100 * row['message_share']:.0f}",
                    _cell(row["auroc"], 3),
                    _cell(row["auprc"], 3),
                    _cell(row["f1"], 2),
                    _cell(row["deployed_auroc"], 3),
                    _cell(row["deployed_f1"], 2),
                ]
            )
            + r" \\"
        )
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def paper_values(rows: list[dict[str, Any]], source: str) -> dict[str, dict[str, Any]]:
    """Macro values: the conditions, the worst AUROC of a model trained on reduced data and the
    condition it belongs to, and the full-data (raw) condition's AUROC."""

    def value(raw: Any, decimals: int | None) -> dict[str, Any]:
        return macro_value(raw, decimals, source)

    scored = [r for r in rows if r["auroc"] is not None]
    worst = min(scored, key=lambda r: r["auroc"]) if scored else None
    raw = next((r for r in rows if r["gateway"].get("mode") == "forward"), None)
    # Where the full-stream model's alerts suffer most (F1 at its own threshold), and what the
    # model refitted on that condition's reduced stream reaches there.
    with_f1 = [r for r in rows if r["deployed_f1"] is not None]
    drop = min(with_f1, key=lambda r: r["deployed_f1"]) if with_f1 else None
    return {
        "RiskEdgeRawFOne": value(raw["f1"] if raw else None, 3),
        "RiskEdgeDeployedWorstFOne": value(drop["deployed_f1"] if drop else None, 3),
        "RiskEdgeDeployedWorstCondition": value(drop["condition"] if drop else None, None),
        "RiskEdgeRefitFOneThere": value(drop["f1"] if drop else None, 3),
        "RiskEdgeConditions": value(len(rows), 0),
        "RiskEdgeHoldoutPatients": value(rows[0]["holdout_patients"] if rows else None, 0),
        "RiskEdgeRawAuroc": value(raw["auroc"] if raw else None, 3),
        "RiskEdgeWorstAuroc": value(worst["auroc"] if worst else None, 3),
        "RiskEdgeWorstCondition": value(worst["condition"] if worst else None, None),
        "RiskEdgeWorstMessagePercent": value(100 * worst["message_share"] if worst else None, 0),
    }


# --------------------------------------------------------------------------- CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "risk-edge", help="the window risk model trained on edge-reduced data (RQ2 gateways)"
    )
    parser.add_argument(
        "--events", type=parquet_input, required=True, help="training cohort events"
    )
    parser.add_argument(
        "--labels", type=parquet_input, required=True, help="training cohort labels"
    )
    parser.add_argument("--model", type=json_file, required=True, help="the deployed model.json")
    parser.add_argument(
        "--config-json",
        type=json_object,
        required=True,
        help="diagnostics, risk_model and conditions: JSON, or @FILE",
    )
    parser.add_argument("--out", type=writable_file, required=True, help="edge.json to write")
    parser.set_defaults(func=_cli_study)
    table = subparsers.add_parser(
        "risk-edge-table", help="the paper's table and macro values from risk-edge's edge.json"
    )
    table.add_argument("--study", type=json_file, required=True)
    table.add_argument("--table", type=writable_file, required=True)
    table.add_argument("--values", type=writable_file, required=True)
    table.set_defaults(func=_cli_table)


def _cli_study(args: argparse.Namespace) -> int:
    from vitalstream.core.diagnostics import DiagnosticsSpec

    config = args.config_json
    keys = ("diagnostics", "risk_model", "conditions")
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise UsageError(f"argument --config-json: unknown keys {unknown}")
    require_keys("--config-json", config, keys)
    diagnostics = {k: v for k, v in config["diagnostics"].items() if k != "risk_model"}
    # [[name, gateway], ...] keeps the experiment's order (a JSON object would be sorted).
    conditions = config["conditions"]
    if not isinstance(conditions, dict):
        conditions = {name: gateway for name, gateway in conditions}
    rows = study(
        pd.read_parquet(args.events),
        pd.read_parquet(args.labels),
        conditions,
        RiskModelSettings.from_config(config["risk_model"]),
        DiagnosticsSpec.from_config(diagnostics),
        riskspec.load(args.model),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"conditions": rows}, indent=2) + "\n")
    for row in rows:
        print(json.dumps({k: row[k] for k in ("condition", "message_share", "auroc", "f1")}))
    return 0


def _cli_table(args: argparse.Namespace) -> int:
    rows = json.loads(args.study.read_text())["conditions"]
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(latex_table(rows))
    values = paper_values(rows, f"{args.study}")
    args.values.write_text(json.dumps(values, indent=2) + "\n")
    return 0
