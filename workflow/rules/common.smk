# Helpers shared by all workflow files: the package on the path, the run grid, parameter lookups,
# the settings files rules read, each rule's code inputs, the paper's generated inputs.
import functools
import hashlib
import json
import os
import re
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO / "scripts"))
# Shell jobs run `python -m vitalstream ...` (and papermill kernels import it): they find the
# package through PYTHONPATH, relative to the working directory, the repository root.
shell.prefix("export PYTHONPATH=scripts${{PYTHONPATH:+:$PYTHONPATH}}; ")

from vitalstream.__main__ import COMMANDS  # noqa: E402
from vitalstream.services import jars as vsjars  # noqa: E402
from vitalstream.services import supervise as vssupervise  # noqa: E402
from vitalstream.core import codepaths as vscodepaths  # noqa: E402
from vitalstream.core import config as vsconfig  # noqa: E402
from vitalstream.paper import papermap  # noqa: E402

# Every job inherits this process's environment (shell, script and run jobs, papermill
# kernels): the package's path, loopback-only Spark and a Java 17, so that a plain
# `snakemake` from an activated venv needs nothing more than `make paper` exports.
_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
_paths = [str(REPO / "scripts"), *_paths]
os.environ.update(PYTHONPATH=os.pathsep.join(dict.fromkeys(p for p in _paths if p)))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
if vsjars.DEFAULT_JAVA_HOME.is_dir():
    os.environ.setdefault("JAVA_HOME", str(vsjars.DEFAULT_JAVA_HOME))

vsconfig.validate(
    config
)  # the schema plus cross-key checks (an experiment's cohort exists)
RUNS = vsconfig.expand_runs(config)
# The window risk model (vitalstream.models.riskmodel): rule train_window_risk writes it; with
# risk_model.apply every job and the batch reference score each window with it, so every rule
# that runs one lists RISK_MODEL_INPUT (empty without a model).
RISK_MODEL = "results/models/window_risk/model.json"
if config.get("risk_model", {}).get("apply"):
    config["diagnostics"]["risk_model"] = RISK_MODEL
RISK_MODEL_INPUT = [p for p in [config["diagnostics"].get("risk_model")] if p]
# The local broker's and OpenSearch node's state files (vitalstream.services.broker,
# searchnode) sit in a directory of this invocation's own, results/.stack/<run id>/, which
# onstart creates and hands to the jobs as $VITALSTREAM_STACK_DIR (stack.smk): two workflows
# in one checkout never share them. Rules pass these strings as they are and the job's shell
# expands them, so the run id never enters a rule's params (it would re-run every job).
STACK_ROOT = "results/.stack"
STACK_STATE = f'"${vssupervise.STACK_DIR_ENV}/kafka.json"'
SEARCH_STATE = f'"${vssupervise.STACK_DIR_ENV}/opensearch.json"'
SEARCH = config.get("search", {"url": None, "index_prefix": "vitalstream"})
# Performance experiments (a `load` block) run as one group per experiment in one Spark
# session (vitalstream.experiments.perf); the others replay a cohort, one job per run.
LOAD_EXPERIMENTS = [
    name
    for name, spec in config["experiments"].items()
    if vsconfig.is_load_experiment(spec)
]
# Experiments whose runs differing only in window settings share one replay (vitalstream.experiments.siblings).
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
    """Shared replays: (experiment, index, runs) of every group (vitalstream.core.config)."""
    return [
        (experiment, index, runs)
        for experiment in SHARED_EXPERIMENTS
        for index, runs in enumerate(vsconfig.shared_replay_groups(config, experiment))
    ]


def experiment_files(experiment, name):
    """`name` of every run of one experiment, in grid order."""
    return [f"results/runs/{r.path}/{name}" for r in RUNS if r.experiment == experiment]


def validation_runs():
    """Runs compared with the batch reference: every run of the `validation` experiment."""
    return [run for run in RUNS if run.experiment == "validation"]


def indexes(run):
    """Does this run bulk-index its alerts into the search index (sinks.search_index)?"""
    params = vsconfig.condition_params(config, run)
    return bool(params.get("sinks", {}).get("search_index"))


# Runs whose alerts also go to the search index and get the serving outputs (vitalstream.sinks.search;
# rules in serving.smk). Fault runs index too (the workflow starts the node for them, stack.smk),
# but their index is audited in their own metrics.json, not served.
SEARCH_RUNS = [
    run
    for run in RUNS
    if indexes(run) and "fault" not in vsconfig.condition_params(config, run)
]


def search_url_arg():
    """--url for a configured server; else the node the workflow started (its state file).
    A list of arguments, each quoted in the command (`{params.url:q}`)."""
    return ["--url", SEARCH["url"]] if SEARCH["url"] else []


def bootstrap_args():
    """--bootstrap-servers for a configured cluster; else the workflow's broker (its state
    file). A list of arguments, each quoted in the command (`{params.bootstrap:q}`)."""
    servers = config["kafka"]["bootstrap_servers"]
    return ["--bootstrap-servers", servers] if servers else []


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


# PhysioNet sources (vitalstream.data.physionet): which ones, from where, on which timeline.
from vitalstream.data import physionet as vsphysionet  # noqa: E402

PHYSIONET = config.get("physionet", {})


def physionet_sources():
    """The configured PhysioNet sources (physionet.sources; default: all known)."""
    return list(PHYSIONET.get("sources", vsphysionet.SOURCES))


def physionet_mirror():
    """The mirror in use: $VITALSTREAM_PHYSIONET_MIRROR, else physionet.mirror (or None)."""
    return vsphysionet.resolve_mirror(PHYSIONET.get("mirror"))


def physionet_mirror_args(wildcards):
    """`--mirror DIR` for `vitalstream physionet` (nothing when no mirror is configured), as
    a list of arguments, each quoted in the command (`{params.mirror:q}`)."""
    mirror = physionet_mirror()
    return ["--mirror", str(mirror)] if mirror else []


def physionet_download_config(source):
    """What results/configs/physionet/<source>.json holds: the physionet block a download of
    `source` reads (base URL, its pinned version, download tunables; the mirror travels as
    --mirror), so editing one source's version re-fetches that source only."""
    return {
        "base_url": PHYSIONET["base_url"],
        "versions": {source: PHYSIONET["versions"][source]},
        "download": dict(PHYSIONET["download"]),
    }


def physionet_manifest(wildcards):
    """The mirror's manifest as a fetch input when the mirror exists, so a changed mirror
    re-fetches; an online fetch has no local input."""
    mirror = physionet_mirror()
    manifest = mirror / vsphysionet.MANIFEST_NAME if mirror else None
    return [str(manifest)] if manifest and manifest.is_file() else []


def physionet_start(wildcards):
    """The ISO-8601 time origin real records are laid on (physionet.start; quoted in
    the command)."""
    return PHYSIONET.get("start", vsphysionet.DEFAULT_START)


def group_files(experiment, name):
    """`name` of every run of one experiment (a performance group, the faults)."""
    return [f"results/runs/{r.path}/{name}" for r in RUNS if r.experiment == experiment]


def group_ceiling(experiment):
    """The raw ceiling a performance group measures in its own run, if it measures one."""
    wanted = config["experiments"][experiment].get("ceiling")
    return [f"results/runs/{experiment}/ceiling.json"] if wanted else []


def alternation(names):
    """A wildcard constraint matching exactly these names (never an empty pattern)."""
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


# Code inputs: the package sources a rule runs, found from its command (or notebook) by
# vitalstream.core.codepaths, so that editing a module re-runs exactly the rules that use it.
# The registry (vitalstream/__main__.py) is left out: an edit there that changes a command's
# module changes the rule's set of code inputs, which re-runs it (Snakemake's input trigger).
PACKAGE_SRC = Path("scripts")
COMMAND_MODULES = {
    name: f"vitalstream.{module}" for name, (module, _) in COMMANDS.items()
}


@functools.cache
def code_inputs(*commands, notebook=None):
    """The .py files `python -m vitalstream COMMAND` runs (and `notebook`'s code cells import),
    each module's imports followed transitively: a rule's `code` input."""
    unknown = [c for c in commands if c not in COMMAND_MODULES]
    if unknown:
        raise ValueError(
            f"code_inputs: no vitalstream command {unknown} (vitalstream/__main__.py)"
        )
    modules = [COMMAND_MODULES[c] for c in commands]
    if notebook:
        modules += vscodepaths.notebook_modules(Path(notebook), PACKAGE_SRC)
    return [str(p) for p in vscodepaths.closure(modules, PACKAGE_SRC, COMMAND_MODULES)]


def one_per_line(files):
    """`files` as one argument string a path a line (shell lines continued with a backslash):
    how a rule passes a long list, so that `snakemake -p` and logs stay readable."""
    return " \\\n    ".join(map(str, files))


COMMAND_IN_SHELL = re.compile(r"python -m vitalstream ([\w-]+)")


def check_code_inputs():
    """Every rule that runs package code declares exactly code_inputs() of its commands and its
    notebook as `code`: a rule that forgets it, or lists files by hand, is an error."""
    for each in workflow.rules:
        commands = COMMAND_IN_SHELL.findall(each.shellcmd or "")
        notebook = each.input.get("notebook")
        expected = (
            code_inputs(*commands, notebook=notebook) if commands or notebook else []
        )
        code = each.input.get("code", [])
        declared = [str(code)] if isinstance(code, str) else [str(f) for f in code]
        if declared != expected:
            args = [repr(c) for c in commands]
            args += [f"notebook={notebook!r}"] if notebook else []
            raise ValueError(
                f"{each.name} (a rule) must declare code=code_inputs({', '.join(args)}),"
                f" the package sources it runs; it declares {len(declared)} files instead"
            )


# The paper's generated inputs, from the rules' declared outputs under results/paper/ (in rule
# order): macro values (`*_values.json`, merged by write_macros) and the figures, tables and
# macros LaTeX reads (.tex, .pdf; build_paper). Called after the rules that make them.
PAPER_DIR = "results/paper"


def paper_outputs(*suffixes):
    """Every declared output of the rules so far directly in results/paper/ ending in one of
    `suffixes`."""
    outputs = [str(f) for rule in workflow.rules for f in rule.output]
    return [
        f for f in outputs if os.path.dirname(f) == PAPER_DIR and f.endswith(suffixes)
    ]


# Settings files (configs.smk): results/configs/<name>.json holds the slice of the config a rule
# depends on; rule write_config writes it. kind → (slice_of(rest of the name), keep key order?).
CONFIG_DIR = "results/configs"
CONFIG_SLICES = {}


def declare_config(kind, slice_of, ordered=False):
    """results/configs/<kind>[/<rest>].json holds slice_of(rest), a JSON value, with its keys
    sorted unless `ordered` (where the order of conditions is the order of runs or tables).
    """
    CONFIG_SLICES[kind] = (slice_of, ordered)


def config_file(name):
    """The settings file `name` (a rule's input; the name may hold the rule's wildcards)."""
    return f"{CONFIG_DIR}/{name}.json"


@functools.cache
def config_text(name):
    """What results/configs/<name>.json holds, as rule write_config writes it."""
    kind, _, rest = name.partition("/")
    if kind not in CONFIG_SLICES:
        known = ", ".join(sorted(CONFIG_SLICES))
        raise ValueError(
            f"{config_file(name)}: no config slice {kind!r} (known: {known})"
        )
    slice_of, ordered = CONFIG_SLICES[kind]
    text = json.dumps(slice_of(rest), indent=2, sort_keys=not ordered, default=str)
    return f"{text}\n"


def config_digest(name):
    """A short digest of config_text(name): what Snakemake records of a settings file."""
    return hashlib.sha256(config_text(name).encode()).hexdigest()[:16]


def shared_group_runs(name):
    """The runs of shared group `<experiment>/<index>` (shared_groups)."""
    experiment, index = name.rsplit("/", 1)
    return vsconfig.shared_replay_groups(config, experiment)[int(index)]


def gateway_block(name):
    """A condition's gateway block, `<experiment>/<condition>` (the same in every repetition)."""
    experiment, condition = name.split("/")
    run = vsconfig.RunId(experiment, condition, 1)
    return vsconfig.condition_params(config, run)["gateway"]


def paper_assets_config(_):
    """The config slice the pipeline figure and the tables of rules and scores depend on
    (diagnostics, the headline run's experiment, condition and cohort, PhysioNet sources).
    """
    run = vsconfig.RunId.parse(config["paper"]["headline_run"])
    subset = vsconfig.run_config_subset(config, run)
    subset.update(kafka={}, spark={}, paper={"headline_run": run.path})
    if "sources" in config.get("physionet", {}):
        subset["physionet"] = {"sources": list(config["physionet"]["sources"])}
    return subset


def results_only(files):
    """`files` (a path or a list) without settings files: those are no results."""
    if isinstance(files, str):
        return [] if files.startswith(f"{CONFIG_DIR}/") else files
    return [f for f in files if not f.startswith(f"{CONFIG_DIR}/")]


def paper_map(_):
    """Which rule made each generated paper file and which result files it read
    (papermap.build), from the paper rules as they are when the DAG is built (every rule file
    read)."""
    records = papermap.rule_records(workflow.rules)
    for record in records:
        record["inputs"] = {k: results_only(v) for k, v in record["inputs"].items()}
    return papermap.build(GENERATED, records)
