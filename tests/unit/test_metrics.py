"""Metrics computed from run files: percentiles, commit latency, Spark throughput."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from vitalstream.measure import metrics


def test_latency_summary_percentiles():
    summary = metrics.latency_summary(np.arange(1, 101, dtype=float))
    assert summary["count"] == 100
    assert summary["p50"] == pytest.approx(50.5)
    assert summary["p90"] == pytest.approx(90.1)
    assert summary["max"] == 100.0


def test_latency_summary_of_nothing_is_explicitly_empty():
    assert metrics.latency_summary([]) == {
        "count": 0,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }


def test_commit_latency_uses_the_commit_of_the_rows_batch():
    rows = pd.DataFrame({"batch_id": [1, 2], "last_send_wall_ns": [1_000_000_000, 2_000_000_000]})
    commits = pd.DataFrame({"batch_id": [1, 2], "commit_wall_ns": [1_500_000_000, 2_250_000_000]})
    assert metrics.commit_latency_ms(rows, commits).tolist() == [500.0, 250.0]


def test_commit_latency_refuses_rows_without_a_commit():
    rows = pd.DataFrame({"batch_id": [3], "last_send_wall_ns": [1]})
    commits = pd.DataFrame({"batch_id": [1], "commit_wall_ns": [2]})
    with pytest.raises(ValueError, match="commit"):
        metrics.commit_latency_ms(rows, commits)


def test_replayed_batch_keeps_its_last_commit(tmp_path):
    log = tmp_path / "commits.jsonl"
    log.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"batch_id": 0, "commit_wall_ns": 5},
                {"batch_id": 1, "commit_wall_ns": 7},
                {"batch_id": 1, "commit_wall_ns": 9},
            ]
        )
        + "\n"
    )
    commits = metrics.read_commits(log)
    assert commits.set_index("batch_id")["commit_wall_ns"].to_dict() == {0: 5, 1: 9}


def test_spark_throughput_spans_busy_batches_only():
    progress = [
        {
            "timestamp": "2026-01-01T00:00:00.000Z",
            "numInputRows": 0,
            "durationMs": {"triggerExecution": 5000},
        },
        {
            "timestamp": "2026-01-01T00:00:10.000Z",
            "numInputRows": 1000,
            "durationMs": {"triggerExecution": 1000},
        },
        {
            "timestamp": "2026-01-01T00:00:11.000Z",
            "numInputRows": 3000,
            "durationMs": {"triggerExecution": 1000},
        },
    ]
    result = metrics.spark_throughput(progress)
    assert result["rows"] == 4000
    assert result["rows_per_s"] == pytest.approx(2000.0)


def test_dropped_by_watermark_sums_state_operators():
    progress = [
        {"stateOperators": [{"numRowsDroppedByWatermark": 3}]},
        {"stateOperators": [{"numRowsDroppedByWatermark": 4}]},
        {},
    ]
    assert metrics.dropped_by_watermark(progress) == 7
