"""Command line: ``python -m vitalstream <command>``; ``--help`` lists the commands.

The registry below names each command's module and one line of help, so ``--help`` imports no
command module at all, and ``python -m vitalstream CMD`` imports only the module of CMD (and
what it needs). A rule's environment therefore needs only the packages of the commands it runs
(tests/unit/test_cli.py checks both). Each module still defines its own arguments
(``register_cli``), next to the code it runs.

A bad command line is the user's mistake, not a bug: it ends in exactly one line on stderr,
``vitalstream <command>: error: argument --x: ...``, and exit status 2, never a traceback. The
argument types of :mod:`vitalstream.core.cliargs` catch single values while parsing
(:class:`OneLineParser` keeps argparse's message to its one line); checks that need several
arguments or the configuration (a size against the memory, a JSON block against its dataclass)
raise ``UsageError``/``ConfigError`` from the command, which :func:`main` prints the same way.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from vitalstream import __version__

# command → (module under vitalstream, one line of help), in the data's journey order.
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": ("services.broker", "run the local Kafka broker (start/stop/status)"),
    "search-node": ("services.searchnode", "run the local OpenSearch node (start/stop/status)"),
    "cluster": ("services.cluster", "loopback Spark standalone cluster and KRaft brokers"),
    "cohort": ("data.cohort", "generate a seeded synthetic cohort (events + labels)"),
    "physionet": ("data.physionet", "convert PhysioNet records to the event schema"),
    "gateway": ("data.gateway", "reduce a cohort's events at edge gateways"),
    "data-summary": ("data.summary", "the Data section's summary of the raw data"),
    "replay": ("ingest.producer", "replay a cohort's events into a Kafka topic"),
    "load": ("ingest.load", "generate load at an exact rate, in steps"),
    "simulate": ("ingest.simulate", "simulate N bedside devices sending vitals in real time"),
    "bench-producer": ("ingest.bench", "benchmark the replay producer against the blueprint's"),
    "run": ("experiments.condition", "run one condition: replay → Kafka → Spark → metrics"),
    "run-shared": ("experiments.siblings", "run a group of conditions in one Spark session"),
    "perf-group": ("experiments.perf", "run a performance experiment's group of runs"),
    "ceiling": ("experiments.perfmeasure", "measure the raw consumer's ceiling"),
    "breakdown": ("experiments.breakdown", "where a micro-batch's time goes, stage by stage"),
    "status": ("experiments.status", "what the running workflow does: jobs, progress, time left"),
    "fault-job": ("experiments.faults", "(internal) the Spark job of a fault run"),
    "reference": ("reference.batch", "the batch reference: windows, scores, alerts in pandas"),
    "validate": ("reference.validation", "compare a run with the batch reference"),
    "validation-table": ("reference.validation", "the paper's validation table"),
    "accuracy": ("measure.accuracy", "score a run's alerts against ground truth"),
    "run-series": ("measure.runseries", "small series of a run for the notebooks"),
    "train-window-risk": ("models.riskmodel", "train the window risk model"),
    "risk-values": ("models.riskmodel", "the window risk model's values for the paper"),
    "risk-edge": ("models.riskedge", "refit the risk model behind RQ2's edge gateways"),
    "risk-edge-table": ("models.riskedge", "the risk-edge table"),
    "train-sepsis": ("models.sepsis", "cross-validate and train the sepsis model"),
    "score-sepsis": ("models.sepsis", "score a directory of challenge PSV files"),
    "sepsis-table": ("models.sepsis", "the sepsis model's table"),
    "compare-models": ("models.rq4", "RQ4: streaming vs batch models vs bedside scores"),
    "search-export": ("serving.export", "read a run back from the search index and check it"),
    "dashboard": ("serving.dashboard", "a self-contained HTML dashboard of a run"),
    "hyper-extract": ("serving.hyperextract", "a Tableau Hyper extract of a run"),
    "kibana-objects": ("serving.kibana", "Kibana / OpenSearch Dashboards saved objects"),
    "receiver": ("serving.receiver", "a reference webhook receiver that logs the alerts it gets"),
    "serving-values": ("serving.values", "the serving section's values"),
    "up": ("serving.up", "run the live monitor: services, job, dashboard, webhooks"),
    "live-job": ("serving.livejob", "(internal) the live monitor's streaming job"),
    "bench-live": ("serving.benchlive", "drive the live monitor with load; one JSON line"),
    "live-values": ("serving.livevalues", "the running-system section's values and figure"),
    "console-producer": ("serving.console", "Kafka's console producer into the live topic"),
    "macros": ("paper.macros", "write the paper's \\newcommand macros"),
    "design-values": ("paper.design", "the study's settings as macro values"),
    "paper-assets": ("paper.assets", "the pipeline figure and the definition tables"),
    "bad-input-table": ("paper.badinputs", "the bad-input table: class, outcome, test"),
    "paper-map": ("paper.papermap", "which rule made each figure and table"),
    "readme-figures": ("paper.readmefigures", "the README's measured figures, from a run"),
    "latex-check": ("paper.latexlog", "fail on LaTeX log problems"),
    "archive": ("paper.archive", "results archive: create, unpack, verify, compare, origin"),
}


def error_prefix(prog: str) -> str:
    """``vitalstream cohort`` for ``python -m vitalstream cohort``: how errors name a command."""
    return prog.removeprefix("python -m ").strip() or "vitalstream"


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr and exit status 2.

    argparse's own errors print the whole usage first; a workflow log then shows a dozen lines
    for one mistyped number. Sub-parsers (``add_subparsers``) inherit the class, so every
    command and sub-command answers ``vitalstream <command>: error: argument --x: ...``.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{error_prefix(self.prog)}: error: {message}\n")


def _usage_parser() -> argparse.ArgumentParser:
    """The top-level parser with the command list, built from the registry alone."""
    listing = "\n".join(f"  {name:<18} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = OneLineParser(
        prog="python -m vitalstream",
        description="VitalStream: streaming diagnostics for IoT patient monitoring.",
        epilog=f"commands:\n{listing}\n\n`python -m vitalstream COMMAND --help` for a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vitalstream {__version__}")
    parser.add_argument("command", metavar="COMMAND", choices=sorted(COMMANDS), help="see below")
    return parser


def build_parser(command: str) -> argparse.ArgumentParser:
    """The full parser of one command: only its module is imported."""
    module = importlib.import_module(f"vitalstream.{COMMANDS[command][0]}")
    parser = OneLineParser(prog="python -m vitalstream")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    module.register_cli(subparsers)
    if command not in subparsers.choices:
        raise SystemExit(f"vitalstream.{COMMANDS[command][0]} does not define {command!r}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a bad command line is one line on stderr and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS:
        print(
            f"vitalstream: error: unknown command {first!r} (--help lists the commands)",
            file=sys.stderr,
        )
        return 2
    if first is None:
        # --help, --version or no command: argparse answers from the registry.
        _usage_parser().parse_args(argv)
        return 2
    # lazy: --help imports no stage at all
    from vitalstream.core.cliargs import UsageError  # ConfigError is one too

    args, unknown = build_parser(first).parse_known_args(argv)
    if unknown:  # argparse would name the top-level parser, not the command
        print(
            f"vitalstream {first}: error: unrecognized arguments: {' '.join(unknown)}",
            file=sys.stderr,
        )
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        # Checks that need several arguments (e.g. a size against the memory) or the
        # configuration an argument names run in the command, after parsing; they fail
        # exactly like argparse's own errors: one line, exit status 2.
        print(f"vitalstream {first}: error: {one_line(exc)}", file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    """An error message on one line (a multi-line message would break "one line, exit 2")."""
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
