"""Device messages as devices send them: the non-canonical fields the stream accepts, each an
alias of a canonical field with a unit (config ``devices``), and the unit conversions.

A device that follows the blueprint sends ``{"patient_id", "ts", "hr", "spo2", "sbp"}``: its
event time under ``ts`` in epoch milliseconds, its vitals under their canonical names and units.
The job (vitalstream.stream.parse) reads each alias beside its canonical field and takes the
canonical field when a message has it, else the alias converted to the canonical unit.

Each unit is one row of a table (``UNITS``) and each conversion one formula over it, applied to
a Spark Column by the stream and to a plain number by tests and tools, so the two cannot drift.
Event times are integers: seconds are rounded to the nearest millisecond (a float second such
as 1765000000.123 is not exact), micro- and nanoseconds floored with exact integer arithmetic;
a value no engine can represent becomes :data:`~vitalstream.core.schema.EVENT_TIME_END_MS`, which
the range check dead-letters (``out_of_range:event_time``) instead of failing the batch.

Not for: parsing messages or their dead-letter reasons (vitalstream.stream.parse).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vitalstream.core.schema import EVENT_TIME_END_MS, VITAL_NAMES
from vitalstream.core.settings import SettingsError

if TYPE_CHECKING:
    from pyspark.sql import Column

EVENT_TIME_FIELD = "event_time_ms"
# Names a device field cannot take: the canonical message's own (compared case-insensitively,
# as Spark resolves struct fields when spark.sql.caseSensitive is off).
CANONICAL_FIELDS = (
    "kind",
    "patient_id",
    "device_id",
    "consciousness",
    EVENT_TIME_FIELD,
    "send_wall_ns",
    *VITAL_NAMES,
    "o2_supplemental",
)
ALIAS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Unit:
    """How a value in this unit becomes the canonical one.

    Vitals: ``(value - offset) * scale``. Event times (integer milliseconds): ``value * scale``
    rounded to the nearest millisecond, or ``value`` floor-divided by ``divisor``.
    """

    name: str
    scale: float = 1.0
    offset: float = 0.0
    divisor: int = 1

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0 and self.divisor == 1


# Canonical field → the units a device may send it in; the first is the canonical unit.
UNITS: dict[str, dict[str, Unit]] = {
    EVENT_TIME_FIELD: {
        "ms": Unit("ms"),
        "s": Unit("s", scale=1000.0),
        "us": Unit("us", divisor=1_000),
        "ns": Unit("ns", divisor=1_000_000),
    },
    "hr": {"bpm": Unit("bpm")},
    "spo2": {"%": Unit("%")},
    "sbp": {"mmHg": Unit("mmHg")},
    "dbp": {"mmHg": Unit("mmHg")},
    "map": {"mmHg": Unit("mmHg")},
    "rr": {"/min": Unit("/min")},
    "temp": {
        "celsius": Unit("celsius"),
        "fahrenheit": Unit("fahrenheit", scale=5.0 / 9.0, offset=32.0),
    },
}
# A seconds value beyond this (in magnitude) is outside every representable event time, and
# multiplying it by 1000 could overflow a long (Spark runs ANSI SQL: that would fail the batch).
_SECONDS_BOUND = EVENT_TIME_END_MS / 1000


def _is_column(value: Any) -> bool:
    return type(value).__module__.startswith("pyspark.")


def _affine(value: Any, unit: Unit) -> Any:
    """A vital in the canonical unit: one formula for a Column and a number alike."""
    return value if unit.identity else (value - unit.offset) * unit.scale


def _event_time_number(value: float, unit: Unit) -> int:
    if unit.divisor > 1:
        return int(value) // unit.divisor
    if unit.scale == 1.0:
        return int(value)
    if not math.isfinite(value) or abs(value) >= _SECONDS_BOUND:
        return EVENT_TIME_END_MS
    return math.floor(value * unit.scale + 0.5)


def _event_time_column(value: Column, unit: Unit) -> Column:
    from pyspark.sql import functions as F

    if unit.divisor > 1:  # a long: exact, as a decimal (a double would lose nanoseconds)
        return F.floor(value.cast("decimal(20,0)") / F.lit(unit.divisor)).cast("long")
    if unit.scale == 1.0:
        return value
    inside = ~F.isnan(value) & (F.abs(value) < F.lit(_SECONDS_BOUND))
    rounded = F.floor(value * F.lit(unit.scale) + F.lit(0.5)).cast("long")
    return F.when(inside, rounded).when(value.isNotNull(), F.lit(EVENT_TIME_END_MS))


@dataclass(frozen=True)
class Alias:
    """A device's field ``name``: the canonical ``field``, sent in ``unit``."""

    name: str
    field: str
    unit: str

    @property
    def conversion(self) -> Unit:
        return UNITS[self.field][self.unit]

    @property
    def spark_type(self) -> str:
        """How the JSON reader types it: event times in ms, us or ns are integers (exact);
        seconds and vitals are numbers (a device may send 1765000000.123 s or 98.6 °F)."""
        integral = self.field == EVENT_TIME_FIELD and self.unit != "s"
        return "long" if integral else "double"

    def to_canonical(self, value: Any) -> Any:
        """``value`` (a Spark Column or a number) in the canonical field's unit."""
        unit = self.conversion
        if self.field != EVENT_TIME_FIELD:
            return _affine(value, unit)
        if _is_column(value):
            return _event_time_column(value, unit)
        return _event_time_number(value, unit)


def _where_error(where: str, message: str) -> SettingsError:
    return SettingsError(f"{where}: {message}")


def _parse_alias(name: Any, block: Any, where: str) -> Alias:
    at = f"{where}/{name}"
    if not isinstance(name, str) or not ALIAS_NAME.match(name):
        raise _where_error(at, "an alias is a field name of letters, digits and _")
    if name.lower() in {f.lower() for f in CANONICAL_FIELDS}:
        raise _where_error(at, "a canonical field is read as is; it cannot be an alias")
    if not isinstance(block, Mapping) or set(block) != {"field", "unit"}:
        raise _where_error(at, f"expected {{field: ..., unit: ...}}, got {block!r}")
    field, unit = block["field"], block["unit"]
    if field not in UNITS:
        raise _where_error(f"{at}/field", f"expected one of {list(UNITS)}, got {field!r}")
    if unit not in UNITS[field]:
        units = list(UNITS[field])
        raise _where_error(f"{at}/unit", f"{field} takes a unit of {units}, got {unit!r}")
    return Alias(name, field, unit)


DEFAULT_ALIASES = (Alias("ts", EVENT_TIME_FIELD, "ms"),)


@dataclass(frozen=True)
class DeviceFormat:
    """The device fields the stream accepts besides the canonical message (config
    ``devices``). The default is the configuration's: the blueprint's ``ts`` in milliseconds."""

    aliases: tuple[Alias, ...] = DEFAULT_ALIASES

    @classmethod
    def from_config(cls, devices: Any, where: str = "devices") -> DeviceFormat:
        """The ``devices`` block; one SettingsError naming the key that is wrong."""
        if not isinstance(devices, Mapping):
            raise _where_error(where, f"expected a mapping, got {devices!r}")
        unknown = sorted(set(devices) - {"aliases"})
        if unknown:
            raise _where_error(where, f"unknown key(s) {unknown} (known: ['aliases'])")
        if "aliases" not in devices:
            return cls()
        aliases = devices["aliases"]
        if aliases is None:
            aliases = {}
        if not isinstance(aliases, Mapping):
            raise _where_error(f"{where}/aliases", f"expected a mapping, got {aliases!r}")
        parsed = tuple(_parse_alias(n, b, f"{where}/aliases") for n, b in aliases.items())
        seen: set[str] = set()
        for alias in parsed:
            if alias.name.lower() in seen:
                raise _where_error(f"{where}/aliases/{alias.name}", "a second alias of this name")
            seen.add(alias.name.lower())
        return cls(parsed)

    def of(self, field: str) -> tuple[Alias, ...]:
        """The aliases of a canonical field, in the configured order (the first present wins)."""
        return tuple(a for a in self.aliases if a.field == field)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.aliases)


def event_time_ms_of(message: Mapping[str, Any], devices: DeviceFormat) -> int | None:
    """A message's event time as the stream takes it, in plain Python: the canonical field,
    else its first alias present, converted (for tools and tests that build messages)."""
    if message.get(EVENT_TIME_FIELD) is not None:
        return int(message[EVENT_TIME_FIELD])
    for alias in devices.of(EVENT_TIME_FIELD):
        if message.get(alias.name) is not None:
            return alias.to_canonical(message[alias.name])
    return None
