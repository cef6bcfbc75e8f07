"""RQ4: a model updated in the stream against batch models, and all of them against the bedside
scores, on PhysioNet/CinC 2019 set A (``python -m vitalstream compare-models``).

The clock
    Set A carries no admission dates. The comparison puts its stays on one clock: patients
    arrive in a seeded random order, ``admissions_per_hour`` of them per hour, and hour ICULOS h
    of a stay admitted at clock hour a falls at clock hour a + h (its "hour batch"). A stay is
    discharged at the clock hour of its last row.

Splits: by patient and by time, never by row
    * the split hour is the admission hour of the patient at ``history_fraction`` of the
      arrival order;
    * history: patients discharged before the split hour. The batch models are trained on them;
      the last ``validation_fraction`` of them (by arrival) is the validation set on which every
      model's alarm threshold is chosen (the batch models fitted on the other history patients
      for this, then refitted on all of history);
    * test: patients admitted at or after the split hour. Every model and rule is evaluated on
      all their hours, the same hours;
    * patients in the ICU at the split hour are in neither: their labels were not complete when
      the batch models were trained. The streaming model learns from them when they leave.

    ``max_patients`` (the quick profile) first draws a seeded sample of whole stays; the
    admission rate stays the same, so the clock is shorter and the census the same.

Leakage rules
    * features are causal (models.sepsis.features: the hour and earlier hours of the same
      stay only); ``SepsisLabel`` is never a feature;
    * labels arrive at discharge: ``SepsisLabel`` of an hour depends on the onset up to six hours
      later, so no label is treated as known during the stay. The streaming model trains on a
      stay's hours in the hour batch of its discharge;
    * prequential evaluation: the rows of each hour batch are scored by the model as it is
      *before* that batch's training step; since a stay is trained on only at its discharge,
      every row is scored before any model has seen its label;
    * standardisation (the stream: running mean and variance of the training rows seen so far;
      MLlib: the training set's), imputation means and thresholds come from training patients;
    * no patient is in two sets, so none is both trained on by a batch model and evaluated.

Models
    * ``gbt``: scikit-learn's histogram gradient boosting as trained by models.sepsis (the
      stronger reference). It weights positive hours by negatives/positives, which multiplies
      the predicted odds by that ratio; the odds are divided by it again so that the Brier score
      and the reliability curve describe probabilities, not the weighting (ranks unchanged);
    * ``mllib_lr``: Spark MLlib logistic regression (local mode, the blueprint's batch baseline)
      reading the features from Parquet: mean imputation, standardisation, then the regression,
      one Spark ML pipeline. ``mllib.max_train_patients`` samples training patients (seeded)
      when the full history is too slow on the machine; the metrics record what was used;
    * ``stream_sgd``: logistic regression by stochastic gradient descent, one update per hour
      batch of discharged stays, computed inside a Spark Structured Streaming query that reads
      the hour batches from Kafka (``foreachBatch``; models.streamlearn). Without a broker
      (``bootstrap`` None: unit tests, a machine without the stack) the same learner walks the
      same hour batches offline; with one, the offline replay runs as well and the metrics
      record how many hours' probabilities differ between the two
      (``stream.rows_differing_from_replay``, 0 expected) and by how much at most.

Rule baselines (same patient-hours)
    NEWS2 ≥ 5, NEWS2 ≥ 7 and qSOFA ≥ 2 (thresholds from ``diagnostics.scores``) computed with
    vitalstream.core.scores from the last value charted so far of each vital (a bedside chart shows
    the latest observation; an hour without a new reading keeps the previous one). Supplemental
    oxygen is FiO2 > 0.21 (unknown while no FiO2 was charted, then scored as air).
    Consciousness is not in the PhysioNet data: it is missing, which vitalstream.core.scores scores
    as alert (0 points, no qSOFA mentation point), so both scores are lower bounds. A rule's
    risk for AUROC and AUPRC is its score (NEWS2 total, qSOFA count); NEWS2 ≥ 5 and ≥ 7 share it.

Evaluation: vitalstream.models.riskeval (metrics, top-K per clock hour, patient bootstrap).

Not for: the sepsis model of ``score-sepsis`` (vitalstream.models.sepsis) or the streaming job.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vitalstream.core import scores as vscores
from vitalstream.core.cliargs import (
    checked,
    json_object,
    parquet_input,
    writable_dir,
)
from vitalstream.data import physionet
from vitalstream.models import riskeval, sepsis, streamlearn

LOG = logging.getLogger("vitalstream.models.rq4")
LABEL = sepsis.LABEL
MODELS = ("stream_sgd", "mllib_lr", "gbt")
RULES = ("news2_ge5", "news2_ge7", "qsofa_ge2")
SETS = ("train", "validation", "straddle", "test")


@dataclass(frozen=True)
class Settings:
    """``models.rq4`` of the config (described in config/schema.yaml)."""

    admissions_per_hour: float = 4.0
    history_fraction: float = 0.5
    validation_fraction: float = 0.2
    seed: int = 0
    top_k: int = 5
    bootstrap: int = 200
    reliability_bins: int = 10
    period_h: int = 168
    max_patients: int | None = None
    stream_max_offsets: int = 336  # a week of clock hours per micro-batch
    streaming: dict[str, Any] = field(default_factory=dict)
    mllib: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Settings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"models.rq4: unknown keys {unknown} (expected {sorted(known)})")
        settings = cls(**raw)
        if not 0 < settings.history_fraction < 1 or not 0 < settings.validation_fraction < 1:
            raise ValueError("models.rq4: history_fraction and validation_fraction are in (0, 1)")
        if settings.admissions_per_hour <= 0:
            raise ValueError("models.rq4/admissions_per_hour: must be > 0")
        return settings


# --------------------------------------------------------------------------- clock and splits


def schedule(table: pd.DataFrame, admissions_per_hour: float, seed: int) -> pd.DataFrame:
    """One row per stay: arrival rank, admission and discharge clock hours (module docstring)."""
    span = table.groupby("patient_id", sort=True)["ICULOS"].agg(["min", "max"])
    rng = np.random.default_rng(seed)
    arrival = rng.permutation(len(span))
    admission_h = np.floor(arrival / admissions_per_hour).astype(np.int64)
    return pd.DataFrame(
        {
            "arrival": arrival,
            "admission_h": admission_h,
            "discharge_h": admission_h + span["max"].to_numpy(dtype=np.int64),
        },
        index=span.index,
    )


def assign_sets(
    stays: pd.DataFrame, history_fraction: float, validation_fraction: float
) -> tuple[pd.DataFrame, int]:
    """``stays`` with a ``set`` column (train, validation, straddle, test) and the split hour."""
    ordered = stays.sort_values("arrival")
    split_h = int(ordered["admission_h"].iloc[int(len(ordered) * history_fraction)])
    history = ordered["discharge_h"] < split_h
    test = ordered["admission_h"] >= split_h
    history_ids = ordered.index[history]
    n_validation = max(1, round(len(history_ids) * validation_fraction))
    labels = np.where(test, "test", np.where(history, "train", "straddle"))
    out = ordered.assign(set=labels)
    out.loc[history_ids[len(history_ids) - n_validation :], "set"] = "validation"
    return out.loc[stays.index], split_h


def on_clock(table: pd.DataFrame, stays: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``clock_h``, ``discharge_h`` and ``set`` of every row."""
    own = stays.reindex(table["patient_id"].to_numpy())
    return table.assign(
        clock_h=own["admission_h"].to_numpy() + table["ICULOS"].to_numpy(),
        discharge_h=own["discharge_h"].to_numpy(),
        set=own["set"].to_numpy(),
    )


# --------------------------------------------------------------------------- rule baselines


def rule_windows(table: pd.DataFrame) -> pd.DataFrame:
    """The window columns vitalstream.core.scores reads, from the carried-forward hourly vitals."""
    windows = {
        f"{vital}_mean": table[f"{column}_last"].to_numpy(dtype=float)
        for column, vital in physionet.PSV_TO_VITAL.items()
        if f"{column}_last" in table
    }
    fio2 = table["FiO2_last"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        windows["o2_any"] = pd.arrays.BooleanArray(fio2 > physionet.ROOM_AIR_FIO2, np.isnan(fio2))
    windows["consciousness_worst"] = pd.array([pd.NA] * len(table), dtype="string")
    return pd.DataFrame(windows, index=table.index)


def rule_scores(table: pd.DataFrame, spec: vscores.ScoreSpec) -> dict[str, tuple]:
    """``{rule: (risk, alert)}`` per hour for NEWS2 ≥ medium, ≥ high and qSOFA positive."""
    scored = vscores.score_frame(rule_windows(table), spec)
    news2 = scored["news2_total"].to_numpy(dtype=float)
    qsofa = scored["qsofa"].to_numpy(dtype=float)
    return {
        "news2_ge5": (news2, news2 >= spec.news2_risk.medium_at),
        "news2_ge7": (news2, news2 >= spec.news2_risk.high_at),
        "qsofa_ge2": (qsofa, scored["qsofa_positive"].to_numpy(dtype=bool)),
    }


# --------------------------------------------------------------------------- models


def numeric_matrix(table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Features as float32, infinities (a shock index over a zero pressure) as missing."""
    matrix = table[columns].to_numpy(dtype=np.float32)
    matrix[~np.isfinite(matrix)] = np.nan
    return matrix


def fit_gbt(train: pd.DataFrame, params: Mapping[str, Any]) -> Callable[[pd.DataFrame], Any]:
    """The vitalstream.models.sepsis model fitted on ``train``; returns a function giving corrected
    probabilities (the weighting's odds factor undone, module docstring)."""
    model, columns = sepsis.fit(train, dict(params))
    labels = train[LABEL].to_numpy()
    odds_factor = (labels == 0).sum() / max((labels == 1).sum(), 1)  # sepsis._weights' ratio

    def predict(table: pd.DataFrame) -> np.ndarray:
        weighted = model.predict_proba(table[columns])[:, 1]
        return weighted / (weighted + (1 - weighted) * odds_factor)

    return predict


def mllib_logistic(
    table: pd.DataFrame,
    columns: list[str],
    fits: list[tuple[np.ndarray, np.ndarray]],
    params: Mapping[str, Any],
    work_dir: Path,
    spark: Any,
) -> list[np.ndarray]:
    """Spark MLlib logistic regression: for each (train rows, predict rows) of ``fits``, fit on
    the train rows and return the probabilities of the predict rows. The features go to Parquet
    once; Spark reads them from there (local mode, envs/spark/spark-defaults.conf)."""
    path = work_dir / "features.parquet"
    frame = pd.DataFrame(numeric_matrix(table, columns).astype(np.float64), columns=columns)
    frame.insert(0, "label", table[LABEL].to_numpy(dtype=np.float64))
    frame.insert(0, "row", np.arange(len(table), dtype=np.int64))
    frame.to_parquet(path, index=False)
    del frame
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import Imputer, StandardScaler, VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    data = spark.read.parquet(str(path))
    imputed = [f"{c}__imputed" for c in columns]
    results = []
    for train_rows, predict_rows in fits:
        ids = spark.createDataFrame(pd.DataFrame({"row": train_rows.astype(np.int64)}))
        train = data.join(F.broadcast(ids), "row").cache()
        pipeline = Pipeline(
            stages=[
                Imputer(inputCols=columns, outputCols=imputed, strategy="mean"),
                VectorAssembler(inputCols=imputed, outputCol="raw"),
                StandardScaler(inputCol="raw", outputCol="features", withMean=True),
                LogisticRegression(
                    featuresCol="features",
                    labelCol="label",
                    standardization=False,
                    maxIter=int(params.get("max_iter", 100)),
                    regParam=float(params.get("reg_param", 0.0)),
                    elasticNetParam=float(params.get("elastic_net_param", 0.0)),
                ),
            ]
        )
        model = pipeline.fit(train)
        train.unpersist()
        wanted = spark.createDataFrame(pd.DataFrame({"row": predict_rows.astype(np.int64)}))
        scored = (
            model.transform(data.join(F.broadcast(wanted), "row"))
            .select("row", vector_to_array("probability")[1].alias("p"))
            .toPandas()
        )
        probability = pd.Series(scored["p"].to_numpy(), index=scored["row"].to_numpy())
        results.append(probability.reindex(predict_rows).to_numpy())
    return results


# --------------------------------------------------------------------------- the comparison


def prequential_curve(
    frame: pd.DataFrame, risks: Mapping[str, np.ndarray], split_h: int, period_h: int
) -> pd.DataFrame:
    """AUROC per period of ``period_h`` clock hours and cumulatively since the split.

    The stream is scored on every hour it scored before the split (phase "history") and on the
    test patients' hours after it; the batch models on the test hours only (the same hours).
    """
    rows = []
    period = np.floor((frame["clock_h"].to_numpy() - split_h) / period_h).astype(int)
    test = frame["set"].to_numpy() == "test"
    labels = frame[LABEL].to_numpy()
    for name, risk in risks.items():
        scored = np.isfinite(risk)
        keep = scored & (test | (period < 0)) if name == "stream_sgd" else scored & test
        for p in np.unique(period[keep]):
            in_period = keep & (period == p)
            since = keep & (period >= 0) & (period <= p)
            rows.append(
                {
                    "model": name,
                    "phase": "test" if p >= 0 else "history",
                    "period_start_h": int(split_h + p * period_h),
                    "period_end_h": int(split_h + (p + 1) * period_h),
                    "hours": int(in_period.sum()),
                    "positives": int(labels[in_period].sum()),
                    "auroc": _auroc(labels[in_period], risk[in_period]),
                    "cumulative_auroc": (
                        _auroc(labels[since], risk[since]) if p >= 0 else float("nan")
                    ),
                }
            )
    return pd.DataFrame(rows)


def _auroc(labels: np.ndarray, risk: np.ndarray) -> float:
    return riskeval.auroc(riskeval.risk_levels(risk), labels, np.ones(len(labels)))


def _threshold(table: pd.DataFrame, probability: np.ndarray) -> float:
    return sepsis.best_threshold(table, probability)


@dataclass
class Run:
    """What one comparison works on: set A's hours on the clock, the feature columns, and where
    the models run (the Spark session, the broker), with a stopwatch per stage."""

    table: pd.DataFrame
    stays: pd.DataFrame
    split_h: int
    columns: list[str]
    settings: Settings
    work_dir: Path
    spark: Any
    bootstrap: str | None
    progress: Callable[[str], None]
    seconds: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def lap(self, stage: str) -> None:
        self.seconds[stage] = round(time.monotonic() - self.started, 1)
        self.progress(f"{stage}: {self.seconds[stage]} s")
        self.started = time.monotonic()


def prepare(hourly: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Causal features on the clock, with each stay's set; returns (rows, stays, split hour)."""
    if settings.max_patients is not None:
        # A seeded sample of whole stays (the quick profile); admissions keep their rate.
        ids = hourly["patient_id"].unique()
        rng = np.random.default_rng(settings.seed)
        chosen = rng.permutation(np.sort(ids))[: settings.max_patients]
        hourly = hourly[hourly["patient_id"].isin(chosen)]
    table = sepsis.features(hourly)
    stays, split_h = assign_sets(
        schedule(table, settings.admissions_per_hour, settings.seed),
        settings.history_fraction,
        settings.validation_fraction,
    )
    return on_clock(table, stays), stays, split_h


def compare(
    hourly: pd.DataFrame,
    settings: Settings,
    gbt_params: Mapping[str, Any],
    score_spec: vscores.ScoreSpec,
    work_dir: Path,
    spark_conf: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] = LOG.info,
    bootstrap: str | None = None,
) -> dict[str, Any]:
    """Run the whole comparison; returns metrics, curves and the test hours' predictions.

    ``bootstrap``: the Kafka broker the streaming model reads its hour batches from (None: the
    offline replay stands in for the stream, module docstring)."""
    started = time.monotonic()
    table, stays, split_h = prepare(hourly, settings)
    history = np.flatnonzero(np.isin(table["set"].to_numpy(), ("train", "validation")))
    columns = [
        c
        for c in sepsis.feature_columns(table)
        if c not in ("clock_h", "discharge_h", "set")
        and table[c].iloc[history].nunique(dropna=True) >= 2
    ]
    spark = _session(spark_conf)
    try:
        run = Run(
            table,
            stays,
            split_h,
            columns,
            settings,
            work_dir,
            spark,
            bootstrap,
            progress,
            started=started,
        )
        run.lap("features")
        return _compare(run, gbt_params, score_spec)
    finally:
        spark.stop()


def _session(spark_conf: Mapping[str, Any] | None) -> Any:
    """One local Spark session for the stream and MLlib (envs/spark/spark-defaults.conf)."""
    from vitalstream.services import sparkenv

    conf = sparkenv.effective_conf(
        sparkenv.DEFAULTS_FILE,
        spark_conf,
        {"spark.app.name": "vitalstream-rq4", "spark.sql.execution.arrow.pyspark.enabled": True},
    )
    return sparkenv.build_session(conf, with_kafka=True)


def _stream(run: Run) -> tuple[streamlearn.StreamResult, dict[str, Any]]:
    """The streaming model through Kafka and Spark (or offline without a broker), and what the
    metrics say of how it ran."""
    table, settings = run.table, run.settings
    arrays = (
        numeric_matrix(table, run.columns),
        table[LABEL].to_numpy(),
        table["clock_h"].to_numpy(),
        table["discharge_h"].to_numpy(),
    )
    replayed = streamlearn.replay(*arrays, settings.streaming, run.progress, settings.seed)
    if run.bootstrap is None:
        return replayed, {"engine": "offline replay (no broker)", "updates": replayed.updates}
    topic = f"rq4.stream.{os.getpid()}.{time.time_ns()}"
    started = time.monotonic()
    count = streamlearn.publish(run.bootstrap, topic, streamlearn.messages(*arrays))
    published_s = time.monotonic() - started
    streamed = streamlearn.run_stream(
        run.spark,
        run.bootstrap,
        topic,
        len(table),
        settings.streaming,
        run.work_dir / "stream",
        seed=settings.seed,
        max_offsets_per_trigger=settings.stream_max_offsets,
    )
    both = np.isfinite(streamed.probability) & np.isfinite(replayed.probability)
    same_nan = np.isnan(streamed.probability) == np.isnan(replayed.probability)
    diff = np.abs(streamed.probability[both] - replayed.probability[both])
    differing = ~same_nan | (both & (streamed.probability != replayed.probability))
    info = {
        "engine": "Spark Structured Streaming foreachBatch over Kafka",
        "topic_messages": count,
        "micro_batches": len(streamed.batches),
        "updates": streamed.updates,
        "publish_s": round(published_s, 2),
        "stream_s": round(time.monotonic() - started - published_s, 2),
        "max_abs_diff_vs_replay": float(diff.max()) if len(diff) else 0.0,
        "rows_differing_from_replay": int(differing.sum()),
    }
    run.progress(f"stream: {info}")
    return streamed, info


def _compare(
    run: Run, gbt_params: Mapping[str, Any], score_spec: vscores.ScoreSpec
) -> dict[str, Any]:
    table, stays, split_h, columns, settings = (
        run.table,
        run.stays,
        run.split_h,
        run.columns,
        run.settings,
    )
    sets = table["set"].to_numpy()
    train, validation, test = (np.flatnonzero(sets == s) for s in ("train", "validation", "test"))
    history = np.flatnonzero(np.isin(sets, ("train", "validation")))
    predictions: dict[str, np.ndarray] = {}
    thresholds: dict[str, float] = {}
    val_table = table.iloc[validation]

    stream, stream_info = _stream(run)
    thresholds["stream_sgd"] = _threshold(val_table, stream.probability[validation])
    predictions["stream_sgd"] = stream.probability
    run.lap("stream_sgd")

    gbt_inner = fit_gbt(table.iloc[train][[*columns, "patient_id", LABEL]], gbt_params)
    thresholds["gbt"] = _threshold(val_table, gbt_inner(val_table))
    del gbt_inner
    gbt = fit_gbt(table.iloc[history][[*columns, "patient_id", LABEL]], gbt_params)
    predictions["gbt"] = np.full(len(table), np.nan)
    predictions["gbt"][test] = gbt(table.iloc[test])
    run.lap("gbt")

    mllib = dict(settings.mllib)
    sample = mllib.pop("max_train_patients", None)
    lr_train, lr_history = train, history
    if sample is not None:
        rng = np.random.default_rng(settings.seed)
        ids = table["patient_id"].to_numpy()
        chosen = rng.permutation(np.unique(ids[history]))[: int(sample)]
        lr_history = history[np.isin(ids[history], chosen)]
        lr_train = train[np.isin(ids[train], chosen)]
    lr_validation, lr_test = mllib_logistic(
        table, columns, [(lr_train, validation), (lr_history, test)], mllib, run.work_dir, run.spark
    )
    thresholds["mllib_lr"] = _threshold(val_table, lr_validation)
    predictions["mllib_lr"] = np.full(len(table), np.nan)
    predictions["mllib_lr"][test] = lr_test
    run.lap("mllib_lr")

    curve = prequential_curve(
        table[["clock_h", "set", LABEL]], predictions, split_h, settings.period_h
    )

    # The evaluation: every model and rule on the test hours.
    test_table = table.iloc[test].reset_index(drop=True)
    hours = riskeval.Hours.from_frame(test_table, label=LABEL)
    scorers = [
        riskeval.Scorer(
            name, predictions[name][test], predictions[name][test] >= thresholds[name], True
        )
        for name in MODELS
    ]
    for name, (risk, alert) in rule_scores(test_table, score_spec).items():
        scorers.append(riskeval.Scorer(name, risk, alert, False))
    evaluation = riskeval.evaluate(
        hours, scorers, settings.top_k, settings.bootstrap, settings.seed, run.progress
    )
    reliability = pd.concat(
        [
            riskeval.reliability(s.risk, hours.label, settings.reliability_bins).assign(
                model=s.name
            )
            for s in scorers
            if s.is_probability
        ]
    )
    curves = pd.concat(
        [riskeval.roc_pr_points(s.risk, hours.label).assign(model=s.name) for s in scorers]
    )
    run.lap("evaluation")

    census = test_table.groupby("clock_h").size()
    by_set = stays["set"].value_counts()
    by_set_hours = pd.Series(sets).value_counts()
    metrics = {
        "settings": asdict(settings),
        "gbt_params": dict(gbt_params),
        "split_h": split_h,
        "clock_span_h": int(table["clock_h"].max()),
        "patients": {s: int(by_set.get(s, 0)) for s in SETS},
        "hours": {s: int(by_set_hours.get(s, 0)) for s in SETS},
        "test_positive_hours": int(hours.label.sum()),
        "test_septic_patients": int(test_table.groupby("patient_id")[LABEL].max().sum()),
        "test_census_median": float(census.median()),
        "features": len(columns),
        "mllib_train_patients": int(table["patient_id"].iloc[lr_history].nunique()),
        "stream_updates": stream.updates,
        "stream": stream_info,
        "thresholds": thresholds,
        "models": evaluation,
        "seconds": run.seconds,
    }
    keep = ["patient_id", "ICULOS", "clock_h", LABEL]
    scored = test_table[keep].rename(columns={LABEL: "label"})
    for s in scorers:
        if s.name not in scored:
            scored[s.name] = s.risk.astype(np.float32)
    return {
        "metrics": metrics,
        "curve": curve,
        "reliability": reliability,
        "curves": curves,
        "predictions": scored.drop(columns=["news2_ge7"]).rename(
            columns={"news2_ge5": "news2_total", "qsofa_ge2": "qsofa"}
        ),
    }


# --------------------------------------------------------------------------- CLI


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare-models",
        help="RQ4: streaming vs batch models vs NEWS2/qSOFA on PhysioNet 2019 set A",
    )
    p.add_argument("--hourly", type=parquet_input, required=True, help="hourly.parquet (set A)")
    p.add_argument("--settings", type=json_object, default="{}", help="models.rq4: JSON, or @FILE")
    p.add_argument(
        "--gbt-params",
        type=json_object,
        default="{}",
        help="models.sepsis2019.params: JSON, or @FILE",
    )
    p.add_argument(
        "--scores",
        type=json_object,
        required=True,
        help="diagnostics.scores: JSON, or @FILE",
    )
    p.add_argument(
        "--spark-conf", type=json_object, default="{}", help="spark.conf: JSON, or @FILE"
    )
    p.add_argument("--out-dir", type=writable_dir, required=True)
    p.add_argument(
        "--bootstrap-servers", default=None, help="Kafka for the stream (default: --broker-state)"
    )
    p.add_argument(
        "--broker-state", type=Path, default=None, help="use the workflow's broker (state file)"
    )
    p.set_defaults(func=_cli_compare)


OUTPUTS = {
    "metrics": "metrics.json",
    "curve": "prequential.csv",
    "reliability": "reliability.csv",
    "curves": "curves.csv",
    "predictions": "predictions.parquet",
}


def _cli_compare(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = checked("--settings", Settings.from_mapping, args.settings)
    spec = checked("--scores", vscores.score_spec_from_config, args.scores)
    hourly = pd.read_parquet(args.hourly)
    bootstrap = args.bootstrap_servers
    if not bootstrap and args.broker_state is not None:
        if not args.broker_state.exists():
            raise SystemExit(f"compare-models: no broker state at {args.broker_state}")
        from vitalstream.services import broker

        bootstrap = broker.read_bootstrap(args.broker_state)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=".work-", dir=args.out_dir))
    try:
        result = compare(
            hourly,
            settings,
            args.gbt_params,
            spec,
            work_dir,
            args.spark_conf,
            bootstrap=bootstrap,
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    out = args.out_dir
    (out / OUTPUTS["metrics"]).write_text(json.dumps(result["metrics"], indent=2) + "\n")
    result["curve"].to_csv(out / OUTPUTS["curve"], index=False, float_format="%.6g")
    result["reliability"].to_csv(out / OUTPUTS["reliability"], index=False, float_format="%.6g")
    result["curves"].to_csv(out / OUTPUTS["curves"], index=False, float_format="%.6g")
    result["predictions"].to_parquet(out / OUTPUTS["predictions"], index=False)
    summary = {
        name: {m: round(v["value"], 4) for m, v in entry.items() if m in ("auroc", "utility")}
        for name, entry in result["metrics"]["models"].items()
    }
    print(json.dumps({"seconds": result["metrics"]["seconds"], "models": summary}))
    return 0
