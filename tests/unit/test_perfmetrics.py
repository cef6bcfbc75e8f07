"""Lag, closable time, per-step results and the sustainable-throughput criterion, on
hand-made timelines and progress reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from vitalstream.measure import perfmetrics

S = 1_000_000_000  # ns per second


def batches(rows):
    """(start_s, duration_s, offsets) → a batch table."""
    progress = [
        {
            "batchId": i,
            "timestamp": pd.Timestamp(start * S, unit="ns", tz="UTC").isoformat(),
            "numInputRows": 1,
            "durationMs": {"triggerExecution": int(duration * 1000)},
            "sources": [{"endOffset": {"t": {"0": offsets}}}],
            "stateOperators": [{"numRowsTotal": 10 * i, "memoryUsedBytes": 100}],
        }
        for i, (start, duration, offsets) in enumerate(rows)
    ]
    return perfmetrics.batch_table(progress)


def test_batch_table_reads_offsets_and_state():
    table = batches([(0, 1, 100), (1, 2, 300)])
    assert table["offsets"].tolist() == [100, 300]
    assert table["end_wall_ns"].tolist() == [1 * S, 3 * S]
    assert table["state_rows"].tolist() == [0, 10]


def test_lag_is_sent_minus_consumed_by_the_slowest_query():
    timeline = np.array([[0, 0, 0], [10 * S, 1000, 10_000]], dtype=float)
    fast = batches([(0, 2, 200), (2, 2, 400)])  # done at 2 s and 4 s
    slow = batches([(0, 4, 300)])  # done at 4 s
    lag = perfmetrics.lag_at(timeline, {"fast": fast, "slow": slow}, np.array([3 * S, 5 * S]))
    # At 3 s: 300 sent; fast consumed 200, slow nothing yet → 300. At 5 s: 500 - 300 = 200.
    assert lag.tolist() == [300.0, 200.0]


def test_closable_time_interpolates_the_generator_timeline():
    timeline = np.array([[0, 0, 1000], [10 * S, 100, 11_000]], dtype=float)
    closable = perfmetrics.closable_wall_ns(timeline, np.array([6000, 20_000]))
    assert closable[0] == pytest.approx(5 * S)
    assert np.isnan(closable[1])  # the stream never got there


def step(target, achieved, start_s, end_s):
    return {
        "target_rate": target,
        "achieved_rate": achieved,
        "start_wall_ns": start_s * S,
        "end_wall_ns": end_s * S,
    }


def empty_latency():
    return pd.DataFrame({"at_wall_ns": pd.Series([], dtype="int64"), "latency_ms": []})


def test_a_step_holds_only_with_bounded_staleness_and_a_producer_on_rate():
    # Step 1: 100/s for 10 s; the batch completing at 10.2 s had read 1000: the oldest
    # unread reading (number 1001) was sent at 10.001 s, 0.199 s before.
    # Step 2: 1000/s for 10 s; the batch completing at 21 s had read 3000: reading 3001 was
    # sent at 12.001 s, 8.999 s before.
    # Step 3: the producer reached half its rate (fails whatever the backlog).
    report = {
        "timeline": [[0, 0, 0], [10 * S, 1000, 0], [20 * S, 11_000, 0], [30 * S, 11_100, 0]],
        "steps": [step(100, 100, 0, 10), step(1000, 1000, 10, 20), step(20, 10, 20, 30)],
    }
    queries = {"q": batches([(9.5, 0.7, 1000), (19, 2, 3000)])}
    criterion = perfmetrics.SustainCriterion(max_lag_s=5, min_producer_ratio=0.95)
    results = perfmetrics.step_results(
        report, queries, empty_latency(), empty_latency(), criterion, trigger_ms=0
    )
    assert [r["sustained"] for r in results] == [True, False, False]
    assert results[0]["staleness_end_s"] == pytest.approx(0.199)
    assert results[1]["staleness_end_s"] == pytest.approx(8.999)
    assert not results[2]["producer_ok"]
    assert perfmetrics.sustainable_rate(results) == 100


def test_a_job_at_half_the_offered_rate_fails_even_a_short_step():
    # 3-s steps at 1000/s; the job processes 500/s in 0.5-s batches that read what had
    # arrived half a second after the previous batch's start. After 3 s it has read 1250 of
    # 3000: staleness 1.75 s, over a 1-s bound. (A backlog bound of 10 s of input could
    # never fail within a 3-s step.)
    report = {
        "timeline": [[0, 0, 0], [3 * S, 3000, 0], [6 * S, 6000, 0]],
        "steps": [step(1000, 1000, 0, 3)],
    }
    queries = {"q": batches([(0.5 * i, 0.5, 250 * i) for i in range(1, 8)])}
    criterion = perfmetrics.SustainCriterion(max_lag_s=1)
    result = perfmetrics.step_results(
        report, queries, empty_latency(), empty_latency(), criterion, 0
    )[0]
    assert result["staleness_end_s"] == pytest.approx(3.0 - 1.251)
    assert not result["sustained"]


def test_staleness_does_not_depend_on_the_next_steps_rate():
    # The same job and the same step, followed by a slow or by a fast step.
    queries = {"q": batches([(9, 2, 900)])}  # done at 11 s, read 900 (sent by 9 s)
    slow = np.array([[0, 0, 0], [10 * S, 1000, 0], [20 * S, 2000, 0]], dtype=float)
    fast = np.array([[0, 0, 0], [10 * S, 1000, 0], [20 * S, 101_000, 0]], dtype=float)
    for timeline in (slow, fast):
        assert perfmetrics.staleness_after(timeline, queries, 10 * S) == pytest.approx(1.99)


def test_staleness_is_zero_when_everything_sent_was_read():
    timeline = np.array([[0, 0, 0], [10 * S, 1000, 0], [20 * S, 1000, 0]], dtype=float)
    queries = {"q": batches([(10, 1, 1000)])}
    assert perfmetrics.staleness_after(timeline, queries, 10 * S) == 0.0


def test_backlog_is_measured_at_the_next_batch_completion_not_mid_batch():
    timeline = np.array([[0, 0, 0], [10 * S, 1000, 0], [20 * S, 2000, 0]], dtype=float)
    queries = {"q": batches([(8, 1, 900), (9, 3, 1000)])}  # a batch runs across t = 10 s
    # Evaluated at 12 s (its completion): 1200 sent, 1000 read.
    assert perfmetrics.backlog_after(timeline, queries, 10 * S) == pytest.approx(200)
    # No batch after 15 s: evaluated at 15 s itself.
    assert perfmetrics.backlog_after(timeline, queries, 15 * S) == pytest.approx(500)


def test_the_trigger_interval_widens_the_bound():
    report = {"timeline": [[0, 0, 0], [10 * S, 1000, 0]], "steps": [step(100, 100, 0, 10)]}
    queries = {"q": batches([(9, 1.5, 400)])}  # reading 401 sent at 4.01 s: 6.49 s stale
    criterion = perfmetrics.SustainCriterion(max_lag_s=5)
    strict = perfmetrics.step_results(
        report, queries, empty_latency(), empty_latency(), criterion, 0
    )
    loose = perfmetrics.step_results(
        report, queries, empty_latency(), empty_latency(), criterion, 2000
    )
    assert not strict[0]["sustained"] and loose[0]["sustained"]


def test_sustainable_rate_is_the_held_prefix_not_the_best_step():
    steps = [
        {"target_rate": 1, "sustained": True},
        {"target_rate": 2, "sustained": False},
        {"target_rate": 4, "sustained": True},
    ]
    assert perfmetrics.sustainable_rate(steps) == 1
    assert perfmetrics.sustainable_rate([{"target_rate": 1, "sustained": False}]) == 0


def test_latencies_are_assigned_to_the_step_they_fall_in():
    report = {
        "timeline": [[0, 0, 0], [20 * S, 2000, 0]],
        "steps": [step(100, 100, 0, 10), step(100, 100, 10, 20)],
    }
    queries = {"q": batches([(0, 1, 1000), (15, 1, 2000)])}
    reading = pd.DataFrame({"at_wall_ns": [1 * S, 2 * S, 12 * S], "latency_ms": [10.0, 30.0, 50.0]})
    results = perfmetrics.step_results(
        report, queries, reading, empty_latency(), perfmetrics.SustainCriterion(), 0
    )
    assert results[0]["reading_alert_latency_ms"]["count"] == 2
    assert results[1]["reading_alert_latency_ms"]["max"] == 50.0


# --------------------------------------------------------------------------- fixed-rate probes


def test_theil_sen_slope_ignores_an_outlier_and_needs_three_points():
    t = np.arange(10.0)
    flat = np.full(10, 0.5)
    flat[4] = 9.0  # one slow batch
    assert perfmetrics.theil_sen_slope(t, flat) == pytest.approx(0.0)
    assert perfmetrics.theil_sen_slope(t, 0.3 * t + 1) == pytest.approx(0.3)
    assert perfmetrics.theil_sen_slope(t[:2], flat[:2]) is None


def probe(batch_rows, rate=1000.0, achieved=1000.0, seconds=20):
    """A 20-s probe at ``rate`` sent evenly; ``batch_rows``: (start_s, duration_s) → each batch
    reads every message sent by its start."""
    report = {
        "timeline": [[0, 0, 0], [seconds * S, achieved * seconds, 0]],
        "steps": [step(rate, achieved, 0, seconds)],
    }
    rows = [(start, duration, int(achieved * start)) for start, duration in batch_rows]
    return report, {"readings": batches(rows), "windows": batches(rows)}


CRITERION = perfmetrics.SustainCriterion(max_lag_s=2, settle_s=3, max_growth=0.05)


def test_one_slow_batch_in_a_flat_series_holds():
    # 0.5-s batches back to back, one of them 6 s long: the after-step criterion would fail
    # a step ending in it; the medians do not move.
    rows, t = [], 0.0
    while t < 21:
        duration = 6.0 if 8 <= t < 8.5 else 0.5
        rows.append((t, duration))
        t += duration
    report, queries = probe(rows)
    result = perfmetrics.fixed_step_result(report, queries, CRITERION, trigger_ms=0)
    assert result["held"], result
    assert result["staleness_slope"] == pytest.approx(0.0, abs=0.01)
    assert result["staleness_p99_s"] > 2  # the slow batch is in the series, over the bound
    assert result["batch_duration_sd_ms"] > 0 and result["batch_duration_median_ms"] == 500


def test_a_job_falling_behind_fails_even_within_the_level_bound():
    # Each 1-s batch reads only 0.9 s of input: the staleness grows at 0.1 s/s, from 1 s.
    rows = [(1.0 + i, 1.0) for i in range(20)]
    report = {"timeline": [[0, 0, 0], [21 * S, 21_000, 0]], "steps": [step(1000, 1000, 0, 20)]}
    offsets = [int(1000 * (0.9 * i)) for i in range(20)]
    table = batches([(s, d, o) for (s, d), o in zip(rows, offsets, strict=True)])
    result = perfmetrics.fixed_step_result(
        report, {"readings": table}, perfmetrics.SustainCriterion(max_lag_s=5), 0
    )
    assert result["staleness_slope"] == pytest.approx(0.1, rel=0.05)
    assert result["level_ok"] and not result["growth_ok"] and not result["held"]


def test_a_producer_short_of_its_rate_fails_a_probe():
    report, queries = probe([(0.5 * i, 0.5) for i in range(42)], rate=1000, achieved=800)
    result = perfmetrics.fixed_step_result(report, queries, CRITERION, trigger_ms=0)
    assert result["producer_ratio"] == pytest.approx(0.8)
    assert not result["producer_ok"] and not result["held"]


def test_a_staleness_level_above_the_bound_fails_a_probe():
    # Batches of 3 s: flat, but every reading waits about 3 s, over a 2-s bound.
    report, queries = probe([(3.0 * i, 3.0) for i in range(8)])
    result = perfmetrics.fixed_step_result(report, queries, CRITERION, trigger_ms=0)
    assert not result["level_ok"] and not result["held"]
    loose = perfmetrics.fixed_step_result(report, queries, CRITERION, trigger_ms=2000)
    assert loose["held"]  # the trigger interval widens the bound here too
