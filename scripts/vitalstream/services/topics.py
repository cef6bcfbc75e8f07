"""Topics on a running Kafka broker or cluster: create, delete, list, end offsets, leaders.

Why this exists: every run creates its topics fresh, and a consumer knows it has read everything
by the topics' end offsets; these admin calls go through librdkafka (confluent_kafka), whose
futures and garbage collection need some care, so they are written once here.

Not for: starting or stopping a broker (services.broker, which re-exports these functions under
their old names). confluent_kafka is imported inside the functions, so that the broker's
watchdog and the CLI's start/stop never load librdkafka.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

# Every topic the workflow creates is bounded on disk, whatever crashes before it is deleted
# (an external cluster keeps a topic a failed run left). Per partition: at most
# RETENTION_BYTES plus the active segment (SEGMENT_BYTES), far above what one run writes to a
# partition (the 2-million-message ceiling topic holds about 100 MB per partition), so a
# reader never loses what it has not yet read; if it ever did, the job fails (failOnDataLoss).
# Time retention: Kafka compares the newest record timestamp of a segment with the wall
# clock. Our producers leave the timestamp to the client (CreateTime = the wall clock at the
# send; replays carry their historical event times in the payload only) or the topic takes
# the broker's append time (LogAppendTime: the fault runs), so a day keeps every run's input
# for its whole run (the longest run takes minutes) and a leftover topic for a day at most.
RETENTION_MS = 24 * 3600 * 1000
RETENTION_BYTES = 1 << 30  # per partition
SEGMENT_BYTES = 128 << 20
BOUNDED_TOPIC_CONFIG: dict[str, str] = {
    "retention.ms": str(RETENTION_MS),
    "retention.bytes": str(RETENTION_BYTES),
    "segment.bytes": str(SEGMENT_BYTES),
}


def bounded_topic_config(config: dict[str, str] | None = None) -> dict[str, str]:
    """A topic's settings: the retention bounds, then ``config`` (a caller may set its own)."""
    return {**BOUNDED_TOPIC_CONFIG, **(config or {})}


def admin_client(bootstrap: str, timeout: float) -> Any:
    """A confluent_kafka AdminClient that logs errors only (connection-refused chatter while a
    broker starts is expected)."""
    from confluent_kafka.admin import AdminClient

    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 3,
        }
    )


def live_brokers(bootstrap: str, timeout: float = 2.0) -> int:
    """Nodes the cluster's metadata lists as live (0 when no node answers)."""
    from confluent_kafka import KafkaException

    admin = admin_client(bootstrap, timeout)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return 0
    return len(metadata.brokers)


def metadata_ready(bootstrap: str) -> bool:
    """True once a broker answers a metadata request with itself as a live broker."""
    return live_brokers(bootstrap, 2.0) > 0


def partition_leaders(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """Leader node id of every partition of ``topic``."""
    admin = admin_client(bootstrap, timeout)
    metadata = admin.list_topics(topic=topic, timeout=timeout)
    return {p: meta.leader for p, meta in metadata.topics[topic].partitions.items()}


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    replication: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
    *,
    exists_ok: bool = True,
) -> None:
    """Create a topic, bounded on disk (:func:`bounded_topic_config` of ``config``), and wait
    until every partition has a leader.

    The AdminClient stays referenced (``admin``) until its future resolved: librdkafka may
    hang or crash when the client is garbage-collected with a request in flight. Waiting for
    leaders avoids the first produce after creation failing with UNKNOWN_TOPIC_OR_PART.
    """
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    admin = admin_client(bootstrap, timeout)
    topic = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication,
        config=bounded_topic_config(config),
    )
    futures = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)
    ignore = KafkaError.TOPIC_ALREADY_EXISTS if exists_ok else None
    # Read, never pop: the dict is the client's own map that its callback resolves.
    if not _await_admin_future(futures[name], timeout, ignore):
        existing = len(admin.list_topics(topic=name, timeout=timeout).topics[name].partitions)
        if existing != partitions:
            raise ValueError(f"topic {name!r} exists with {existing} partitions, not {partitions}")
    _wait_for(
        lambda: _leaders_ready(admin, name, partitions),
        timeout,
        f"topic {name!r}: partitions without a leader after {timeout} s",
    )


def _await_admin_future(future: Any, timeout: float, ignore: int | None) -> bool:
    """Wait for an AdminClient future; False if it failed with the ignorable error ``ignore``.

    ``exception()`` instead of ``result()``: an ignored error is never raised, so it gets no
    traceback whose frames would form a cycle future -> exception -> frames -> future and keep
    the AdminClient (with its librdkafka threads, which log connection errors once the broker
    stopped) alive until some later GC pass.
    """
    from confluent_kafka import KafkaException

    error = future.exception(timeout=timeout)
    if error is None:
        return True
    if ignore is not None and isinstance(error, KafkaException) and error.args[0].code() == ignore:
        return False
    raise error


def _leaders_ready(admin: Any, name: str, partitions: int) -> bool:
    meta = admin.list_topics(topic=name, timeout=5).topics.get(name)
    if meta is None or meta.error is not None:
        return False
    parts = meta.partitions.values()
    return len(parts) >= partitions and all(p.leader >= 0 for p in parts)


def _wait_for(check: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.1)


def delete_topic(
    bootstrap: str, name: str, timeout: float = 30.0, *, missing_ok: bool = True
) -> None:
    """Delete a topic and wait until the broker no longer lists it (so it can be recreated)."""
    from confluent_kafka import KafkaError

    admin = admin_client(bootstrap, timeout)
    futures = admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)
    ignore = KafkaError.UNKNOWN_TOPIC_OR_PART if missing_ok else None
    _await_admin_future(futures[name], timeout, ignore)
    _wait_for(
        lambda: name not in admin.list_topics(timeout=5).topics,
        timeout,
        f"topic {name!r} still listed {timeout} s after deletion",
    )


def list_topics(bootstrap: str, timeout: float = 10.0) -> list[str]:
    """Names of the non-internal topics on the broker."""
    admin = admin_client(bootstrap, timeout)
    return sorted(t for t in admin.list_topics(timeout=timeout).topics if not t.startswith("__"))


def topic_end_offsets(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """High watermark of every partition of ``topic``: ``{partition: end offset}``.

    The sum is the number of records ever written (retention deletes from the start of a
    log, never moves its end, and no run outlives it: RETENTION_MS), which
    is how a consumer knows it has read everything. A consumer (not the AdminClient) is used
    because ``get_watermark_offsets`` is the direct, uncached way to read them; it joins no
    group, so it disturbs no one.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"vitalstream-watermarks-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        meta = consumer.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KeyError(f"topic {topic!r} not found on {bootstrap}: {meta and meta.error}")
        offsets = {}
        for partition in sorted(meta.partitions):
            tp = TopicPartition(topic, partition)
            _low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            offsets[partition] = int(high)
        return offsets
    finally:
        consumer.close()
