"""The Spark job against a real broker: counts reconcile, windows and alerts equal a pandas
computation of the same definitions, and bad messages land in the dead letter with reasons."""

from __future__ import annotations

import json

import orjson
import pandas as pd
import pytest
from vitalstream import broker, experiment, metrics, schema, sparkenv
from vitalstream.cohort import CohortParams, generate_cohort, write_cohort
from vitalstream.config import DEFAULT_CONFIG, RunId, load_config
from vitalstream.diagnostics import alert_id, rules_from_config
from vitalstream.streaming import JobSpec, start_job

pytestmark = pytest.mark.integration
NS_UTC = "datetime64[ns, UTC]"
COHORT = {"patients": 12, "hours": 0.25, "seed": 7, "prevalence": 0.5, "ramp_minutes": 4.0}


@pytest.fixture(scope="module")
def config() -> dict:
    cfg = load_config([DEFAULT_CONFIG])
    cfg["cohorts"]["main"] = dict(COHORT)
    cfg["experiments"]["skeleton"]["defaults"]["speedup"] = 300
    return cfg


@pytest.fixture(scope="module")
def run(kafka, config, tmp_path_factory) -> dict:
    """One real run: cohort → producer → Kafka → Spark → files."""
    out = tmp_path_factory.mktemp("cohort")
    cohort = generate_cohort(CohortParams.from_mapping(COHORT))
    paths = write_cohort(cohort, out)
    run_dir = tmp_path_factory.mktemp("run")
    result = experiment.run_condition(
        config, RunId("skeleton", "base", 1), paths["events"], run_dir, kafka.bootstrap_servers
    )
    return {"result": result, "events": cohort.events, "dir": run_dir}


def reference_windows(events: pd.DataFrame, window_s: int) -> pd.DataFrame:
    """Tumbling event-time windows computed independently with pandas."""
    valid, _ = schema.validate_events(events)
    starts = valid["event_time"].dt.floor(f"{window_s}s").astype(NS_UTC)
    valid = valid.assign(window_start=starts)
    grouped = valid.groupby(["patient_id", "window_start"])
    frame = grouped.agg(
        n=("hr", "size"),
        hr_mean=("hr", "mean"),
        spo2_mean=("spo2", "mean"),
        temp_mean=("temp", "mean"),
        sbp_max=("sbp", "max"),
    )
    return frame.reset_index()


def test_every_reading_is_processed_or_quarantined(run):
    result, events = run["result"], run["events"]
    _, quarantined = schema.validate_events(events)
    assert result["events_produced"] == len(events)
    assert result["quarantined"] == len(quarantined) > 0
    assert result["events_processed"] + result["quarantined"] == result["events_produced"]
    assert result["dropped_by_watermark"] == 0
    assert result["events_in_windows"] == result["events_processed"]


def test_windows_equal_the_pandas_reference(run, config):
    window_s = config["experiments"]["skeleton"]["defaults"]["window_s"]
    expected = reference_windows(run["events"], window_s).set_index(["patient_id", "window_start"])
    got = metrics.read_parquet_dir(run["dir"] / "windows")
    got["window_start"] = pd.to_datetime(got["window_start"], utc=True).astype(NS_UTC)
    got = got.set_index(["patient_id", "window_start"]).sort_index()
    assert len(got) == len(expected)
    expected = expected.sort_index()
    assert [(str(p), t) for p, t in got.index] == [(str(p), t) for p, t in expected.index]
    assert (got["n"].to_numpy() == expected["n"].to_numpy()).all()
    for column in ("hr_mean", "spo2_mean", "temp_mean", "sbp_max"):
        assert (got[column].isna().to_numpy() == expected[column].isna().to_numpy()).all()
        assert got[column].to_numpy(float) == pytest.approx(
            expected[column].to_numpy(float), rel=1e-9, nan_ok=True
        ), column


def test_alerts_are_exactly_the_windows_where_a_rule_holds(run, config):
    rules = rules_from_config(config["diagnostics"]["window_rules"])
    window_s = config["experiments"]["skeleton"]["defaults"]["window_s"]
    ref = reference_windows(run["events"], window_s)
    expected = set()
    for rule in rules:
        for _, row in ref[rule.holds(ref[rule.mean_column])].iterrows():
            start_ms = int(row["window_start"].value // 1_000_000)
            expected.add(alert_id(row["patient_id"], rule.name, start_ms))
    alerts = metrics.read_parquet_dir(run["dir"] / "alerts")
    assert expected, "the test cohort should raise alerts"
    assert set(alerts["alert_id"]) == expected
    assert alerts["alert_id"].is_unique


def test_latency_is_measured_for_every_alert(run):
    latency = run["result"]["alert_latency_ms"]
    assert latency["count"] == run["result"]["alerts"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    provenance = json.loads((run["dir"] / "provenance.json").read_text())
    assert provenance["spark_conf"]["spark.sql.shuffle.partitions"] == "2"
    assert "spark-submit --master 'local[2]'" in provenance["spark_submit"]
    assert "spark-sql-kafka-0-10_2.13-4.2.0.jar" in provenance["spark_submit"]


def test_bad_messages_go_to_the_dead_letter_and_good_ones_are_processed(kafka, tmp_path):
    from confluent_kafka import Producer

    topic = "bad-messages"
    broker.create_topic(kafka.bootstrap_servers, topic, 2)
    base = {"patient_id": "P1", "device_id": "D1", "hr": 80.0, "spo2": 97.0, "send_wall_ns": 1}
    good = [dict(base, event_time_ms=1_000 * i) for i in range(10)]
    bad = {
        b"this is not json": "malformed_json",
        orjson.dumps(dict(base, event_time_ms=5_000, hr="fast")): "bad_type:hr",
        orjson.dumps(dict(base, event_time_ms=5_000, hr=999.0)): "out_of_range:hr",
        orjson.dumps(
            {k: v for k, v in base.items() if k != "patient_id"} | {"event_time_ms": 1}
        ): "missing:patient_id",
        orjson.dumps(dict(base, event_time_ms=None)): "missing:event_time_ms",
        orjson.dumps(
            {"patient_id": "P1", "event_time_ms": 1, "send_wall_ns": 1}
        ): "missing:all_vitals",
        orjson.dumps(dict(base, event_time_ms=1, kind="gossip")): "unknown_kind",
    }
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for message in good:
        producer.produce(topic, orjson.dumps(message), key=b"P1")
    for value in bad:
        producer.produce(topic, value, key=b"P1")
    for partition in (0, 1):
        producer.produce(
            topic,
            orjson.dumps({"kind": "heartbeat", "event_time_ms": 600_000, "send_wall_ns": 1}),
            partition=partition,
        )
    assert producer.flush(30) == 0

    spec = JobSpec(
        kafka.bootstrap_servers,
        topic,
        tmp_path,
        window_s=60,
        watermark_s=10,
        rules=tuple(rules_from_config([])),
    )
    spark = sparkenv.build_session(sparkenv.effective_conf())
    try:
        queries = start_job(spark, spec)
        experiment.wait_until_started(queries)
        end = broker.topic_end_offsets(kafka.bootstrap_servers, topic)
        experiment.wait_until_drained(queries, end, closing_watermark_ms=590_000, timeout_s=120)
        assert all(q.isActive for q in queries.values()), "the job must keep running"
        for query in queries.values():
            query.stop()
    finally:
        spark.stop()
    deadletter = metrics.read_parquet_dir(tmp_path / "deadletter")
    reasons = dict(zip(deadletter["value"].str.encode("utf-8"), deadletter["reason"], strict=True))
    assert reasons == bad
    windows = metrics.read_parquet_dir(tmp_path / "windows")
    assert windows["n"].sum() == len(good)
    broker.delete_topic(kafka.bootstrap_servers, topic)
