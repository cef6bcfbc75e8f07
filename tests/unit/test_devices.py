"""The device format (config ``devices``): parsing it, its unit conversions in plain Python, and
one clear error for each kind of bad block. The same conversions as Spark expressions are
checked against these in tests/integration/test_device_messages.py."""

from __future__ import annotations

import math

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.devices import (
    EVENT_TIME_FIELD,
    UNITS,
    Alias,
    DeviceFormat,
    event_time_ms_of,
)
from vitalstream.core.runsettings import Settings
from vitalstream.core.schema import EVENT_TIME_END_MS, VITALS
from vitalstream.core.settings import SettingsError

TS_MS = 1_765_000_000_000


def test_the_default_is_the_configurations_the_blueprints_ts_in_ms():
    config = vsconfig.load_config()
    assert DeviceFormat.from_config(config["devices"]) == DeviceFormat()
    assert Settings.from_config(config).devices == DeviceFormat()
    assert DeviceFormat().aliases == (Alias("ts", EVENT_TIME_FIELD, "ms"),)


def test_an_absent_block_or_aliases_key_is_the_default_and_an_empty_one_is_none():
    assert DeviceFormat.from_config({}) == DeviceFormat()
    assert DeviceFormat.from_config({"aliases": {}}).aliases == ()
    config = vsconfig.load_config()
    del config["devices"]
    assert Settings.from_config(config).devices == DeviceFormat()


def test_aliases_keep_their_configured_order_per_field():
    devices = DeviceFormat.from_config(
        {
            "aliases": {
                "ts": {"field": "event_time_ms", "unit": "s"},
                "heart_rate": {"field": "hr", "unit": "bpm"},
                "time_ns": {"field": "event_time_ms", "unit": "ns"},
            }
        }
    )
    assert [a.name for a in devices.of(EVENT_TIME_FIELD)] == ["ts", "time_ns"]
    assert devices.of("hr") == (Alias("heart_rate", "hr", "bpm"),)
    assert devices.of("spo2") == ()
    assert devices.names == ("ts", "heart_rate", "time_ns")


@pytest.mark.parametrize(
    ("unit", "value", "ms"),
    [
        ("ms", TS_MS, TS_MS),
        ("s", TS_MS // 1000, TS_MS),
        ("s", 1_765_000_000.123, TS_MS + 123),  # not exact as a float: rounded, not floored
        ("s", 1_765_000_000.9996, TS_MS + 1000),
        ("us", TS_MS * 1000 + 999, TS_MS),
        ("ns", TS_MS * 1_000_000 + 999_999, TS_MS),  # exact: no float on the way
        ("ns", TS_MS * 1_000_000, TS_MS),
    ],
)
def test_event_times_convert_to_integer_milliseconds(unit: str, value: float, ms: int):
    converted = Alias("ts", EVENT_TIME_FIELD, unit).to_canonical(value)
    assert converted == ms and isinstance(converted, int)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300])
def test_seconds_no_engine_can_hold_become_an_out_of_range_event_time(value: float):
    assert Alias("ts", EVENT_TIME_FIELD, "s").to_canonical(value) == EVENT_TIME_END_MS


def test_vitals_convert_to_their_canonical_unit():
    assert Alias("temp_f", "temp", "fahrenheit").to_canonical(98.6) == pytest.approx(37.0)
    assert Alias("temp_f", "temp", "fahrenheit").to_canonical(32.0) == 0.0
    assert Alias("heart_rate", "hr", "bpm").to_canonical(88.0) == 88.0


def test_each_vitals_canonical_unit_is_the_schemas():
    """The first unit of each vital is its canonical one, the unit core.schema charts it in."""
    names = {"°C": "celsius"}
    for vital in VITALS:
        assert next(iter(UNITS[vital.name])) == names.get(vital.unit, vital.unit)
        assert next(iter(UNITS[vital.name].values())).identity


def test_event_time_of_a_message_prefers_the_canonical_field():
    devices = DeviceFormat()
    assert event_time_ms_of({"ts": TS_MS}, devices) == TS_MS
    assert event_time_ms_of({"ts": TS_MS, "event_time_ms": 5}, devices) == 5
    assert event_time_ms_of({"hr": 80}, devices) is None


@pytest.mark.parametrize(
    ("block", "where"),
    [
        ([], "devices: expected a mapping"),
        ({"alias": {}}, "devices: unknown key(s) ['alias']"),
        ({"aliases": ["ts"]}, "devices/aliases: expected a mapping"),
        ({"aliases": {"ts": "event_time_ms"}}, "devices/aliases/ts: expected {field"),
        ({"aliases": {"ts": {"field": "event_time_ms"}}}, "devices/aliases/ts: expected"),
        ({"aliases": {"ts": {"field": "when", "unit": "ms"}}}, "devices/aliases/ts/field"),
        ({"aliases": {"ts": {"field": "event_time_ms", "unit": "min"}}}, "ts/unit: event_time_ms"),
        ({"aliases": {"t": {"field": "temp", "unit": "kelvin"}}}, "t/unit: temp takes"),
        ({"aliases": {"pulse": {"field": "hr", "unit": "%"}}}, "pulse/unit: hr takes"),
        ({"aliases": {"HR": {"field": "hr", "unit": "bpm"}}}, "devices/aliases/HR: a canonical"),
        ({"aliases": {"send_wall_ns": {"field": "event_time_ms", "unit": "ns"}}}, "a canonical"),
        ({"aliases": {"heart rate": {"field": "hr", "unit": "bpm"}}}, "letters, digits and _"),
        (
            {
                "aliases": {
                    "ts": {"field": "event_time_ms", "unit": "ms"},
                    "TS": {"field": "event_time_ms", "unit": "s"},
                }
            },
            "devices/aliases/TS: a second alias",
        ),
    ],
)
def test_a_bad_block_is_one_error_naming_its_key(block: object, where: str):
    with pytest.raises(SettingsError) as error:
        DeviceFormat.from_config(block)
    assert where in str(error.value)


def test_the_schema_refuses_what_the_parser_refuses_first():
    """The schema (the Snakefile's validation) already refuses an unknown unit or key."""
    config = vsconfig.load_config()
    config["devices"] = {"aliases": {"ts": {"field": "event_time_ms", "unit": "min"}}}
    with pytest.raises(vsconfig.ConfigError, match="devices/aliases/ts/unit"):
        vsconfig.validate(config)
    config["devices"] = {"aliases": {}, "extra": 1}
    with pytest.raises(vsconfig.ConfigError, match="devices"):
        vsconfig.validate(config)
