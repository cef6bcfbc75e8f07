"""Typed settings (vitalstream.core.settings, vitalstream.core.runsettings): the shipped
configuration and the quick profile parse for every run of the grid; an omitted key comes out as
the schema (and the code before the typed settings) said; a value of the wrong type is refused
with its key's path; and the typed pieces give the runners what the raw mapping gave them."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.config import ConfigError, RunId
from vitalstream.core.runsettings import (
    SHARED_SESSION_SINKS,
    SINGLE_RUN_SINKS,
    ConditionSettings,
    FaultSettings,
    GatewaySettings,
    LoadSettings,
    Settings,
    SinkSettings,
    condition_settings,
)
from vitalstream.core.settings import RiskModelSettings, SettingsError
from vitalstream.data.gateway import GatewaySpec
from vitalstream.experiments import perf
from vitalstream.ingest.load import LoadSpec
from vitalstream.measure.perfmetrics import SustainCriterion
from vitalstream.stream.spec import JobSpec

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "config" / "profiles" / "quick.yaml"


@pytest.fixture(scope="module")
def full() -> dict:
    return vsconfig.load_config([vsconfig.DEFAULT_CONFIG])


@pytest.fixture(scope="module", params=["full", "quick"])
def config(request, full) -> dict:
    """The shipped configuration, and the quick profile merged over it as load_config does."""
    if request.param == "full":
        return full
    return vsconfig.load_config([vsconfig.DEFAULT_CONFIG, QUICK])


@pytest.fixture(scope="module")
def settings(config) -> Settings:
    return Settings.from_config(config)


# --------------------------------------------------------------------------- the grid parses


def test_every_run_of_the_grid_has_its_typed_condition(config, settings):
    runs = vsconfig.expand_runs(config)
    assert list(settings.runs) == runs and len(runs) > 10
    for run in runs:
        this = settings.run(run)
        params = vsconfig.condition_params(config, run)
        condition = this.condition
        assert condition.record == params
        assert (condition.window_s, condition.watermark_s) == (
            params["window_s"],
            params["watermark_s"],
        )
        assert condition.kafka_partitions == params["kafka_partitions"]
        assert condition.cohort == params["cohort"]
        assert this.cohort == (config["cohorts"][params["cohort"]] if params["cohort"] else None)
        assert condition.spark_conf == params["spark_conf"]
        assert dict(condition.producer) == params.get("producer", {})


def test_the_services_are_read_as_configured(config, settings):
    assert settings.kafka.bootstrap_servers == config["kafka"]["bootstrap_servers"]
    assert settings.kafka.replication_factor == config["kafka"]["replication_factor"] == 1
    assert settings.spark.defaults_file == Path(config["spark"]["defaults_file"])
    assert settings.spark.conf == config["spark"]["conf"]
    assert settings.search is not None
    assert (settings.search.url, settings.search.index_prefix) == (None, "vitalstream")
    sink = settings.search.sink("http://localhost:9200", "skeleton/base/rep1")
    assert sink.index("alerts") == "vitalstream-alerts"


def test_a_runs_slice_gives_the_run_the_same_settings(config, settings):
    """The workflow hands a run its slice (core.config.run_config_subset), not the config."""
    for run in vsconfig.expand_runs(config)[::5]:
        sliced = Settings.from_config(vsconfig.run_config_subset(config, run))
        assert sliced.run(run) == settings.run(run)
        assert (sliced.kafka, sliced.spark) == (settings.kafka, settings.spark)
        assert sliced.diagnostics == settings.diagnostics


def test_a_run_outside_the_grid_is_named():
    with pytest.raises(SettingsError, match="nope/base/rep1"):
        Settings.from_config(vsconfig.load_config()).run(RunId("nope", "base", 1))


# --------------------------------------------------------------------------- same values as before


def old_job_spec(params: dict, diagnostics, **where) -> JobSpec:
    """JobSpec.from_condition as it read the raw mapping before the typed settings."""
    consumer = params.get("consumer") or {}
    return JobSpec(
        window_s=params["window_s"],
        slide_s=params["slide_s"],
        watermark_s=params["watermark_s"],
        trigger_ms=params["trigger_ms"],
        max_offsets_per_trigger=params["max_offsets_per_trigger"],
        diagnostics=diagnostics,
        output_mode=params.get("output_mode", "append"),
        trigger_mode=params.get("trigger_mode", "microbatch"),
        fetch_max_wait_ms=consumer.get("fetch_max_wait_ms"),
        source_options={str(k): str(v) for k, v in (consumer.get("options") or {}).items()},
        **where,
    )


def test_every_runs_job_spec_is_the_one_the_raw_mapping_gave(config, settings):
    for run in vsconfig.expand_runs(config):
        params = vsconfig.condition_params(config, run)
        condition = settings.run(run).condition
        where = {
            "bootstrap_servers": "127.0.0.1:9092",
            "topic": f"vitals.{run.condition}",
            "out_dir": Path("results/runs") / run.path,
            "alerts_topic": f"vitals.{run.condition}.alerts",
            "raw_events": True,
        }
        new = JobSpec.from_condition(condition, settings.diagnostics, **where)
        assert new == old_job_spec(params, settings.diagnostics, **where), run.path


def test_job_specs_carry_the_conditions_own_values(full):
    settings = Settings.from_config(full)

    def spec(path: str) -> JobSpec:
        condition = settings.run(RunId.parse(path)).condition
        where = {"bootstrap_servers": "b", "topic": "t", "out_dir": Path("o")}
        return JobSpec.from_condition(
            condition, settings.diagnostics, alerts_topic=None, raw_events=False, **where
        )

    assert spec("rq5/update/rep1").output_mode == "update"
    assert spec("rq5/tuned/rep1").output_mode == "append"
    assert (spec("rq5/realtime/rep1").trigger_mode, spec("rq5/realtime/rep1").trigger_ms) == (
        "realtime",
        5000,
    )
    assert spec("rq5/fetchwait500/rep1").fetch_max_wait_ms == 500
    assert spec("rq5/tuned/rep1").fetch_max_wait_ms == 10
    assert spec("rq3/late_none_w300/rep1").watermark_s == 300
    assert spec("rq3/late_none_w300/rep1").max_offsets_per_trigger == 2000
    options = spec("faults/spark_kill/rep1").source_options
    assert options["kafka.request.timeout.ms"] == "5000"
    assert spec("faults/spark_kill/rep1").max_offsets_per_trigger == 4000


def test_sinks_default_per_runner_as_before(config, settings):
    """A single run wrote raw events and published alerts unless told not to; a job of a
    shared session did neither unless told to."""
    for run in vsconfig.expand_runs(config):
        sinks = vsconfig.condition_params(config, run).get("sinks", {})
        chosen = settings.run(run).condition.sinks
        assert chosen.over(SINGLE_RUN_SINKS) == SinkSettings(
            raw_events=bool(sinks.get("raw_events", True)),
            alerts_topic=bool(sinks.get("alerts_topic", True)),
            search_index=bool(sinks.get("search_index")),
        )
        shared = chosen.over(SHARED_SESSION_SINKS)
        assert shared.raw_events == bool(sinks.get("raw_events", False))
        assert shared.alerts_topic == bool(sinks.get("alerts_topic"))


def test_fault_settings_are_those_the_fault_runner_read(full):
    settings = Settings.from_config(full)
    runs = [r for r in settings.runs.values() if r.condition.fault is not None]
    assert {r.condition.fault.kind for r in runs} == {"spark_kill", "broker_restart", "broker_kill"}
    for this in runs:
        fault, old = this.condition.fault, this.condition.record["fault"]
        assert fault.after_batches == int(old.get("after_batches", 3))
        assert fault.at_s == float(old.get("at_s", 8))
        assert fault.down_s == float(old.get("down_s", 5))
        assert fault.nodes == int(old.get("nodes", 3))
        assert fault.timeout_s == float(old.get("timeout_s", 300))
        assert fault.attempt_s == float(old.get("attempt_s", 90))


def test_performance_settings_are_those_the_perf_runner_read(config, settings):
    for name, spec in config["experiments"].items():
        experiment = settings.experiment(name)
        assert experiment.performance == vsconfig.is_load_experiment(spec)
        assert experiment.warmup_s == spec.get("warmup_s", 0)
        assert SustainCriterion.from_mapping(experiment.sustain) == (
            SustainCriterion.from_mapping(spec.get("sustain"))
        )
        if experiment.performance:
            assert experiment.spark_conf == spec["defaults"]["spark_conf"]
    load_runs = [r for r in settings.runs.values() if r.condition.load is not None]
    assert load_runs
    for this in load_runs:
        params, condition = this.condition.record, this.condition
        window_s = params["window_s"]
        # A search (experiments.perfsearch) sets each probe's rate itself.
        load = {k: v for k, v in params["load"].items() if k != "search"}
        assert LoadSpec.from_mapping(condition.load.as_mapping(), window_s=window_s) == (
            LoadSpec.from_mapping(load, window_s=window_s)
        )
        assert condition.load.seed == params["load"].get("seed", 20261128)  # provenance
        assert condition.abort_on_backlog == bool(params.get("abort_on_backlog", True))
        assert condition.trigger_ms == params["trigger_ms"]


def test_the_warm_up_runs_the_defaults_at_their_first_rate_as_before(full):
    settings = Settings.from_config(full)
    for name in ("rq1", "rq5"):  # rates_per_patient, rates
        experiment = settings.experiment(name)
        assert experiment.warmup_s > 0
        params = dict(full["experiments"][name]["defaults"], cohort=None)
        first = LoadSpec.from_mapping(params["load"], window_s=params["window_s"]).rates[0]
        load = {k: v for k, v in params["load"].items() if k != "rates_per_patient"}
        old = load | {"rates": [first], "step_s": experiment.warmup_s}
        warm = perf.warmup_condition(experiment)
        assert warm.cohort is None and warm.watermark_s == params["watermark_s"]
        assert LoadSpec.from_mapping(warm.load.as_mapping(), window_s=warm.window_s) == (
            LoadSpec.from_mapping(old, window_s=params["window_s"])
        )


# --------------------------------------------------------------------------- defaults


def test_an_omitted_risk_model_setting_is_the_schemas_default(full):
    properties = vsconfig.load_schema()["properties"]["risk_model"]["properties"]
    defaults = {k: p["default"] for k, p in properties.items() if "default" in p}
    assert defaults == {"regularisation_c": 1.0, "holdout_fraction": 0.3, "seed": 0}
    block = {k: v for k, v in full["risk_model"].items() if k not in defaults}
    settings = RiskModelSettings.from_config(block)
    assert {k: getattr(settings, k) for k in defaults} == defaults
    assert settings.features == tuple(full["risk_model"]["features"])
    given = RiskModelSettings.from_config({**full["risk_model"], "seed": 7})
    assert given.seed == 7


def test_an_omitted_condition_setting_is_the_documented_default():
    given = {"kafka_partitions": 2, "window_s": 60, "watermark_s": 120, "speedup": 60}
    condition = ConditionSettings.from_params(given, "c")
    assert condition.slide_s is None  # tumbling
    assert condition.trigger_ms == 0  # as fast as possible
    assert condition.max_offsets_per_trigger is None  # no cap
    assert (condition.output_mode, condition.trigger_mode) == ("append", "microbatch")
    assert condition.consumer.fetch_max_wait_ms is None  # Kafka's own (500 ms)
    assert condition.consumer.options == {}
    assert condition.abort_on_backlog is True
    assert (condition.producer, condition.spark_conf) == ({}, {})
    assert condition.fault is condition.gateway is condition.load is condition.cohort is None
    assert condition.sinks.over(SINGLE_RUN_SINKS) == SinkSettings(True, True, False)
    assert condition.sinks.over(SHARED_SESSION_SINKS) == SinkSettings(False, False, False)
    assert FaultSettings.from_config({"kind": "spark_kill"}, "f") == FaultSettings(
        "spark_kill", after_batches=3, at_s=8.0, down_s=5.0, nodes=3, timeout_s=300.0
    )


@pytest.mark.parametrize(
    "block",
    [{"mode": "forward"}, {"mode": "coalesce", "seconds": 10}, {"mode": "sample", "every": 5}],
)
def test_gateway_defaults_agree_with_the_gateway_stage(block):
    settings = GatewaySettings.from_config(block, "gateway")
    assert GatewaySpec(**dataclasses.asdict(settings)) == GatewaySpec.from_mapping(block)


@pytest.mark.parametrize(
    "block",
    [
        {"patients": 10, "rates": [5, 50], "step_s": 1},
        {"patients": 10, "rates_per_patient": [1], "step_s": 2, "lead_s": 0.5, "seed": 3},
    ],
)
def test_load_defaults_agree_with_the_load_generator(block):
    settings = LoadSettings.from_config(block, "load")
    assert LoadSpec.from_mapping(settings.as_mapping(), window_s=60) == (
        LoadSpec.from_mapping(block, window_s=60)
    )


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (
            ("experiments", "skeleton", "defaults", "window_s"),
            "60",
            "experiments/skeleton/conditions/base/window_s",
        ),
        (("experiments", "skeleton", "defaults", "trigger_ms"), 0.5, "trigger_ms"),
        (
            ("experiments", "skeleton", "defaults", "consumer", "fetch_max_wait_ms"),
            "10",
            "consumer/fetch_max_wait_ms",
        ),
        (("experiments", "skeleton", "defaults", "sinks", "raw_events"), "no", "sinks/raw_events"),
        (("experiments", "rq5", "defaults", "output_mode"), "replace", "output_mode"),
        (("experiments", "rq1", "defaults", "load", "patients"), "1000", "load/patients"),
        (
            ("experiments", "faults", "conditions", "spark_kill", "fault", "after_batches"),
            2.5,
            "fault/after_batches",
        ),
        (("experiments", "rq1", "warmup_s"), "10", "experiments/rq1/warmup_s"),
        (("kafka", "replication_factor"), "1", "kafka/replication_factor"),
        (("spark", "defaults_file"), 3, "spark/defaults_file"),
        (("search", "index_prefix"), None, "search/index_prefix"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_with_its_key(full, path, value, named):
    broken = copy.deepcopy(full)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SettingsError, match=named) as error:
        Settings.from_config(broken)
    assert repr(value) in str(error.value)
    assert isinstance(error.value, ConfigError)


def test_a_missing_required_setting_is_named(full):
    broken = copy.deepcopy(full)
    del broken["kafka"]["replication_factor"]
    with pytest.raises(SettingsError, match="kafka: missing replication_factor"):
        Settings.from_config(broken)
    broken = copy.deepcopy(full)
    del broken["experiments"]["skeleton"]["defaults"]["speedup"]
    with pytest.raises(SettingsError, match="skeleton/conditions/base: missing speedup"):
        Settings.from_config(broken)


def test_a_wrong_risk_model_setting_is_named(full):
    with pytest.raises(SettingsError, match="risk_model/seed"):
        RiskModelSettings.from_config({**full["risk_model"], "seed": "0"})
    with pytest.raises(SettingsError, match="risk_model/features\\[1\\]"):
        RiskModelSettings.from_config({**full["risk_model"], "features": ["hr_mean", 3]})


def test_the_reference_reads_only_the_runs_condition(full):
    condition = condition_settings(full, RunId("ablation", "win300", 1))
    assert (condition.window_s, condition.slide_s) == (300, None)
    sliding = condition_settings(full, RunId("validation", "sliding", 1))
    assert (sliding.window_s, sliding.slide_s) == (60, 30)
