"""The producer benchmark runs against a real broker and reports both producers' figures.

Speeds are printed, not asserted (the machine is shared); the test checks that every message
was delivered and that the report is complete.
"""

from __future__ import annotations

import pytest
from vitalstream.ingest.bench import bench_producer
from vitalstream.ingest.producer import ProducerSettings

pytestmark = pytest.mark.integration


def test_bench_producer_reports_both_producers(kafka):
    result = bench_producer(kafka.bootstrap_servers, 20_000, 200, 2, ProducerSettings())
    print(result)
    assert result["ours_messages"] == 20_000
    assert result["ours_delivery_errors"] == 0
    assert result["blueprint_messages"] == 200
    assert result["ours_msgs_per_s"] > 0 and result["blueprint_msgs_per_s"] > 0
    assert result["speedup_vs_blueprint"] == pytest.approx(
        result["ours_msgs_per_s"] / result["blueprint_msgs_per_s"], rel=0.01
    )
