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
