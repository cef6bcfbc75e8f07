"""``python -m vitalstream console-producer``: Apache Kafka's own console producer, pointed at the
running monitor's input topic. One JSON reading per line of standard input.

It is Kafka's tool, not ours (``org.apache.kafka.tools.ConsoleProducer`` from Maven Central,
vitalstream.services.kafkaconfig): what a device integrator would use first, and a client whose
messages VitalStream does not shape. The running ``up`` says where the broker and topic are
(its record in the state folder), so nothing needs copying by hand.

Not for: simulated devices (vitalstream.ingest.simulate).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vitalstream.core.cliargs import UsageError
from vitalstream.core.config import load_config
from vitalstream.core.livesettings import LiveSettings
from vitalstream.services.kafkaconfig import console_producer_command
from vitalstream.services.uprecord import running_up


def live_address(state_dir: Path | None) -> tuple[str, str]:
    """The bootstrap address and input topic of the ``up`` running over ``state_dir``
    (default: the configuration's ``live.state_dir``)."""
    folder = state_dir or LiveSettings.from_config(load_config().get("live", {})).state_dir
    record = running_up(folder)
    if record is None or "bootstrap" not in record:
        raise UsageError(f"no running `up` over {folder}: start it first (make up)")
    return str(record["bootstrap"]), str(record["topic"])


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "console-producer", help="Kafka's console producer into the running monitor's topic"
    )
    parser.add_argument("--state-dir", type=Path, help="the running `up`'s state folder")
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    bootstrap, topic = live_address(args.state_dir)
    command = console_producer_command(bootstrap, topic)
    os.execv(command[0], command)
    return 0  # not reached: exec replaced this process
