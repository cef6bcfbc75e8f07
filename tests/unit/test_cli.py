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
import subprocess
import sys
from pathlib import Path

import pytest
from vitalstream import STAGES
from vitalstream.__main__ import COMMANDS, build_parser

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
