"""What a fault run's outputs hold, checked by id: alerts in Parquet, in the alerts topic and in
the search index, readings by Kafka offset.

A fault must not cost an alert anywhere a consumer reads it. Parquet is exactly-once (a
replayed batch replaces its files), the alerts topic and the index at-least-once by design
(a replayed batch sends again; the topic's consumers drop repeats by ``alert_id``, the index
refuses an id it has). So each sink is audited against a reference alert set (an
uninterrupted run's, or the run's own Parquet alerts, see vitalstream.experiments.faults):
``lost`` (reference ids missing), ``unexpected`` (ids the reference lacks) and
``duplicates`` (repeats, counted and reported, harmless).

Not for: running the fault (vitalstream.experiments.faults).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vitalstream.core.settings import SearchSink
from vitalstream.measure import metrics
from vitalstream.services import broker
from vitalstream.sinks import search


def alert_set(run_dir: Path) -> pd.DataFrame:
    """Written alerts by id (id, rule, patient, time, suppressed), sorted; ``attrs
    ['duplicates']`` counts ids written more than once."""
    alerts = metrics.read_parquet_dir(run_dir / "alerts")
    if alerts.empty:
        frame = pd.DataFrame(columns=["rule", "patient_id", "suppressed"])
        frame.attrs["duplicates"] = 0
        return frame
    duplicates = int(alerts["alert_id"].duplicated().sum())
    frame = (
        alerts[["alert_id", "rule", "patient_id", "suppressed"]]
        .drop_duplicates("alert_id")
        .set_index("alert_id")
        .sort_index()
        .astype({"rule": str, "patient_id": str, "suppressed": bool})
    )
    frame.attrs["duplicates"] = duplicates
    return frame


def topic_alert_ids(bootstrap: str, topic: str) -> list[str]:
    """Every alert id published to ``topic`` (with repeats)."""
    from confluent_kafka import Consumer, TopicPartition

    end = broker.topic_end_offsets(bootstrap, topic)
    total = sum(end.values())
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"audit-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    ids: list[str] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in end])
        deadline = time.monotonic() + 60
        while len(ids) < total and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    ids.append(json.loads(message.value())["alert_id"])
    finally:
        consumer.close()
    return ids


def id_audit(expected: set[str], got: list[str]) -> dict[str, int]:
    """One sink's ids against the reference: lost, unexpected, duplicated."""
    distinct = set(got)
    return {
        "expected": len(expected),
        "distinct": len(distinct),
        "lost": len(expected - distinct),
        "unexpected": len(distinct - expected),
        "duplicates": len(got) - len(distinct),
    }


def topic_audit(reference: pd.DataFrame, bootstrap: str, topic: str) -> dict[str, int]:
    """The alerts topic against the reference's emitted (not suppressed) alerts."""
    emitted = set(reference.index[~reference["suppressed"].astype(bool)])
    return id_audit(emitted, topic_alert_ids(bootstrap, topic))


def index_audit(reference: pd.DataFrame, sink: SearchSink, run_dir: Path) -> dict[str, int]:
    """The search index against every reference alert (suppressed ones too: the index keeps
    them for dashboards). The index holds an id once by construction; its ``duplicates``
    are the documents sent again (a replayed batch) that it refused as existing, and
    ``refused`` those it dead-lettered (search_errors.jsonl)."""
    indexed = search.export(sink.url, sink.prefix, search.ALERTS, sink.run)
    ids = indexed["alert_id"].astype(str).tolist() if len(indexed) else []
    audit = id_audit(set(reference.index), ids)
    records = _jsonl(run_dir / "search_commits.jsonl")
    audit["duplicates"] += sum(int(r.get("alert_duplicates", 0)) for r in records)
    audit["refused"] = sum(int(r.get("alert_errors", 0)) for r in records)
    return audit


def dropped_reading_repeats(run_dir: Path) -> int:
    """Reading alerts the sinks dropped as repeats of an alert already written (a duplicated
    reading), over every attempt of every batch."""
    return sum(int(r.get("duplicate_alerts", 0)) for r in _jsonl(run_dir / "commits.jsonl"))


def sinks_held(audits: Mapping[str, Mapping[str, int] | None]) -> bool:
    """No sink lost an alert, invented one or dead-lettered one."""
    return all(
        a["lost"] == 0 and a["unexpected"] == 0 and a.get("refused", 0) == 0
        for a in audits.values()
        if a is not None
    )


def offset_audit(
    run_dir: Path, bootstrap: str, topic: str, report: Mapping[str, Any]
) -> dict[str, Any]:
    """Produced vs in the topic vs consumed: counts, and every (partition, offset) once."""
    end = broker.topic_end_offsets(bootstrap, topic)
    in_topic = int(sum(end.values()))
    produced = int(report["messages"]) + int(report["heartbeats"])
    events = metrics.read_parquet_dir(run_dir / "events")
    deadletter = metrics.read_parquet_dir(run_dir / "deadletter", query="readings")
    consumed = (
        pd.concat(
            [f[["partition", "offset"]] for f in (events, deadletter) if len(f)], ignore_index=True
        )
        if len(events) or len(deadletter)
        else pd.DataFrame(columns=["partition", "offset"])
    )
    keys = consumed["partition"].astype("int64") * (1 << 40) + consumed["offset"].astype("int64")
    duplicated = int(keys.duplicated().sum())
    # Heartbeats are read but not written as readings: one per partition, the last offset.
    expected_keys = in_topic - int(report["heartbeats"])
    distinct = int(keys.nunique())
    return {
        "produced": produced,
        "in_topic": in_topic,
        "consumed_readings": len(consumed),
        "consumed_distinct": distinct,
        "consumed_duplicates": duplicated,
        "lost": max(expected_keys - distinct, 0),
        "exactly_once": bool(
            produced == in_topic and distinct == expected_keys and duplicated == 0
        ),
    }


def _jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a log, replays included (not deduplicated by batch)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
