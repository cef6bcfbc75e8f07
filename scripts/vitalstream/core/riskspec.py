"""The window risk model as the stream applies it: a fitted logistic regression's file, its
logit as a Spark column expression and as numpy arithmetic, and the threshold rule it becomes.

Why this is in the core: the rule set (vitalstream.core.diagnostics), the Spark job and the
batch reference all apply a trained model; training it (vitalstream.models.riskmodel) needs the
batch reference, so the applied half lives here, below both. The two engines evaluate the same
IEEE double operations in the same order, so they agree bit for bit.

Not for: fitting the model (vitalstream.models.riskmodel).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vitalstream.core.rules import SEVERITIES, ThresholdRule

if TYPE_CHECKING:
    from pyspark.sql import Column

LOGIT_COLUMN = "risk_logit"
# A feature "<vital>_present" is 1.0 when the window holds a reading of the vital (its count
# "<vital>_n" is above 0), else 0.0: a missingness indicator that, unlike the count, does not
# change with the rate a gateway forwards readings at.
PRESENT_SUFFIX = "_present"
DEFAULT_FEATURES = ("hr_mean", "rr_mean", "spo2_mean", "sbp_mean", "temp_mean", "news2_total")


@dataclass(frozen=True)
class WindowRiskModel:
    """Logit = intercept + Σ weight·(x − centre)/scale over ``features`` (a missing x counts as
    its centre); an alert when the logit reaches ``threshold``'s logit."""

    name: str
    severity: str
    features: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    threshold: float
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not n or any(len(v) != n for v in (self.centre, self.scale, self.weights)):
            raise ValueError(f"risk model {self.name}: features, centre, scale, weights differ")
        numbers = (*self.centre, *self.scale, *self.weights, self.intercept)
        if not all(math.isfinite(v) for v in numbers) or min(self.scale) <= 0:
            raise ValueError(f"risk model {self.name}: non-finite value or non-positive scale")
        if not 0 < self.threshold < 1:
            raise ValueError(f"risk model {self.name}: threshold {self.threshold} not in (0, 1)")
        if self.severity not in SEVERITIES:
            raise ValueError(f"risk model {self.name}: unknown severity {self.severity!r}")

    @property
    def threshold_logit(self) -> float:
        return math.log(self.threshold / (1 - self.threshold))

    def rule(self) -> ThresholdRule:
        """The alert: a window rule on the logit column, like any configured threshold rule."""
        return ThresholdRule(self.name, LOGIT_COLUMN, ">=", self.threshold_logit, self.severity)

    def _terms(self) -> zip[tuple[str, float, float, float]]:
        return zip(self.features, self.centre, self.scale, self.weights, strict=True)

    def logit_column(self) -> Column:
        """The logit as a Spark column expression (left to right, as :meth:`logit_values`)."""
        from pyspark.sql import functions as F

        total = F.lit(float(self.intercept))
        for feature, centre, scale, weight in self._terms():
            if feature.endswith(PRESENT_SUFFIX):
                count = F.col(feature.removesuffix(PRESENT_SUFFIX) + "_n")
                raw = F.when(count > 0, F.lit(1.0)).otherwise(F.lit(0.0))
            else:
                raw = F.col(feature).cast("double")
            value = F.coalesce(raw, F.lit(float(centre)))
            value = F.when(F.isnan(value), F.lit(float(centre))).otherwise(value)
            total = total + F.lit(float(weight)) * ((value - F.lit(centre)) / F.lit(scale))
        return total.alias(LOGIT_COLUMN)

    def logit_values(self, frame: pd.DataFrame) -> np.ndarray:
        """The logit of each row of ``frame`` (numpy, the same operations as Spark's)."""
        total = np.full(len(frame), float(self.intercept))
        for feature, centre, scale, weight in self._terms():
            raw = feature_values(frame, feature)
            value = np.where(np.isnan(raw), centre, raw)
            total = total + weight * ((value - centre) / scale)
        return total

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit_values(frame)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> WindowRiskModel:
        tuples = {k: tuple(raw[k]) for k in ("features", "centre", "scale", "weights")}
        return cls(
            name=str(raw["name"]),
            severity=str(raw["severity"]),
            intercept=float(raw["intercept"]),
            threshold=float(raw["threshold"]),
            training=dict(raw.get("training", {})),
            **tuples,
        )


def feature_values(frame: pd.DataFrame, feature: str) -> np.ndarray:
    """One feature of every window as float64 (NaN where missing): a window column, or a
    presence indicator computed from the vital's count (see :data:`PRESENT_SUFFIX`)."""
    if feature.endswith(PRESENT_SUFFIX):
        count = pd.to_numeric(frame[feature.removesuffix(PRESENT_SUFFIX) + "_n"], errors="coerce")
        return (count.fillna(0).to_numpy() > 0).astype("float64")
    return pd.to_numeric(frame[feature], errors="coerce").astype("float64").to_numpy()


def source_column(feature: str) -> str:
    return (
        feature.removesuffix(PRESENT_SUFFIX) + "_n" if feature.endswith(PRESENT_SUFFIX) else feature
    )


def load(path: Path | str) -> WindowRiskModel:
    """A model file written by ``train-window-risk``; a missing file says how to make it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"risk model {path} does not exist: `snakemake --cores all {path}` trains it"
        )
    return WindowRiskModel.from_mapping(json.loads(path.read_text()))
