"""What the top of RQ1's grid did, and why: the verdicts and the sentences made from runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from vitalstream.measure import gridtop, perfreport


def run(patients, partitions, spark, *, offered=None, stale=0.5, producer_ok=True, batch=900):
    """One run row as the RQ1 notebook sees it (run_table plus its ``held`` column)."""
    return {
        "patients": patients,
        "partitions": partitions,
        "step_spark_rate": spark,
        "first_step_achieved_rate": patients if offered is None else offered,
        "first_step_staleness_s": stale,
        "lag_bound_s": 2.0,
        "batch_p50_ms": batch,
        "jvm_cpu_pct": 180.0,
        "first_step_producer_ok": float(producer_ok),
        "held": spark >= patients and producer_ok,
    }


def grid(*rows):
    return pd.DataFrame(list(rows))


def test_the_top_loads_are_the_largest_patient_counts():
    runs = grid(run(100, 1, 100), run(50000, 1, 10), run(1000, 1, 1000), run(50000, 6, 10))
    assert gridtop.top_loads(runs) == [1000, 50000]
    assert gridtop.top_loads(runs, 1) == [50000]


def test_a_held_load_names_the_fewest_partitions_that_held_every_time():
    runs = grid(run(1000, 1, 1000), run(1000, 1, 1000), run(1000, 6, 1000), run(1000, 6, 990))
    result = gridtop.verdict(runs, 1000)
    assert result["held"] and result["partitions"] == 1
    assert gridtop.reason(result) == "held"
    assert r"every repetition held with \num{1}~partition," in gridtop.sentence(result)


def test_spark_behind_the_load_gives_its_share_staleness_and_bound():
    runs = grid(
        run(100000, 1, 20000, stale=30.0),
        run(100000, 6, 40000, stale=12.0, batch=2500),
        run(100000, 6, 30000, stale=14.0, batch=2300),
        run(100000, 6, 80000, stale=20.0, batch=2700),
    )
    result = gridtop.verdict(runs, 100000)
    # The fastest partition count by the median, not by the best single run.
    assert result["partitions"] == 6
    assert result["spark_share"] == 40.0
    assert result["held_runs"] == 0 and result["runs"] == 4
    assert gridtop.reason(result) == "spark"
    text = gridtop.sentence(result)
    assert r"\qty{40}{\percent} of the offered load" in text
    assert r"\qty{14.0}{\second} old" in text and r"bound of \qty{2.0}{\second}" in text
    assert r"took \qty{2.50}{\second}" in text
    assert r"held in \num{0} of \num{4}~runs" in text
    assert "no partition count held in every repetition" in text


def test_a_short_producer_is_named_instead_of_spark():
    runs = grid(run(100000, 6, 50000, offered=60000, producer_ok=False))
    result = gridtop.verdict(runs, 100000)
    assert gridtop.reason(result) == "producer"
    assert r"offered only \qty{60}{\percent} of the load" in gridtop.sentence(result)


def test_a_value_the_runs_lack_prints_as_n_a():
    runs = grid(run(50000, 6, 100, stale=float("inf"), batch=np.nan))
    text = gridtop.sentence(gridtop.verdict(runs, 50000))
    assert "n/a old" in text and "took n/a at the median" in text
    assert r"At \num{50000}~patients it did not hold in every repetition (held in" in text


def test_the_sentences_cover_the_top_two_loads_and_none_without_runs():
    runs = grid(run(100, 1, 100), run(1000, 1, 1000), run(10000, 1, 10))
    text = gridtop.top_sentences(runs)
    assert text.count("At ") == 2 and text.endswith(".")
    assert r"\num{100}~patients" not in text
    assert gridtop.top_sentences(pd.DataFrame()) is None


def test_the_run_table_carries_the_first_steps_producer_and_staleness(tmp_path):
    step = {
        "target_rate": 1000.0,
        "achieved_rate": 900.0,
        "spark_rate": 800.0,
        "staleness_end_s": 3.5,
        "lag_bound_s": 2.0,
        "producer_ok": False,
        "sustained": False,
        "reading_alert_latency_ms": {"p50": 1.0, "p99": 2.0},
    }
    path = tmp_path / "rq1" / "p1000_k1" / "rep1" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"steps": [step], "sustainable_rate": 0.0}))
    row = perfreport.run_table(tmp_path, "rq1").iloc[0]
    assert row["first_step_achieved_rate"] == 900.0
    assert row["first_step_staleness_s"] == 3.5 and row["lag_bound_s"] == 2.0
    assert row["first_step_producer_ok"] == 0


def test_the_largest_held_clause_says_when_nothing_held():
    assert gridtop.largest_held_clause(None, None) == (
        "No load of the grid held in every repetition"
    )
    clause = gridtop.largest_held_clause(10000, 6)
    assert clause.endswith(r"\num{10000}~patients (with \num{6}~partitions)")
    assert gridtop.largest_held_clause(1000, 1).endswith(r"\num{1}~partition)")
