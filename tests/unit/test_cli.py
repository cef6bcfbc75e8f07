"""The command line stays lazy and complete: ``python -m vitalstream``.

``--help`` must answer from the registry alone (a rule's environment then needs only the
packages of the commands it runs, and ``--help`` is instant), one command must import only its
own module and what that needs, and every registered command must exist and answer ``--help``.
Imports are observed in a fresh interpreter, since this test session has imported much already.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from vitalstream import STAGES
from vitalstream.__main__ import COMMANDS, build_parser, main

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"

# Runs ``python -m vitalstream ARGS`` as ``-m`` does, then prints the modules it left loaded as a
# last JSON line: exit code and sys.modules are what the assertions need, not the help text.
WRAPPER = """\
import json, runpy, sys
sys.argv = ["vitalstream", *sys.argv[1:]]
try:
    runpy.run_module("vitalstream", run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exit_:
    code = exit_.code
print()
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""

HEAVY_PACKAGES = ("pyspark", "pandas", "numpy")


def _run_wrapped(*args: str) -> tuple[int, set[str], str]:
    """Exit code, loaded modules and output of ``python -m vitalstream ARGS``, run afresh."""
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output, _, last = done.stdout.strip().rpartition("\n")
    report = json.loads(last)
    return report["exit"] or 0, set(report["modules"]), output


def _stage_modules(modules: set[str], stages: tuple[str, ...] = STAGES) -> set[str]:
    """The loaded modules of the given stages: ``vitalstream.<stage>.<module>``."""
    return {
        name
        for name in modules
        if name.count(".") >= 2 and name.split(".")[0] == "vitalstream"
        if name.split(".")[1] in stages
    }


def _top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_help_imports_no_command_module_and_no_heavy_package() -> None:
    code, modules, output = _run_wrapped("--help")
    assert code == 0
    assert all(f"  {command} " in output for command in COMMANDS)  # the listing is complete
    assert _stage_modules(modules) == set()
    assert _top_level(modules).isdisjoint(HEAVY_PACKAGES)


def test_one_command_imports_its_module_and_not_the_later_stages() -> None:
    code, modules, output = _run_wrapped("cohort", "--help")
    assert code == 0
    assert "python -m vitalstream cohort" in output
    assert "vitalstream.data.cohort" in modules
    assert _stage_modules(modules, ("stream", "experiments", "models")) == set()
    assert _top_level(modules).isdisjoint({"pyspark", "sklearn"})


def test_an_unknown_command_exits_2_with_one_line_on_stderr() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vitalstream", "no-such-command"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SCRIPTS_DIR)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "no-such-command" in lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_answers_help(command: str) -> None:
    """In-process: the parser ``main`` builds for the command, asked for its help."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        build_parser(command).parse_args([command, "--help"])
    assert exit_.value.code == 0
    assert f"python -m vitalstream {command}" in out.getvalue()


def _commands_by_module() -> dict[str, set[str]]:
    by_module: dict[str, set[str]] = {}
    for command, (module, _) in COMMANDS.items():
        by_module.setdefault(module, set()).add(command)
    return by_module


@pytest.mark.parametrize(("module", "commands"), sorted(_commands_by_module().items()))
def test_each_module_defines_exactly_its_registered_commands(
    module: str, commands: set[str]
) -> None:
    """A command missing from its module breaks ``main``; an extra one is unreachable."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(f"vitalstream.{module}").register_cli(subparsers)
    assert set(subparsers.choices) == commands


def test_every_registered_module_is_in_a_stage() -> None:
    assert {module.split(".")[0] for module, _ in COMMANDS.values()} <= set(STAGES)


# --------------------------------------------------------------------------------------------
# Bad command lines: one line naming the argument, exit status 2, no traceback
# --------------------------------------------------------------------------------------------

# (id, command line, what the one line must name). In the command line, {tmp} is a fresh
# directory, {file} an existing file and {dir} an existing directory in it. Every case must fail
# before any real work starts (no broker, no Spark, no allocation).
BAD_INVOCATIONS: list[tuple[str, str, str]] = [
    ("negative-count", "cohort --patients -1 --out {tmp}/o", "--patients"),
    ("zero-count", "cohort --patients 0 --out {tmp}/o", "--patients"),
    ("count-not-a-number", "cohort --patients ten --out {tmp}/o", "--patients"),
    ("count-fractional", "cohort --patients 2.5 --out {tmp}/o", "--patients"),
    ("count-beyond-ids", "cohort --patients 1e9 --out {tmp}/o", "--patients"),
    ("zero-hours", "cohort --hours 0 --out {tmp}/o", "--hours"),
    ("negative-hours", "cohort --hours -2 --out {tmp}/o", "--hours"),
    ("nan-hours", "cohort --hours nan --out {tmp}/o", "--hours"),
    ("infinite-hours", "cohort --hours inf --out {tmp}/o", "--hours"),
    ("size-beyond-memory", "cohort --hours 1e9 --out {tmp}/o", "--hours"),
    ("size-beyond-memory-param", "cohort --param hours=1e12 --out {tmp}/o", "--hours"),
    ("negative-seed", "cohort --seed -1 --out {tmp}/o", "--seed"),
    ("unwritable-out-proc", "cohort --out /proc/x", "--out"),
    ("reference-not-parquet", "reference --events {file} --out {tmp}/r", "--events"),
    (
        "reference-zero-window",
        "reference --events {parquet} --out {tmp}/r --window-s 0",
        "--window-s",
    ),
    (
        "validate-missing-run",
        "validate --run-dir {tmp}/none --reference-dir {tmp} --out {tmp}/v",
        "--run-dir",
    ),
    (
        "validation-table-unwritable",
        "validation-table --run a {file} --out /proc/x --values {tmp}/v",
        "--out",
    ),
    (
        "fault-job-unwritable",
        "fault-job faults/spark_kill/rep1 --config config/config.yaml --run-dir {file}/x"
        " --bootstrap-servers h:1 --topic t",
        "--run-dir",
    ),
    (
        "run-without-broker",
        "run skeleton/base/rep1 --config config/config.yaml --events {parquet} --run-dir {tmp}/r",
        "--broker-state",
    ),
    ("out-under-a-file", "cohort --out {file}/x", "--out"),
    ("out-is-a-file", "cohort --out {file}", "--out"),
    ("missing-required", "cohort", "--out"),
    ("unknown-option", "cohort --out {tmp}/o --bogus", "--bogus"),
    ("unknown-param", "cohort --param bogus=1 --out {tmp}/o", "--param"),
    ("param-without-value", "cohort --param hours --out {tmp}/o", "--param"),
    ("missing-config", "cohort --config {tmp}/none.yaml --out {tmp}/o", "--config"),
    ("physionet-unknown-source", "physionet nosuch --out {tmp}/o", "source"),
    ("physionet-unwritable-out", "physionet bidmc --out /proc/x", "--out"),
    ("physionet-bad-start", "physionet bidmc --out {tmp}/o --start yesterday-ish", "--start"),
    ("physionet-convert-unfetched", "physionet bidmc --out {tmp}/o --step convert", "--step"),
    (
        "gateway-missing-events",
        "gateway --events {tmp}/none.parquet --spec {{}} --out {tmp}/e.parquet --report {tmp}/g",
        "--events",
    ),
    (
        "gateway-spec-not-json",
        "gateway --events {parquet} --spec {{mode --out {tmp}/e.parquet --report {tmp}/g",
        "--spec",
    ),
    (
        "gateway-spec-unknown-key",
        "gateway --events {parquet} --spec '{{\"bogus\": 1}}' --out {tmp}/e --report {tmp}/g",
        "--spec",
    ),
    (
        "data-summary-unknown-source",
        "data-summary --cohort-events {parquet} --cohort-labels {parquet} --physionet-dir {dir}"
        " --sources sepsis2019,nosuch --summary-json {tmp}/s.json --realism-json {tmp}/r.json"
        " --trajectories {tmp}/t.parquet",
        "--sources",
    ),
    (
        "replay-zero-speedup",
        "replay --events {parquet} --bootstrap-servers x:1 --topic t --speedup 0 --report {tmp}/r",
        "--speedup",
    ),
    (
        "replay-unknown-setting",
        "replay --events {parquet} --bootstrap-servers x:1 --topic t"
        " --settings '{{\"bogus\": 1}}' --report {tmp}/r",
        "--settings",
    ),
    (
        "load-without-rates",
        "load --bootstrap-servers x:1 --topic t --load '{{\"patients\": 3}}' --report {tmp}/r",
        "--load",
    ),
    ("load-negative-window", "load --window-s -60", "--window-s"),
    ("bench-zero-messages", "bench-producer --messages 0", "--messages"),
    ("bench-beyond-memory", "bench-producer --messages 1e15", "--messages"),
    ("ceiling-zero-partitions", "ceiling --partitions 0 --out {tmp}/c", "--partitions"),
    (
        "run-missing-events",
        "run rq1/x/rep1 --config-json {{}} --events {tmp}/none.parquet --run-dir {tmp}/run",
        "--events",
    ),
    (
        "run-shared-unwritable-root",
        "run-shared rq1/x/rep1 --config-json {{}} --events {parquet} --out-root /proc/x",
        "--out-root",
    ),
    ("run-series-missing-run", "run-series commit_latency --run-dir {tmp}/none", "--run-dir"),
    (
        "accuracy-missing-run",
        "accuracy --run-dir {tmp}/none --events {parquet} --labels {parquet} --groups {{}}"
        " --out {tmp}/a.json",
        "--run-dir",
    ),
    (
        "risk-edge-config-missing-keys",
        "risk-edge --events {parquet} --labels {parquet} --model {json}"
        " --config-json '{{\"diagnostics\": {{}}}}' --out {tmp}/e.json",
        "--config-json",
    ),
    (
        "train-window-risk-config-not-object",
        "train-window-risk --events {parquet} --labels {parquet} --config-json '[1, 2]'"
        " --out {tmp}/m",
        "--config-json",
    ),
    ("train-sepsis-one-fold", "train-sepsis --hourly {parquet} --folds 1", "--folds"),
    ("train-sepsis-negative-sample", "train-sepsis --hourly {parquet} --max-patients -5", "--max"),
    (
        "score-sepsis-missing-dir",
        "score-sepsis --psv-dir {tmp}/none --out {tmp}/s.parquet",
        "--psv-dir",
    ),
    (
        "compare-models-missing-hourly",
        "compare-models --hourly {tmp}/none --scores {{}} --out-dir {tmp}/o",
        "--hourly",
    ),
    ("dashboard-zero-patients", "dashboard --run-dir {dir} --patients 0", "--patients"),
    (
        "hyper-extract-alerts-alone",
        "hyper-extract --alerts {parquet} --out {tmp}/x.hyper",
        "--alerts",
    ),
    (
        "search-export-unwritable",
        "search-export --run a/b/rep1 --run-dir {dir} --out-dir /proc/x",
        "--out-dir",
    ),
    ("kibana-out-under-file", "kibana-objects --out-dir {file}/x", "--out-dir"),
    ("serving-values-missing", "serving-values --indexed {tmp}/none.json", "--indexed"),
    ("broker-missing-action", "broker", "ACTION"),
    (
        "broker-negative-parent",
        "broker start --state {tmp}/s.json --work-dir {tmp}/w --parent -1",
        "--parent",
    ),
    (
        "broker-unwritable-state",
        "broker start --state /proc/x/s.json --work-dir {tmp}/w",
        "--state",
    ),
    (
        "search-node-bad-port",
        "search-node start --state {tmp}/s.json --work-dir {tmp}/w --port 70000",
        "--port",
    ),
    (
        "search-node-zero-heap",
        "search-node start --state {tmp}/s.json --work-dir {tmp}/w --heap-mb 0",
        "--heap-mb",
    ),
    (
        "cluster-zero-workers",
        "cluster start --state {tmp}/s.json --work-dir {tmp}/w --workers 0",
        "--workers",
    ),
    (
        "cluster-bad-ports",
        "cluster start --state {tmp}/s.json --work-dir {tmp}/w --kafka-ports 1,2,x",
        "--kafka-ports",
    ),
    (
        "cluster-bad-memory",
        "cluster start --state {tmp}/s.json --work-dir {tmp}/w --worker-memory lots",
        "--worker-memory",
    ),
    (
        "design-missing-defaults",
        "design-values --config-json {{}} --spark-defaults {tmp}/none --out {tmp}/d.json",
        "--spark-defaults",
    ),
    ("latex-check-missing-log", "latex-check {tmp}/none.log", "log"),
    (
        "latex-check-negative-tolerance",
        "latex-check {file} --max-overfull-pt -1",
        "--max-overfull-pt",
    ),
    (
        "macros-missing-metrics",
        "macros --metrics {tmp}/none.json --provenance {json} --out {tmp}/m.tex"
        " --out-json {tmp}/m.json",
        "--metrics",
    ),
    ("paper-map-rows-not-json", "paper-map --rows [oops", "--rows"),
    (
        "readme-figures-missing-macros",
        "readme-figures --macros {tmp}/none.json --origin {file} --readme {file}",
        "--macros",
    ),
    (
        "readme-figures-readme-without-block",
        "readme-figures --macros {json} --origin {file} --readme {file}",
        "--readme",
    ),
    ("paper-assets-unwritable", "paper-assets --config-json {{}} --out-dir /proc/x", "--out-dir"),
    ("archive-missing", "archive verify {tmp}/none.tar", "archive"),
    ("archive-missing-step", "archive", "STEP"),
    ("archive-compare-not-unpacked", "archive compare --work {dir}", "--work"),
    ("ceiling-no-cluster", "ceiling --out {tmp}/c.json", "--broker-state"),
    (
        "search-export-no-server",
        "search-export --run a/b/rep1 --run-dir {dir} --out-dir {tmp}/o",
        "--search-state",
    ),
    # Input files that exist but are not what the argument needs.
    (
        "events-not-parquet",
        "gateway --events {file} --spec {{}} --out {tmp}/e --report {tmp}/g",
        "--events",
    ),
    ("hourly-not-parquet", "train-sepsis --hourly {file}", "--hourly"),
    (
        "study-not-json",
        "risk-edge-table --study {file} --table {tmp}/t --values {tmp}/v",
        "--study",
    ),
    ("card-not-json", "sepsis-table --card {file} --table {tmp}/t --values {tmp}/v", "--card"),
    (
        "spark-defaults-malformed",
        "design-values --config-json {{}} --spark-defaults {file} --out {tmp}/v.json",
        "--spark-defaults",
    ),
]


def _filled(line: str, tmp: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp / "exists.txt").write_text("x\n")
    (tmp / "exists.json").write_text("{}\n")
    pq.write_table(pa.table({"x": [1]}), tmp / "exists.parquet")
    (tmp / "d").mkdir(exist_ok=True)
    where = {
        "tmp": str(tmp),
        "file": str(tmp / "exists.txt"),
        "json": str(tmp / "exists.json"),
        "parquet": str(tmp / "exists.parquet"),
        "dir": str(tmp / "d"),
    }
    return shlex.split(line.format(**where))


def _main_exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's errors leave through SystemExit
        return exit_.code if isinstance(exit_.code, int) else 1


@pytest.mark.parametrize(
    ("line", "names"),
    [pytest.param(line, names, id=case) for case, line, names in BAD_INVOCATIONS],
)
def test_a_bad_command_line_is_one_line_naming_the_argument_and_exit_2(
    line: str, names: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _filled(line, tmp_path)
    code = _main_exit(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"vitalstream {argv[0]}"), lines[0]
    assert ": error: " in lines[0] and names in lines[0], lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_a_size_beyond_memory_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    """``--hours 1e9`` once died allocating 26 TiB; now a fresh interpreter refuses it fast."""
    done = subprocess.run(
        [sys.executable, "-m", "vitalstream", "cohort", "--hours", "1e9", "--out", f"{tmp_path}/o"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SCRIPTS_DIR)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("vitalstream cohort: error: arguments --patients/--hours:")
    assert "more than the" in done.stderr
    assert not (tmp_path / "o").exists()  # refused before the output was even created
