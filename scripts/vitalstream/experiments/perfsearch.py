"""The sustainable rate by search (a condition's ``load/search`` block), instead of a ramp.

Why a search: a doubling ramp in 3-s steps moved the figure by a factor of two between full
runs (one slow batch failed a step, and the next step was twice the rate). A search runs
fixed-rate *probes*, each a fresh job on a fresh topic from a caught-up state, long enough to
judge by the robust criterion (measure.perfmetrics.fixed_step_result: the staleness's Theil-Sen
slope and median over the probe): a coarse ramp multiplies the rate by ``factor`` until a
probe fails (or divides it down from a failed first probe), then geometric bisection between
the highest rate that held (lo) and the lowest that failed (hi) until hi / lo is at most
``resolution``, so that lo is within that ratio of the limit.

``RateSearch`` decides the next rate from the probes so far (pure, unit-tested); ``run_search``
runs the probes through a ``ProbeRunner`` (the performance group's ``run_one``, handed in so
that this module does not import the group runner) into ``<run_dir>/probes/NN-<rate>/`` and
writes the run's metrics.json: the probe at lo's metrics (its latencies are those *at* the
sustainable rate), ``sustainable_rate`` = lo, a ``rate_search`` record, and ``steps`` holding the
probes (``probe`` flag) for the step tables. The probe at lo's series are copied beside it so
that readers of a ramp run's files read a search run alike.

Not for: running a probe (vitalstream.experiments.perf) or the criterion
(vitalstream.measure.perfmetrics).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vitalstream.core.runsettings import ConditionSettings, RateSearchSettings, RunSettings
from vitalstream.experiments.perfmeasure import PERF_OUTPUTS
from vitalstream.measure.perfmetrics import SustainCriterion

# (probe's settings, probe's run folder, criterion) → the probe's metrics.json as a dict.
ProbeRunner = Callable[[RunSettings, Path, SustainCriterion], dict[str, Any]]


@dataclass(frozen=True)
class Probe:
    """One fixed-rate probe's outcome, as the search decides on it."""

    rate: float
    held: bool


@dataclass(frozen=True)
class Bracket:
    """Where the search stands: the highest rate that held and the lowest that failed (None
    when no probe did), whether to go on and why not."""

    lo: float | None
    hi: float | None
    next_rate: float | None
    reason: str

    @property
    def sustainable_rate(self) -> float:
        return self.lo or 0.0


class RateSearch:
    """The search's decisions (module docstring), from the probes so far."""

    def __init__(self, settings: RateSearchSettings) -> None:
        self.settings = settings

    def state(self, probes: Sequence[Probe]) -> Bracket:
        """lo, hi and the next rate to probe (None: stop, with the reason)."""
        s = self.settings
        held = [p.rate for p in probes if p.held]
        failed = [p.rate for p in probes if not p.held]
        hi = min(failed) if failed else None
        # Held rates above a failure cannot arise from this search's own probes (each new
        # probe lies below every failure); should noise produce one, it is not a bracket.
        below = [r for r in held if hi is None or r < hi]
        lo = max(below) if below else None
        if not probes:
            return Bracket(lo, hi, _clamp(s.start, s), "start")
        if len(probes) >= s.max_probes:
            return Bracket(lo, hi, None, f"max_probes ({s.max_probes}) reached")
        if hi is None:  # coarse ramp up
            assert lo is not None
            if lo >= s.max_rate:
                return Bracket(lo, hi, None, "held at max_rate")
            return Bracket(lo, hi, _clamp(lo * s.factor, s), "coarse ramp")
        if lo is None:  # down from a failed start
            if hi <= s.min_rate:
                return Bracket(lo, hi, None, "holds no rate at or above min_rate")
            return Bracket(lo, hi, _clamp(hi / s.factor, s), "downward ramp")
        if hi / lo <= s.resolution:
            return Bracket(lo, hi, None, f"resolution {s.resolution} reached")
        middle = float(round(math.sqrt(lo * hi)))
        if not lo < middle < hi:  # rates too close to split in whole messages per second
            return Bracket(lo, hi, None, "bracket too narrow to split")
        return Bracket(lo, hi, middle, "bisection")


def _clamp(rate: float, s: RateSearchSettings) -> float:
    return float(round(min(max(rate, s.min_rate), s.max_rate)))


def probe_settings(this: RunSettings, rate: float, step_s: float) -> RunSettings:
    """The run's condition at one fixed rate for ``step_s``, without the search."""
    condition: ConditionSettings = this.condition
    assert condition.load is not None
    load = replace(
        condition.load, rates=(rate,), rates_per_patient=None, step_s=step_s, search=None
    )
    record = {**condition.record, "load": load.as_mapping()}
    return replace(this, condition=replace(condition, load=load, record=record))


def probe_criterion(criterion: SustainCriterion) -> SustainCriterion:
    """A probe's load stops later than a ramp's: only far behind (probe_abort_factor)."""
    return replace(
        criterion, abort_factor=max(criterion.abort_factor, criterion.probe_abort_factor)
    )


def run_search(
    this: RunSettings, run_dir: Path, criterion: SustainCriterion, run_probe: ProbeRunner
) -> dict[str, Any]:
    """Every probe of the run's search, then its metrics.json (module docstring)."""
    load = this.condition.load
    if load is None or load.search is None:
        raise ValueError(f"{this.run.path}: no load/search block")
    started = time.monotonic()
    search = RateSearch(load.search)
    shutil.rmtree(run_dir / "probes", ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    probes: list[Probe] = []
    records: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    state = search.state(probes)
    while state.next_rate is not None:
        rate = state.next_rate
        name = f"probes/{len(probes) + 1:02d}-{rate:g}"
        print(f"probe {len(probes) + 1}: {rate:g} msgs/s ({state.reason})", flush=True)
        settings = probe_settings(this, rate, load.search.step_s)
        result = run_probe(settings, run_dir / name, probe_criterion(criterion))
        record = probe_record(result, len(probes) + 1, name)
        probes.append(Probe(rate, record["held"]))
        records.append(record)
        results.append(result)
        state = search.state(probes)
    return write_search_metrics(this, run_dir, records, results, state, time.monotonic() - started)


def probe_record(result: Mapping[str, Any], number: int, name: str) -> dict[str, Any]:
    """A probe as the search record lists it: its fixed-rate criterion's numbers."""
    decided = dict(result["probe"])
    return decided | {
        "probe": number,
        "dir": name,
        "held": bool(decided["held"]) and not result.get("ramp_aborted", False),
        "aborted": bool(result.get("ramp_aborted", False)),
        "drained": bool(result.get("drained", False)),
    }


def write_search_metrics(
    this: RunSettings,
    run_dir: Path,
    records: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    state: Bracket,
    wall_s: float,
) -> dict[str, Any]:
    """The run's metrics.json from its probes; the series of the probe at lo (or, when none
    held, of the lowest probe) copied beside it."""
    held = [i for i, r in enumerate(records) if r["held"] and r["rate"] == state.lo]
    chosen = held[0] if held else min(range(len(records)), key=lambda i: records[i]["rate"])
    condition = dict(this.condition.record)
    result = {k: v for k, v in results[chosen].items() if k != "probe"}
    search = this.condition.load.search if this.condition.load else None
    result |= {
        "condition": condition,
        "load": dict(condition["load"]),
        "sustainable_rate": state.sustainable_rate,
        "steps": probe_steps(records, results),
        "rate_search": {
            "probes": list(records),
            "bracket": [state.lo, state.hi],
            "resolution": search.resolution if search else None,
            "probe_count": len(records),
            "converged": state.lo is not None
            and state.hi is not None
            and (search is None or state.hi / state.lo <= search.resolution),
            "stop": state.reason,
            "latency_probe": records[chosen]["probe"],
            "wall_s": round(wall_s, 1),
        },
    }
    source = run_dir / records[chosen]["dir"]
    for name in (*PERF_OUTPUTS, "provenance.json"):
        if (source / name).exists():
            shutil.copy2(source / name, run_dir / name)
    (run_dir / "condition.json").write_text(json.dumps(condition, indent=2) + "\n")
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def probe_steps(
    records: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The probes as ramp steps (measure.perfreport.step_table reads ``steps``), by rate:
    each probe's step record, ``sustained`` by the fixed-rate criterion, ``probe`` its number."""
    steps = [
        dict(result["steps"][0]) | {"probe": record["probe"], "sustained": record["held"]}
        for record, result in zip(records, results, strict=True)
    ]
    return sorted(steps, key=lambda s: (s["target_rate"], s["probe"]))
