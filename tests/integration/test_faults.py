"""Fault experiments with real brokers, real Spark and a real OpenSearch node: a broker crashed
and restarted, or one node of three killed, loses and duplicates no reading (every offset
consumed once); in every fault the alerts topic and the search index hold every alert (none
lost, repeats counted).

The job killed and restarted from its checkpoint is the quick profile's own fault run
(faults/spark_kill), checked on the workflow's result in tests/integration/test_workflow.py:
one run of it in CI, not two."""

from __future__ import annotations

import json

import pytest
from audits import assert_no_sink_lost_an_alert
from vitalstream.core import config as vsconfig
from vitalstream.core.config import RunId
from vitalstream.core.runsettings import Settings
from vitalstream.data.cohort import CohortParams, generate_cohort, write_cohort
from vitalstream.experiments import faults
from vitalstream.services import searchnode

pytestmark = pytest.mark.integration
COHORT = {
    "patients": 16,
    "hours": 0.5,
    "seed": 11,
    "prevalence": 0.5,
    "ramp_minutes": 6.0,
    "onset_window": [0.2, 0.4],
}


@pytest.fixture(scope="module")
def search_url(tmp_path_factory):
    """The fault runs index their alerts (sinks.search_index): a local OpenSearch node."""
    handle = searchnode.start_node(tmp_path_factory.mktemp("opensearch"), tag="pytest-faults")
    try:
        yield handle.url
    finally:
        searchnode.stop(handle)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    config = vsconfig.load_config()
    config["cohorts"]["validation"] = dict(COHORT)
    # Shorter replays than the paper's, long enough for the fault to land mid-run.
    config["experiments"]["faults"]["defaults"]["speedup"] = 90
    config.pop("paper", None)
    vsconfig.validate(config)
    events = write_cohort(
        generate_cohort(CohortParams.from_mapping(COHORT)), tmp_path_factory.mktemp("cohort")
    )["events"]
    return config, events


def run(setup, kafka, search_url, tmp_path, condition):
    config, events = setup
    result = faults.run_fault(
        Settings.from_config(config),
        RunId("faults", condition, 1),
        events,
        tmp_path / condition,
        kafka.bootstrap_servers,
        json.dumps(config),
        search_url,
    )
    assert json.loads((tmp_path / condition / "metrics.json").read_text())["ok"] == result["ok"]
    assert_no_sink_lost_an_alert(result)
    return result


def test_a_crashed_and_restarted_broker_loses_and_doubles_nothing(
    setup, kafka, search_url, tmp_path
):
    result = run(setup, kafka, search_url, tmp_path, "broker_restart")
    assert result["down_s"] >= 5
    assert result["producer_delivery_errors"] == 0
    assert result["produced"] == result["in_topic"]
    assert result["consumed_duplicates"] == 0 and result["lost"] == 0
    assert result["exactly_once"] and result["ok"]
    # Readings sent while the broker was down waited for it: the pause is visible.
    assert result["pause_s"] > result["append_delay_median_s"]


def test_one_dead_node_of_three_loses_nothing(setup, kafka, search_url, tmp_path):
    result = run(setup, kafka, search_url, tmp_path, "broker_kill")
    assert result["nodes"] == 3
    assert result["victim_node"].startswith("node")
    assert result["producer_delivery_errors"] == 0
    assert result["consumed_duplicates"] == 0 and result["lost"] == 0
    assert result["exactly_once"] and result["ok"]
