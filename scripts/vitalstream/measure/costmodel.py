"""Past this machine, on paper: a cost model of the windows query fitted to the breakdown
(vitalstream.experiments.breakdown), checked against the breakdown's own drains, and its
prediction for more cores (notebooks/perf_breakdown.ipynb tabulates it and writes macros).

Why a model at all: two shared cores cannot show how the pipeline scales out, but the
breakdown already says which part of a micro-batch is spread over Spark's tasks and which is
not. The model is the smallest one that keeps that distinction:

    T(n, k) = F + n * (v / k + d)

* ``n`` messages in the batch, ``k`` task slots (min of cores, Kafka partitions and shuffle
  partitions: a stage runs one task per partition, one per core at a time);
* ``v`` ms per message of executor work (Kafka fetch, JSON parse, validation, aggregation with
  its state store, scores): the batch's executor segments grow with ``n`` at ``v / k0`` when
  measured on ``k0`` slots, so ``v`` is ``k0`` times that slope, and it divides over ``k``;
* ``d`` ms per message the driver spends on its own (collection to the driver, sequential
  rules, Parquet writes, delivery), and ``F`` ms per batch whatever its size (planning,
  offsets, the call into Python): neither divides over executors.

Both lines are least-squares fits over the breakdown's levels (two in the paper), so ``F``,
``v`` and ``d`` are measured, not chosen. A negative fitted term (noise on a small cost) is
clipped at zero and named, never hidden.

What follows from the model:

* a drain of full batches of ``n`` runs at ``n / T(n, k)`` messages per second: checked
  against the windows query's drain rate in the same session, in each drain that ran every
  stage on as many tasks as slots and changed nothing else (``one_slot``: one Kafka
  partition, one shuffle partition; ``shuffle_two``: two of each; the unchanged job when its
  Kafka and shuffle partitions are equal);
* under a batch-time bound ``B`` (a batch carries what arrived during the previous one, so at
  rate ``r``, ``n = r * T``), the sustainable rate is ``r* = (1 - F / B) / (v / k + d)``: none
  when the fixed cost alone exceeds the bound, and at most ``(1 - F / B) / d`` on any number
  of cores, since the driver's share does not divide. Checked against the sustainable rate
  RQ5's search measured, whose load generator shares the cores (the model assumes it does
  not).

The windows query is modelled within the job, sharing the cores with the per-reading query as
it does there; it is the job's slower query (its rate is the job's) in the drains measured.

Pure functions over plain data (no Spark, no Kafka), so the notebook's environment can import
them and unit tests can check them.

Not for: measuring (vitalstream.experiments.breakdown) or the segments themselves
(vitalstream.measure.stagecosts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitalstream.core.values import macro_value
from vitalstream.measure import stagecosts
from vitalstream.measure.levers import BASELINE, rounded_rate

# The segments Spark runs on executors, one task per partition: they divide over task slots.
EXECUTOR_SEGMENTS = ("fetch", "parse", "validate", "aggregate", "score")
# Macro names spell the predicted core counts in words (a macro name holds letters only).
CORE_WORDS = {1: "One", 2: "Two", 4: "Four", 8: "Eight", 16: "Sixteen", 32: "ThirtyTwo",
              64: "SixtyFour", 128: "OneTwentyEight"}  # fmt: skip


@dataclass(frozen=True)
class CostModel:
    """``T(n, k) = fixed_ms + n * (executor_ms / k + driver_ms)`` (module docstring); also
    the slots it was fitted on and the terms clipped at zero."""

    fixed_ms: float
    executor_ms: float
    driver_ms: float
    fitted_slots: int
    clipped: tuple[str, ...] = ()

    def per_message_ms(self, slots: int) -> float:
        """What one more message adds to a batch on ``slots`` task slots."""
        return self.executor_ms / slots + self.driver_ms

    def batch_ms(self, messages: float, slots: int) -> float:
        """A batch of ``messages`` on ``slots`` task slots."""
        return self.fixed_ms + messages * self.per_message_ms(slots)

    def drain_rate(self, messages: float, slots: int) -> float:
        """Messages per second draining full batches of ``messages``."""
        return 1000 * messages / self.batch_ms(messages, slots)

    def sustainable_rate(self, slots: int | None, bound_ms: float) -> float:
        """The highest rate whose batches stay within ``bound_ms`` on ``slots`` task slots
        (None: unlimited slots, the driver's bound); zero when the fixed cost alone
        exceeds the bound."""
        headroom = 1 - self.fixed_ms / bound_ms
        per_message = self.driver_ms if slots is None else self.per_message_ms(slots)
        if headroom <= 0:
            return 0.0
        return float("inf") if per_message <= 0 else 1000 * headroom / per_message

    def driver_share(self, slots: int, bound_ms: float) -> float | None:
        """The driver's share (percent) of a batch at the sustainable rate on ``slots``:
        what is left that more cores cannot shorten."""
        rate = self.sustainable_rate(slots, bound_ms)
        if rate <= 0 or not np.isfinite(rate):
            return None
        messages = rate * bound_ms / 1000
        return 100 * messages * self.driver_ms / self.batch_ms(messages, slots)


def split_level(level: Mapping[str, Any]) -> tuple[float, float]:
    """One level's windows batch in ms: its executor segments and everything else."""
    parts = stagecosts.segments(level)
    executor = sum(parts[name] for name in EXECUTOR_SEGMENTS)
    return executor, sum(parts.values()) - executor


def _line(sizes: Sequence[float], times: Sequence[float]) -> tuple[float, float]:
    """Intercept and slope of the least-squares line through (size, time)."""
    slope, intercept = np.polyfit(np.asarray(sizes, float), np.asarray(times, float), 1)
    return float(intercept), float(slope)


def fit(result: Mapping[str, Any]) -> CostModel:
    """The model of a breakdown's windows query, from its levels (at least two sizes) and the
    task slots they ran on (``task_slots``; the partitions for a breakdown written before it
    was recorded)."""
    levels = sorted(result["levels"], key=lambda level: int(level["messages"]))
    sizes = [float(level["messages"]) for level in levels]
    if len(set(sizes)) < 2:
        raise ValueError("a cost model needs a breakdown of at least two levels")
    split = [split_level(level) for level in levels]
    slots = int(result.get("task_slots") or result["partitions"])
    fixed_e, slope_e = _line(sizes, [e for e, _ in split])
    fixed_d, slope_d = _line(sizes, [d for _, d in split])
    terms = {
        "executor fixed": fixed_e,
        "driver fixed": fixed_d,
        "executor per message": slope_e,
        "driver per message": slope_d,
    }
    # Below a picosecond is rounding, not a negative cost.
    clipped = tuple(name for name, value in terms.items() if value < -1e-9)
    return CostModel(
        fixed_ms=max(fixed_e, 0.0) + max(fixed_d, 0.0),
        executor_ms=max(slope_e, 0.0) * slots,
        driver_ms=max(slope_d, 0.0),
        fitted_slots=slots,
        clipped=clipped,
    )


def windows_drain_rate(result: Mapping[str, Any], name: str) -> float | None:
    """The median over rounds of the windows query's drain rate in lever ``name``'s drains
    (the job's windows query, sharing the cores with its per-reading query)."""
    rounds = (result.get("levers") or {}).get("rounds") or []
    rates = [
        ((one["drains"].get(name) or {}).get("queries") or {}).get("windows", {}).get("msgs_per_s")
        for one in rounds
    ]
    known = [float(rate) for rate in rates if rate is not None]
    return float(np.median(known)) if known else None


def slot_drains(result: Mapping[str, Any]) -> dict[str, int]:
    """The drains that check the model, by lever, with their task slots: the unchanged job
    and every lever that kept both queries and ran every stage on as many tasks as slots (as
    many Kafka as shuffle partitions, no more than the cores: ``one_slot``), as the levels
    the model was fitted on did. A lever that changes anything else is not a check."""
    levers = result.get("levers") or {}
    candidates = {BASELINE: result} | dict(levers.get("variants") or {})
    drains = {}
    for name, run in candidates.items():
        slots = run.get("task_slots")
        even = run.get("partitions") == run.get("shuffle_partitions") == slots
        other = set(run.get("sql_conf") or {}) - {"spark.sql.shuffle.partitions"}
        if slots and even and not other and run.get("readings_query", True):
            drains[name] = int(slots)
    return drains


def checks(model: CostModel, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The model against each slot drain (slot_drains) at the levers' batch size: the windows
    query's measured median rate beside the model's, and the relative error of the
    prediction in percent; fewest slots first."""
    levers = result.get("levers") or {}
    rows = []
    for name, slots in slot_drains(result).items():
        measured = windows_drain_rate(result, name)
        if measured is None:
            continue
        predicted = model.drain_rate(float(levers["level"]), slots)
        rows.append(
            {
                "lever": name,
                "slots": slots,
                "messages": int(levers["level"]),
                "measured": measured,
                "predicted": predicted,
                "error_percent": 100 * (predicted - measured) / measured,
            }
        )
    return sorted(rows, key=lambda row: row["slots"])


def one_slot_clause(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """What the drains on one and on two slots say of the model's division of work, in words
    for the text (None without both)."""
    rates = {row["slots"]: row["measured"] for row in rows}
    if 1 not in rates or 2 not in rates:
        return None
    if rates[1] < rates[2]:
        return "slower on one slot than on two, as the model expects"
    return (
        "no slower on one slot than on two, against the model: costs per task that it leaves "
        "out (scheduling, a state store per shuffle partition) outweighed the division of the "
        "work at this batch size"
    )


def sensitivity_clause(model: CostModel, bound_ms: float) -> str:
    """What the model says of a measured rate's spread, in words for the text: the rate falls
    by ``(F/B) / (1 - F/B)`` per unit of relative change in the fixed cost, so the nearer F is
    to the bound, the more a shared machine's drift in per-batch overhead moves the rate."""
    share = model.fixed_ms / bound_ms
    if share >= 1:
        return (
            "the fitted fixed cost alone exceeds the bound, so the model holds no rate and a "
            "measured one rests on batches faster than the fit's"
        )
    drop = 10 * share / (1 - share)  # exact: the rate is linear in the fixed cost
    clause = f"the fitted fixed cost is \\qty{{{100 * share:.0f}}}{{\\percent}} of the bound, so "
    if drop >= 100:
        return clause + "a tenth more of it would leave no rate under the bound"
    clause += f"a tenth more of it lowers the sustainable rate by \\qty{{{drop:.0f}}}{{\\percent}}"
    if drop >= 20:
        clause += (
            f": a shared machine's drift in per-batch overhead moves the rate {drop / 10:.0f} "
            "times as much"
        )
    return clause


def predictions(model: CostModel, cores: Sequence[int], bound_ms: float) -> list[dict[str, Any]]:
    """Per core count (as many partitions as cores, so as many task slots), then unlimited
    cores (``cores`` None): the sustainable rate under ``bound_ms`` and the driver's share of a
    batch at that rate (None where no rate holds or for unlimited cores, where it is all)."""
    rows = []
    for count in [*cores, None]:
        rate = model.sustainable_rate(count, bound_ms)
        share = model.driver_share(count, bound_ms) if count else None
        rows.append({"cores": count, "rate": rate if np.isfinite(rate) else None,
                     "driver_percent": share})  # fmt: skip
    return rows


def cost_values(
    result: Mapping[str, Any],
    cores: Sequence[int],
    bound_ms: float,
    searched: float | None,
    source: str,
) -> dict[str, dict[str, Any]]:
    """The text's macros of the model: its terms (``CostFixedMs``, ``CostExecutorUs`` per
    message on one slot, ``CostDriverUs``), the bound, the slot checks' measured and
    predicted rates and errors by slot count (``CostCheckOneSlot...``,
    ``CostCheckTwoSlots...``) and what they say in words (``CostOneSlotClause``), the
    search's check (the model on the fitted slots beside ``searched``, the sustainable rate
    RQ5's search measured), and per core count the predicted rate (``CostRateSixteen``) with
    the driver's share, and the driver's bound (``CostRateUnlimited``)."""
    model = fit(result)
    values = {
        "CostFixedMs": macro_value(model.fixed_ms, 0, source),
        "CostExecutorUs": macro_value(1000 * model.executor_ms, 1, source),
        "CostDriverUs": macro_value(1000 * model.driver_ms, 1, source),
        "CostFittedSlots": macro_value(model.fitted_slots, 0, source),
        "CostBoundSeconds": macro_value(bound_ms / 1000, 1, source),
        "CostClipped": macro_value(", ".join(model.clipped) or "none", None, source),
    }
    # The text names the checks on one and on two slots: n/a where a machine has no such drain.
    for stem in ("CostCheckOneSlot", "CostCheckTwoSlots"):
        for suffix in ("Measured", "Predicted", "ErrorPercent"):
            values[f"{stem}{suffix}"] = macro_value(None, 0, source)
    rows = checks(model, result)
    values["CostOneSlotClause"] = macro_value(one_slot_clause(rows), None, source)
    for row in rows:
        stem = "CostCheckOneSlot" if row["slots"] == 1 else f"CostCheck{_word(row['slots'])}Slots"
        values |= {
            f"{stem}Measured": macro_value(rounded_rate(row["measured"]), 0, source),
            f"{stem}Predicted": macro_value(rounded_rate(row["predicted"]), 0, source),
            f"{stem}ErrorPercent": macro_value(row["error_percent"], 0, source),
        }
    values["CostSensitivityClause"] = macro_value(sensitivity_clause(model, bound_ms), None, source)
    predicted = model.sustainable_rate(model.fitted_slots, bound_ms)
    error = 100 * (predicted - searched) / searched if searched and np.isfinite(predicted) else None
    values |= {
        "CostSearchPredicted": macro_value(rounded_rate(predicted), 0, source),
        "CostSearchErrorPercent": macro_value(error, 0, source),
    }
    for row in predictions(model, cores, bound_ms):
        stem = f"CostRate{_word(row['cores']) if row['cores'] else 'Unlimited'}"
        values[stem] = macro_value(rounded_rate(row["rate"]), 0, source)
        if row["cores"]:
            values[f"{stem}DriverPercent"] = macro_value(row["driver_percent"], 0, source)
    return values


def _word(count: int) -> str:
    """A core count as a macro name's word (CORE_WORDS); counts without one are refused, so
    that a config cannot make a macro name with digits."""
    if count not in CORE_WORDS:
        raise ValueError(f"no macro word for {count} cores (one of {sorted(CORE_WORDS)})")
    return CORE_WORDS[count]
