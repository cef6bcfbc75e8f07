"""Performance groups with a real broker and real Spark: a tiny group in one session, its
metrics against the broker's own counts, and the raw consumer ceiling measured in the group's
session. A rate search runs in the quick workflow (rq5's tuned condition): test_workflow.py."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
from vitalstream.core import config as vsconfig
from vitalstream.core.runsettings import Settings
from vitalstream.experiments import perf
from vitalstream.ingest import load
from vitalstream.measure import metrics
from vitalstream.services import sparkenv

pytestmark = pytest.mark.integration


def tiny_config() -> dict:
    config = vsconfig.load_config()
    tuned = copy.deepcopy(config["experiments"]["rq5"]["defaults"])
    tuned["load"] = {"patients": 200, "rates": [2000, 4000], "step_s": 3, "lead_s": 1}
    config["experiments"] = {
        "perf": {
            "repetitions": 1,
            "warmup_s": 0,
            "sustain": {"max_lag_s": 5, "drain_s": 20, "settle_s": 1},
            "ceiling": True,
            "defaults": tuned,
            "conditions": {
                "tuned": {},
                "shuffle4": {"spark_conf": {"spark.sql.shuffle.partitions": 4}},
                "realtime": {"trigger_mode": "realtime", "trigger_ms": 5000},
            },
        }
    }
    config["ceiling"] = {"messages": 50_000, "partitions": 2}
    config.pop("paper", None)
    vsconfig.validate(config)
    return config


@pytest.fixture(scope="module")
def group(kafka, tmp_path_factory):
    out = tmp_path_factory.mktemp("perf")
    config = tiny_config()
    perf.run_group(Settings.from_config(config), "perf", out, kafka.bootstrap_servers)
    return out


@pytest.mark.parametrize("condition", ["tuned", "shuffle4", "realtime"])
def test_every_message_sent_is_in_kafka_and_read_by_spark(group, condition):
    metrics = json.loads((group / "perf" / condition / "rep1" / "metrics.json").read_text())
    producer = json.loads((group / "perf" / condition / "rep1" / "producer.json").read_text())
    assert metrics["drained"]
    assert metrics["kafka_messages"] == metrics["events_produced"] == producer["messages"]
    assert metrics["events_processed"] == metrics["events_produced"]
    assert sum(s["messages"] for s in producer["steps"]) == producer["messages"]


@pytest.mark.parametrize("condition", ["tuned", "shuffle4"])
def test_steps_run_at_their_target_rate_and_every_latency_has_a_sample(group, condition):
    metrics = json.loads((group / "perf" / condition / "rep1" / "metrics.json").read_text())
    assert [s["target_rate"] for s in metrics["steps"]] == [2000, 4000]
    for step in metrics["steps"]:
        assert step["achieved_rate"] == pytest.approx(step["target_rate"], rel=0.1)
    assert metrics["critical_alert_latency_ms"]["count"] > 0
    assert metrics["window_processing_latency_ms"]["count"] > 0
    assert metrics["event_to_alert_ms"]["count"] == metrics["window_processing_latency_ms"]["count"]
    # From "could close" is later than from the window's last reading: never longer.
    assert metrics["window_processing_latency_ms"]["p50"] <= metrics["event_to_alert_ms"]["p50"]
    assert metrics["resources"]["jvm"]["samples"] > 0
    assert (group / "perf" / condition / "rep1" / "lag.csv").stat().st_size > 0


def test_each_run_records_its_own_spark_settings(group):
    def shuffle(condition: str) -> str:
        record = json.loads((group / "perf" / condition / "rep1" / "provenance.json").read_text())
        return record["spark_conf"]["spark.sql.shuffle.partitions"]

    assert shuffle("shuffle4") == "4"
    # The tuned defaults set their own (one, chosen from the breakdown's levers), which the
    # group's session is built with; without one, the Spark defaults file's would apply.
    tuned = tiny_config()["experiments"]["perf"]["defaults"]["spark_conf"]
    expected = tuned.get("spark.sql.shuffle.partitions")
    expected = expected or sparkenv.read_defaults()["spark.sql.shuffle.partitions"]
    assert shuffle("tuned") == str(expected)


def test_the_ceiling_is_measured_in_the_groups_session_and_every_run_has_its_ratio(group):
    ceiling = json.loads((group / "perf" / "ceiling.json").read_text())
    assert [r["rep"] for r in ceiling["rounds"]] == [1]  # one repetition round
    first = ceiling["rounds"][0]
    assert first["messages"] == first["produced"] > 0 and first["msgs_per_s"] > 0
    for condition in ("tuned", "shuffle4", "realtime"):
        metrics_ = json.loads((group / "perf" / condition / "rep1" / "metrics.json").read_text())
        assert metrics_["ceiling_msgs_per_s"] == first["msgs_per_s"]
        assert metrics_["ceiling_rep"] == 1
        assert metrics_["ceiling_ratio"] == pytest.approx(
            metrics_["sustainable_rate"] / first["msgs_per_s"]
        )


def test_the_broker_is_sampled_beside_the_jvm_and_the_producer(group):
    metrics_ = json.loads((group / "perf" / "tuned" / "rep1" / "metrics.json").read_text())
    assert {"jvm", "producer", "broker"} <= set(metrics_["resources"])
    assert metrics_["resources"]["broker"]["samples"] > 0


CRITICAL_RULES = "critical_desaturation,critical_tachycardia"


@pytest.mark.parametrize("condition", ["tuned", "realtime"])
def test_every_critical_reading_raises_its_alerts_once(group, condition):
    """The generator's critical readings are known by index: each must alert exactly once,
    in the micro-batch job (one row per rule) and in real-time mode (one record)."""
    run = group / "perf" / condition / "rep1"
    producer = json.loads((run / "producer.json").read_text())
    expected = load.critical_count(producer["messages"], 1)
    assert expected > 0
    if condition == "realtime":
        alerts = pd.read_parquet(run / "kafka_alerts.parquet")
        assert (alerts["rules"] == CRITICAL_RULES).sum() == expected
        assert not alerts.duplicated(["patient_id", "send_wall_ns"]).any()
    else:
        alerts = metrics.read_parquet_dir(run / "alerts")
        reading = alerts[alerts["kind"] == "reading"]
        per_reading = reading.groupby(["patient_id", "last_send_wall_ns"])["rule"].agg(
            lambda rules: ",".join(sorted(rules))
        )
        assert (per_reading == CRITICAL_RULES).sum() == expected


def test_realtime_mode_measures_critical_alerts_only(group):
    metrics_ = json.loads((group / "perf" / "realtime" / "rep1" / "metrics.json").read_text())
    assert metrics_["critical_alert_latency_ms"]["count"] > 0
    assert metrics_["window_processing_latency_ms"]["count"] == 0
