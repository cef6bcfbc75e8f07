"""Which lever buys what (vitalstream.measure.levers, and the plan of
vitalstream.experiments.breakdown): drain rates from progress reports, the job's rate as its
slower query's, rotating orders, per-round ratios, the text's macros and the config block."""

from __future__ import annotations

import json

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.cliargs import UsageError
from vitalstream.core.schema import VITAL_NAMES
from vitalstream.experiments.breakdown import LeverPlan, read_lever_plan
from vitalstream.measure import levers
from vitalstream.stream.spec import WINDOW_STATS


def _report(batch_id: int, rows: int, start: str, took_ms: float) -> dict:
    return {
        "batchId": batch_id,
        "numInputRows": rows,
        "timestamp": start,
        "durationMs": {"triggerExecution": took_ms},
    }


def test_a_drain_rate_counts_the_batches_after_the_first_over_the_time_since_it_ended():
    progress = [
        _report(0, 1000, "2026-12-07T10:00:00.000Z", 5000),  # ends at 5 s: the warm-up
        _report(1, 0, "2026-12-07T10:00:05.000Z", 10),  # no data: left out
        _report(2, 1000, "2026-12-07T10:00:05.000Z", 1000),
        _report(3, 1000, "2026-12-07T10:00:06.000Z", 1000),  # ends at 7 s
    ]
    assert levers.drain_rate(progress) == pytest.approx(2000 / 2.0)
    assert levers.drain_rate(progress[:1]) is None


def test_a_jobs_rate_is_its_slower_querys():
    fast = [
        _report(0, 10, "2026-12-07T10:00:00Z", 1000),
        _report(1, 10, "2026-12-07T10:00:01Z", 1000),
    ]
    slow = [
        _report(0, 10, "2026-12-07T10:00:00Z", 1000),
        _report(1, 10, "2026-12-07T10:00:01Z", 4000),
    ]
    assert levers.job_rate({"readings": fast, "windows": slow}) == pytest.approx(10 / 4.0)
    assert levers.job_rate({"windows": fast[:1]}) is None


def test_the_state_store_is_read_from_the_operators_metrics():
    def batch(metrics: dict) -> dict:
        report = _report(0, 10, "2026-12-07T10:00:00Z", 1)
        return report | {"stateOperators": [{"customMetrics": metrics}]}

    assert levers.state_store([batch({"rocksdbCommitFlushLatency": 3})]) == "rocksdb"
    assert levers.state_store([batch({"loadedMapCacheHitCount": 1})]) == "default"
    assert levers.state_store([_report(0, 10, "2026-12-07T10:00:00Z", 1)]) is None


def test_the_order_rotates_so_no_lever_always_runs_first():
    names = ["baseline", "a", "b"]
    firsts = {levers.rotation(names, r)[0] for r in range(3)}
    assert firsts == set(names)
    assert sorted(levers.rotation(names, 4)) == sorted(names)


def test_a_ratio_is_taken_within_a_round_and_summarised_with_its_range():
    rounds = [
        {"baseline": 100.0, "a": 150.0, "b": 90.0},
        {"baseline": 200.0, "a": 220.0, "b": None},  # b failed to drain in this round
        {"baseline": 100.0, "a": 130.0, "b": 110.0},
    ]
    summary = levers.summarise(rounds)
    assert summary["a"]["ratios"] == pytest.approx([1.5, 1.1, 1.3])
    assert summary["a"]["median_ratio"] == pytest.approx(1.3)
    assert (summary["a"]["min_ratio"], summary["a"]["max_ratio"]) == pytest.approx((1.1, 1.5))
    assert summary["b"]["ratios"] == pytest.approx([0.9, 1.1])
    assert summary["baseline"]["median_ratio"] == pytest.approx(1.0)
    assert summary["baseline"]["median_msgs_per_s"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("ratios", "words"),
    [
        ([1.2, 1.1], "faster in every round"),
        ([0.8, 0.95], "slower in every round"),
        ([0.9, 1.2], "no consistent change"),
        ([1.0], "no consistent change"),
        ([], None),
    ],
)
def test_the_verdict_says_faster_or_slower_only_when_every_round_agrees(ratios, words):
    assert levers.verdict(ratios) == words


def test_the_table_lists_the_unchanged_job_first_then_the_largest_gain():
    rounds = [{"baseline": 100.0, "a": 90.0, "b": 150.0, "c": None}]
    result = {"levers": {"summary": levers.summarise(rounds)}}
    assert [row["lever"] for row in levers.lever_rows(result)] == ["baseline", "b", "a", "c"]


def test_every_known_lever_has_its_macros_and_an_unmeasured_one_reads_na():
    rounds = [{"baseline": 1000.0, "windows_only": 1500.0}]
    result = {"levers": {"level": 5000, "batches": 2, "repeats": 1,
                         "summary": levers.summarise(rounds)}}  # fmt: skip
    values = levers.lever_values(result, "results/perf/breakdown.json")
    assert values["LeverWindowsOnlyPercent"]["value"] == pytest.approx(50.0)
    assert values["LeverWindowsOnlyVerdict"]["value"] == "faster in every round"
    assert values["LeverRocksdbChangelogPercent"]["value"] == "n/a"
    assert values["LeverCount"]["value"] == 1
    assert values["LeverBaselineRate"]["value"] == 1000
    assert all(name.isalpha() for name in values)
    assert levers.lever_values({}, "x")["LeverMessages"]["value"] == "n/a"


def test_the_configs_levers_parse_and_each_profile_names_known_ones():
    quick = vsconfig.DEFAULT_CONFIG.parent / "profiles" / "quick.yaml"
    for files in ([vsconfig.DEFAULT_CONFIG], [vsconfig.DEFAULT_CONFIG, quick]):
        block = vsconfig.load_config(files)["breakdown"]["levers"]
        plan = LeverPlan.from_mapping(block)
        assert plan.levers and plan.batches >= 2
        assert {lever.name for lever in plan.levers} <= set(levers.LABELS)
        assert all(levers.LEVER_NAME.match(lever.name) for lever in plan.levers)


def test_a_lever_file_that_is_not_a_levers_block_is_one_usage_error(tmp_path):
    empty = tmp_path / "none.json"
    empty.write_text("{}")
    assert read_lever_plan(empty) is None
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"level": 10, "batches": 2, "repeats": 1, "variants": {},
                                 "select": ["nope"]}))  # fmt: skip
    with pytest.raises(UsageError, match="levers-file"):
        read_lever_plan(wrong)


def test_a_variant_named_like_the_unchanged_job_is_refused_and_booleans_are_spelled_as_spark_does():
    block = {"level": 10, "batches": 2, "repeats": 1,
             "variants": {"on": {"sql_conf": {"spark.some.flag": True, "spark.n": 1}}}}  # fmt: skip
    plan = LeverPlan.from_mapping(block)
    assert dict(plan.levers[0].sql_conf) == {"spark.some.flag": "true", "spark.n": "1"}
    with pytest.raises(UsageError, match="unchanged job"):
        LeverPlan.from_mapping(block | {"variants": {"baseline": {}}})


def test_a_lever_may_drop_window_statistics_but_never_the_counts_and_not_an_unknown_one():
    block = {"level": 10, "batches": 2, "repeats": 1,
             "variants": {"lean": {"window_stats": ["max", "mean"]}}}  # fmt: skip
    (lean,) = LeverPlan.from_mapping(block).levers
    assert lean.window_stats == ("n", "mean", "max")
    assert LeverPlan.from_mapping(block | {"variants": {"same": {}}}).levers[0].window_stats is None
    with pytest.raises(UsageError, match=r"variants\.odd\.window_stats: unknown statistic median"):
        LeverPlan.from_mapping(block | {"variants": {"odd": {"window_stats": ["median"]}}})


def test_the_configs_lean_lever_keeps_what_the_rules_scores_and_risk_model_read():
    config = vsconfig.load_config([vsconfig.DEFAULT_CONFIG])
    plan = LeverPlan.from_mapping(config["breakdown"]["levers"])
    (lean,) = [lever for lever in plan.levers if lever.window_stats is not None]
    kept = {f"{vital}_{stat}" for vital in VITAL_NAMES for stat in lean.window_stats}
    dropped = {f"{vital}_{stat}" for vital in VITAL_NAMES for stat in WINDOW_STATS} - kept
    diagnostics = config["diagnostics"]
    read = {rule["column"] for key in ("window_rules", "change_rules", "anomaly")
            for rule in diagnostics.get(key) or []}  # fmt: skip
    read |= set(config["risk_model"]["features"])
    read |= {part["column"] for score in diagnostics["scores"].values()
             for part in score.values() if isinstance(part, dict) and "column" in part}  # fmt: skip
    assert dropped and not dropped & read


def test_the_gc_share_is_the_median_over_rounds_of_the_unchanged_jobs_drains():
    result = {
        "conf": {"spark.driver.memory": "3g"},
        "levers": {
            "rounds": [
                {"drains": {"baseline": {"gc_ms": 10.0, "task_ms": 1000.0}}},
                {"drains": {"baseline": {"gc_ms": 30.0, "task_ms": 1000.0}}},
                {"drains": {"baseline": {"gc_ms": 50.0, "task_ms": 1000.0}}},
            ]
        },
    }
    assert levers.gc_percent(result) == pytest.approx(3.0)
    assert levers.gc_percent({"levers": {"rounds": [{"drains": {"baseline": {}}}]}}) is None
    values = levers.lever_values(result, "x")
    assert values["LeverBaselineGcPercent"]["value"] == pytest.approx(3.0)
    assert values["LeverDriverMemory"]["value"] == "3g"
    assert levers.lever_values({}, "x")["LeverDriverMemory"]["value"] == "n/a"
