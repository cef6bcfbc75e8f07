"""The rate search's decisions (coarse ramp, downward ramp, bisection, stops), a whole search
against a job of known capacity (the probe runner handed in), and the config's search and
ceiling settings."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.config import ConfigError
from vitalstream.core.runsettings import RateSearchSettings, RunSettings, Settings
from vitalstream.core.settings import SettingsError
from vitalstream.experiments import perfsearch
from vitalstream.experiments.perfsearch import Probe, RateSearch
from vitalstream.measure.perfmetrics import SustainCriterion

SEARCH = RateSearchSettings(
    start=8000, step_s=10, factor=2, resolution=1.1, max_rate=512_000, min_rate=500, max_probes=10
)


def probes_against(capacity: float, settings: RateSearchSettings = SEARCH) -> list[Probe]:
    """Run the decisions against a job that holds every rate up to ``capacity``."""
    search, probes = RateSearch(settings), []
    state = search.state(probes)
    while state.next_rate is not None:
        probes.append(Probe(state.next_rate, state.next_rate <= capacity))
        state = search.state(probes)
    return probes


def test_the_first_probe_is_the_start():
    assert RateSearch(SEARCH).state([]).next_rate == 8000


def test_the_coarse_ramp_multiplies_until_a_probe_fails_then_bisects():
    search = RateSearch(SEARCH)
    held = [Probe(8000, True), Probe(16000, True)]
    assert search.state(held).next_rate == 32000
    state = search.state([*held, Probe(32000, False)])
    assert (state.lo, state.hi) == (16000, 32000)
    assert state.next_rate == round(math.sqrt(16000 * 32000))  # geometric middle
    assert state.reason == "bisection"


def test_a_failed_start_divides_down_until_a_probe_holds():
    search = RateSearch(SEARCH)
    state = search.state([Probe(8000, False)])
    assert (state.lo, state.next_rate) == (None, 4000)
    state = search.state([Probe(8000, False), Probe(4000, False), Probe(2000, True)])
    assert (state.lo, state.hi, state.next_rate) == (2000, 4000, round(math.sqrt(8e6)))


def test_a_job_that_holds_nothing_stops_at_min_rate_with_rate_zero():
    probes = probes_against(capacity=100)
    assert [p.rate for p in probes] == [8000, 4000, 2000, 1000, 500]
    state = RateSearch(SEARCH).state(probes)
    assert state.next_rate is None and state.sustainable_rate == 0
    assert state.reason == "holds no rate at or above min_rate"


@pytest.mark.parametrize("capacity", [700, 12_345, 30_000, 64_000, 200_000])
def test_the_search_ends_within_the_resolution_below_the_limit(capacity):
    probes = probes_against(capacity)
    state = RateSearch(SEARCH).state(probes)
    assert state.lo <= capacity < state.hi
    assert state.hi / state.lo <= SEARCH.resolution
    assert state.reason.startswith("resolution")
    assert len(probes) <= SEARCH.max_probes


def test_the_search_stops_at_max_rate_when_everything_holds():
    settings = RateSearchSettings(start=8000, step_s=10, max_rate=30_000)
    probes = probes_against(capacity=1e9, settings=settings)
    assert [p.rate for p in probes] == [8000, 16000, 30000]
    state = RateSearch(settings).state(probes)
    assert (state.lo, state.hi, state.reason) == (30000, None, "held at max_rate")


def test_max_probes_stops_the_search_with_an_open_bracket():
    settings = RateSearchSettings(start=8000, step_s=10, max_probes=3)
    probes = probes_against(capacity=100_000, settings=settings)
    assert len(probes) == 3
    state = RateSearch(settings).state(probes)
    assert state.next_rate is None and state.reason.startswith("max_probes")
    assert (state.lo, state.hi) == (32000, None)


# --------------------------------------------------------------------------- a whole search


def fake_probe_runner(capacity: float, calls: list[Path]):
    """A probe runner standing for perf.run_one against a job of known capacity: it writes
    the files a probe leaves and returns its metrics (no Spark: the search's bookkeeping)."""

    def run(this: RunSettings, run_dir: Path, criterion: SustainCriterion) -> dict:
        calls.append(run_dir)
        rate = this.condition.load.rates[0]
        held = rate <= capacity
        run_dir.mkdir(parents=True)
        (run_dir / "lag.csv").write_text(f"rate\n{rate}\n")
        step = {"target_rate": rate, "achieved_rate": rate, "sustained": held, "step": 0}
        return {
            "probe": {"rate": rate, "held": held, "staleness_slope": 0.0},
            "steps": [step],
            "sustainable_rate": rate if held else 0.0,
            "window_processing_latency_ms": {"p99": rate / 1000},
            "ramp_aborted": False,
            "drained": True,
            "condition": dict(this.condition.record),
        }

    return run


@pytest.fixture(scope="module")
def tuned() -> RunSettings:
    config = vsconfig.load_config([vsconfig.DEFAULT_CONFIG])
    settings = Settings.from_config(config)
    return next(r for r in settings.runs_of("rq5") if r.run.condition == "tuned")


def test_a_search_writes_the_held_probe_at_lo_as_the_runs_metrics(tuned, tmp_path):
    calls: list[Path] = []
    result = perfsearch.run_search(
        tuned, tmp_path, SustainCriterion(), fake_probe_runner(40_000, calls)
    )
    search = result["rate_search"]
    lo, hi = search["bracket"]
    held = [p["rate"] for p in search["probes"] if p["held"]]
    failed = [p["rate"] for p in search["probes"] if not p["held"]]
    assert result["sustainable_rate"] == lo == max(held)
    assert hi == min(failed) and hi / lo <= search["resolution"]
    assert search["probe_count"] == len(calls) == len(search["probes"])
    # The latencies are those of the probe at lo, and so are the series beside metrics.json.
    assert result["window_processing_latency_ms"]["p99"] == lo / 1000
    assert (tmp_path / "lag.csv").read_text() == f"rate\n{lo}\n"
    assert [c.parent.name for c in calls] == ["probes"] * len(calls)
    assert calls[0].name == "01-16000"
    # Each probe ran one fixed rate for the search's step, without the search block.
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["sustainable_rate"] == lo and "search" in on_disk["condition"]["load"]
    # The probes as steps for the step tables, by rate, flagged.
    assert [s["target_rate"] for s in on_disk["steps"]] == sorted(held + failed)
    assert all("probe" in s for s in on_disk["steps"])


def test_probe_settings_run_one_rate_for_the_search_step(tuned):
    probe = perfsearch.probe_settings(tuned, 12_000, 12)
    assert probe.condition.load.rates == (12_000,) and probe.condition.load.step_s == 12
    assert probe.condition.load.search is None
    assert "search" not in probe.condition.record["load"]
    assert probe.condition.record["load"]["rates"] == [12_000]


def test_a_probe_stops_its_load_later_than_a_ramp_step():
    criterion = SustainCriterion(abort_factor=2, probe_abort_factor=5)
    assert perfsearch.probe_criterion(criterion).abort_factor == 5


# --------------------------------------------------------------------------- configuration


@pytest.fixture()
def full() -> dict:
    return vsconfig.load_config([vsconfig.DEFAULT_CONFIG])


def tuned_search(config: dict) -> dict:
    return config["experiments"]["rq5"]["conditions"]["tuned"]["load"]["search"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("factor", 1), ("resolution", 0.9), ("max_probes", 0), ("step_s", 0), ("nope", 1)],
)
def test_bad_search_settings_are_rejected_by_the_schema(full, key, value):
    tuned_search(full)[key] = value
    with pytest.raises(ConfigError, match="search"):
        vsconfig.validate(full)


def test_a_start_outside_the_rate_range_is_rejected(full):
    tuned_search(full)["start"] = 600_000  # above max_rate
    vsconfig.validate(full)
    with pytest.raises(SettingsError, match="min_rate <= start <= max_rate"):
        Settings.from_config(full)


@pytest.mark.parametrize(
    ("key", "value"), [("settle_s", -1), ("max_growth", -0.1), ("probe_abort_factor", 0.5)]
)
def test_bad_sustain_settings_are_rejected(full, key, value):
    full["experiments"]["rq5"]["sustain"][key] = value
    with pytest.raises(ConfigError, match="sustain"):
        vsconfig.validate(full)


def test_ceiling_is_a_flag_and_its_block_is_read(full):
    settings = Settings.from_config(full)
    assert settings.experiment("rq5").ceiling and not settings.experiment("rq1").ceiling
    assert settings.ceiling.messages == full["ceiling"]["messages"]
    broken = copy.deepcopy(full)
    broken["experiments"]["rq5"]["ceiling"] = "yes"
    with pytest.raises(ConfigError, match="ceiling"):
        vsconfig.validate(broken)


def test_sustain_block_reaches_the_criterion(full):
    settings = Settings.from_config(full)
    criterion = SustainCriterion.from_mapping(settings.experiment("rq5").sustain)
    assert criterion.settle_s == 3 and criterion.max_growth == 0.05
