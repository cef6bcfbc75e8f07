"""Benchmark of the command line's start-up: wall time of ``python -m vitalstream ... --help``.

The lazy command registry exists so that ``--help`` imports no command module and one command
imports only its own; this prints what that buys, for the README. Each command line runs
``--repeats`` times (default 7) in a fresh interpreter after one untimed warm-up run (which
pays for bytecode compilation and a cold disk cache, neither of which a user sees twice).
Prints one JSON line (median and range per command line) on stdout and a readable table on
stderr, so ``> cli_startup.json`` keeps the figures alone. Not a test: it asserts nothing
about the times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parents[1]
COMMAND_LINES: tuple[tuple[str, ...], ...] = (("--help",), ("cohort", "--help"), ("run", "--help"))


def run_once(args: tuple[str, ...], scripts_dir: Path) -> float:
    """Wall seconds of one ``python -m vitalstream ARGS`` with the package of ``scripts_dir``."""
    env = {**os.environ, "PYTHONPATH": str(scripts_dir)}
    command = [sys.executable, "-m", "vitalstream", *args]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} ({scripts_dir}) exited {done.returncode}, expected 0:\n"
            f"{done.stderr.decode(errors='replace')}"
        )
    return elapsed


def time_command(args: tuple[str, ...], repeats: int, trees: list[Path]) -> list[list[float]]:
    """Wall seconds of ``repeats`` runs of ``python -m vitalstream ARGS`` per package tree,
    after a warm-up each. With two trees the runs alternate, so that load from elsewhere on
    the shared cores falls on both alike and their ratio holds."""
    seconds: list[list[float]] = [[] for _ in trees]
    for run in range(repeats + 1):
        for i, tree in enumerate(trees):
            elapsed = run_once(args, tree)
            if run:  # run 0 is the warm-up
                seconds[i].append(elapsed)
    return seconds


def table(rows: list[dict]) -> str:
    """The figures as aligned text, milliseconds being the unit a reader compares at a glance."""
    lines = [f"{'command':<40} {'median ms':>10} {'min ms':>8} {'max ms':>8}"]
    for row in rows:
        lines.append(
            f"{row['command']:<40} {row['median_s'] * 1e3:>10.0f} "
            f"{row['min_s'] * 1e3:>8.0f} {row['max_s'] * 1e3:>8.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per command line")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="scripts/ folder of another checkout (e.g. the commit before the lazy registry): "
        "its `--help` is timed alternately with this one's and the ratio reported",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.baseline is not None and not (args.baseline / "vitalstream").is_dir():
        parser.error(f"--baseline {args.baseline} holds no vitalstream package")

    rows = []
    for command_line in COMMAND_LINES:
        trees = [SCRIPTS_DIR] + (
            [args.baseline] if args.baseline and command_line == ("--help",) else []
        )
        for tree, seconds in zip(
            trees, time_command(command_line, args.repeats, trees), strict=True
        ):
            label = " ".join(["python -m vitalstream", *command_line])
            rows.append(
                {
                    "command": label + (" (baseline)" if tree != SCRIPTS_DIR else ""),
                    "seconds": [round(s, 4) for s in seconds],
                    "median_s": round(statistics.median(seconds), 4),
                    "min_s": round(min(seconds), 4),
                    "max_s": round(max(seconds), 4),
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "cli_startup",
                "repeats": args.repeats,
                "commands": rows,
                "help_speedup": (
                    round(rows[1]["median_s"] / rows[0]["median_s"], 1) if args.baseline else None
                ),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
            }
        )
    )
    print(table(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
