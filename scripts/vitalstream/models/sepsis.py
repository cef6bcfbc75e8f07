"""Early sepsis prediction on PhysioNet/CinC 2019 data: causal hourly features, a model
cross-validated by patient, and ``score-sepsis`` for any directory of challenge PSV files.

Leakage rules (the paper states them too):

* features are causal: an hour's features use that hour and earlier hours of the same stay
  only (forward fill, trailing windows, counts so far); nothing looks at later rows or at
  other patients;
* ``SepsisLabel`` is never a feature, and neither is anything derived from it;
* splits are by patient, never by row: all hours of a stay are in one fold;
* the alarm threshold of fold k is chosen on the out-of-fold predictions of the *other*
  folds (a scalar fitted on other patients' labels), then applied to fold k.

The model is scikit-learn's histogram gradient boosting (it takes missing values as they
are), with positive hours weighted up to the share of negative ones. Predictions are 0/1 at
the threshold that maximises the normalised utility (vitalstream.models.utility).

Not for: the utility itself (vitalstream.models.utility) or the streaming job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core.cliargs import (
    existing_dir,
    int_at_least,
    json_file,
    json_object,
    nonnegative_int,
    parquet_input,
    positive_int,
    writable_dir,
    writable_file,
)
from vitalstream.core.progress import emit as emit_progress
from vitalstream.core.values import macro_value
from vitalstream.models import utility

# Bedside vitals: trailing statistics and deltas are computed for these.
VITALS = ("HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp")
# Laboratory values: last value carried forward, hours since it was measured.
LABS = (
    "EtCO2", "BaseExcess", "HCO3", "FiO2", "pH", "PaCO2", "SaO2", "AST", "BUN", "Alkalinephos",
    "Calcium", "Chloride", "Creatinine", "Bilirubin_direct", "Glucose", "Lactate", "Magnesium",
    "Phosphate", "Potassium", "Bilirubin_total", "TroponinI", "Hct", "Hgb", "PTT", "WBC",
    "Fibrinogen", "Platelets",
)  # fmt: skip
STATIC = ("Age", "Gender", "Unit1", "Unit2", "HospAdmTime", "ICULOS")
LABEL = "SepsisLabel"
WINDOW_H = 6
DEFAULT_MODEL_DIR = Path("results/models/sepsis2019")
MODEL_FILE = "model.joblib"
CARD_FILE = "model.json"


def features(hourly: pd.DataFrame) -> pd.DataFrame:
    """Causal features of every patient-hour (rows in the order given; sorted by patient and
    ICULOS first). See the module docstring for what "causal" guarantees."""
    frame = hourly.sort_values(["patient_id", "ICULOS"], kind="stable").reset_index(drop=True)
    by = frame.groupby("patient_id", sort=False)
    out: dict[str, Any] = {"patient_id": frame["patient_id"], "ICULOS": frame["ICULOS"]}
    for name in STATIC:
        out[name] = frame[name]
    hour = by.cumcount()
    for name in (*VITALS, *LABS):
        measured = frame[name].notna()
        filled = by[name].ffill()
        out[f"{name}_last"] = filled
        out[f"{name}_measured"] = measured.astype("int8")
        # Hours since the last measurement (NaN before the first): a missingness signal.
        last_hour = pd.Series(np.where(measured, hour, np.nan)).groupby(frame["patient_id"]).ffill()
        out[f"{name}_age_h"] = hour - last_hour
        out[f"{name}_count"] = measured.astype("int32").groupby(frame["patient_id"]).cumsum()
    for name in VITALS:
        rolling = by[name].rolling(WINDOW_H, min_periods=1)
        out[f"{name}_mean{WINDOW_H}"] = rolling.mean().reset_index(level=0, drop=True)
        out[f"{name}_min{WINDOW_H}"] = rolling.min().reset_index(level=0, drop=True)
        out[f"{name}_max{WINDOW_H}"] = rolling.max().reset_index(level=0, drop=True)
        out[f"{name}_std{WINDOW_H}"] = rolling.std().reset_index(level=0, drop=True)
        filled = out[f"{name}_last"]
        out[f"{name}_delta{WINDOW_H}"] = filled - filled.groupby(frame["patient_id"]).shift(
            WINDOW_H
        )
    # Derived bedside indices (shock index, pulse pressure) on the carried-forward values.
    out["shock_index"] = out["HR_last"] / out["SBP_last"]
    out["pulse_pressure"] = out["SBP_last"] - out["DBP_last"]
    result = pd.DataFrame(out)
    if LABEL in frame:
        result[LABEL] = frame[LABEL].to_numpy()
    return result


def feature_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in ("patient_id", LABEL)]


@dataclass
class ModelCard:
    """What a saved model is and how well it did (``model.json`` beside ``model.joblib``)."""

    threshold: float
    features: list[str]
    trained_patients: int
    trained_hours: int
    params: dict[str, Any]
    cv: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # Stays in the data given, before a --max-patients sample (0: not recorded).
    available_patients: int = 0


def _model(params: dict[str, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**params)


def _weights(labels: np.ndarray) -> np.ndarray:
    positive = labels == 1
    ratio = (~positive).sum() / max(positive.sum(), 1)
    return np.where(positive, ratio, 1.0)


def fit(table: pd.DataFrame, params: dict[str, Any]) -> tuple[Any, list[str]]:
    """The model fitted on ``table``, and the feature columns it uses: those with at least
    two distinct values here (a lab never measured in these stays carries no information,
    and the binning of scikit-learn 1.9 rejects an all-missing column)."""
    labels = table[LABEL].to_numpy()
    columns = [c for c in feature_columns(table) if table[c].nunique(dropna=True) >= 2]
    model = _model(params)
    model.fit(table[columns], labels, sample_weight=_weights(labels))
    return model, columns


def best_threshold(table: pd.DataFrame, probability: np.ndarray, grid: int = 50) -> float:
    """The alarm threshold with the highest normalised utility on these rows (quantiles of
    the probabilities as candidates)."""
    candidates = np.unique(np.quantile(probability, np.linspace(0.5, 0.995, grid)))
    hours = utility.hour_utilities(_scored(table, probability, 0.5), hour="ICULOS")
    scores = [hours.score((probability >= t).astype(int)).normalised for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def _scored(table: pd.DataFrame, probability: np.ndarray, threshold: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": table["patient_id"].to_numpy(),
            "ICULOS": table["ICULOS"].to_numpy(),
            "label": table[LABEL].to_numpy(),
            "probability": probability,
            "prediction": (probability >= threshold).astype(int),
        }
    )


def evaluate(scored: pd.DataFrame) -> dict[str, float]:
    """Normalised utility, hour-level AUROC and AUPRC of one table of scored hours."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = scored["label"].to_numpy()
    both = len(np.unique(labels)) == 2
    return {
        "utility": utility.score_frame(scored, hour="ICULOS").normalised,
        "auroc": float(roc_auc_score(labels, scored["probability"])) if both else float("nan"),
        "auprc": (
            float(average_precision_score(labels, scored["probability"])) if both else float("nan")
        ),
        "alarm_rate": float(scored["prediction"].mean()),
        "hours": len(scored),
        "patients": int(scored["patient_id"].nunique()),
        "septic_patients": int(scored.loc[scored["label"] == 1, "patient_id"].nunique()),
    }


def cross_validate(
    table: pd.DataFrame, params: dict[str, Any], folds: int = 5, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Out-of-fold scored hours (folds by patient) and their scores; thresholds as in the
    module docstring."""
    rng = np.random.default_rng(seed)
    patients = table["patient_id"].unique()
    fold_of = dict(zip(rng.permutation(patients), np.arange(len(patients)) % folds, strict=True))
    fold = table["patient_id"].map(fold_of).to_numpy()
    probability = np.zeros(len(table))
    for k in range(folds):
        # `vitalstream status` shows the fold (vitalstream.core.progress); a fit takes minutes.
        emit_progress("cv", done=k, total=folds, unit="folds", fold=k + 1)
        model, columns = fit(table.loc[fold != k], params)
        test = fold == k
        probability[test] = model.predict_proba(table.loc[test, columns])[:, 1]
    emit_progress("cv", done=folds, total=folds, unit="folds")
    predictions = np.zeros(len(table), dtype=int)
    thresholds = []
    for k in range(folds):
        others = fold != k
        threshold = best_threshold(table.loc[others], probability[others])
        thresholds.append(threshold)
        predictions[fold == k] = (probability[fold == k] >= threshold).astype(int)
    scored = _scored(table, probability, 0.5).assign(prediction=predictions, fold=fold)
    # Each fold scored on its own too: the spread over folds is the paper's uncertainty band.
    per_fold = [evaluate(scored[fold == k]) for k in range(folds)]
    return scored, {
        "folds": folds,
        "seed": seed,
        "thresholds": thresholds,
        **evaluate(scored),
        "per_fold": per_fold,
    }


def sample_stays(hourly: pd.DataFrame, max_patients: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of whole stays (the quick profile); all of them when ``max_patients`` is
    None or not smaller than their number."""
    ids = np.sort(hourly["patient_id"].unique())
    if max_patients is None or max_patients >= len(ids):
        return hourly
    chosen = np.random.default_rng(seed).permutation(ids)[:max_patients]
    return hourly[hourly["patient_id"].isin(chosen)]


def train(
    hourly: pd.DataFrame,
    out_dir: Path,
    params: dict[str, Any],
    folds: int = 5,
    seed: int = 0,
    max_patients: int | None = None,
) -> ModelCard:
    """Cross-validate, then fit on every patient (of a seeded sample of ``max_patients``
    stays, if given); save the model, its card and the out-of-fold predictions under
    ``out_dir``."""
    import joblib

    started = time.monotonic()
    available = int(hourly["patient_id"].nunique())
    table = features(sample_stays(hourly, max_patients, seed))
    scored, cv = cross_validate(table, params, folds, seed)
    model, columns = fit(table, params)
    threshold = best_threshold(table, scored["probability"].to_numpy())
    card = ModelCard(
        threshold=threshold,
        features=columns,
        trained_patients=int(table["patient_id"].nunique()),
        trained_hours=len(table),
        params=params,
        cv=cv,
        seconds=time.monotonic() - started,
        available_patients=available,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out_dir / MODEL_FILE)
    (out_dir / CARD_FILE).write_text(json.dumps(asdict(card), indent=2) + "\n")
    scored.to_parquet(out_dir / "cv_predictions.parquet", index=False)
    return card


def load(model_dir: Path) -> tuple[Any, ModelCard]:
    import joblib

    card = ModelCard(**json.loads((model_dir / CARD_FILE).read_text()))
    return joblib.load(model_dir / MODEL_FILE), card


def score_directory(psv_dir: Path, model_dir: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """One scored row per patient-hour of every PSV file in ``psv_dir``, and its scores."""
    from vitalstream.data.physionet import read_hourly

    model, card = load(model_dir)
    table = features(read_hourly(psv_dir))
    missing = set(card.features) - set(table.columns)
    if missing:
        raise ValueError(f"{psv_dir}: features the model needs are missing: {sorted(missing)}")
    probability = model.predict_proba(table[card.features])[:, 1]
    scored = _scored(table, probability, card.threshold)
    return scored, evaluate(scored)


# --------------------------------------------------------------------------- the paper

# The challenge's published results on its hidden test set (Reyna et al., Crit Care Med 2020;
# docs/reference-facts.md): literature figures printed beside ours, never results of a run.
PUBLISHED: tuple[tuple[str, str, str, str], ...] = (
    ("Best ranked entry", "0.360", "", ""),
    ("Top entries", "", "0.81--0.86", "0.10--0.13"),
    ("Organisers' example", "0.159", "", ""),
)


def _fold_range(cv: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    values = [f[key] for f in cv.get("per_fold", []) if f.get(key) == f.get(key)]
    return (min(values), max(values)) if values else (None, None)


def paper_values(card: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """Macro values on the cross-validation of the sepsis model (its ``model.json``): patients,
    hours, folds, the pooled utility, AUROC and AUPRC with their range over folds, the alarm
    rate. A value the card lacks is ``n/a``."""
    cv = card.get("cv", {})

    def value(raw: Any, decimals: int | None) -> dict[str, Any]:
        return macro_value(raw, decimals, source)

    sampled = cv.get("patients", 0) < card.get("available_patients", 0)
    out = {
        # Text, not a number: "all" stays, or "a seeded sample of" them (--max-patients).
        "SepsisCvScope": value("a seeded sample of" if sampled else "all", None),
        "SepsisCvPatients": value(cv.get("patients"), 0),
        "SepsisCvSepticPatients": value(cv.get("septic_patients"), 0),
        "SepsisCvHours": value(cv.get("hours"), 0),
        "SepsisCvFolds": value(cv.get("folds"), 0),
        "SepsisCvUtility": value(cv.get("utility"), 3),
        "SepsisCvAuroc": value(cv.get("auroc"), 3),
        "SepsisCvAuprc": value(cv.get("auprc"), 3),
        "SepsisCvAlarmPercent": value(
            None if cv.get("alarm_rate") is None else 100 * cv["alarm_rate"], 1
        ),
        "SepsisFeatures": value(len(card.get("features", [])) or None, 0),
        "SepsisTrainMinutes": value(None if not card.get("seconds") else card["seconds"] / 60, 1),
    }
    for key, stem in (("utility", "Utility"), ("auroc", "Auroc"), ("auprc", "Auprc")):
        low, high = _fold_range(cv, key)
        out[f"SepsisCv{stem}Low"] = value(low, 3)
        out[f"SepsisCv{stem}High"] = value(high, 3)
    return out


def latex_table(card: dict[str, Any]) -> str:
    """Our cross-validated scores (pooled, and the range over folds) above the challenge's
    published figures on its hidden test set."""
    from vitalstream.core.tables import to_booktabs

    cv = card.get("cv", {})

    def cell(key: str) -> str:
        pooled = cv.get(key)
        if pooled is None or pooled != pooled:
            return "n/a"
        low, high = _fold_range(cv, key)
        spread = "" if low is None else f" ({low:.3f}--{high:.3f})"
        return f"{pooled:.3f}{spread}"

    ours = (
        f"This work: set A, {cv.get('folds', 'n/a')}-fold CV by patient "
        f"({cv.get('patients', 0):,} stays)"
    )
    rows = [(ours, cell("utility"), cell("auroc"), cell("auprc"))]
    rows += [(f"Challenge, hidden test set: {who.lower()}", *rest) for who, *rest in PUBLISHED]
    frame = pd.DataFrame(
        [[r[0], *(c or "--" for c in r[1:])] for r in rows],
        columns=["", "Normalised utility", "AUROC", "AUPRC"],
    )
    return to_booktabs(frame, escape_cells=[""])


# --------------------------------------------------------------------------- CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    score = subparsers.add_parser(
        "score-sepsis", help="apply the sepsis model to a directory of challenge PSV files"
    )
    score.add_argument("--psv-dir", type=existing_dir, required=True)
    score.add_argument(
        "--model", type=existing_dir, default=DEFAULT_MODEL_DIR, help="model directory"
    )
    score.add_argument("--out", type=writable_file, required=True, help="scored hours (Parquet)")
    score.set_defaults(func=_cli_score)
    train_p = subparsers.add_parser(
        "train-sepsis", help="cross-validate and train the sepsis model on hourly PhysioNet data"
    )
    train_p.add_argument(
        "--hourly", type=parquet_input, required=True, help="hourly.parquet (set A)"
    )
    train_p.add_argument("--out-dir", type=writable_dir, default=DEFAULT_MODEL_DIR)
    train_p.add_argument(
        "--params", type=json_object, default="{}", help="model parameters: JSON, or @FILE"
    )
    train_p.add_argument("--folds", type=int_at_least(2), default=5)
    train_p.add_argument("--seed", type=nonnegative_int, default=0)
    train_p.add_argument(
        "--max-patients",
        type=positive_int,
        default=None,
        help="a seeded sample of stays (default: all)",
    )
    train_p.set_defaults(func=_cli_train)
    table = subparsers.add_parser(
        "sepsis-table", help="the paper's table and macro values from the sepsis model card"
    )
    table.add_argument("--card", type=json_file, required=True, help="model.json of train-sepsis")
    table.add_argument("--table", type=writable_file, required=True)
    table.add_argument("--values", type=writable_file, required=True)
    table.set_defaults(func=_cli_table)


def _cli_score(args: argparse.Namespace) -> int:
    scored, scores = score_directory(args.psv_dir, args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scored.rename(columns={"ICULOS": "iculos"}).to_parquet(args.out, index=False)
    print(json.dumps(scores))
    return 0


def _cli_train(args: argparse.Namespace) -> int:
    hourly = pd.read_parquet(args.hourly)
    card = train(hourly, args.out_dir, args.params, args.folds, args.seed, args.max_patients)
    print(json.dumps({"threshold": card.threshold, "seconds": round(card.seconds, 1), **card.cv}))
    return 0


def _cli_table(args: argparse.Namespace) -> int:
    card = json.loads(args.card.read_text())
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(latex_table(card))
    values = paper_values(card, f"{args.card}: cv")
    args.values.parent.mkdir(parents=True, exist_ok=True)
    args.values.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vitalstream-sepsis")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
