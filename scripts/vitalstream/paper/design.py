"""Design macros: the study's settings (thresholds, delay models, tuned and blueprint settings)
as LaTeX macros, taken from the configuration the workflow ran with.

The paper states settings as well as results ("delays with a mean of 60 s", "a ten-minute
suppression"). Typed by hand, such a sentence goes stale the day someone edits config.yaml; here
each setting is declared once with its config path, so the sentence reads the value the runs
used. ``design-values`` writes them in the notebooks' ``*_values.json`` format, which
``write_macros`` merges into macros.tex with a comment naming the config path.

Settings that name a condition (the 120-s watermark of ``..._w120``, the 60-s coalescing of
``coalesce60``) stay in the text beside that condition's macros: the name is the setting.
Not for: measured values (notebooks and ``vitalstream.paper.macros``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vitalstream.core.cliargs import checked, existing_file, json_object, writable_file
from vitalstream.paper.macros import Macro, lookup
from vitalstream.services.sparkenv import read_defaults

SPARK_DEFAULTS = "spark_defaults"  # the pseudo-section the defaults file is read into


@dataclass(frozen=True)
class Setting:
    """``\\name`` = the value at ``path`` (dot path; ``name=X`` picks a list item) × ``scale``."""

    name: str
    path: str
    scale: float = 1.0
    decimals: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        Macro(self.name, "config", self.path)  # validates the name


def _rule(kind: str, name: str) -> str:
    return f"diagnostics.{kind}.name={name}.threshold"


SETTINGS: tuple[Setting, ...] = (
    Setting("RuleTachycardiaBpm", _rule("window_rules", "tachycardia"), 1, 0, "heart rate, bpm"),
    Setting("RuleHypoxaemiaPercent", _rule("window_rules", "hypoxaemia"), 1, 0, "SpO2, %"),
    Setting("RuleCriticalSpotwoPercent", _rule("reading_rules", "critical_desaturation")),
    Setting("RuleCriticalHrBpm", _rule("reading_rules", "critical_tachycardia")),
    Setting("SuppressionMinutes", "diagnostics.suppression_s", 1 / 60, 0, "repeat suppression"),
    # RQ3's delay models (cohorts of the rq3 grid).
    Setting("RqthreeExpTenMeanSeconds", "cohorts.late_exp10.network_delay_mean_ms", 1e-3),
    Setting("RqthreeExpSixZeroMeanSeconds", "cohorts.late_exp60.network_delay_mean_ms", 1e-3),
    Setting("RqthreeParetoMeanSeconds", "cohorts.late_pareto.network_delay_mean_ms", 1e-3),
    Setting("RqthreeParetoShape", "cohorts.late_pareto.network_delay_pareto_shape", 1, 1),
    Setting("RqthreeVeryLatePercent", "cohorts.late_exp60.very_late_fraction", 100, 1),
    Setting("RqthreeVeryLateMinutes", "cohorts.late_exp60.very_late_ms", 1 / 60_000),
    # Every run's shuffle partitions (the Spark defaults file); a condition may set its own.
    Setting(
        "DefaultShufflePartitions",
        f"{SPARK_DEFAULTS}.spark.sql.shuffle.partitions",
        1,
        0,
        "every run unless its condition sets them",
    ),
    # RQ5: the tuned defaults and the blueprint's changes to them.
    Setting(
        "TunedShufflePartitions",
        "experiments.rq5.defaults.spark_conf.spark.sql.shuffle.partitions",
        1,
        0,
        "tuned",
    ),
    Setting("TunedFetchWaitMs", "experiments.rq5.defaults.consumer.fetch_max_wait_ms"),
    Setting("TunedWatermarkSeconds", "experiments.rq5.defaults.watermark_s"),
    Setting(
        "BlueprintShufflePartitions",
        "experiments.rq5.conditions.blueprint.spark_conf.spark.sql.shuffle.partitions",
    ),
    Setting(
        "BlueprintFetchWaitMs", "experiments.rq5.conditions.blueprint.consumer.fetch_max_wait_ms"
    ),
    Setting("BlueprintWindowMinutes", "experiments.rq5.defaults.window_s", 1 / 60),
    Setting(
        "BlueprintWatermarkMinutes", "experiments.rq5.conditions.blueprint.watermark_s", 1 / 60
    ),
)


def subset(config: Mapping[str, Any], settings: Iterable[Setting] = SETTINGS) -> dict[str, Any]:
    """The config values the settings read, by path: a rule's params, so that editing any other
    part of the config does not re-run it."""
    out: dict[str, Any] = {}
    for setting in settings:
        if not setting.path.startswith(f"{SPARK_DEFAULTS}."):
            out[setting.path] = lookup(config, setting.path)
    return out


def values(
    config: Mapping[str, Any],
    spark_defaults: Mapping[str, str],
    settings: Iterable[Setting] = SETTINGS,
) -> dict[str, dict[str, Any]]:
    """``{name: {value, decimals, source, description}}`` for write_macros."""
    data = {**config, SPARK_DEFAULTS: dict(spark_defaults)}
    out = {}
    for setting in settings:
        raw = lookup(data, setting.path)
        if raw is None or isinstance(raw, bool):
            raise ValueError(f"setting {setting.name}: {setting.path} is {raw!r}, not a number")
        out[setting.name] = {
            "value": float(raw) * setting.scale,
            "decimals": setting.decimals,
            "source": f"config: {setting.path}",
            "description": setting.description,
        }
    return out


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "design-values", help="the study's settings as macro values (from the configuration)"
    )
    parser.add_argument(
        "--config-json",
        type=json_object,
        required=True,
        help="design.subset(config): JSON, or @FILE",
    )
    parser.add_argument("--spark-defaults", type=existing_file, required=True)
    parser.add_argument("--out", type=writable_file, required=True)
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    defaults = checked("--spark-defaults", read_defaults, args.spark_defaults)
    result = values(args.config_json, defaults)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({name: spec["value"] for name, spec in result.items()}))
    return 0
