"""Typed settings of the grid: a condition's parameters, a run, an experiment, and a whole
configuration (or the slice of it a command gets), parsed once at the command's entry.

``Settings.from_config`` is the edge: the runners (vitalstream.experiments) take a ``Settings``
or one of its pieces, never the configuration mapping; a default lives in config/schema.yaml or
in a field default here (the readers: vitalstream.core.settings).

Blocks another stage types are handed on as validated mappings: a condition's ``producer`` (the
replay and load processes read it into ingest.producer.ProducerSettings), an experiment's
``sustain`` (measure.perfmetrics.SustainCriterion) and a cohort (data.cohort.CohortParams).

Not for: the services' settings (vitalstream.core.settings) or expanding the grid
(vitalstream.core.config).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vitalstream.core.config import (
    RunId,
    condition_params,
    expand_runs,
    is_load_experiment,
    replay_key,
)
from vitalstream.core.devices import DeviceFormat
from vitalstream.core.settings import (
    KafkaSettings,
    MessageChecks,
    Parse,
    SearchSettings,
    SettingsError,
    SparkSettings,
    build,
    one_of,
    optional,
    parse_boolean,
    parse_integer,
    parse_mapping,
    parse_number,
    parse_numbers,
    parse_seconds,
    parse_string,
    parse_text,
)

if TYPE_CHECKING:
    from vitalstream.core.diagnostics import DiagnosticsSpec

CONDITION = "$defs/condition"  # the schema's node of a condition


# --------------------------------------------------------------------------- a condition's blocks


@dataclass(frozen=True)
class ConsumerSettings:
    """The job's Kafka consumer (condition ``consumer``)."""

    # fetch.max.wait.ms; None: Kafka's default (500 ms).
    fetch_max_wait_ms: int | None = None
    # More options of Spark's Kafka source, verbatim, as Spark takes them (text).
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, consumer: Any, where: str) -> ConsumerSettings:
        def options(value: Any, at: str) -> dict[str, str]:
            return {str(k): parse_text(v, f"{at}/{k}") for k, v in parse_mapping(value, at).items()}

        parsers = {"fetch_max_wait_ms": optional(parse_integer), "options": options}
        return build(cls, consumer, where, parsers, f"{CONDITION}/consumer")


@dataclass(frozen=True)
class SinkSettings:
    """The optional outputs a run's job writes."""

    raw_events: bool
    alerts_topic: bool
    search_index: bool = False


# What a run writes when its condition's ``sinks`` leave a sink out: a single run
# (experiments.run) writes its raw events and publishes its alerts; the jobs of a shared session
# (experiments.siblings) do neither. Fault and performance runs decide their sinks themselves.
SINGLE_RUN_SINKS = SinkSettings(raw_events=True, alerts_topic=True)
SHARED_SESSION_SINKS = SinkSettings(raw_events=False, alerts_topic=False)


@dataclass(frozen=True)
class SinkChoices:
    """A condition's ``sinks`` as configured: None where it leaves a sink to the runner."""

    raw_events: bool | None = None
    alerts_topic: bool | None = None
    search_index: bool | None = None

    @classmethod
    def from_config(cls, sinks: Any, where: str) -> SinkChoices:
        parsers = {key: parse_boolean for key in ("raw_events", "alerts_topic", "search_index")}
        return build(cls, sinks, where, parsers, f"{CONDITION}/sinks")

    def over(self, defaults: SinkSettings) -> SinkSettings:
        """The job's sinks: these choices over the runner's ``defaults``."""
        chosen = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return dataclasses.replace(defaults, **chosen)


@dataclass(frozen=True)
class FaultSettings:
    """A fault injected into a run (condition ``fault``; vitalstream.experiments.faults)."""

    kind: str
    after_batches: int = 3  # spark_kill: committed window batches before the kill
    at_s: float = 8.0  # broker faults: seconds into the replay
    down_s: float = 5.0  # broker_restart: seconds the broker stays down
    nodes: int = 3  # broker_kill: nodes of the cluster
    timeout_s: float = 300.0  # longest wait for the job (all attempts) or the producer
    attempt_s: float = 90.0  # longest one job attempt may take to drain after the replay

    @classmethod
    def from_config(cls, fault: Any, where: str) -> FaultSettings:
        parsers = {
            "kind": one_of(f"{CONDITION}/fault/kind"),
            "after_batches": parse_integer,
            "at_s": parse_seconds,
            "down_s": parse_seconds,
            "nodes": parse_integer,
            "timeout_s": parse_seconds,
            "attempt_s": parse_seconds,
        }
        return build(cls, fault, where, parsers, f"{CONDITION}/fault")


@dataclass(frozen=True)
class GatewaySettings:
    """The edge gateways before Kafka (condition ``gateway``), which data.gateway.GatewaySpec
    applies (with these defaults: tests/unit/test_settings.py checks that they agree)."""

    mode: str
    group_size: int = 100
    seconds: float | None = None  # coalesce: bucket length
    every: int | None = None  # sample: keep one reading in this many

    @classmethod
    def from_config(cls, gateway: Any, where: str) -> GatewaySettings:
        parsers = {
            "mode": one_of(f"{CONDITION}/gateway/mode"),
            "group_size": parse_integer,
            "seconds": optional(parse_number),
            "every": optional(parse_integer),
        }
        return build(cls, gateway, where, parsers, f"{CONDITION}/gateway")


@dataclass(frozen=True)
class RateSearchSettings:
    """A search for the sustainable rate (condition ``load/search``) instead of a ramp: fixed-
    rate probes, a coarse ramp by ``factor`` (or down by it from a failed start), then
    geometric bisection until the bracket's ratio is at most ``resolution``
    (vitalstream.experiments.perfsearch)."""

    start: float
    step_s: float
    factor: float = 2.0
    resolution: float = 1.1
    max_rate: float = 512_000.0
    min_rate: float = 500.0
    max_probes: int = 10

    @classmethod
    def from_config(cls, search: Any, where: str) -> RateSearchSettings:
        parsers = {
            "start": parse_number,
            "step_s": parse_number,
            "factor": parse_number,
            "resolution": parse_number,
            "max_rate": parse_number,
            "min_rate": parse_number,
            "max_probes": parse_integer,
        }
        settings = build(cls, search, where, parsers, f"{CONDITION}/load/search")
        if not settings.min_rate <= settings.start <= settings.max_rate:
            raise SettingsError(f"{where}: needs min_rate <= start <= max_rate")
        if settings.factor <= 1 or settings.resolution <= 1:
            raise SettingsError(f"{where}: factor and resolution must be above 1")
        return settings


@dataclass(frozen=True)
class LoadSettings:
    """Synthetic load instead of a replay (condition ``load``), which ingest.load.LoadSpec
    runs (with these defaults: tests/unit/test_settings.py checks that they agree)."""

    patients: int
    step_s: float
    rates: tuple[float, ...] | None = None  # messages/s of each step, or:
    rates_per_patient: tuple[float, ...] | None = None  # readings per patient per wall second
    lead_s: float = 5.0
    deteriorating_fraction: float = 0.05
    critical_per_mille: int = 1
    seed: int = 20261128
    # A rate search instead of the ramp: its probes replace the rates (which a condition
    # inherits from its experiment's defaults and cannot remove; a search ignores them).
    search: RateSearchSettings | None = None

    @classmethod
    def from_config(cls, load: Any, where: str) -> LoadSettings:
        parsers = {
            "patients": parse_integer,
            "step_s": parse_number,
            "rates": parse_numbers,
            "rates_per_patient": parse_numbers,
            "lead_s": parse_number,
            "deteriorating_fraction": parse_number,
            "critical_per_mille": parse_integer,
            "seed": parse_integer,
            "search": optional(RateSearchSettings.from_config),
        }
        settings = build(cls, load, where, parsers, f"{CONDITION}/load")
        both = settings.rates is not None and settings.rates_per_patient is not None
        if settings.search is not None and not both:
            return settings
        if (settings.rates is None) == (settings.rates_per_patient is None):
            raise SettingsError(f"{where}: needs exactly one of rates and rates_per_patient")
        return settings

    def as_mapping(self) -> dict[str, Any]:
        """Every setting explicit: what ingest.load.LoadSpec.from_mapping and the load
        generator's ``--load`` read."""
        values = {
            k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "search"
        }
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


# --------------------------------------------------------------------------- a condition, a run


@dataclass(frozen=True)
class ConditionSettings:
    """One condition's parameters (core.config.condition_params), typed."""

    # The condition as configured: written beside its results (condition.json, metrics.json,
    # provenance.json) and read by measure.metrics.run_metrics.
    record: Mapping[str, Any]
    kafka_partitions: int
    window_s: float
    watermark_s: float
    cohort: str | None = None
    slide_s: float | None = None  # None: tumbling windows
    trigger_ms: int = 0  # 0: as fast as possible
    # The cap on a micro-batch's records. A configuration gives every experiment's defaults one
    # (config/schema.yaml); None: no cap, what real-time mode always gets (Spark refuses it).
    max_offsets_per_trigger: int | None = None
    speedup: float | None = None  # a replay's; None for synthetic load
    # append: final windows once closed; update: provisional windows every batch.
    output_mode: str = "append"
    # microbatch: the full job; realtime: Spark's real-time mode, the critical path only.
    trigger_mode: str = "microbatch"
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings)
    # The runner applies its defaults (SINGLE_RUN_SINKS, SHARED_SESSION_SINKS): sinks.over(...).
    sinks: SinkChoices = field(default_factory=SinkChoices)
    # Handed verbatim to the producer process (ingest.producer.ProducerSettings reads it).
    producer: Mapping[str, Any] = field(default_factory=dict)
    spark_conf: Mapping[str, Any] = field(default_factory=dict)
    abort_on_backlog: bool = True  # stop a performance run's load once it is far behind
    fault: FaultSettings | None = None
    gateway: GatewaySettings | None = None
    load: LoadSettings | None = None

    @classmethod
    def from_params(cls, params: Any, where: str) -> ConditionSettings:
        """``params`` (a condition's merged parameters, core.config.condition_params) typed;
        ``where`` names it in errors."""
        parsers: dict[str, Parse] = {
            "cohort": optional(parse_string),
            "kafka_partitions": parse_integer,
            "window_s": parse_number,
            "slide_s": optional(parse_number),
            "watermark_s": parse_number,
            "trigger_ms": parse_integer,
            "max_offsets_per_trigger": optional(parse_integer),
            "speedup": optional(parse_number),
            "output_mode": one_of(f"{CONDITION}/output_mode"),
            "trigger_mode": one_of(f"{CONDITION}/trigger_mode"),
            "consumer": ConsumerSettings.from_config,
            "sinks": SinkChoices.from_config,
            "producer": parse_mapping,
            "spark_conf": parse_mapping,
            "abort_on_backlog": parse_boolean,
            "fault": optional(FaultSettings.from_config),
            "gateway": optional(GatewaySettings.from_config),
            "load": optional(LoadSettings.from_config),
        }
        record = parse_mapping(params, where)
        condition = build(cls, record, where, parsers, CONDITION, record=record)
        if condition.load is None and condition.speedup is None:
            raise SettingsError(f"{where}: missing speedup (a replay's) or load")
        if condition.trigger_mode == "realtime":
            # Real-time mode reads records as they arrive: no micro-batch to cap, and Spark's
            # Kafka source refuses maxOffsetsPerTrigger there; a cap it inherits from its
            # experiment's defaults (which must set one, for batches) is not applied.
            return dataclasses.replace(condition, max_offsets_per_trigger=None)
        return condition

    @property
    def input_key(self) -> str:
        """What decides the run's Kafka input (core.config.replay_key): runs with the same key
        and events can read one replay."""
        return replay_key(self.record)


def condition_settings(config: Mapping[str, Any], run: RunId) -> ConditionSettings:
    """The typed condition of one run of ``config`` (for a command that needs no more)."""
    where = f"experiments/{run.experiment}/conditions/{run.condition}"
    return ConditionSettings.from_params(condition_params(config, run), where)


@dataclass(frozen=True)
class RunSettings:
    """One run of the grid: its condition and the cohort it replays."""

    run: RunId
    condition: ConditionSettings
    # The cohort's block as configured (None for synthetic load), recorded in provenance.
    cohort: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ExperimentSettings:
    """An experiment's own settings (config ``experiments/<name>``, not its conditions)."""

    name: str
    repetitions: int
    performance: bool  # a load block: its runs share one Spark session (experiments.perf)
    warmup_s: float = 0.0
    # The performance criterion, handed to measure.perfmetrics.SustainCriterion.
    sustain: Mapping[str, Any] = field(default_factory=dict)
    share_replay: bool = False
    share_session: bool = False
    # The defaults' spark_conf: a performance group's session is built with it (a condition
    # changes only spark.sql.* settings, per query).
    spark_conf: Mapping[str, Any] = field(default_factory=dict)
    # A performance experiment's unmeasured warm-up: its defaults, without a cohort.
    warmup: ConditionSettings | None = None
    # Measure the raw consumer ceiling (config ``ceiling``) in the group's session, once per
    # repetition round (vitalstream.experiments.perf).
    ceiling: bool = False

    @classmethod
    def from_config(cls, name: str, experiment: Any) -> ExperimentSettings:
        where = f"experiments/{name}"
        parsers = {
            "repetitions": parse_integer,
            "warmup_s": parse_number,
            "sustain": parse_mapping,
            "share_replay": parse_boolean,
            "share_session": parse_boolean,
            "ceiling": parse_boolean,
        }
        block = parse_mapping(experiment, where)
        defaults = parse_mapping(block["defaults"], f"{where}/defaults")
        given = {
            "name": name,
            "performance": is_load_experiment(block),
            "spark_conf": parse_mapping(defaults.get("spark_conf", {}), f"{where}/spark_conf"),
        }
        settings = build(cls, block, where, parsers, **given)
        if not (settings.performance and settings.warmup_s > 0):
            return settings
        warmup = ConditionSettings.from_params(dict(defaults, cohort=None), f"{where}/defaults")
        return dataclasses.replace(settings, warmup=warmup)


# --------------------------------------------------------------------------- a configuration


@dataclass(frozen=True)
class CeilingSettings:
    """The raw consumer ceiling (config ``ceiling``; experiments.perfmeasure.raw_ceiling)."""

    messages: int
    partitions: int

    @classmethod
    def from_config(cls, ceiling: Any) -> CeilingSettings:
        parsers = {"messages": parse_integer, "partitions": parse_integer}
        return build(cls, ceiling, "ceiling", parsers, "ceiling")


@dataclass(frozen=True)
class Settings:
    """A configuration (or the slice of it a command gets), parsed: the services, the
    diagnostics, and every experiment and run of its grid."""

    kafka: KafkaSettings
    spark: SparkSettings
    search: SearchSettings | None  # None: no search block (no run of the slice indexes)
    diagnostics: DiagnosticsSpec
    experiments: Mapping[str, ExperimentSettings]
    runs: Mapping[RunId, RunSettings]  # in the grid's order (core.config.expand_runs)
    # What every message must satisfy (config ``checks``; the defaults when a slice has none).
    checks: MessageChecks = field(default_factory=MessageChecks)
    # The device fields accepted besides the canonical message (config ``devices``; the
    # default, the blueprint's ``ts``, when a slice has none).
    devices: DeviceFormat = field(default_factory=DeviceFormat)
    # None: no ceiling block (a slice without one; a group with ``ceiling: true`` needs it).
    ceiling: CeilingSettings | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """``config``: validated (core.config), the whole configuration or a slice of it."""
        from vitalstream.core.diagnostics import DiagnosticsSpec

        experiments = {
            name: ExperimentSettings.from_config(name, block)
            for name, block in config["experiments"].items()
        }
        conditions: dict[tuple[str, str], ConditionSettings] = {}
        runs = {}
        for run in expand_runs(config):
            key = (run.experiment, run.condition)
            if key not in conditions:
                conditions[key] = condition_settings(config, run)
            condition = conditions[key]
            cohort = config["cohorts"].get(condition.cohort) if condition.cohort else None
            runs[run] = RunSettings(run, condition, copy.deepcopy(cohort))
        return cls(
            kafka=KafkaSettings.from_config(config["kafka"]),
            spark=SparkSettings.from_config(config["spark"]),
            search=SearchSettings.from_config(config["search"]) if "search" in config else None,
            diagnostics=DiagnosticsSpec.from_config(config["diagnostics"]),
            experiments=experiments,
            runs=runs,
            checks=MessageChecks.from_config(config.get("checks", {})),
            devices=DeviceFormat.from_config(config.get("devices", {})),
            ceiling=CeilingSettings.from_config(config["ceiling"]) if "ceiling" in config else None,
        )

    def run(self, run: RunId) -> RunSettings:
        try:
            return self.runs[run]
        except KeyError as exc:
            raise SettingsError(f"run {run.path} is not in the configured grid") from exc

    def runs_of(self, experiment: str) -> list[RunSettings]:
        """The experiment's runs, in the grid's order."""
        return [r for r in self.runs.values() if r.run.experiment == experiment]

    def experiment(self, name: str) -> ExperimentSettings:
        try:
            return self.experiments[name]
        except KeyError as exc:
            known = sorted(self.experiments)
            raise SettingsError(f"{name!r} is not an experiment (known: {known})") from exc
