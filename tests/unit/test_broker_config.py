"""The broker's server.properties for one node and for a node of a static three-node quorum
(no JVM is started here; tests/integration/test_faults.py runs real clusters)."""

from __future__ import annotations

from pathlib import Path

from vitalstream.services import broker, topics


def props(**kwargs):
    return broker.server_properties(
        node_id=2,
        port=9092,
        controller_port=9093,
        data_dir=Path("/tmp/data"),
        partitions_default=1,
        **kwargs,
    )


def test_a_single_node_bootstraps_its_own_dynamic_quorum():
    single = props()
    assert single["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in single
    assert single["offsets.topic.replication.factor"] == "1"


def test_a_cluster_node_names_every_voter_and_takes_the_cluster_replication():
    voters = "1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3"
    node = props(voters=voters, extra={"min.insync.replicas": "2"})
    assert node["controller.quorum.voters"] == voters
    assert "controller.quorum.bootstrap.servers" not in node
    assert node["node.id"] == "2" and node["min.insync.replicas"] == "2"
    # Everything on loopback only.
    assert node["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"


def test_the_broker_bounds_every_log_in_time_and_size():
    single = props()
    day_ms = 24 * 3600 * 1000
    assert single["log.retention.ms"] == str(day_ms)  # Kafka's default: a week
    assert single["log.retention.bytes"] == str(1 << 30)  # Kafka's default: no bound
    # Segments well below the bound, so a partition never holds twice its bound.
    assert int(single["log.segment.bytes"]) <= int(single["log.retention.bytes"]) // 4


def test_topics_are_bounded_unless_a_caller_sets_its_own():
    config = topics.bounded_topic_config({"message.timestamp.type": "LogAppendTime"})
    assert config["message.timestamp.type"] == "LogAppendTime"
    assert config["retention.ms"] == str(topics.RETENTION_MS)
    assert config["retention.bytes"] == str(topics.RETENTION_BYTES)
    assert topics.bounded_topic_config({"retention.ms": "1000"})["retention.ms"] == "1000"
    assert topics.bounded_topic_config() == topics.BOUNDED_TOPIC_CONFIG
