"""Benchmarks that print figures (never timed tests): the replay producer against the
blueprint's send-and-wait producer, into a real local broker, in the same run.

``python -m vitalstream bench-producer`` starts a broker (unless ``--bootstrap-servers`` names
one), sends the same encoded readings with both producers and prints one JSON line. Our
producer batches and never waits for a single message; the blueprint's waits for every
delivery (``send_and_wait``), which pays a broker round trip per message.

Not for: the pipeline's measurements (vitalstream.experiments.run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import (
    check_fits_in_memory,
    checked,
    json_object,
    positive_int,
    writable_file,
)
from vitalstream.data.cohort import COHORT_BYTES_PER_ROW, CohortParams, generate_cohort
from vitalstream.ingest.producer import ProducerSettings, encode_messages, replay
from vitalstream.services import broker


def blueprint_rate(bootstrap: str, topic: str, payloads: list[bytes], keys: list[bytes]) -> float:
    """Messages/s of a send-and-wait producer (acks=1, lz4, as in the blueprint's sketch)."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "1", "compression.type": "lz4", "linger.ms": 0}
    )
    start = time.perf_counter()
    for key, payload in zip(keys, payloads, strict=True):
        producer.produce(topic, value=payload + b',"send_wall_ns":%d}' % time.time_ns(), key=key)
        producer.flush()  # wait for this one delivery before the next send
    return len(payloads) / (time.perf_counter() - start)


def bench_producer(
    bootstrap: str,
    messages: int,
    blueprint_messages: int,
    partitions: int,
    settings: ProducerSettings,
) -> dict[str, Any]:
    """Both producers' throughput into ``bootstrap``, in one run."""
    patients = max(1, messages // 3600 + 1)
    events = generate_cohort(CohortParams(patients=patients, hours=1.0, seed=1)).events
    events = events.head(messages)
    topic = f"bench.ours.{uuid.uuid4().hex[:8]}"
    broker.create_topic(bootstrap, topic, partitions)
    ours = replay(
        events,
        bootstrap_servers=bootstrap,
        topic=topic,
        speedup=float("inf"),
        settings=settings,
        window_s=60,
        watermark_s=0,
    )
    sample = events.head(blueprint_messages)
    blueprint_topic = f"bench.blueprint.{uuid.uuid4().hex[:8]}"
    broker.create_topic(bootstrap, blueprint_topic, partitions)
    keys = sample["patient_id"].astype(str).str.encode("utf-8").tolist()
    theirs = blueprint_rate(bootstrap, blueprint_topic, encode_messages(sample), keys)
    for name in (topic, blueprint_topic):
        broker.delete_topic(bootstrap, name)
    return {
        "ours_messages": ours.messages,
        "ours_msgs_per_s": round(ours.achieved_rate),
        "ours_delivery_errors": ours.delivery_errors,
        "message_bytes_mean": round(ours.bytes / max(ours.messages, 1), 1),
        "blueprint_messages": len(sample),
        "blueprint_msgs_per_s": round(theirs),
        "speedup_vs_blueprint": round(ours.achieved_rate / theirs, 1),
        "settings": settings.client_config("")
        | {"bootstrap.servers": bootstrap, "partitions": partitions},
    }


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-producer", help="our producer vs the blueprint's send-and-wait, one JSON line"
    )
    parser.add_argument("--messages", type=positive_int, default=500_000)
    parser.add_argument("--blueprint-messages", type=positive_int, default=5_000)
    parser.add_argument("--partitions", type=positive_int, default=6)
    parser.add_argument("--bootstrap-servers", default=None, help="default: start a local broker")
    parser.add_argument(
        "--settings", type=json_object, default="{}", help="producer settings as JSON, or @FILE"
    )
    parser.add_argument(
        "--broker-state", type=Path, default=None, help="use the workflow's broker (state file)"
    )
    parser.add_argument("--out", type=writable_file, default=None, help="also write the JSON here")
    parser.set_defaults(func=_cli_bench)


def _cli_bench(args: argparse.Namespace) -> int:
    settings = checked("--settings", ProducerSettings.from_mapping, args.settings)
    # The benchmark generates its messages as a cohort first: refuse what cannot fit.
    check_fits_in_memory(
        "argument --messages", float(args.messages), COHORT_BYTES_PER_ROW, "the messages"
    )
    if not args.bootstrap_servers and args.broker_state and args.broker_state.exists():
        args.bootstrap_servers = broker.read_bootstrap(args.broker_state)
    if args.bootstrap_servers:
        result = bench_producer(
            args.bootstrap_servers,
            args.messages,
            args.blueprint_messages,
            args.partitions,
            settings,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="vitalstream-bench-") as tmp:
            handle = broker.LocalBroker().start(Path(tmp), tag=f"bench-{uuid.uuid4().hex[:6]}")
            try:
                result = bench_producer(
                    handle.bootstrap_servers,
                    args.messages,
                    args.blueprint_messages,
                    args.partitions,
                    settings,
                )
            finally:
                broker.stop(handle)
    print(json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0
