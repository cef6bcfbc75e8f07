"""The shared argument types fail the one way the command line promises (one line, exit 2).

Each validator is checked on the values a person or a workflow typo produces; the memory check
on a machine whose memory is pretended small; the writability probe must leave nothing behind.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
from vitalstream.core import cliargs


@pytest.mark.parametrize(
    ("validator", "good", "bad"),
    [
        (cliargs.positive_int, {"1": 1, "12": 12, "1e3": 1000}, ["0", "-1", "2.5", "x", "inf"]),
        (cliargs.nonnegative_int, {"0": 0, "7": 7}, ["-1", "nan", "1.5"]),
        (cliargs.positive_float, {"0.5": 0.5, "1e3": 1000.0}, ["0", "-2", "nan", "inf", "x"]),
        (cliargs.nonnegative_float, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "-inf"]),
        (cliargs.fraction, {"0": 0.0, "1": 1.0, "0.25": 0.25}, ["1.5", "-0.1", "nan"]),
        (cliargs.tcp_port, {"1": 1, "65535": 65535}, ["0", "65536", "http"]),
        (cliargs.int_at_least(2), {"2": 2, "10": 10}, ["1", "0", "x"]),
        (cliargs.int_at_most(10), {"1": 1, "10": 10}, ["11", "0"]),
        (cliargs.port_list, {"9092,9093": [9092, 9093]}, ["9092,x", "0,1"]),
        (cliargs.memory_size, {"512m": "512m", "2g": "2g", "1024": "1024"}, ["lots", "2 gb"]),
    ],
)
def test_validators_accept_good_values_and_name_the_bad_one(validator, good, bad):
    for text, value in good.items():
        assert validator(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=r"must be .*got"):
            validator(text)


def test_utc_time_accepts_iso_and_refuses_the_rest():
    assert cliargs.utc_time("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    with pytest.raises(argparse.ArgumentTypeError, match="ISO-8601"):
        cliargs.utc_time("yesterday-ish")


def test_paths_that_must_exist(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    assert cliargs.existing_file(str(tmp_path / "f")) == tmp_path / "f"
    assert cliargs.existing_dir(str(tmp_path)) == tmp_path
    assert cliargs.existing_path(str(tmp_path / "f")) == tmp_path / "f"
    for check, path in [
        (cliargs.existing_file, tmp_path),
        (cliargs.existing_file, tmp_path / "none"),
        (cliargs.existing_dir, tmp_path / "f"),
        (cliargs.existing_path, tmp_path / "none"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match="must"):
            check(str(path))


def test_writable_outputs_are_probed_for_real_and_the_probe_leaves_nothing(tmp_path: Path):
    (tmp_path / "f").write_text("x")
    assert cliargs.writable_dir(str(tmp_path / "new" / "deeper")) == tmp_path / "new" / "deeper"
    assert cliargs.writable_file(str(tmp_path / "a" / "b.json")) == tmp_path / "a" / "b.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # nothing created, nothing left
    bad = [
        (cliargs.writable_dir, "/proc/x", "cannot create anything in /proc"),
        (cliargs.writable_dir, f"{tmp_path}/f/x", "is a file"),
        (cliargs.writable_dir, f"{tmp_path}/f", "is a file"),
        (cliargs.writable_file, str(tmp_path), "is a directory"),
        (cliargs.writable_file, f"{tmp_path}/f/x.json", "is a file"),
    ]
    for check, text, why in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            check(text)


def test_a_size_beyond_memory_is_a_usage_error_naming_the_arguments(monkeypatch):
    monkeypatch.setattr(cliargs, "available_memory_bytes", lambda: 1 << 30)  # 1 GiB
    cliargs.check_fits_in_memory("argument --n", 1e6, 500, "n")  # 0.5 GB of 0.8 GiB: fine
    with pytest.raises(cliargs.UsageError, match=r"^argument --n: .*more than the"):
        cliargs.check_fits_in_memory("argument --n", 1e7, 500, "n")
    with pytest.raises(cliargs.UsageError, match="unboundedly many bytes"):
        cliargs.check_fits_in_memory("argument --n", math.inf, 500, "n")
    with pytest.raises(cliargs.UsageError):
        cliargs.check_fits_in_memory("argument --n", math.nan, 500, "n")


def test_available_memory_is_known_on_linux():
    assert 0 < cliargs.available_memory_bytes() < 2**63 - 1


def test_checked_and_require_keys_turn_bad_values_into_usage_errors():
    def build(value: int) -> int:
        if value < 0:
            raise ValueError("value must be >= 0")
        return value

    assert cliargs.checked("--v", build, 3) == 3
    with pytest.raises(cliargs.UsageError, match=r"^argument --v: value must be >= 0$"):
        cliargs.checked("--v", build, -1)
    cliargs.require_keys("--c", {"a": 1}, ["a"])
    with pytest.raises(cliargs.UsageError, match=r"missing key.*b"):
        cliargs.require_keys("--c", {"a": 1}, ["a", "b"])
    assert issubclass(cliargs.UsageError, ValueError)  # callers catching ValueError still do


def test_json_object_refuses_other_json():
    assert cliargs.json_object('{"a": 1}') == {"a": 1}
    with pytest.raises(argparse.ArgumentTypeError, match="JSON object"):
        cliargs.json_object("[1]")
