"""Reshaping of the robustness runs' files for their notebooks (vitalstream.measure.robustness)."""

from __future__ import annotations

import json

import pytest
from vitalstream.measure import robustness


def metrics(produced: int, wire: int, window_s: int = 60, **extra) -> dict:
    return {
        "events_produced": produced,
        "producer_wire_bytes": wire,
        "producer_bytes": 4 * wire,
        "patients": 10,
        "event_time_span_h": 2.0,
        "quarantined": 0,
        "condition": {"window_s": window_s, "watermark_s": 120, "speedup": 60},
        "alert_latency_ms": {"p50": 1500.0},
        **extra,
    }


def accuracy(f1: float | None, **extra) -> dict:
    return {
        "groups": {"news2_5": {"f1": f1, "recall": 1.0, "agreement": {"jaccard": 0.5}, **extra}}
    }


def test_gateway_rows_give_bytes_per_device_hour_and_reduction_against_the_baseline():
    runs = {
        "raw": {"metrics": metrics(72_000, 2_000_000), "accuracy": accuracy(0.8)},
        "coalesce10": {"metrics": metrics(7_200, 400_000), "accuracy": accuracy(0.75)},
    }
    gateways = {"coalesce10": {"spec": {"mode": "coalesce", "seconds": 10}, "devices": 10}}
    frame = robustness.gateway_rows(runs, gateways, "news2_5").set_index("condition")
    # 10 devices × 2 h = 20 device-hours.
    assert frame.loc["raw", "wire_bytes_per_device_hour"] == pytest.approx(100_000)
    assert frame.loc["coalesce10", "messages_per_device_hour"] == pytest.approx(360)
    assert frame.loc["coalesce10", "wire_reduction"] == pytest.approx(5.0)
    assert frame.loc["coalesce10", "f1_change"] == pytest.approx(-0.05)
    assert list(frame.index) == ["raw", "coalesce10"]  # forward first, then coalesce


def test_a_group_missing_from_a_run_reads_as_missing_not_as_an_error():
    runs = {"raw": {"metrics": metrics(10, 10), "accuracy": {"groups": {}}}}
    frame = robustness.gateway_rows(runs, {}, "critical")
    assert frame.loc[0, "f1"] is None


def test_ablation_rows_are_one_per_window_and_group():
    runs = {
        f"win{w}": {"metrics": metrics(1, 1, window_s=w), "accuracy": accuracy(0.5)}
        for w in (300, 30)
    }
    frame = robustness.ablation_rows(runs, ["news2_5"])
    assert frame["window_s"].tolist() == [30, 300]


def test_load_runs_skips_a_run_missing_a_file(tmp_path):
    for name, files in {"a": ("metrics.json", "accuracy.json"), "b": ("metrics.json",)}.items():
        folder = tmp_path / "rq2" / name / "rep1"
        folder.mkdir(parents=True)
        for f in files:
            (folder / f).write_text(json.dumps({"x": 1}))
    runs = robustness.load_runs(tmp_path, "rq2", ("metrics.json", "accuracy.json"))
    assert list(runs) == ["a"] and runs["a"]["accuracy"] == {"x": 1}


@pytest.mark.parametrize(
    ("text", "key"),
    [("late_exp10_w30", "LateExpOneZeroWThreeZero"), ("news2_5", "NewsTwoFive"), ("raw", "Raw")],
)
def test_macro_keys_are_letters_only(text, key):
    assert robustness.macro_key(text) == key
