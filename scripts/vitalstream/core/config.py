"""Configuration: loading, validation and the expansion of the experimental grid.

The workflow (Snakefile) and the command line read the same YAML files and the same JSON schema
through this module, so a key means the same thing everywhere and an unknown key is an error in
both. The grid of runs is expanded here, in one place; rule files only ask for the list.

Not for: running anything. Functions here are pure apart from reading files.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vitalstream.core.cliargs import UsageError
from vitalstream.core.paths import resource

SCHEMA_PATH = resource("config/schema.yaml")
DEFAULT_CONFIG = resource("config/config.yaml")


class ConfigError(UsageError):
    """A configuration file is missing, malformed or does not match config/schema.yaml.

    A usage error: the command line prints it as one line and exits 2 (vitalstream.__main__),
    without importing this module (and jsonschema) for every command."""


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
        conditions = experiment_conditions(experiment)
        if not conditions:
            raise ConfigError(f"experiments/{name}: no conditions (give conditions or a grid)")
        for condition, overrides in conditions.items():
            where = f"experiments/{name}/conditions/{condition}"
            _check_condition(where, deep_merge(experiment["defaults"], overrides))
        if is_load_experiment(experiment):
            _check_load_experiment(name, experiment, conditions)
            continue
        if "cohort" not in experiment:
            raise ConfigError(f"experiments/{name}: a replay experiment needs a cohort")
        named = {f"experiments/{name}/cohort": experiment["cohort"]}
        named |= {
            f"experiments/{name}/conditions/{c}/cohort": p["cohort"]
            for c, p in conditions.items()
            if "cohort" in p
        }
        for where, cohort in named.items():
            if cohort not in cohorts:
                raise ConfigError(f"{where}: {cohort!r} is not a cohort (known: {sorted(cohorts)})")
        baseline = experiment.get("baseline")
        if baseline is not None and baseline not in conditions:
            raise ConfigError(f"experiments/{name}/baseline: {baseline!r} is not a condition")
        _check_search_index(name, experiment, conditions)
    risk = config.get("risk_model")
    if risk and risk["cohort"] not in cohorts:
        raise ConfigError(f"risk_model/cohort: {risk['cohort']!r} is not a cohort")
    rules = config.get("diagnostics", {})
    names = {r["name"] for key in ("window_rules", "reading_rules") for r in rules.get(key, [])}
    if risk and risk["name"] in names:
        raise ConfigError(f"risk_model/name: {risk['name']!r} is already a rule's name")
    _check_accuracy_groups(config)
    for key in ("headline_run", "risk_model_run", "serving_run"):
        run = config.get("paper", {}).get(key)
        if run and RunId.parse(run) not in expand_runs(config):
            raise ConfigError(f"paper/{key}: {run!r} is not a run of the grid")


# A condition name made by a grid becomes a path and a wildcard in rule commands.
CONDITION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
# Source options that would make the job skip readings, by Spark's (case-insensitive) name or
# prefix: the job always reads each topic from its earliest offset to its end, and fails
# rather than pass over records it cannot read (failOnDataLoss, Spark's default true).
SKIPPING_OPTION_PREFIXES = (
    "startingoffsets",
    "startingtimestamp",
    "endingoffsets",
    "endingtimestamp",
)
# Source options the job sets itself from the condition: an option would silently override
# them (another topic or broker, no cap on a batch).
JOB_OPTIONS = (
    "subscribe",
    "subscribepattern",
    "assign",
    "kafka.bootstrap.servers",
    "maxoffsetspertrigger",
)


def _check_condition(where: str, params: Mapping[str, Any]) -> None:
    """Cross-key checks of one condition after its experiment's defaults and its grid values
    are merged, where the schema sees neither: its name, its windows, its consumer options."""
    name = where.rsplit("/", 1)[-1]
    if not CONDITION_NAME.fullmatch(name):
        raise ConfigError(f"{where}: condition name {name!r} is not letters, digits, _ . + -")
    slide, window = params.get("slide_s"), params.get("window_s")
    if slide is not None and window is not None and slide > window:
        raise ConfigError(
            f"{where}/slide_s: {slide} s is longer than window_s {window} s, so readings "
            "between two windows would fall in none"
        )
    realtime = params.get("trigger_mode") == "realtime"
    if params.get("max_offsets_per_trigger", 1) is None and not realtime:
        raise ConfigError(
            f"{where}/max_offsets_per_trigger: null leaves the micro-batches uncapped, and a "
            "restart after a backlog would read all of it into the driver; only a real-time "
            "condition (no micro-batches) takes null"
        )
    options = (params.get("consumer") or {}).get("options") or {}
    for key, value in options.items():
        _check_consumer_option(f"{where}/consumer/options/{key}", str(key).lower(), value)


def _check_consumer_option(where: str, key: str, value: Any) -> None:
    """Refuse a Kafka source option that would skip readings or override the job's own."""
    if key.startswith(SKIPPING_OPTION_PREFIXES):
        raise ConfigError(
            f"{where}: the job reads every topic from its earliest offset to its end; a "
            "starting or ending offset or timestamp would skip readings"
        )
    if key == "failondataloss" and str(value).strip().lower() == "false":
        raise ConfigError(
            f"{where}: false would let the job pass over readings it cannot read; it must "
            "fail instead (Spark's default, true)"
        )
    if key in JOB_OPTIONS:
        raise ConfigError(
            f"{where}: set by the job itself from the condition (topic, broker, "
            "max_offsets_per_trigger); an option would override it"
        )


def _check_search_index(
    name: str, experiment: Mapping[str, Any], conditions: Mapping[str, Mapping[str, Any]]
) -> None:
    """sinks.search_index is a sink of single runs (vitalstream.experiments.run) and fault runs
    (vitalstream.experiments.faults): a shared session would ignore it, and an index that stays
    empty must not pass unnoticed."""
    shared = experiment.get("share_session") or experiment.get("share_replay")
    for condition, overrides in conditions.items():
        params = deep_merge(experiment.get("defaults", {}), overrides)
        if (params.get("sinks") or {}).get("search_index") and shared:
            raise ConfigError(
                f"experiments/{name}/conditions/{condition}: sinks.search_index is for single "
                "runs only (not shared sessions)"
            )


def _check_accuracy_groups(config: Mapping[str, Any]) -> None:
    """Every rule an accuracy group names is a diagnostic rule."""
    diagnostics = config.get("diagnostics", {})
    known = {
        rule["name"]
        for kind in ("window_rules", "reading_rules", "change_rules", "anomaly")
        for rule in diagnostics.get(kind, [])
    }
    if config.get("risk_model"):  # its alerts (none when it is not applied)
        known.add(config["risk_model"]["name"])
    for group, rules in config.get("accuracy", {}).get("groups", {}).items():
        unknown = sorted(set(rules) - known)
        if unknown:
            raise ConfigError(f"accuracy/groups/{group}: unknown rules {unknown}")


def is_load_experiment(experiment: Mapping[str, Any]) -> bool:
    """A performance experiment: synthetic load (ingest.load) instead of a cohort replay,
    all of its runs in one Spark session (vitalstream.experiments.perf)."""
    return "load" in experiment["defaults"]


def _check_load_experiment(
    name: str, experiment: Mapping[str, Any], conditions: Mapping[str, Any]
) -> None:
    """Conditions of a shared-session group may only change settings Spark reads per query."""
    for condition, overrides in conditions.items():
        params = deep_merge(experiment["defaults"], overrides)
        load = params.get("load", {})
        if ("rates" in load) == ("rates_per_patient" in load):
            raise ConfigError(
                f"experiments/{name}/{condition}: load needs exactly one of rates and "
                "rates_per_patient"
            )
        fixed = sorted(k for k in overrides.get("spark_conf", {}) if not k.startswith("spark.sql."))
        if fixed:
            raise ConfigError(
                f"experiments/{name}/conditions/{condition}/spark_conf: {fixed} cannot change "
                "inside the experiment's shared Spark session (only spark.sql.* settings can); "
                "set them in the experiment's defaults"
            )


def _grid_value_label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def experiment_conditions(experiment: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The named conditions of an experiment: its ``conditions`` plus the cross product of its
    ``grid`` axes (a dotted ``param`` sets a nested key; the name joins label and value),
    restricted to ``select`` when given (how a profile runs part of a grid)."""
    conditions = _all_conditions(experiment)
    selected = experiment.get("select")
    if selected is None:
        return conditions
    unknown = sorted(set(selected) - set(conditions))
    if unknown:
        raise ConfigError(
            f"select names unknown conditions {unknown} (known: {sorted(conditions)})"
        )
    return {name: conditions[name] for name in conditions if name in selected}


def _all_conditions(experiment: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    conditions = {name: dict(c) for name, c in (experiment.get("conditions") or {}).items()}
    axes = experiment.get("grid") or []
    if not axes:
        return conditions
    import itertools

    for combo in itertools.product(*[axis["values"] for axis in axes]):
        name = "_".join(
            f"{axis['label']}{_grid_value_label(value)}"
            for axis, value in zip(axes, combo, strict=True)
        )
        overrides: dict[str, Any] = {}
        for axis, value in zip(axes, combo, strict=True):
            *parents, leaf = axis["param"].split(".")
            node = overrides
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        conditions[name] = overrides
    return conditions


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
        for condition in experiment_conditions(experiment)
        for rep in range(1, experiment["repetitions"] + 1)
    ]


# Settings only the windows query reads: runs that differ in nothing else can share one replay.
SHARED_REPLAY_KEYS = ("watermark_s", "window_s", "slide_s")


def replay_key(params: Mapping[str, Any]) -> str:
    """What decides a run's Kafka input: everything but the windows query's settings. Runs
    with the same key (and the same events) can read one replay (experiments.siblings)."""
    return json.dumps(
        {k: v for k, v in params.items() if k not in SHARED_REPLAY_KEYS}, sort_keys=True
    )


def shared_replay_groups(config: Mapping[str, Any], experiment: str) -> list[list[RunId]]:
    """The runs of a ``share_replay`` or ``share_session`` experiment, grouped into Spark
    sessions (experiments.siblings), per repetition: ``share_replay`` groups runs that differ
    only in the windows query's settings (one replay, a job per run); ``share_session`` puts
    every run of a repetition in one session (a replay per distinct input)."""
    spec = config["experiments"][experiment]
    whole = bool(spec.get("share_session"))
    groups: dict[tuple[int, str], list[RunId]] = {}
    for run in expand_runs(config):
        if run.experiment != experiment:
            continue
        params = condition_params(config, run)
        key = replay_key({"spark_conf": params["spark_conf"]} if whole else params)
        groups.setdefault((run.rep, key), []).append(run)
    return list(groups.values())


def condition_params(config: Mapping[str, Any], run: RunId) -> dict[str, Any]:
    """The full parameter set of a run's condition: experiment defaults, then the condition."""
    try:
        experiment = config["experiments"][run.experiment]
        overrides = experiment_conditions(experiment)[run.condition]
    except KeyError as exc:
        raise ConfigError(f"run {run.path} is not in the configured grid") from exc
    params = deep_merge(experiment["defaults"], overrides)
    params["cohort"] = overrides.get("cohort", experiment.get("cohort"))
    return params


def run_config_subset(config: Mapping[str, Any], run: RunId) -> dict[str, Any]:
    """The part of ``config`` one run depends on, itself a valid configuration.

    The workflow passes this (not the whole config) to a run, so that Snakemake re-runs a
    condition only when something that condition uses has changed.
    """
    experiment = config["experiments"][run.experiment]
    cohorts = {experiment.get("cohort"), condition_params(config, run)["cohort"]} - {None}
    condition = experiment_conditions(experiment)[run.condition]
    # The grid, a selection and the accuracy baseline are the workflow's business, not a run's.
    ignored = {"grid", "select", "baseline"}
    experiment = {k: v for k, v in experiment.items() if k not in ignored}
    # The search server matters only to a run that indexes its alerts.
    indexes = condition_params(config, run).get("sinks", {}).get("search_index")
    search = {"search": copy.deepcopy(config["search"])} if indexes and "search" in config else {}
    return {
        **search,
        "kafka": copy.deepcopy(config["kafka"]),
        "spark": copy.deepcopy(config["spark"]),
        "diagnostics": copy.deepcopy(config["diagnostics"]),
        **({"checks": copy.deepcopy(config["checks"])} if "checks" in config else {}),
        **({"devices": copy.deepcopy(config["devices"])} if "devices" in config else {}),
        "cohorts": {name: copy.deepcopy(config["cohorts"][name]) for name in sorted(cohorts)},
        "experiments": {
            run.experiment: {
                **copy.deepcopy(experiment),
                "repetitions": run.rep,
                "conditions": {run.condition: copy.deepcopy(condition)},
            }
        },
    }


def runs_config_subset(config: Mapping[str, Any], runs: Iterable[RunId]) -> dict[str, Any]:
    """The part of ``config`` a group of runs of one experiment and repetition depends on
    (a shared replay): :func:`run_config_subset` of each, merged."""
    runs = list(runs)
    subset = run_config_subset(config, runs[0])
    for run in runs[1:]:
        other = run_config_subset(config, run)
        subset["cohorts"].update(other["cohorts"])
        subset["experiments"][run.experiment]["conditions"].update(
            other["experiments"][run.experiment]["conditions"]
        )
    return subset


def experiment_config_subset(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The part of ``config`` a whole experiment depends on (a shared-session group)."""
    experiment = config["experiments"][name]
    cohorts = {experiment.get("cohort")} | {
        c.get("cohort") for c in experiment_conditions(experiment).values()
    }
    return {
        "kafka": copy.deepcopy(config["kafka"]),
        "spark": copy.deepcopy(config["spark"]),
        "diagnostics": copy.deepcopy(config["diagnostics"]),
        **({"checks": copy.deepcopy(config["checks"])} if "checks" in config else {}),
        **({"devices": copy.deepcopy(config["devices"])} if "devices" in config else {}),
        # A group that measures the raw ceiling in its own run reads the top-level block.
        **({"ceiling": copy.deepcopy(config["ceiling"])} if experiment.get("ceiling") else {}),
        "cohorts": {n: copy.deepcopy(config["cohorts"][n]) for n in sorted(cohorts - {None})},
        "experiments": {name: copy.deepcopy(experiment)},
    }


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--config FILE`` (repeatable, later ones override), ``--config-file FILE`` or
    ``--config-json JSON``: how every command takes its configuration (the workflow writes a
    run's slice to a small JSON file, rule write_config, and passes ``--config-file``)."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument(
        "--config",
        type=Path,
        action="append",
        help="config file(s), later ones override (repeatable)",
    )
    source.add_argument(
        "--config-file",
        type=Path,
        help="the configuration (or its slice) in one JSON or YAML file, as --config-json",
    )
    source.add_argument("--config-json", help="the configuration (or its slice) as inline JSON")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration named by ``add_config_arguments`` (default: config/config.yaml)."""
    if getattr(args, "config_json", None):
        return load_config_json(args.config_json)
    path = getattr(args, "config_file", None)
    if path:
        # A .json file is read as JSON (YAML reads some JSON numbers, 1e-05, as strings).
        kind = "JSON" if Path(path).suffix == ".json" else "YAML"
        try:
            text = Path(path).read_text()
            config = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
        except OSError as exc:
            raise ConfigError(f"--config-file {path}: cannot read it: {exc}") from exc
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"--config-file {path} is not valid {kind}: {exc}") from exc
        if not isinstance(config, Mapping):
            raise ConfigError(f"--config-file {path} must hold a mapping at the top level")
        validate(config)
        return config
    return load_config(args.config or [DEFAULT_CONFIG])
