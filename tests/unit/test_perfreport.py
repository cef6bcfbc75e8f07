"""Summaries for the performance notebooks: medians with ranges, paired ratios."""

from __future__ import annotations

import pandas as pd
from vitalstream.measure import perfreport


def frame():
    return pd.DataFrame(
        {
            "condition": ["a", "b", "a", "b", "a", "b"],
            "rep": [1, 1, 2, 2, 3, 3],
            "rate": [100.0, 10.0, 120.0, 20.0, 80.0, 10.0],
        }
    )


def test_summarise_gives_median_and_range_per_group():
    out = perfreport.summarise(frame(), ["condition"], ["rate"]).set_index("condition")
    assert out.loc["a", "rate_median"] == 100 and out.loc["a", "rate_min"] == 80
    assert out.loc["b", "rate_max"] == 20 and out.loc["b", "reps"] == 3


def test_paired_ratios_pair_by_repetition():
    assert perfreport.paired_ratios(frame(), "a", "b", "rate") == [10.0, 6.0, 8.0]
    assert perfreport.paired_ratios(frame(), "a", "missing", "rate") == []


def test_ratio_of_nothing_is_none():
    assert perfreport.ratio(1.0, 0.0) is None
    assert perfreport.ratio(None, 1.0) is None
    assert perfreport.ratio(3.0, 2.0) == 1.5


def test_macro_value_marks_missing_values():
    assert perfreport.macro_value(None, 1, "x")["value"] == "n/a"
    assert perfreport.macro_value(float("nan"), 1, "x")["value"] == "n/a"
    assert perfreport.macro_value(2, 0, "x")["value"] == 2.0


def test_a_links_change_is_read_from_the_settings_leaving_out_how_runs_are_driven():
    before = {"watermark_s": 120, "consumer": {"fetch_max_wait_ms": 500},
              "spark_conf": {"spark.sql.shuffle.partitions": 200},
              "load": {"rates": [1000]}, "abort_on_backlog": False}  # fmt: skip
    after = {"watermark_s": 120, "consumer": {"fetch_max_wait_ms": 10},
             "spark_conf": {"spark.sql.shuffle.partitions": 1}, "load": {"rates": [2000]},
             "abort_on_backlog": True, "producer": {"linger_ms": 20}}  # fmt: skip
    assert perfreport.setting_changes(before, after) == [
        "consumer.fetch_max_wait_ms: 500 to 10",
        "producer.linger_ms: none to 20",
        "spark.sql.shuffle.partitions: 200 to 1",
    ]
    assert perfreport.setting_changes(after, after) == []


def test_a_chain_skips_conditions_that_did_not_run_and_orients_gains_above_one_as_better():
    runs = pd.DataFrame(
        {
            "condition": ["start", "next", "start", "next"],
            "rep": [1, 1, 2, 2],
            "p99": [8000.0, 2000.0, 6000.0, 3000.0],
        }
    )
    settings = {"start": {"trigger_ms": 1000}, "next": {"trigger_ms": 0}}
    links = perfreport.chain_links(runs, settings, ["start", "absent", "next"], "p99")
    assert [link["condition"] for link in links] == ["start", "next"]
    assert links[0]["changes"] == [] and links[0]["ratio"] is None
    assert links[1]["changes"] == ["trigger_ms: 1000 to 0"]
    assert (links[1]["ratio"], links[1]["ratio_min"], links[1]["ratio_max"]) == (3.0, 2.0, 4.0)


def test_a_paired_summary_is_the_median_and_range_of_the_paired_ratios():
    assert perfreport.paired_summary(frame(), "a", "b", "rate") == (8.0, 6.0, 10.0)
    assert perfreport.paired_summary(frame(), "a", "missing", "rate") == (None, None, None)
