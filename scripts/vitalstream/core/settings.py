"""Typed settings: the validated configuration, parsed once at the edge into the pieces each
stage needs.

A command parses its configuration at its entry (vitalstream.core.runsettings.Settings, built on
the readers here) and hands each stage the frozen dataclass it needs: the ``KafkaSettings``,
``SparkSettings`` and ``SearchSettings`` of the services, a condition's settings
(vitalstream.core.runsettings), the window risk model's ``RiskModelSettings``. Inner code never
reads the configuration mapping, so a default lives in config/schema.yaml (a ``default:`` key,
which the Snakefile's validation also fills in) or in a field default of these dataclasses, and
nowhere else. A value of the wrong type, or a required key that is missing, is a
``SettingsError`` naming the key's path.

Not for: reading or validating YAML, or expanding the grid (vitalstream.core.config).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vitalstream.core.config import ConfigError, load_schema


class SettingsError(ConfigError):
    """A configuration value has the wrong type, or a required one is missing."""


# --------------------------------------------------------------------------- reading a block

T = TypeVar("T")
# A reader of one value: (value, its path in the configuration) → the typed value.
Parse = Callable[[Any, str], Any]


def _got(value: Any) -> str:
    return f"got {value!r} ({type(value).__name__})"


def parse_number(value: Any, where: str) -> float:
    """A number (an integer stays one: a value is written back as configured)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{where}: expected a number, {_got(value)}")
    return value


def parse_seconds(value: Any, where: str) -> float:
    """A number as a float."""
    return float(parse_number(value, where))


def parse_integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{where}: expected an integer, {_got(value)}")
    return value


def parse_boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{where}: expected true or false, {_got(value)}")
    return value


def parse_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"{where}: expected a string, {_got(value)}")
    return value


def parse_text(value: Any, where: str) -> str:
    """A string or a number, as text (how Spark takes an option)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SettingsError(f"{where}: expected a string or a number, {_got(value)}")
    return str(value)


def parse_mapping(value: Any, where: str) -> dict[str, Any]:
    """A mapping, copied (so that no settings object shares the configuration's)."""
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected a mapping, {_got(value)}")
    return copy.deepcopy(dict(value))


def parse_numbers(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{where}: expected a list of numbers, {_got(value)}")
    return tuple(parse_number(v, f"{where}[{i}]") for i, v in enumerate(value))


def parse_strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{where}: expected a list of strings, {_got(value)}")
    return tuple(parse_string(v, f"{where}[{i}]") for i, v in enumerate(value))


def parse_path(value: Any, where: str) -> Path:
    return Path(parse_string(value, where))


def optional(parse: Parse) -> Parse:
    """``parse``, or None for a null value."""
    return lambda value, where: None if value is None else parse(value, where)


def one_of(schema_path: str) -> Parse:
    """One of the values the schema's ``enum`` at ``schema_path`` allows (see schema_node)."""

    def parse(value: Any, where: str) -> str:
        options = schema_node(schema_path)["enum"]
        if value not in options:
            raise SettingsError(f"{where}: expected one of {options}, {_got(value)}")
        return value

    return parse


@functools.cache
def _schema() -> dict[str, Any]:
    return load_schema()


def schema_node(path: str) -> dict[str, Any]:
    """The schema's node of a key: ``kafka``, ``risk_model/severity``, or under ``$defs``
    (``$defs/condition/fault/kind``: the kind of a condition's fault block)."""
    first, *rest = path.split("/")
    if first == "$defs":
        node = _schema()["$defs"][rest[0]]
        rest = rest[1:]
    else:
        node = _schema()["properties"][first]
    for key in rest:
        node = node["properties"][key]
    return node


def build(
    cls: type[T],
    values: Any,
    where: str,
    parsers: Mapping[str, Parse],
    schema_path: str | None = None,
    **given: Any,
) -> T:
    """A ``cls`` from one block of the configuration: each key of ``parsers`` read with its
    type checked, else the schema's ``default:`` for it (the node at ``schema_path``), else
    ``given``, else the field's default. ``where`` is the block's path, for errors."""
    if not isinstance(values, Mapping):
        raise SettingsError(f"{where}: expected a mapping, {_got(values)}")
    block = values
    properties = schema_node(schema_path).get("properties", {}) if schema_path else {}
    kwargs = dict(given)
    for key, parse in parsers.items():
        if key in block:
            kwargs[key] = parse(block[key], f"{where}/{key}")
        elif "default" in properties.get(key, {}):
            kwargs[key] = parse(properties[key]["default"], f"{where}/{key}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise SettingsError(f"{where}: missing {', '.join(missing)}")
    return cls(**kwargs)


# --------------------------------------------------------------------------- the services


@dataclass(frozen=True)
class KafkaSettings:
    """The Kafka cluster (config ``kafka``)."""

    replication_factor: int
    # None: none configured; a runner uses the broker the workflow started (its state file).
    bootstrap_servers: str | None = None

    @classmethod
    def from_config(cls, kafka: Any) -> KafkaSettings:
        parsers = {"bootstrap_servers": optional(parse_string), "replication_factor": parse_integer}
        return build(cls, kafka, "kafka", parsers, "kafka")


@dataclass(frozen=True)
class SparkSettings:
    """The Spark settings of every session (config ``spark``): the defaults file, then
    ``conf``; a condition's ``spark_conf`` goes over both (services.sparkenv.effective_conf)."""

    defaults_file: Path
    conf: Mapping[str, Any]

    @classmethod
    def from_config(cls, spark: Any) -> SparkSettings:
        parsers = {"defaults_file": parse_path, "conf": parse_mapping}
        return build(cls, spark, "spark", parsers, "spark")


@dataclass(frozen=True)
class SearchSettings:
    """The search index of the alerts (config ``search``)."""

    # None: none configured; a runner uses the node the workflow started (its state file).
    url: str | None
    index_prefix: str

    @classmethod
    def from_config(cls, search: Any) -> SearchSettings:
        parsers = {"url": optional(parse_string), "index_prefix": parse_string}
        return build(cls, search, "search", parsers, "search")

    def sink(self, url: str, run: str) -> SearchSink:
        """Where one run's documents go on the server at ``url``."""
        return SearchSink(url=url, prefix=self.index_prefix, run=run)


def index_name(prefix: str, kind: str) -> str:
    """The search index of one document kind (``alerts`` or ``windows``)."""
    return f"{prefix}-{kind}"


@dataclass(frozen=True)
class SearchSink:
    """Where a run's alerts and windows go: server, index prefix and the run's label."""

    url: str
    prefix: str
    run: str

    def index(self, kind: str) -> str:
        return index_name(self.prefix, kind)


# --------------------------------------------------------------------------- the models


@dataclass(frozen=True)
class RiskModelSettings:
    """The window risk model (config ``risk_model``; vitalstream.models.riskmodel). The
    defaults of its training settings are the schema's ``default:`` keys."""

    apply: bool
    cohort: str
    window_s: float
    horizon_min: float
    features: tuple[str, ...]
    name: str
    severity: str
    regularisation_c: float
    holdout_fraction: float
    seed: int

    @classmethod
    def from_config(cls, risk_model: Any) -> RiskModelSettings:
        parsers = {
            "apply": parse_boolean,
            "cohort": parse_string,
            "window_s": parse_number,
            "horizon_min": parse_number,
            "features": parse_strings,
            "name": parse_string,
            "severity": one_of("risk_model/severity"),
            "regularisation_c": parse_number,
            "holdout_fraction": parse_number,
            "seed": parse_integer,
        }
        return build(cls, risk_model, "risk_model", parsers, "risk_model")


# --------------------------------------------------------------------------- the messages


@dataclass(frozen=True)
class MessageChecks:
    """What a message must satisfy beyond its schema (config ``checks``), applied by the stream
    (vitalstream.stream.parse) and, where they apply offline, by the batch reference.

    The defaults are the configuration's: a job built without a configuration (a test) checks
    as a run does.
    """

    # Event time at most this far ahead of the Kafka record's timestamp: one device with a
    # wrong clock would otherwise move the watermark every patient shares, and close their
    # windows early. None: no bound (only the representable range, core.schema).
    event_time_max_ahead_s: float | None = 300
    # At most this far behind it. None by default: a replay sends recorded readings whose
    # event times are months behind their Kafka timestamps.
    event_time_max_behind_s: float | None = None
    # Longer patient ids are dead-lettered: an id is a key of state and of index documents.
    patient_id_max_length: int = 64

    @classmethod
    def from_config(cls, checks: Any) -> MessageChecks:
        parsers = {
            "event_time_max_ahead_s": optional(parse_number),
            "event_time_max_behind_s": optional(parse_number),
            "patient_id_max_length": parse_integer,
        }
        return build(cls, checks, "checks", parsers, "checks")

    def without_clock_band(self) -> MessageChecks:
        """These checks without the band around the broker's clock, for a source whose event
        clock outruns the wall clock by design: synthetic load (ingest.load) at more than one
        reading per patient per second. The representable range and the id still apply."""
        return dataclasses.replace(self, event_time_max_ahead_s=None, event_time_max_behind_s=None)

    @staticmethod
    def _ms(seconds: float | None) -> int | None:
        return None if seconds is None else round(seconds * 1000)

    @property
    def max_ahead_ms(self) -> int | None:
        return self._ms(self.event_time_max_ahead_s)

    @property
    def max_behind_ms(self) -> int | None:
        return self._ms(self.event_time_max_behind_s)
