"""Which change to the job buys what: the arithmetic behind the breakdown's levers
(vitalstream.experiments.breakdown.measure_levers runs them, notebooks/perf_breakdown.ipynb
tabulates them and writes macros).

A lever is one change to the tuned job (a Spark setting, or the per-reading query left out).
Each lever and the unchanged job (``baseline``) drain the same number of full micro-batches
from a filled topic, one after the other in one Spark session, in an order that rotates every
round. A job's rate is the slowest of its queries' drain rates: the messages of its batches
after the first over the time from the end of its first batch to the end of its last. The two
queries share the machine's cores, so a query's drain rate includes the other's competition
while both run, as it does in a sustained run. A lever's effect is its rate over the baseline's
in the same round (a ratio measured in one session), and the text reports the median and the
range of those ratios over rounds.

Pure functions over plain data (no Spark, no Kafka), so that the notebook's environment can
import them and unit tests can check them.

Not for: the stage split of one batch (vitalstream.measure.stagecosts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from vitalstream.core.values import macro_value
from vitalstream.measure.stagecosts import data_batches

BASELINE = "baseline"
# What a lever changes, in the table's and the text's words (a lever the config adds under
# another name is shown by its name).
LABELS = {
    BASELINE: "the tuned job, unchanged",
    "windows_only": "without the per-reading query",
    "rocksdb": "RocksDB state store",
    "rocksdb_changelog": "RocksDB with changelog checkpointing",
    "shuffle_two": "two shuffle partitions (the setting before)",
    "one_slot": "one task slot (one Kafka and one shuffle partition)",
    "no_sd": "windows without the standard deviations",
}
# A lever's name becomes part of a macro name: lower-case words joined by underscores.
LEVER_NAME = re.compile(r"^[a-z]+(_[a-z]+)*$")


def batch_end_s(report: Mapping[str, Any]) -> float:
    """When a micro-batch ended (seconds since the epoch): its trigger's start plus its
    ``triggerExecution``."""
    start = datetime.fromisoformat(str(report["timestamp"]).replace("Z", "+00:00"))
    return (
        start.timestamp()
        + float((report.get("durationMs") or {}).get("triggerExecution", 0)) / 1000
    )


def drain_rate(progress: Sequence[Mapping[str, Any]]) -> float | None:
    """A query's messages per second over its data batches after the first; None with fewer
    than two data batches or no time between them."""
    batches = data_batches(progress)
    if len(batches) < 2:
        return None
    elapsed = batch_end_s(batches[-1]) - batch_end_s(batches[0])
    rows = sum(int(b["numInputRows"]) for b in batches[1:])
    return rows / elapsed if elapsed > 0 else None


def job_rate(reports: Mapping[str, Sequence[Mapping[str, Any]]]) -> float | None:
    """A job's rate: the slowest of its queries' drain rates (None if any has none)."""
    rates = [drain_rate(progress) for progress in reports.values()]
    known = [rate for rate in rates if rate is not None]
    return min(known) if known and len(known) == len(rates) else None


def state_store(progress: Sequence[Mapping[str, Any]]) -> str | None:
    """Which state store a query's stateful operators ran on, from their custom metrics in
    its last data batch: ``rocksdb`` (RocksDB reports ``rocksdb*`` metrics), ``default``, or
    None for a query without state. The proof that a lever's setting reached its query."""
    batches = data_batches(progress)
    operators = (batches[-1].get("stateOperators") or []) if batches else []
    if not operators:
        return None
    keys = {key for op in operators for key in (op.get("customMetrics") or {})}
    return "rocksdb" if any(key.startswith("rocksdb") for key in keys) else "default"


def rotation(names: Sequence[str], round_index: int) -> list[str]:
    """The order of the levers in one round: ``names`` rotated by the round, so that no
    lever always runs first (on a session still warming up) or last."""
    shift = round_index % len(names) if names else 0
    return [*names[shift:], *names[:shift]]


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def summarise(rounds: Sequence[Mapping[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per lever over the rounds (each ``{lever: rate}``, the baseline among them): its rates,
    their median, and its ratio to the baseline of the same round, with median and range."""
    names = list(dict.fromkeys(name for one in rounds for name in one))
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        rates = [one.get(name) for one in rounds]
        ratios = [
            rate / one[BASELINE]
            for one, rate in zip(rounds, rates, strict=True)
            if rate is not None and one.get(BASELINE)
        ]
        summary[name] = {
            "msgs_per_s": rates,
            "median_msgs_per_s": _median([r for r in rates if r is not None]),
            "ratios": ratios,
            "median_ratio": _median(ratios),
            "min_ratio": min(ratios) if ratios else None,
            "max_ratio": max(ratios) if ratios else None,
        }
    return summary


def macro_stem(name: str) -> str:
    """``rocksdb_changelog`` → ``RocksdbChangelog`` (a macro name holds letters only)."""
    return "".join(word.capitalize() for word in name.split("_"))


def lever_values(result: Mapping[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """The text's macros of the levers (``result["levers"]`` of a breakdown): the level,
    rounds, batches and levers behind them, the unchanged job's median rate, and per lever the
    median of its ratio to the unchanged job as a percent change with its range
    (``LeverRocksdbPercent``, ``...MinPercent``, ``...MaxPercent``) and a verdict in words.
    Every lever of LABELS has its macros, ``n/a`` when it was not measured (a profile may
    select fewer), so that the text may name any of them."""
    levers = result.get("levers") or {}
    summary = levers.get("summary") or {}
    baseline = summary.get(BASELINE) or {}
    heap = (result.get("conf") or {}).get("spark.driver.memory")
    values = {
        "LeverMessages": macro_value(levers.get("level"), 0, source),
        "LeverRounds": macro_value(levers.get("repeats"), 0, source),
        "LeverBatches": macro_value(levers.get("batches"), 0, source),
        "LeverCount": macro_value(len(summary) - 1 if summary else None, 0, source),
        "LeverBaselineRate": macro_value(
            rounded_rate(baseline.get("median_msgs_per_s")), 0, source
        ),
        "LeverBaselineGcPercent": macro_value(gc_percent(result), 1, source),
        # The heap those drains ran with: the driver's, which in local mode is the executor's.
        "LeverDriverMemory": macro_value(heap, None, source),
    }
    names = [*(n for n in LABELS if n != BASELINE), *(n for n in summary if n not in LABELS)]
    for name in names:
        lever = summary.get(name) or {}
        stem = f"Lever{macro_stem(name)}"
        for key, suffix in (("median_ratio", ""), ("min_ratio", "Min"), ("max_ratio", "Max")):
            ratio = lever.get(key)
            change = 100 * (ratio - 1) if ratio is not None else None
            values[f"{stem}{suffix}Percent"] = macro_value(change, 0, source)
        values[f"{stem}Verdict"] = macro_value(verdict(lever.get("ratios") or []), None, source)
    return values


def gc_percent(result: Mapping[str, Any], name: str = BASELINE) -> float | None:
    """The median over rounds of the share of lever ``name``'s task time that went to garbage
    collection, in percent (None without such drains: an older breakdown has none)."""
    shares = []
    for one in (result.get("levers") or {}).get("rounds") or []:
        drain = one["drains"].get(name) or {}
        if drain.get("task_ms"):
            shares.append(100 * float(drain.get("gc_ms") or 0) / float(drain["task_ms"]))
    return _median(shares)


def verdict(ratios: Sequence[float]) -> str | None:
    """How a lever's rate compared with the baseline's over the rounds, in words: faster or
    slower only when every round agrees, else no consistent change (None without rounds)."""
    if not ratios:
        return None
    if min(ratios) > 1:
        return "faster in every round"
    if max(ratios) < 1:
        return "slower in every round"
    return "no consistent change"


def rounded_rate(rate: float | None) -> int | None:
    """A rate to the nearest hundred messages per second, what two shared cores resolve (None:
    none, or unbounded); the form of every rate the breakdown's macros and tables print."""
    return None if rate is None or not np.isfinite(rate) else int(round(rate, -2))


def lever_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One table row per lever, the baseline first, then the largest gain first: what it
    changes (LABELS, else its name), its median rate, and the median and range of its ratio
    to the baseline."""
    summary = result["levers"]["summary"]

    def gain(name: str) -> float:
        ratio = summary[name]["median_ratio"]
        return -ratio if ratio is not None else float("inf")

    order = [BASELINE, *sorted((n for n in summary if n != BASELINE), key=gain)]
    return [
        {
            "lever": name,
            "label": LABELS.get(name, name),
            "median_msgs_per_s": summary[name]["median_msgs_per_s"],
            "median_ratio": summary[name]["median_ratio"],
            "min_ratio": summary[name]["min_ratio"],
            "max_ratio": summary[name]["max_ratio"],
        }
        for name in order
    ]
