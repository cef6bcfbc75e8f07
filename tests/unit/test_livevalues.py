"""The running-system section's numbers come from bench-live's JSON (targets included), print
n/a where a sample is empty, and say plainly whether each target was met."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from vitalstream.serving import livevalues

REPO = Path(__file__).resolve().parents[2]


def _quantiles(p50: float | None, p99: float | None, top: float | None, n: int) -> dict:
    return {"n": n, "p50": p50, "p99": p99, "max": top}


def bench(**changes) -> dict:
    """A bench-live JSON as benchlive.summarise writes it."""
    data = {
        "patients": 1000,
        "rate_hz": 1.0,
        "seconds": 120,
        "window_s": 60,
        "watermark_s": 5,
        "readings_sent": 120000,
        "readings_per_s_sent": 999.6,
        "readings_per_s_job": 1001.2,
        "lag_max": 840,
        "cpu_cores": 1.734,
        "machine_cores": 2,
        "critical": {
            "injected": 240,
            "webhook_ms": _quantiles(310.4, 880.0, 1204.9, 240),
            "dashboard_ms": _quantiles(290.0, 850.5, 1100.0, 239),
            "missing_webhook": 0,
            "missing_dashboard": 1,
        },
        "window": {"webhook_ms": _quantiles(900.0, 2600.0, 3100.0, 40)},
        "webhook": {"received": 290, "unique": 288, "duplicates": 2},
        "targets_ms": {"critical_p99": 1000.0, "window_p99": 2000.0},
    }
    return data | changes


def flat(values: dict) -> dict:
    return {name: spec["value"] for name, spec in values.items()}


def test_every_number_and_target_comes_from_the_bench_json() -> None:
    values = livevalues.paper_values(bench(), "b.json")
    got = flat(values)
    assert got["LivePatients"] == 1000
    assert got["LiveCriticalWebhookPninetynine"] == 880.0
    assert got["LiveCriticalDashboardMax"] == 1100.0
    assert got["LiveCriticalMissingDashboard"] == 1
    assert got["LiveWindowWebhookPninetynine"] == 2600.0
    assert got["LiveWebhookDuplicates"] == 2
    assert (got["LiveTargetCriticalSeconds"], got["LiveTargetWindowSeconds"]) == (1.0, 2.0)
    # The critical target is met (880 ms ≤ 1 s, none missing); the window target is not.
    assert (got["LiveCriticalVerdict"], got["LiveWindowVerdict"]) == ("met", "not met")
    assert values["LiveCriticalWebhookPninetynine"]["source"] == "b.json: critical.webhook_ms.p99"
    # Whole numbers print without decimals, CPU with one: "1", "120", "1.7".
    assert values["LiveRateHz"]["decimals"] == 0
    assert values["LiveSeconds"]["decimals"] == 0
    assert values["LiveCpuCores"]["decimals"] == 1
    assert livevalues.paper_values(bench(rate_hz=0.25), "b.json")["LiveRateHz"]["decimals"] == 2


def test_what_a_window_alert_costs_a_ward_adds_the_watermark_and_the_window() -> None:
    got = flat(livevalues.paper_values(bench(), "b.json"))
    # Processing P99 2.6 s after the window could close: + 5 s watermark, + 60 s window.
    assert got["LiveWindowAfterEndPninetynine"] == 2.6 + 5
    assert got["LiveWindowAfterStartPninetynine"] == 2.6 + 5 + 60
    assert got["LiveWindowAfterEndPfifty"] == 0.9 + 5
    empty = bench(window={"webhook_ms": _quantiles(None, None, None, 0)})
    assert flat(livevalues.paper_values(empty, "b.json"))["LiveWindowAfterEndPfifty"] == "n/a"


def test_targets_follow_the_json_not_the_code() -> None:
    changed = bench(targets_ms={"critical_p99": 500.0, "window_p99": 3000.0})
    got = flat(livevalues.paper_values(changed, "b.json"))
    assert (got["LiveTargetCriticalSeconds"], got["LiveTargetWindowSeconds"]) == (0.5, 3.0)
    assert (got["LiveCriticalVerdict"], got["LiveWindowVerdict"]) == ("not met", "met")


def test_a_missing_critical_alert_fails_the_target_even_with_a_fast_p99() -> None:
    data = bench()
    data["critical"] = data["critical"] | {"missing_webhook": 3}
    assert flat(livevalues.paper_values(data, "b.json"))["LiveCriticalVerdict"] == "not met"


def test_an_empty_sample_prints_na_and_is_not_measured() -> None:
    data = bench(readings_per_s_job=None, lag_max=None)
    data["window"] = {"webhook_ms": _quantiles(None, None, None, 0)}
    values = livevalues.paper_values(data, "b.json")
    got = flat(values)
    for name in ("LiveWindowWebhookPfifty", "LiveWindowWebhookPninetynine", "LiveLagMax"):
        assert got[name] == "n/a", name
    assert got["LiveReadingsPerSecondJob"] == "n/a"
    assert got["LiveWindowWebhookCount"] == 0
    assert got["LiveWindowVerdict"] == "not measured"


def test_verdict() -> None:
    assert livevalues.verdict(1000.0, 1000.0) == "met"
    assert livevalues.verdict(1000.1, 1000.0) == "not met"
    assert livevalues.verdict(None, 1000.0) == "not measured"


def live_values(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vitalstream", "live-values", *args]
    env = os.environ | {"PYTHONPATH": str(REPO / "scripts")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_the_command_writes_values_macros_read_and_copies_the_screenshot(tmp_path) -> None:
    from vitalstream.paper.macros import read_values

    (tmp_path / "bench.json").write_text(json.dumps(bench()))
    png = tmp_path / "shot.png"
    png.write_bytes(livevalues.PNG_SIGNATURE + b"rest of an image")
    args = "--bench bench.json --out paper/live_values.json --screenshot shot.png"
    result = live_values(*args.split(), "--figure", "paper/fig_live_dashboard.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row["body"] for row in read_values(tmp_path / "paper/live_values.json")}
    assert rows["LiveCriticalWebhookPninetynine"] == "880"
    assert rows["LiveCpuCores"] == "1.7"
    assert rows["LiveRateHz"] == "1"
    assert rows["LiveWindowVerdict"] == "not met"
    assert (tmp_path / "paper/fig_live_dashboard.png").read_bytes() == png.read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        ("--bench absent.json --out v.json", "absent.json"),
        ("--bench other.json --out v.json", "missing key(s) critical"),
        ("--bench bench.json --out v.json --screenshot bench.json", "together"),
        ("--bench bench.json --out v.json --screenshot bench.json --figure f.png", "not a PNG"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, message) -> None:
    (tmp_path / "bench.json").write_text(json.dumps(bench()))
    other = bench()
    del other["critical"]
    (tmp_path / "other.json").write_text(json.dumps(other))
    result = live_values(*args.split(), cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "v.json").exists()


def test_every_live_macro_the_section_uses_is_made_and_its_figure_traces_to_its_rule() -> None:
    from vitalstream.paper import papermap

    section = (REPO / "paper/sections/live.tex").read_text()
    used = set(re.findall(r"\\(Live[A-Za-z]+)", section))
    made = set(livevalues.paper_values(bench(), "b.json"))
    assert used and used <= made, sorted(used - made)
    rule = {
        "name": "write_live_values",
        "inputs": {
            "bench": "results/bench-live/bench.json",
            "screenshot": "results/bench-live/dashboard.png",
        },
        "outputs": ["results/paper/live_values.json", "results/paper/fig_live_dashboard.png"],
        "shellcmd": "python -m vitalstream live-values --bench ...",
    }
    (row,) = papermap.build(["results/paper/fig_live_dashboard.png"], [rule])
    assert row["made_by"] == "vitalstream live-values"
    assert row["reads"] == ["results/bench-live/bench.json", "results/bench-live/dashboard.png"]
    # The appendix table refers to the figure by the label the section gives it.
    assert r"\cref{fig:live-dashboard}" in papermap.to_latex([row])
    assert r"\label{fig:live-dashboard}" in section
    assert r"\includegraphics[width=\linewidth]{fig_live_dashboard.png}" in section
