"""What the top of RQ1's grid did, and why, in words generated from its runs.

The brief's target is 100,000 patients at one reading per second. A table row that says "0/3
held" does not tell a reader whether the generator could not offer the load, Spark fell
behind it, or the bound was missed by a hair; each has a different remedy (a faster producer,
a cheaper job, a longer bound). So each of the grid's largest patient counts gets a verdict
from its own runs: held or not, and if not, which part of the pipeline missed, with the
numbers that show it (the share of the load offered and processed, the staleness against
its bound, the batch time and the Spark JVM's CPU). The sentence is LaTeX with siunitx
commands, so its numbers print like the rest of the paper's.

Not for: the run table or medians (vitalstream.measure.perfreport), or the criterion that
decides whether a step held (vitalstream.experiments.perfmetrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from vitalstream.core.values import is_missing


def top_loads(runs: pd.DataFrame, count: int = 2) -> list[int]:
    """The ``count`` largest patient counts of the grid, ascending."""
    return sorted(int(p) for p in runs["patients"].unique())[-count:]


def verdict(runs: pd.DataFrame, patients: int) -> dict[str, Any]:
    """What the runs at ``patients`` did: whether some partition count held in every
    repetition (the fewest such partitions), or else, at the partition count where Spark was
    fastest (median over repetitions), the medians that say why.

    ``runs``: perfreport.run_table's rows with a boolean ``held`` column (the notebook's
    criterion: the sustainable rate reached the offered load)."""
    group = runs[runs["patients"] == patients]
    held_by_parts = group.groupby("partitions")["held"].all()
    medians = group.groupby("partitions")[
        [
            "step_spark_rate",
            "first_step_achieved_rate",
            "first_step_staleness_s",
            "lag_bound_s",
            "batch_p50_ms",
            "jvm_cpu_pct",
            "first_step_producer_ok",
        ]
    ].median()
    held_parts = sorted(int(k) for k, ok in held_by_parts.items() if ok)
    fastest = medians["step_spark_rate"].fillna(-1.0).idxmax()
    best = int(held_parts[0]) if held_parts else int(fastest)
    row = medians.loc[best]
    return {
        "patients": int(patients),
        "partitions": best,
        "held": bool(held_parts),
        "held_runs": int(group["held"].sum()),
        "runs": len(group),
        "partition_counts": len(held_by_parts),
        "spark_share": _share(row["step_spark_rate"], patients),
        "spark_rate": _number(row["step_spark_rate"]),
        "offered_share": _share(row["first_step_achieved_rate"], patients),
        "staleness_s": _number(row["first_step_staleness_s"]),
        "lag_bound_s": _number(row["lag_bound_s"]),
        "batch_s": _scaled(row["batch_p50_ms"], 1000.0),
        "jvm_cpu_pct": _number(row["jvm_cpu_pct"]),
        # The step's own verdict on its producer (the ramp's ``min_producer_ratio``), in most
        # repetitions.
        "producer_ok": not row["first_step_producer_ok"] < 0.5,
    }


def reason(result: Mapping[str, Any]) -> str:
    """``held``; ``producer`` when the generator offered too little of the load for the step
    to count (the step's own producer check); otherwise ``spark``: the job fell behind."""
    if result["held"]:
        return "held"
    return "spark" if result["producer_ok"] else "producer"


def sentence(result: Mapping[str, Any]) -> str:
    """One sentence (LaTeX, siunitx) on what ``result`` (a :func:`verdict`) says."""
    load = rf"At \num{{{result['patients']}}}~patients"
    parts = f"with {_partitions(result['partitions'])}"
    tally = rf"held in \num{{{result['held_runs']}}} of \num{{{result['runs']}}}~runs"
    why = reason(result)
    if why == "held":
        return (
            rf"{load} every repetition held {parts}, Spark processing "
            rf"\num{{{_rounded(result['spark_rate'])}}}~rows per second at the median"
        )
    if why == "producer":
        return (
            rf"{load} the generator offered only {_pct(result['offered_share'])} of the load "
            rf"({tally}), so the step could not count whatever Spark did: the producer shares "
            rf"the two cores with Spark and the broker"
        )
    missed = "no partition count held" if result["partition_counts"] > 1 else "it did not hold"
    return (
        rf"{load} {missed} in every repetition ({tally}); at its fastest, "
        rf"{parts}, Spark processed {_pct(result['spark_share'])} of the offered load, so the "
        rf"oldest unprocessed reading was {_seconds(result['staleness_s'])} old when the step "
        rf"ended, against a bound of {_seconds(result['lag_bound_s'])}: a micro-batch of the "
        rf"windows query took {_seconds(result['batch_s'], 2)} at the median, with the Spark "
        rf"JVM at {_pct(result['jvm_cpu_pct'])} CPU (\qty{{200}}{{\percent}} is both cores)"
    )


def top_sentences(runs: pd.DataFrame, count: int = 2) -> str | None:
    """The sentences for the grid's ``count`` largest loads, joined; None without runs."""
    if runs.empty:
        return None
    return ". ".join(sentence(verdict(runs, p)) for p in top_loads(runs, count)) + "."


def _number(value: Any) -> float | None:
    """A median as a float; None where the runs lack it (NaN) or it is unbounded."""
    return None if is_missing(value) else float(value)


def _scaled(value: Any, scale: float) -> float | None:
    number = _number(value)
    return None if number is None else number / scale


def _share(rate: Any, load: float) -> float | None:
    number = _number(rate)
    return None if number is None or load <= 0 else 100.0 * number / load


def _partitions(count: int) -> str:
    return rf"\num{{{count}}}~partition" + "s" * (count != 1)


def _rounded(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else rf"\qty{{{value:.0f}}}{{\percent}}"


def _seconds(value: float | None, decimals: int = 1) -> str:
    return "n/a" if value is None else rf"\qty{{{value:.{decimals}f}}}{{\second}}"


def largest_held_clause(patients: float | None, partitions: float | None) -> str:
    """The RQ1 text's opening clause: the largest load that held in every repetition, or that
    none did (a number the runs lack would otherwise print as "n/a patients")."""
    if patients is None or partitions is None:
        return "No load of the grid held in every repetition"
    return (
        rf"The largest load that held in every repetition was \num{{{int(patients)}}}~patients "
        f"(with {_partitions(int(partitions))})"
    )
