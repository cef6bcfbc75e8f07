"""Configuration: the schema rejects what it does not know, the grid expands as documented."""

from __future__ import annotations

import ast
import copy
import itertools
import json
from pathlib import Path

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.config import ConfigError, RunId
from vitalstream.measure.perfreport import setting_changes

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "config" / "profiles" / "quick.yaml"


@pytest.fixture(scope="module")
def full() -> dict:
    return vsconfig.load_config([vsconfig.DEFAULT_CONFIG])


def test_shipped_configs_validate(full):
    quick = vsconfig.load_config([vsconfig.DEFAULT_CONFIG, QUICK])
    assert quick["cohorts"]["main"]["patients"] < full["cohorts"]["main"]["patients"]
    # The profile overrides only what it names: the rest comes from config.yaml.
    assert quick["experiments"]["validation"] == full["experiments"]["validation"]
    # The performance grid is reduced, never enlarged.
    quick_runs, full_runs = vsconfig.expand_runs(quick), vsconfig.expand_runs(full)
    assert set(quick_runs) < set(full_runs) or len(quick_runs) < len(full_runs)


@pytest.mark.parametrize(
    "path",
    [
        ("unknown_top",),
        ("kafka", "bootstrap"),
        ("cohorts", "main", "patient"),
        ("experiments", "skeleton", "defaults", "window"),
        ("experiments", "skeleton", "defaults", "producer", "linger"),
    ],
)
def test_unknown_keys_are_errors_naming_the_key(full, path):
    broken = copy.deepcopy(full)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 1
    with pytest.raises(ConfigError, match=path[-1]):
        vsconfig.validate(broken)


def test_wrong_types_and_ranges_are_errors(full):
    broken = copy.deepcopy(full)
    broken["experiments"]["skeleton"]["defaults"]["kafka_partitions"] = 0
    with pytest.raises(ConfigError, match="kafka_partitions"):
        vsconfig.validate(broken)


def test_experiment_must_name_a_cohort(full):
    broken = copy.deepcopy(full)
    broken["experiments"]["skeleton"]["cohort"] = "nope"
    with pytest.raises(ConfigError, match="not a cohort"):
        vsconfig.validate(broken)


@pytest.mark.parametrize("key", ["headline_run", "risk_model_run", "serving_run"])
def test_paper_runs_must_be_in_the_grid(full, key):
    broken = copy.deepcopy(full)
    broken["paper"][key] = "skeleton/base/rep9"
    with pytest.raises(ConfigError, match=key):
        vsconfig.validate(broken)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("cohort", "nope", "risk_model/cohort"),
        ("name", "tachycardia", "already a rule"),
        ("unknown_key", 1, "Additional properties"),
    ],
)
def test_risk_model_settings_are_checked(full, key, value, message):
    broken = copy.deepcopy(full)
    broken["risk_model"][key] = value
    with pytest.raises(ConfigError, match=message):
        vsconfig.validate(broken)


def test_grid_expands_experiments_conditions_and_repetitions(full):
    grid = copy.deepcopy(full)
    grid["experiments"]["skeleton"]["repetitions"] = 3
    grid["experiments"]["skeleton"]["conditions"] = {"a": {}, "b": {"kafka_partitions": 6}}
    runs = [r for r in vsconfig.expand_runs(grid) if r.experiment == "skeleton"]
    assert [r.path for r in runs] == [
        "skeleton/a/rep1",
        "skeleton/a/rep2",
        "skeleton/a/rep3",
        "skeleton/b/rep1",
        "skeleton/b/rep2",
        "skeleton/b/rep3",
    ]
    params = vsconfig.condition_params(grid, RunId("skeleton", "b", 2))
    assert params["kafka_partitions"] == 6
    assert params["window_s"] == full["experiments"]["skeleton"]["defaults"]["window_s"]
    assert params["cohort"] == "main"


def test_run_subset_is_a_valid_config_holding_only_that_run(full):
    run = RunId("skeleton", "base", 1)
    subset = vsconfig.run_config_subset(full, run)
    vsconfig.validate(subset)
    assert vsconfig.expand_runs(subset) == [run]
    assert "paper" not in subset


def test_a_runs_subset_carries_the_message_checks_it_runs_with(full):
    """A run started by the workflow reads only its subset: without the ``checks`` section it
    would silently run with the default band instead of the configured one."""
    changed = copy.deepcopy(full)
    changed["checks"]["event_time_max_ahead_s"] = 42
    for subset in (
        vsconfig.run_config_subset(changed, RunId("skeleton", "base", 1)),
        vsconfig.experiment_config_subset(changed, "rq5"),
    ):
        assert subset["checks"]["event_time_max_ahead_s"] == 42


def test_run_id_round_trip_and_errors():
    assert RunId.parse("rq1/p12_n10000/rep3") == RunId("rq1", "p12_n10000", 3)
    assert RunId.parse("rq1/p12_n10000/rep3").path == "rq1/p12_n10000/rep3"
    with pytest.raises(ConfigError):
        RunId.parse("rq1/rep3")


def test_deep_merge_recurses_into_mappings_only():
    merged = vsconfig.deep_merge({"a": {"x": 1, "y": [1]}, "b": 1}, {"a": {"y": [2]}, "c": 3})
    assert merged == {"a": {"x": 1, "y": [2]}, "b": 1, "c": 3}


def test_missing_file_and_bad_yaml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        vsconfig.load_config([tmp_path / "nope.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        vsconfig.load_config([bad])


def test_a_condition_may_replay_its_own_cohort(full):
    params = vsconfig.condition_params(full, RunId("validation", "late", 1))
    assert params["cohort"] == "validation_late"
    subset = vsconfig.run_config_subset(full, RunId("validation", "late", 1))
    assert "validation_late" in subset["cohorts"]
    broken = copy.deepcopy(full)
    broken["experiments"]["validation"]["conditions"]["late"]["cohort"] = "nope"
    with pytest.raises(ConfigError, match="conditions/late/cohort"):
        vsconfig.validate(broken)


def test_grid_axes_expand_into_named_conditions(full):
    experiment = full["experiments"]["rq1"]
    conditions = vsconfig.experiment_conditions(experiment)
    axes = experiment["grid"]
    assert len(conditions) == len(axes[0]["values"]) * len(axes[1]["values"])
    params = vsconfig.condition_params(full, RunId("rq1", "p10000_k6", 1))
    assert params["load"]["patients"] == 10000 and params["kafka_partitions"] == 6
    # The nested default survives the dotted override.
    assert params["load"]["rates_per_patient"] == [1]


def test_full_profile_repeats_performance_runs_at_least_three_times(full):
    for name in ("rq1", "rq5"):
        assert full["experiments"][name]["repetitions"] >= 3


def test_select_restricts_and_rejects_unknown_conditions(full):
    config = copy.deepcopy(full)
    config["experiments"]["rq5"]["select"] = ["tuned", "blueprint"]
    assert {r.condition for r in vsconfig.expand_runs(config) if r.experiment == "rq5"} == {
        "tuned",
        "blueprint",
    }
    config["experiments"]["rq5"]["select"] = ["nope"]
    with pytest.raises(ConfigError, match="nope"):
        vsconfig.validate(config)


def test_shared_session_rejects_settings_spark_fixes_at_start(full):
    config = copy.deepcopy(full)
    config["experiments"]["rq5"]["conditions"]["tuned"] = {
        "spark_conf": {"spark.driver.memory": "8g"}
    }
    with pytest.raises(ConfigError, match=r"spark\.driver\.memory"):
        vsconfig.validate(config)


@pytest.mark.parametrize(("experiment", "condition"), [("validation", "in_order")])
def test_search_index_is_refused_where_no_single_run_would_index(full, experiment, condition):
    config = copy.deepcopy(full)
    overrides = config["experiments"][experiment]["conditions"][condition]
    overrides["sinks"] = {"search_index": True}
    with pytest.raises(ConfigError, match="search_index is for single runs"):
        vsconfig.validate(config)


def test_search_settings_are_checked(full):
    config = copy.deepcopy(full)
    config["search"]["url"] = "127.0.0.1:9200"  # no scheme
    with pytest.raises(ConfigError, match="search/url"):
        vsconfig.validate(config)


def test_load_needs_exactly_one_kind_of_rate(full):
    config = copy.deepcopy(full)
    config["experiments"]["rq5"]["defaults"]["load"]["rates_per_patient"] = [1]
    with pytest.raises(ConfigError, match="exactly one"):
        vsconfig.validate(config)


def test_experiment_subset_is_valid_and_keeps_condition_order(full):
    subset = vsconfig.experiment_config_subset(full, "rq5")
    vsconfig.validate(subset)
    assert list(subset["experiments"]) == ["rq5"]
    conditions = list(vsconfig.experiment_conditions(subset["experiments"]["rq5"]))
    assert conditions == list(full["experiments"]["rq5"]["conditions"])


def test_run_subset_of_a_grid_condition_is_valid(full):
    subset = vsconfig.run_config_subset(full, RunId("rq1", "p100_k48", 2))
    vsconfig.validate(subset)
    assert vsconfig.expand_runs(subset)[-1] == RunId("rq1", "p100_k48", 2)


def test_fault_conditions_validate_and_reject_unknown_kinds_and_keys(full):
    faults = {c: p["fault"]["kind"] for c, p in full["experiments"]["faults"]["conditions"].items()}
    assert set(faults.values()) == {"spark_kill", "broker_restart", "broker_kill"}
    for bad in ({"kind": "disk_full"}, {"kind": "spark_kill", "after": 3}, {"after_batches": 3}):
        broken = copy.deepcopy(full)
        broken["experiments"]["faults"]["conditions"]["spark_kill"]["fault"] = bad
        with pytest.raises(ConfigError, match="fault"):
            vsconfig.validate(broken)


def test_consumer_settings_are_checked(full):
    broken = copy.deepcopy(full)
    broken["experiments"]["rq5"]["conditions"]["tuned"] = {"consumer": {"fetch_wait": 1}}
    with pytest.raises(ConfigError, match="fetch_wait"):
        vsconfig.validate(broken)


def test_shared_replays_group_runs_that_differ_only_in_window_settings(full):
    groups = vsconfig.shared_replay_groups(full, "rq3")
    # One group per delay model (cohort), each with every watermark.
    watermarks = full["experiments"]["rq3"]["grid"][1]["values"]
    assert len(groups) == len(full["experiments"]["rq3"]["grid"][0]["values"])
    for runs in groups:
        params = [vsconfig.condition_params(full, run) for run in runs]
        assert sorted(p["watermark_s"] for p in params) == sorted(watermarks)
        assert len({p["cohort"] for p in params}) == 1
    # A group's config slice is valid and holds exactly its runs.
    subset = vsconfig.runs_config_subset(full, groups[0])
    assert set(vsconfig.expand_runs(subset)) == set(groups[0])


def test_a_grid_axis_may_have_an_empty_label(full):
    names = vsconfig.experiment_conditions(full["experiments"]["rq3"])
    assert "late_none_w0" in names


def test_accuracy_baseline_and_groups_are_checked(full):
    bad = copy.deepcopy(full)
    bad["experiments"]["rq2"]["baseline"] = "nothing"
    with pytest.raises(ConfigError, match="baseline"):
        vsconfig.validate(bad)
    bad = copy.deepcopy(full)
    bad["accuracy"]["groups"]["news2_5"] = ["news2_mediun"]
    with pytest.raises(ConfigError, match="news2_mediun"):
        vsconfig.validate(bad)
    # A run's slice drops the baseline (the workflow's business), so it stays valid.
    vsconfig.validate(vsconfig.run_config_subset(full, RunId("rq2", "coalesce10", 1)))


def test_gateway_settings_are_schema_checked(full):
    bad = copy.deepcopy(full)
    bad["experiments"]["rq2"]["conditions"]["coalesce10"]["gateway"]["secs"] = 10
    with pytest.raises(ConfigError, match="secs"):
        vsconfig.validate(bad)


def test_config_file_holds_a_slice_as_config_json_does(full, tmp_path):
    """The workflow writes a run's slice to results/configs/ and passes --config-file: the
    command reads the same configuration as from the inline JSON, from JSON or YAML."""
    import argparse
    import json

    import yaml

    subset = vsconfig.run_config_subset(full, RunId("rq3", "late_exp60_w0", 1))
    parser = argparse.ArgumentParser()
    vsconfig.add_config_arguments(parser)
    as_json, as_yaml = tmp_path / "run.json", tmp_path / "run.yaml"
    as_json.write_text(json.dumps(subset, indent=2, sort_keys=True))
    as_yaml.write_text(yaml.safe_dump(subset))
    inline = vsconfig.config_from_args(parser.parse_args(["--config-json", json.dumps(subset)]))
    assert inline == subset
    for path in (as_json, as_yaml):
        assert vsconfig.config_from_args(parser.parse_args(["--config-file", str(path)])) == inline
    with pytest.raises(SystemExit):  # one source of configuration, not two
        parser.parse_args(["--config-file", str(as_json), "--config-json", "{}"])


def test_a_bad_config_file_is_an_error_naming_it(full, tmp_path):
    import argparse
    import json

    parser = argparse.ArgumentParser()
    vsconfig.add_config_arguments(parser)
    broken = tmp_path / "broken.json"
    broken.write_text('{"kafka": ')
    with pytest.raises(ConfigError, match=r"broken\.json is not valid JSON"):
        vsconfig.config_from_args(parser.parse_args(["--config-file", str(broken)]))
    with pytest.raises(ConfigError, match=r"nope\.json: cannot read it"):
        vsconfig.config_from_args(parser.parse_args(["--config-file", str(tmp_path / "nope.json")]))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**full, "unknown_top": 1}))
    with pytest.raises(ConfigError, match="unknown_top"):
        vsconfig.config_from_args(parser.parse_args(["--config-file", str(unknown)]))


def test_json_arguments_come_inline_or_from_a_file(tmp_path):
    """`--spec @FILE` reads the file; bad JSON or a missing file is one argparse error."""
    import argparse

    from vitalstream.core.cliargs import json_argument

    path = tmp_path / "spec.json"
    path.write_text('{"mode": "sample", "n": 2}')
    assert json_argument(f"@{path}") == {"mode": "sample", "n": 2}
    assert json_argument('{"a": [1]}') == {"a": [1]}
    with pytest.raises(argparse.ArgumentTypeError, match="cannot read"):
        json_argument(f"@{tmp_path / 'missing.json'}")
    with pytest.raises(argparse.ArgumentTypeError, match="not JSON"):
        json_argument("{mode: sample}")


# ------------------------------------------------------------ bad input refused at the edge


@pytest.mark.parametrize(
    "value",
    [
        "localhost:9092; rm -rf ~",
        "localhost:9092 other:9092",
        "$(reboot):9092",
        "localhost",  # no port
        "localhost:9092,",
        "localhost:9092\n",
        "'localhost:9092'",
    ],
)
def test_shell_metacharacters_in_bootstrap_servers_are_refused(full, value):
    broken = copy.deepcopy(full)
    broken["kafka"]["bootstrap_servers"] = value
    with pytest.raises(ConfigError, match="kafka/bootstrap_servers"):
        vsconfig.validate(broken)


@pytest.mark.parametrize(
    "value",
    [None, "127.0.0.1:9092", "kafka-1.example.org:9092,kafka-2:9093,[::1]:9094"],
)
def test_host_lists_validate(full, value):
    config = copy.deepcopy(full)
    config["kafka"]["bootstrap_servers"] = value
    vsconfig.validate(config)


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("url", "https://search.example.org:9200/es", "http://127.0.0.1:9200 ; rm -rf ~"),
        ("url", "http://127.0.0.1:9200", "http://user:secret@127.0.0.1:9200"),
        ("url", "http://[::1]:9200", "http://127.0.0.1:9200/?q=$(id)"),
    ],
)
def test_search_url_is_a_plain_http_url(full, key, good, bad):
    config = copy.deepcopy(full)
    config["search"][key] = good
    vsconfig.validate(config)
    config["search"][key] = bad
    with pytest.raises(ConfigError, match=f"search/{key}"):
        vsconfig.validate(config)


@pytest.mark.parametrize(
    ("master", "valid"),
    [
        ("local[2]", True),
        ("local[*]", True),
        ("spark://127.0.0.1:7077", True),
        ("spark://a:7077,b:7077", True),
        ("spark://127.0.0.1:7077 --conf x=y", False),
        ("spark://host", False),
    ],
)
def test_spark_master_is_a_master_url(full, master, valid):
    config = copy.deepcopy(full)
    config["spark"]["conf"] = {"spark.master": master}
    if valid:
        vsconfig.validate(config)
    else:
        with pytest.raises(ConfigError, match=r"spark\.master"):
            vsconfig.validate(config)


def test_slide_longer_than_window_is_refused_after_defaults_and_grid(full):
    broken = copy.deepcopy(full)
    broken["experiments"]["validation"]["conditions"]["sliding"]["slide_s"] = 90  # window 60
    with pytest.raises(ConfigError, match="validation/conditions/sliding/slide_s"):
        vsconfig.validate(broken)
    # A grid axis over window_s against a slide set in the defaults.
    broken = copy.deepcopy(full)
    broken["experiments"]["ablation"]["defaults"]["slide_s"] = 45
    with pytest.raises(ConfigError, match="ablation/conditions/win30/slide_s"):
        vsconfig.validate(broken)
    equal = copy.deepcopy(full)
    equal["experiments"]["validation"]["conditions"]["sliding"]["slide_s"] = 60
    vsconfig.validate(equal)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("startingOffsets", "latest", "skip readings"),
        ("STARTINGOFFSETS", "latest", "skip readings"),
        ("startingOffsetsByTimestamp", '{"t": {"0": 1}}', "skip readings"),
        ("startingTimestamp", "1767225600000", "skip readings"),
        ("endingOffsets", "latest", "skip readings"),
        ("endingOffsetsByTimestamp", '{"t": {"0": 1}}', "skip readings"),
        ("failOnDataLoss", "false", "must fail"),
        ("failOnDataLoss", "False", "must fail"),
        ("maxOffsetsPerTrigger", 10**9, "set by the job"),
        ("subscribe", "another-topic", "set by the job"),
    ],
)
def test_consumer_options_that_skip_readings_are_refused(full, option, value, message):
    broken = copy.deepcopy(full)
    consumer = broken["experiments"]["faults"]["defaults"]["consumer"]
    consumer["options"][option] = value
    with pytest.raises(ConfigError, match=f"consumer/options/{option}: .*{message}"):
        vsconfig.validate(broken)
    fine = copy.deepcopy(full)
    fine["experiments"]["faults"]["defaults"]["consumer"]["options"]["failOnDataLoss"] = "true"
    vsconfig.validate(fine)


def test_every_condition_has_a_finite_batch_cap(full):
    quick = vsconfig.load_config([vsconfig.DEFAULT_CONFIG, QUICK])
    for config in (full, quick):
        for run in vsconfig.expand_runs(config):
            params = vsconfig.condition_params(config, run)
            if params.get("trigger_mode") == "realtime":  # no micro-batches
                continue
            assert isinstance(params["max_offsets_per_trigger"], int), run
    assert (
        vsconfig.condition_params(full, RunId("rq3", "late_none_w0", 1))["max_offsets_per_trigger"]
        == 2000
    )
    for where in ({"max_offsets_per_trigger": None}, {}):
        broken = copy.deepcopy(full)
        defaults = broken["experiments"]["skeleton"]["defaults"]
        defaults.pop("max_offsets_per_trigger")
        defaults.update(where)
        with pytest.raises(ConfigError, match="max_offsets_per_trigger"):
            vsconfig.validate(broken)
    broken = copy.deepcopy(full)
    broken["experiments"]["skeleton"]["conditions"]["base"]["max_offsets_per_trigger"] = None
    with pytest.raises(ConfigError, match="base/max_offsets_per_trigger: null leaves"):
        vsconfig.validate(broken)


def test_a_real_time_condition_gets_no_cap():
    """Spark refuses maxOffsetsPerTrigger in real-time mode: one inherited from the defaults
    is not applied."""
    from vitalstream.core.runsettings import ConditionSettings

    given = {"kafka_partitions": 2, "window_s": 60, "watermark_s": 10, "speedup": 60}
    capped = {**given, "max_offsets_per_trigger": 500_000}
    assert ConditionSettings.from_params(capped, "c").max_offsets_per_trigger == 500_000
    realtime = {**capped, "trigger_mode": "realtime", "trigger_ms": 5000}
    assert ConditionSettings.from_params(realtime, "c").max_offsets_per_trigger is None


@pytest.mark.parametrize("section", ["cohorts", "experiments"])
def test_names_that_become_paths_are_plain(full, section):
    broken = copy.deepcopy(full)
    broken[section]["it's mine"] = copy.deepcopy(broken[section]["validation"])
    with pytest.raises(ConfigError, match="it's mine"):
        vsconfig.validate(broken)


def test_grid_values_that_make_unsafe_condition_names_are_refused(full):
    broken = copy.deepcopy(full)
    broken["experiments"]["ablation"]["grid"][0]["values"] = [30, "60; rm -rf ~"]
    with pytest.raises(ConfigError, match="condition name"):
        vsconfig.validate(broken)


def test_the_rq5_chain_changes_one_group_of_settings_per_link():
    """The rq5 notebook's chain (its parameters cell) runs from the blueprint's configuration
    to the tuned one through conditions of the config, each one group of settings (a block
    such as the producer, or one setting) away from the one before."""
    notebook = json.loads((REPO / "notebooks" / "rq5_tuning.ipynb").read_text())
    parameters = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    tree = ast.parse("".join(parameters["source"]))
    chain = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "chain"
    )
    config = vsconfig.load_config([vsconfig.DEFAULT_CONFIG])
    rq5 = config["experiments"]["rq5"]
    params = {name: vsconfig.deep_merge(rq5["defaults"], rq5["conditions"][name]) for name in chain}
    assert chain[0] == "blueprint_fixed" and chain[-1] == "tuned_fixed"
    for before, after in itertools.pairwise(chain):
        groups = {change.split(".")[0].split(":")[0] for change in setting_changes(
            params[before], params[after])}  # fmt: skip
        assert len(groups) == 1, (before, after, groups)
