# Helpers shared by all workflow files: the package on the path, the run grid, parameter lookups.
import json
import os
import shlex
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO / "scripts"))
# Shell jobs run `python -m vitalstream ...` (and papermill kernels import it): they find the
# package through PYTHONPATH, relative to the working directory, the repository root.
shell.prefix("export PYTHONPATH=scripts${{PYTHONPATH:+:$PYTHONPATH}}; ")

from vitalstream import config as vsconfig  # noqa: E402

vsconfig.validate(
    config
)  # the schema plus cross-key checks (an experiment's cohort exists)
RUNS = vsconfig.expand_runs(config)
# The window risk model (vitalstream.riskmodel): rule train_window_risk writes it; with
# risk_model.apply every job and the batch reference score each window with it, so every rule
# that runs one lists RISK_MODEL_INPUT (empty without a model).
RISK_MODEL = "results/models/window_risk/model.json"
if config.get("risk_model", {}).get("apply"):
    config["diagnostics"]["risk_model"] = RISK_MODEL
RISK_MODEL_INPUT = [p for p in [config["diagnostics"].get("risk_model")] if p]
STACK_STATE = "results/.stack/kafka.json"
# The local OpenSearch node's state (vitalstream.searchnode), when search.url is null.
SEARCH_STATE = "results/.stack/opensearch.json"
SEARCH = config.get("search", {"url": None, "index_prefix": "vitalstream"})
# Performance experiments (a `load` block) run as one group per experiment in one Spark
# session (vitalstream.perf); the others replay a cohort, one job per run.
LOAD_EXPERIMENTS = [
    name
    for name, spec in config["experiments"].items()
    if vsconfig.is_load_experiment(spec)
]
# Experiments whose runs differing only in window settings share one replay (vitalstream.siblings).
SHARED_EXPERIMENTS = [
    name
    for name, spec in config["experiments"].items()
    if (spec.get("share_replay") or spec.get("share_session"))
    and name not in LOAD_EXPERIMENTS
]
REPLAY_EXPERIMENTS = [
    e
    for e in config["experiments"]
    if e not in LOAD_EXPERIMENTS and e not in SHARED_EXPERIMENTS
]


def run_of(wildcards):
    return vsconfig.RunId(wildcards.experiment, wildcards.condition, int(wildcards.rep))


def cohort_of(wildcards):
    """The cohort a run replays (the condition's, else its experiment's)."""
    return vsconfig.condition_params(config, run_of(wildcards))["cohort"]


def gateway_spec(wildcards):
    """A condition's gateway block as quoted JSON (the same in every repetition)."""
    run = vsconfig.RunId(wildcards.experiment, wildcards.condition, 1)
    return shlex.quote(json.dumps(vsconfig.condition_params(config, run)["gateway"]))


def gateway_input(wildcards):
    """The cohort events a condition's gateways reduce."""
    run = vsconfig.RunId(wildcards.experiment, wildcards.condition, 1)
    return f"data/cohorts/{vsconfig.condition_params(config, run)['cohort']}/events.parquet"


def run_events_of(run):
    """The events a run replays: its cohort's, or what its edge gateways made of them."""
    params = vsconfig.condition_params(config, run)
    if params.get("gateway"):
        return f"data/gateways/{run.experiment}/{run.condition}/events.parquet"
    return f"data/cohorts/{params['cohort']}/events.parquet"


def run_events(wildcards):
    return run_events_of(run_of(wildcards))


def run_labels(wildcards):
    """Ground truth of a run's cohort."""
    return f"data/cohorts/{cohort_of(wildcards)}/labels.parquet"


def baseline_metrics(wildcards):
    """metrics.json of the experiment's baseline condition (same repetition), if it has one
    (the baseline itself compares with itself)."""
    baseline = config["experiments"][wildcards.experiment].get("baseline")
    if not baseline:
        return []
    return [
        f"results/runs/{wildcards.experiment}/{baseline}/rep{wildcards.rep}/metrics.json"
    ]


def shared_groups():
    """Shared replays: (experiment, index, runs) of every group (vitalstream.config)."""
    return [
        (experiment, index, runs)
        for experiment in SHARED_EXPERIMENTS
        for index, runs in enumerate(vsconfig.shared_replay_groups(config, experiment))
    ]


def runs_config(runs):
    """The slice of the config a group of runs depends on, as quoted JSON."""
    return shlex.quote(
        json.dumps(vsconfig.runs_config_subset(config, runs), sort_keys=True)
    )


def experiment_files(experiment, name):
    """`name` of every run of one experiment, in grid order."""
    return [f"results/runs/{r.path}/{name}" for r in RUNS if r.experiment == experiment]


def validation_runs():
    """Runs compared with the batch reference: every run of the `validation` experiment."""
    return [run for run in RUNS if run.experiment == "validation"]


def cohort_args(wildcards):
    """The cohort's config entry as `--param key=value` arguments of `vitalstream cohort`."""
    items = config["cohorts"][wildcards.cohort].items()
    return " ".join(shlex.quote(f"--param={k}={json.dumps(v)}") for k, v in items)


def run_config(wildcards):
    """The slice of the config one run depends on, as JSON: editing another experiment, the
    paper section or another condition does not re-run this one."""
    subset = vsconfig.run_config_subset(config, run_of(wildcards))
    return shlex.quote(json.dumps(subset, sort_keys=True))


def indexes(run):
    """Does this run bulk-index its alerts into the search index (sinks.search_index)?"""
    params = vsconfig.condition_params(config, run)
    return bool(params.get("sinks", {}).get("search_index"))


# Runs whose alerts also go to the search index (vitalstream.search; rules in serving.smk).
SEARCH_RUNS = [run for run in RUNS if indexes(run)]


def search_url_arg():
    """--url for a configured server; else the node the workflow started (its state file)."""
    return f"--url {shlex.quote(SEARCH['url'])}" if SEARCH["url"] else ""


def serving_targets():
    files = ["check.json", "dashboard.html", "extract.hyper", "extract.json"]
    targets = [
        f"results/serving/{run.path}/{name}" for run in SEARCH_RUNS for name in files
    ]
    if SEARCH_RUNS:
        targets += [
            "results/serving/kibana/kibana8.ndjson",
            "results/serving/kibana/opensearch-dashboards.ndjson",
        ]
    return targets


def run_files(name):
    """`name` (e.g. metrics.json) of every run of the grid."""
    return [f"results/runs/{run.path}/{name}" for run in RUNS]


# PhysioNet sources (vitalstream.physionet): which ones, from where, on which timeline.
from vitalstream import physionet as vsphysionet  # noqa: E402

PHYSIONET = config.get("physionet", {})


def physionet_sources():
    """The configured PhysioNet sources (physionet.sources; default: all known)."""
    return list(PHYSIONET.get("sources", vsphysionet.SOURCES))


def physionet_mirror():
    """The mirror in use: $VITALSTREAM_PHYSIONET_MIRROR, else physionet.mirror (or None)."""
    return vsphysionet.resolve_mirror(PHYSIONET.get("mirror"))


def physionet_mirror_args(wildcards):
    """`--mirror DIR` for `vitalstream physionet` (nothing when no mirror is configured)."""
    mirror = physionet_mirror()
    return f"--mirror {shlex.quote(str(mirror))}" if mirror else ""


def physionet_manifest(wildcards):
    """The mirror's manifest as a fetch input when the mirror exists, so a changed mirror
    re-fetches; an online fetch has no local input."""
    mirror = physionet_mirror()
    manifest = mirror / vsphysionet.MANIFEST_NAME if mirror else None
    return [str(manifest)] if manifest and manifest.is_file() else []


def physionet_start(wildcards):
    """The ISO-8601 time origin real records are laid on (physionet.start)."""
    return shlex.quote(PHYSIONET.get("start", vsphysionet.DEFAULT_START))


def paper_assets_config():
    """The config slice the pipeline figure and the rule and score tables depend on, as quoted
    JSON: diagnostics, the headline run's experiment, condition and cohort, the PhysioNet
    sources. A params change re-runs write_paper_assets; other config edits do not."""
    run = vsconfig.RunId.parse(config["paper"]["headline_run"])
    subset = vsconfig.run_config_subset(config, run)
    subset.update(kafka={}, spark={}, paper={"headline_run": run.path})
    if "sources" in config.get("physionet", {}):
        subset["physionet"] = {"sources": list(config["physionet"]["sources"])}
    return shlex.quote(json.dumps(subset, sort_keys=True))


def group_files(experiment, name):
    """`name` of every run of one experiment (a performance group, the faults)."""
    return [f"results/runs/{r.path}/{name}" for r in RUNS if r.experiment == experiment]


def group_config(experiment):
    """The slice of the config a performance experiment depends on, as quoted JSON."""
    subset = vsconfig.experiment_config_subset(config, experiment)
    # Not sorted: the order of the conditions is the order of each round of repetitions.
    return shlex.quote(json.dumps(subset))


def alternation(names):
    """A wildcard constraint matching exactly these names (never an empty pattern)."""
    import re

    return "|".join(re.escape(n) for n in names) or "(?!)"


def gateway_reports(experiment):
    """The gateway report of every condition of an experiment that has gateways."""
    spec = config["experiments"][experiment]
    return [
        f"results/gateways/{experiment}/{condition}/gateway.json"
        for condition in vsconfig.experiment_conditions(spec)
        if vsconfig.condition_params(
            config, vsconfig.RunId(experiment, condition, 1)
        ).get("gateway")
    ]
