"""Command line: ``python -m vitalstream <command>``; ``--help`` lists the commands.

Each module that offers a command registers it (``register_cli``); this file only collects
them, so a command's code lives next to what it runs. Heavy imports (pyspark) happen inside the
commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from vitalstream import __version__

# Modules with a ``register_cli(subparsers)`` function, in the order --help lists them.
COMMAND_MODULES = (
    "cohort",
    "physionet",
    "broker",
    "searchnode",
    "producer",
    "gateway",
    "experiment",
    "reference",
    "validation",
    "accuracy",
    "siblings",
    "macros",
    "design",
    "bench",
    "load",
    "perf",
    "faults",
    "cluster",
    "sepsis",
    "riskmodel",
    "riskedge",
    "rq4",
    "paper_tables",
    "latexlog",
    "datasummary",
    "runseries",
    "papermap",
    "archive",
    "hyperextract",
    "dashboard",
    "search",
    "kibana",
    "serving",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vitalstream",
        description="VitalStream: streaming diagnostics for IoT patient monitoring.",
    )
    parser.add_argument("--version", action="version", version=f"vitalstream {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"vitalstream.{name}").register_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
