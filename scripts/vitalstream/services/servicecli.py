"""The command line every local service shares: ``start``, ``stop`` and ``status``.

The Kafka broker, the OpenSearch node and the loopback cluster are run the same way by the
workflow, the tests and a user: ``start`` writes a state file and prints it as JSON, ``stop``
stops whatever a state file names (and says when there is nothing), ``status`` prints the state
with liveness and exits 1 unless the service is ready. One definition here keeps their words,
exit codes and state handling identical; each service adds only its own ``start`` options.

Not for: starting or supervising processes (vitalstream.services.supervise).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import writable_file


@dataclass(frozen=True)
class ServiceCommands:
    """One service's command line: its name, what it calls itself, and its three actions.

    ``start`` returns the exit status (it prints what it started); ``stop`` returns whether a
    state file existed; ``status`` raises FileNotFoundError without one and returns a mapping
    with a ``ready`` flag."""

    command: str
    noun: str
    help: str
    start: Callable[[argparse.Namespace], int]
    add_start_arguments: Callable[[argparse.ArgumentParser], None]
    stop: Callable[[Path], bool]
    status: Callable[[Path], dict[str, Any]]
    start_help: str = "start and write the state file"
    stop_help: str = "stop what a state file names"


def print_state(state: dict[str, Any]) -> None:
    """A state file's content as the ``start`` and ``status`` actions print it."""
    print(json.dumps(state, indent=2, sort_keys=True))


def _stop(service: ServiceCommands, args: argparse.Namespace) -> int:
    existed = service.stop(Path(args.state))
    print("stopped" if existed else f"no state file {args.state}: nothing to stop")
    return 0


def _status(service: ServiceCommands, args: argparse.Namespace) -> int:
    try:
        report = service.status(Path(args.state))
    except FileNotFoundError:
        print(f"no state file {args.state}: no {service.noun}")
        return 1
    print_state(report)
    return 0 if report["ready"] else 1


def add_actions(actions: Any, service: ServiceCommands) -> None:
    """The start/stop/status subcommands under ``actions``."""
    start_p = actions.add_parser("start", help=service.start_help)
    start_p.add_argument(
        "--state", required=True, type=writable_file, help="JSON state file to write"
    )
    service.add_start_arguments(start_p)
    start_p.set_defaults(func=service.start)

    stop_p = actions.add_parser("stop", help=service.stop_help)
    stop_p.add_argument("--state", required=True)
    stop_p.add_argument("--work-dir", help="ignored (the state file names everything)")
    stop_p.set_defaults(func=lambda args: _stop(service, args))

    status_p = actions.add_parser("status", help="print state and liveness; exit 1 if not ready")
    status_p.add_argument("--state", required=True)
    status_p.set_defaults(func=lambda args: _status(service, args))


def register(subparsers: Any, service: ServiceCommands) -> None:
    """Add ``<command> {start,stop,status}`` to the package CLI (``python -m vitalstream``)."""
    parser = subparsers.add_parser(service.command, help=service.help)
    # Required: a bare ``broker`` is a usage error (one line, exit 2), not a page of help.
    dest = f"{service.command.replace('-', '_')}_action"
    add_actions(parser.add_subparsers(dest=dest, required=True, metavar="ACTION"), service)


def main(service: ServiceCommands, module: str, argv: list[str] | None = None) -> int:
    """``python -m <module> {start,stop,status} ...``, the same as ``python -m vitalstream
    <command>``."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}")
    add_actions(parser.add_subparsers(dest="command", required=True), service)
    args = parser.parse_args(argv)
    return int(args.func(args))
