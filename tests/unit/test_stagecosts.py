"""The breakdown's arithmetic (vitalstream.measure.stagecosts): stage costs from cumulative
prefixes, medians after the warm-up batch, one micro-batch's segments and the text's macros;
and the sink's stage timer (vitalstream.sinks.batch.StageTimer)."""

from __future__ import annotations

import time

import pytest
from vitalstream.measure import stagecosts
from vitalstream.sinks.batch import SINK_STAGES, StageTimer


def test_a_stage_costs_the_difference_of_successive_prefixes():
    cumulative = {"fetch": 100, "parse": 250, "validate": 260, "aggregate": 900, "score": 950,
                  "collect": 1200}  # fmt: skip
    costs, clipped = stagecosts.stage_costs(cumulative)
    assert costs == {"fetch": 100, "parse": 150, "validate": 10, "aggregate": 640, "score": 50,
                     "collect": 250}  # fmt: skip
    assert clipped == []


def test_a_negative_difference_is_clipped_at_zero_and_named():
    cumulative = {"fetch": 100, "parse": 90, "validate": 120}
    costs, clipped = stagecosts.stage_costs(cumulative, ["fetch", "parse", "validate"])
    assert costs == {"fetch": 100, "parse": 0.0, "validate": 30}  # from the prefix, not the clip
    assert clipped == ["parse"]


def test_the_median_leaves_the_warm_up_batch_out():
    assert stagecosts.warm_median([9000, 10, 30, 20]) == 20
    assert stagecosts.warm_median([9000]) is None


def _report(batch_id: int, rows: int, planning: float, updates: float = 0) -> dict:
    durations = dict.fromkeys(stagecosts.DURATION_KEYS, 1.0) | {"queryPlanning": planning}
    return {
        "batchId": batch_id,
        "numInputRows": rows,
        "durationMs": durations,
        "stateOperators": [{"allUpdatesTimeMs": updates, "numRowsTotal": 5},
                           {"allUpdatesTimeMs": updates, "numRowsTotal": 1}],
    }  # fmt: skip


def test_streaming_medians_skip_empty_batches_and_match_commits_by_batch():
    progress = [_report(0, 100, 5000), _report(1, 0, 999), _report(2, 100, 300, 4),
                _report(3, 100, 500, 6)]  # fmt: skip
    commits = [{"batch_id": 0, "stage_ms": {"collect": 900.0}},
               {"batch_id": 2, "stage_ms": {"collect": 40.0}},
               {"batch_id": 3, "stage_ms": {"collect": 60.0}}]  # fmt: skip
    medians = stagecosts.streaming_medians(progress, commits)
    assert medians["batch_ids"] == [0, 2, 3]
    assert medians["duration_ms"]["queryPlanning"] == 400
    assert medians["state"]["allUpdatesTimeMs"] == 10  # summed over operators, then median
    assert medians["state"]["numRowsTotal"] == 6
    assert medians["stage_ms"] == {"collect": 50}


def _level(messages: int = 1000) -> dict:
    duration = {"latestOffset": 10, "getBatch": 5, "queryPlanning": 300, "addBatch": 600,
                "walCommit": 20, "commitOffsets": 15, "triggerExecution": 1000}  # fmt: skip
    sink = {"collect": 400, "rules": 50, "write": 30, "publish": 5, "index": 0, "commit": 5}
    costs = {"fetch": 10, "parse": 30, "validate": 0, "aggregate": 40, "score": 10, "collect": 10}
    return {
        "messages": messages,
        "streaming": {"windows": {"duration_ms": duration, "stage_ms": sink}},
        "stages": {"costs_ms": costs, "clipped": ["validate"]},
    }


def test_the_segments_of_a_batch_add_up_to_its_trigger_execution():
    parts = stagecosts.segments(_level())
    assert set(parts) == set(stagecosts.SEGMENT_LABELS)
    assert sum(parts.values()) == pytest.approx(1000)
    # The sink's collect (400 ms) split in the prefixes' proportions (100 ms in all).
    assert parts["aggregate"] == pytest.approx(160)
    assert parts["parse"] == pytest.approx(120)
    assert parts["call"] == pytest.approx(600 - 490)  # addBatch outside the sink's timers
    assert parts["offsets"] == 50
    assert parts["other"] == pytest.approx(1000 - 300 - 50 - 600)


def test_the_summary_names_the_largest_segment_and_the_driver_share():
    summary = stagecosts.level_summary(stagecosts.segments(_level()))
    assert summary["largest"] == "planning"
    assert summary["largest_label"] == "query planning"
    assert summary["planning_percent"] == pytest.approx(30)
    # Collection (the prefixes' collect share of the sink's: 40 ms), rules 50, writes 30.
    assert summary["driver_percent"] == pytest.approx(12)


def test_the_macros_compare_the_lowest_and_the_highest_level():
    result = {"levels": [_level(5000), _level(1000)], "batches": 6, "repeats": 5, "patients": 10}
    values = stagecosts.breakdown_values(result, "results/perf/breakdown.json")
    assert values["BreakdownLowMessages"]["value"] == 1000
    assert values["BreakdownHighMessages"]["value"] == 5000
    assert values["BreakdownLowTotalSeconds"]["value"] == pytest.approx(1.0)
    assert values["BreakdownLowLargestStage"] == {
        "value": "query planning",
        "decimals": None,
        "source": "results/perf/breakdown.json",
    }
    assert all(name.isalpha() for name in values)  # LaTeX macro names are letters only


def test_the_stage_timer_charges_each_interval_to_one_stage():
    timer = StageTimer()
    time.sleep(0.01)
    timer.lap("collect")
    timer.lap("rules")
    time.sleep(0.005)
    timer.lap("collect")
    ms = timer.ms()
    assert set(ms) == set(SINK_STAGES)
    assert ms["collect"] >= 15
    assert ms["rules"] < ms["collect"]
    assert ms["write"] == 0
