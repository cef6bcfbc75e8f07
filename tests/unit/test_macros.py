"""Macros: values come from the named result files, with the stated precision."""

from __future__ import annotations

import json

import pytest
from vitalstream.paper import macros


def test_lookup_handles_nested_keys_and_dotted_spark_keys():
    data = {"a": {"b": 1}, "spark_conf": {"spark.sql.shuffle.partitions": "2"}}
    assert macros.lookup(data, "a.b") == 1
    assert macros.lookup(data, "spark_conf.spark.sql.shuffle.partitions") == "2"
    with pytest.raises(KeyError):
        macros.lookup(data, "a.c")


@pytest.mark.parametrize(
    ("value", "decimals", "body"),
    [
        (1234.56, 0, "1235"),
        (0.5, 1, "0.5"),
        (None, 0, "n/a"),
        ("4.2_0", None, r"4.2\_0"),
        ("2026-11-27T22:00:00+00:00", None, "2026-11-27"),
    ],
)
def test_format_value(value, decimals, body):
    assert macros.format_value(value, decimals) == body


def test_write_macros_resolves_every_macro_from_its_source(tmp_path):
    metrics = {
        "patients": 200,
        "event_time_span_h": 1.0,
        "events_produced": 720000,
        "events_processed": 716000,
        "quarantined": 4000,
        "windows": 12000,
        "alerts": 900,
        "alert_patients": 40,
        "producer_rate": 11999.6,
        "spark_rate": 11000.2,
        "alert_latency_ms": {"p50": 812.4, "p90": 1500.5, "p99": 2100.0},
        "condition": {"window_s": 60, "watermark_s": 120, "kafka_partitions": 2, "speedup": 60},
    }
    provenance = {
        "spark_conf": {"spark.sql.shuffle.partitions": "2"},
        "packages": {"pyspark": "4.2.0"},
        "kafka": {"version": "4.1.1"},
        "machine": {"python": "3.11.7", "cores": 2, "memory_gib": 23.4},
        "git": {"short": "abcdef12"},
        "date_utc": "2026-11-27T10:00:00",
    }
    (tmp_path / "m.json").write_text(json.dumps(metrics))
    (tmp_path / "p.json").write_text(json.dumps(provenance))
    rows = macros.write_macros(
        {"metrics": tmp_path / "m.json", "provenance": tmp_path / "p.json"},
        tmp_path / "macros.tex",
        tmp_path / "macros.json",
    )
    tex = (tmp_path / "macros.tex").read_text()
    assert len(rows) == len(macros.RUN_MACROS)
    assert r"\newcommand{\RunProducerRate}{12000}" in tex
    assert r"\newcommand{\RunLatencyPfifty}{812}" in tex
    assert r"\newcommand{\MachineMemoryGiB}{23}" in tex
    assert r"\newcommand{\GitCommit}{abcdef12}" in tex
    assert "m.json:alert_latency_ms.p50" in tex


def test_missing_key_names_the_macro_and_file(tmp_path):
    (tmp_path / "m.json").write_text("{}")
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(KeyError, match="RunPatients"):
        macros.resolve(
            macros.RUN_MACROS, {"metrics": tmp_path / "m.json", "provenance": tmp_path / "p.json"}
        )


def test_macro_names_must_be_letters():
    with pytest.raises(ValueError):
        macros.Macro("Run1", "metrics", "x")
