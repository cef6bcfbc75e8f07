"""Configuration: loading, validation and the expansion of the experimental grid.

The workflow (Snakefile) and the command line read the same YAML files and the same JSON schema
through this module, so a key means the same thing everywhere and an unknown key is an error in
both. The grid of runs is expanded here, in one place; rule files only ask for the list.

Not for: running anything. Functions here are pure apart from reading files.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"


class ConfigError(ValueError):
    """A configuration file is missing, malformed or does not match config/schema.yaml."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``, recursing into mappings.

    Same semantics as Snakemake's ``--configfile`` layering, so a profile means the same thing
    whether the workflow or the CLI loads it: mappings merge key by key, anything else replaces.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_schema() -> dict[str, Any]:
    """The JSON schema every configuration must satisfy."""
    with SCHEMA_PATH.open() as fh:
        return yaml.safe_load(fh)


def validate(config: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the offending key path when ``config`` breaks the schema."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"  {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
        ]
        raise ConfigError("configuration does not match config/schema.yaml:\n" + "\n".join(lines))
    _check_references(config)


def _check_references(config: Mapping[str, Any]) -> None:
    """Cross-key checks the schema cannot express (an experiment names an existing cohort)."""
    cohorts = config.get("cohorts", {})
    for name, experiment in config.get("experiments", {}).items():
        named = {f"experiments/{name}/cohort": experiment["cohort"]}
        named |= {
            f"experiments/{name}/conditions/{c}/cohort": p["cohort"]
            for c, p in experiment["conditions"].items()
            if "cohort" in p
        }
        for where, cohort in named.items():
            if cohort not in cohorts:
                raise ConfigError(f"{where}: {cohort!r} is not a cohort (known: {sorted(cohorts)})")
    headline = config.get("paper", {}).get("headline_run")
    if headline and RunId.parse(headline) not in expand_runs(config):
        raise ConfigError(f"paper/headline_run: {headline!r} is not a run of the grid")


def load_config_json(text: str) -> dict[str, Any]:
    """A configuration passed inline as JSON (how the workflow hands a run its slice)."""
    import json

    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"inline configuration is not valid JSON: {exc}") from exc
    validate(config)
    return config


def load_config(paths: Iterable[Path | str] = (DEFAULT_CONFIG,)) -> dict[str, Any]:
    """Load, layer (later files override earlier ones) and validate configuration files."""
    config: dict[str, Any] = {}
    for path in map(Path, paths):
        try:
            with path.open() as fh:
                layer = yaml.safe_load(fh) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file not found: {path}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(layer, Mapping):
            raise ConfigError(f"{path} must hold a mapping at the top level")
        config = deep_merge(config, layer)
    validate(config)
    return config


@dataclass(frozen=True)
class RunId:
    """One repetition of one condition of one experiment: results/runs/<id.path>/."""

    experiment: str
    condition: str
    rep: int

    @property
    def path(self) -> str:
        return f"{self.experiment}/{self.condition}/rep{self.rep}"

    @classmethod
    def parse(cls, text: str) -> RunId:
        """Inverse of ``path``: ``"skeleton/base/rep1"`` → RunId."""
        try:
            experiment, condition, rep = text.strip("/").split("/")
            if not rep.startswith("rep"):
                raise ValueError
            return cls(experiment, condition, int(rep[3:]))
        except ValueError as exc:
            raise ConfigError(f"not a run id <experiment>/<condition>/rep<k>: {text!r}") from exc


def expand_runs(config: Mapping[str, Any]) -> list[RunId]:
    """Every run of the grid, in config order: the one place the grid is expanded."""
    return [
        RunId(name, condition, rep)
        for name, experiment in config["experiments"].items()
        for condition in experiment["conditions"]
        for rep in range(1, experiment["repetitions"] + 1)
    ]


def condition_params(config: Mapping[str, Any], run: RunId) -> dict[str, Any]:
    """The full parameter set of a run's condition: experiment defaults, then the condition."""
    try:
        experiment = config["experiments"][run.experiment]
        overrides = experiment["conditions"][run.condition]
    except KeyError as exc:
        raise ConfigError(f"run {run.path} is not in the configured grid") from exc
    params = deep_merge(experiment["defaults"], overrides)
    params["cohort"] = overrides.get("cohort", experiment["cohort"])
    return params


def run_config_subset(config: Mapping[str, Any], run: RunId) -> dict[str, Any]:
    """The part of ``config`` one run depends on, itself a valid configuration.

    The workflow passes this (not the whole config) to a run, so that Snakemake re-runs a
    condition only when something that condition uses has changed.
    """
    experiment = config["experiments"][run.experiment]
    cohorts = {experiment["cohort"], condition_params(config, run)["cohort"]}
    return {
        "kafka": copy.deepcopy(config["kafka"]),
        "spark": copy.deepcopy(config["spark"]),
        "diagnostics": copy.deepcopy(config["diagnostics"]),
        "cohorts": {name: copy.deepcopy(config["cohorts"][name]) for name in sorted(cohorts)},
        "experiments": {
            run.experiment: {
                **copy.deepcopy(experiment),
                "repetitions": run.rep,
                "conditions": {
                    run.condition: copy.deepcopy(experiment["conditions"][run.condition])
                },
            }
        },
    }


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--config FILE`` (repeatable, later ones override) or ``--config-json JSON``: how every
    command takes its configuration (the workflow passes a run's slice as JSON)."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument(
        "--config",
        type=Path,
        action="append",
        help="config file(s), later ones override (repeatable)",
    )
    source.add_argument("--config-json", help="the configuration (or its slice) as inline JSON")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration named by ``add_config_arguments`` (default: config/config.yaml)."""
    if getattr(args, "config_json", None):
        return load_config_json(args.config_json)
    return load_config(args.config or [DEFAULT_CONFIG])
