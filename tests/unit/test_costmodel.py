"""The cost model (vitalstream.measure.costmodel): fitted to breakdown levels it recovers the
fixed, executor and driver costs that made them; it is checked against the windows query's
drains that changed only the task slots; its sustainable rate has the driver's bound; its
macros; and a lever's own partitions reach the plan (vitalstream.experiments.breakdown)."""

from __future__ import annotations

import math

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.experiments.breakdown import LeverPlan
from vitalstream.measure import costmodel, levers
from vitalstream.measure.costmodel import CostModel

# A batch of n messages on 2 slots: 400 ms fixed (planning 300, bookkeeping 100), executor
# work 0.02 ms per message on one slot (so 0.01 on two), driver 0.005 ms per message.
FIXED_PLANNING, FIXED_OFFSETS = 300.0, 100.0
EXECUTOR_MS, DRIVER_MS, SLOTS = 0.02, 0.005, 2


def _level(messages: int) -> dict:
    """A breakdown level whose segments follow the model above exactly: the executor
    stages' time in the prefixes' proportions, the driver's phases in the sink's stage_ms."""
    executor = messages * EXECUTOR_MS / SLOTS
    driver = messages * DRIVER_MS
    sink = {"collect": executor, "rules": driver / 2, "write": driver / 2}
    total = FIXED_PLANNING + FIXED_OFFSETS + executor + driver
    duration = {"latestOffset": FIXED_OFFSETS, "getBatch": 0, "walCommit": 0, "commitOffsets": 0,
                "queryPlanning": FIXED_PLANNING, "addBatch": executor + driver,
                "triggerExecution": total}  # fmt: skip
    # Prefix costs in proportion only (the sink's collect is what they split); no collect
    # stage of their own, so that all of the collect is executor work here.
    costs = {"fetch": 1.0, "parse": 3.0, "validate": 0.0, "aggregate": 5.0, "score": 1.0,
             "collect": 0.0}  # fmt: skip
    return {
        "messages": messages,
        "streaming": {"windows": {"duration_ms": duration, "stage_ms": sink}},
        "stages": {"costs_ms": costs, "clipped": []},
    }


def _result(levers_block: dict | None = None) -> dict:
    return {"levels": [_level(10_000), _level(50_000)], "partitions": 2, "shuffle_partitions": 2,
            "task_slots": SLOTS, "levers": levers_block}  # fmt: skip


def test_the_fit_recovers_the_costs_that_made_the_levels():
    model = costmodel.fit(_result())
    assert model.fixed_ms == pytest.approx(FIXED_PLANNING + FIXED_OFFSETS)
    assert model.executor_ms == pytest.approx(EXECUTOR_MS)  # per message on one slot
    assert model.driver_ms == pytest.approx(DRIVER_MS)
    assert model.fitted_slots == SLOTS and model.clipped == ()
    # The model reproduces each level's batch.
    for level in _result()["levels"]:
        total = level["streaming"]["windows"]["duration_ms"]["triggerExecution"]
        assert model.batch_ms(level["messages"], SLOTS) == pytest.approx(total)


def test_one_level_is_not_enough_and_a_negative_term_is_clipped_and_named():
    with pytest.raises(ValueError, match="two levels"):
        costmodel.fit({"levels": [_level(10_000)], "partitions": 2})
    shrinking = _result()
    # The driver's part shrinks as batches grow: its per-message term fits negative.
    shrinking["levels"][1]["streaming"]["windows"]["stage_ms"]["rules"] = 0.0
    shrinking["levels"][1]["streaming"]["windows"]["stage_ms"]["write"] = 0.0
    big = shrinking["levels"][1]["streaming"]["windows"]["duration_ms"]
    big["addBatch"] = 50_000 * EXECUTOR_MS / SLOTS
    big["triggerExecution"] = FIXED_PLANNING + FIXED_OFFSETS + big["addBatch"]
    model = costmodel.fit(shrinking)
    assert "driver per message" in model.clipped and model.driver_ms == 0.0


def test_the_sustainable_rate_has_the_drivers_bound_and_none_when_the_fixed_cost_fills_it():
    model = CostModel(fixed_ms=400, executor_ms=0.02, driver_ms=0.005, fitted_slots=2)
    # (1 - 400/1000) / (0.02/k + 0.005) messages per ms.
    assert model.sustainable_rate(1, 1000) == pytest.approx(1000 * 0.6 / 0.025)
    assert model.sustainable_rate(2, 1000) == pytest.approx(1000 * 0.6 / 0.015)
    assert model.sustainable_rate(None, 1000) == pytest.approx(1000 * 0.6 / 0.005)
    rates = [model.sustainable_rate(k, 1000) for k in (1, 2, 16, 64)]
    assert rates == sorted(rates) and rates[-1] < model.sustainable_rate(None, 1000)
    assert model.sustainable_rate(64, 300) == 0.0
    # At the sustainable rate a batch takes exactly the bound.
    messages = model.sustainable_rate(2, 1000) / 1000 * 1000
    assert model.batch_ms(messages, 2) == pytest.approx(1000)
    assert model.driver_share(64, 1000) > model.driver_share(2, 1000)
    free = CostModel(fixed_ms=0, executor_ms=0.02, driver_ms=0.0, fitted_slots=2)
    assert math.isinf(free.sustainable_rate(None, 1000))


def _drain(windows: float, readings: float | None = 20_000.0) -> dict:
    queries = {"windows": {"msgs_per_s": windows}}
    if readings is not None:
        queries["readings"] = {"msgs_per_s": readings}
    return {"msgs_per_s": min(windows, readings or windows), "queries": queries}


def _levers_block() -> dict:
    rounds = [
        {"baseline": _drain(10_000.0), "one_slot": _drain(9_000.0), "shuffle_one": _drain(1.0),
         "windows_only": _drain(13_000.0, None), "rocksdb": _drain(8_000.0)},
        {"baseline": _drain(12_000.0), "one_slot": _drain(7_000.0), "shuffle_one": _drain(1.0),
         "windows_only": _drain(14_000.0, None), "rocksdb": _drain(9_000.0)},
    ]  # fmt: skip
    rates = [{name: drain["msgs_per_s"] for name, drain in one["drains"].items()}
             for one in ({"drains": r} for r in rounds)]  # fmt: skip
    return {
        "level": 20_000,
        "variants": {
            "one_slot": {"sql_conf": {"spark.sql.shuffle.partitions": "1"}, "partitions": 1,
                         "shuffle_partitions": 1, "task_slots": 1},
            "shuffle_one": {"sql_conf": {"spark.sql.shuffle.partitions": "1"}, "partitions": 2,
                            "shuffle_partitions": 1, "task_slots": 1},
            "windows_only": {"readings_query": False, "partitions": 2, "shuffle_partitions": 2,
                             "task_slots": 2},
            "rocksdb": {"sql_conf": {"spark.sql.streaming.stateStore.providerClass": "x"},
                        "partitions": 2, "shuffle_partitions": 2, "task_slots": 2},
        },
        "rounds": [{"drains": one} for one in rounds],
        "summary": levers.summarise(rates),
    }  # fmt: skip


def test_the_checks_are_the_windows_querys_drains_with_every_stage_on_its_slots():
    result = _result(_levers_block())
    model = costmodel.fit(result)
    rows = costmodel.checks(model, result)
    # Not windows_only (one query, not the job's two), rocksdb (another change) nor
    # shuffle_one (its reading stage on two tasks, its aggregation on one).
    assert [(row["lever"], row["slots"]) for row in rows] == [("one_slot", 1), ("baseline", 2)]
    one, two = rows
    assert one["measured"] == pytest.approx(8_000)  # median over rounds
    assert two["measured"] == pytest.approx(11_000)
    assert one["predicted"] == pytest.approx(model.drain_rate(20_000, 1))
    assert one["error_percent"] == pytest.approx(100 * (one["predicted"] - 8_000) / 8_000)
    assert costmodel.checks(model, _result()) == []


def test_the_macros_name_each_check_and_core_count_in_words():
    result = _result(_levers_block())
    source = "results/perf/breakdown.json"
    values = costmodel.cost_values(result, [1, 2, 16, 64], 1000, 25_000, source)
    assert all(name.isalpha() for name in values)
    model = costmodel.fit(result)
    assert values["CostRateSixteen"]["value"] == int(round(model.sustainable_rate(16, 1000), -2))
    assert values["CostCheckOneSlotMeasured"]["value"] == 8_000
    assert values["CostCheckTwoSlotsMeasured"]["value"] == 11_000
    assert values["CostOneSlotClause"]["value"].startswith("slower on one slot")
    faster = [{"slots": 1, "measured": 12.0}, {"slots": 2, "measured": 10.0}]
    assert costmodel.one_slot_clause(faster).startswith("no slower on one slot")
    assert costmodel.one_slot_clause(faster[:1]) is None
    predicted = model.sustainable_rate(SLOTS, 1000)
    assert values["CostSearchErrorPercent"]["value"] == pytest.approx(
        100 * (predicted - 25_000) / 25_000
    )
    assert "CostRateUnlimitedDriverPercent" not in values
    no_search = costmodel.cost_values(_result(), [16], 1000, None, "x")
    assert no_search["CostSearchErrorPercent"]["value"] == "n/a"
    assert no_search["CostCheckOneSlotMeasured"]["value"] == "n/a"  # no levers, no checks
    with pytest.raises(ValueError, match="macro word"):
        costmodel.cost_values(result, [3], 1000, None, "x")


def test_a_levers_partitions_reach_the_plan_and_the_config_checks_one_slot():
    variants = {"one": {"readings_query": False, "partitions": 1}, "same": {}}
    block = {"level": 10, "batches": 2, "repeats": 1, "variants": variants}
    plan = LeverPlan.from_mapping(block)
    partitions = [(lever.name, lever.partitions) for lever in plan.levers]
    assert partitions == [("one", 1), ("same", None)]
    config = vsconfig.load_config([vsconfig.DEFAULT_CONFIG])
    one_slot = config["breakdown"]["levers"]["variants"]["one_slot"]
    assert one_slot["partitions"] == 1 and one_slot.get("readings_query", True)


def test_the_configs_bound_is_half_the_searchs_and_its_core_counts_have_words():
    """The paper calls the batch bound half the search's staleness bound, and the schema lets
    a config predict only the core counts a macro can name."""
    config = vsconfig.load_config([vsconfig.DEFAULT_CONFIG])
    cost = config["breakdown"]["cost_model"]
    search = config["experiments"][config["breakdown"]["condition"].split("/")[0]]["sustain"]
    assert cost["batch_bound_s"] == search["probe_max_lag_s"] / 2
    block = vsconfig.load_schema()["properties"]["breakdown"]["properties"]["cost_model"]
    assert sorted(block["properties"]["cores"]["items"]["enum"]) == sorted(costmodel.CORE_WORDS)


@pytest.mark.parametrize(
    ("fixed_ms", "words"),
    [
        (1000.0, ["qty{40}{\\percent} of the bound", "by \\qty{7}{\\percent}"]),
        (2000.0, ["qty{80}{\\percent}", "by \\qty{40}{\\percent}", "moves the rate 4 times"]),
        (2400.0, ["would leave no rate under the bound"]),
        (2600.0, ["alone exceeds the bound"]),
    ],
)
def test_the_spread_clause_follows_the_fixed_costs_share_of_the_bound(fixed_ms, words):
    model = costmodel.CostModel(fixed_ms, 0.05, 0.0, 2)
    clause = costmodel.sensitivity_clause(model, 2500.0)
    assert all(word in clause for word in words), clause
    if fixed_ms < 2200:  # the stated drop is the model's own: a tenth more fixed cost
        more = costmodel.CostModel(1.1 * fixed_ms, 0.05, 0.0, 2)
        drop = 1 - more.sustainable_rate(2, 2500.0) / model.sustainable_rate(2, 2500.0)
        assert f"by \\qty{{{100 * drop:.0f}}}" in clause
