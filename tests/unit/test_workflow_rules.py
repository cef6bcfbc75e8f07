"""The workflow's rules as a user sees them in `snakemake -n -p`: short commands whose settings
come from files (results/configs/), code inputs derived from the package's imports
(vitalstream.core.codepaths), and the paper's generated inputs derived from the rules' outputs.
Dry runs only: nothing is executed."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from vitalstream.__main__ import COMMANDS
from vitalstream.core import codepaths

REPO = Path(__file__).resolve().parents[2]
QUICK = "config/profiles/quick.yaml"
PAPER = Path("results/paper")
# The longest line a printed command may have: a few options and paths. A config slice passed
# as an inline JSON literal made lines of 5,000 to 8,000 characters.
MAX_SHELL_LINE = 300
COMMAND_MODULES = {name: f"vitalstream.{module}" for name, (module, _) in COMMANDS.items()}
# Commands that take their whole configuration slice (vitalstream.core.config.add_config_arguments).
CONFIG_COMMANDS = {"run", "run-shared", "perf-group", "reference", "paper-assets"}


@dataclass(frozen=True)
class Job:
    rule: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    command: str | None  # as printed (a continued command spans several lines)


def dry_run_jobs(*args: str) -> list[Job]:
    """Every job of the workflow (--forceall: whatever results/ holds) as the dry run prints it."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--forceall", "--nolock", "-c1", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n\[[^\]\n]+\]\n", result.stdout + result.stderr)[1:]:
        head = re.match(r"(?:local)?rule (\w+):\n", block)
        if not head:
            continue
        fields = dict(re.findall(r"^    (input|output): (.*)$", block, flags=re.MULTILINE))
        shell = block.split("Shell command: ", 1)
        command = shell[1].split("\n\n", 1)[0].strip() if len(shell) == 2 else None
        jobs.append(
            Job(
                rule=head.group(1),
                inputs=tuple(fields.get("input", "").split(", ")) if "input" in fields else (),
                outputs=tuple(fields.get("output", "").split(", ")),
                command=None if command in (None, "None") else command,
            )
        )
    return jobs


@pytest.fixture(scope="module", params=["default", "quick"])
def jobs(request) -> list[Job]:
    """The paper's jobs and the results archive's (`make archive`), under either config."""
    targets = ["all", "results/archive/vitalstream-results.tar.gz"]
    return dry_run_jobs(*targets, *(["--configfile", QUICK] if request.param == "quick" else []))


def vitalstream_commands(command: str) -> list[str]:
    return re.findall(r"python -m vitalstream ([\w-]+)", command)


def test_printed_commands_are_short_and_carry_no_json(jobs):
    commands = [job.command for job in jobs if job.command]
    assert len(commands) > 50
    for command in commands:
        longest = max(command.splitlines(), key=len)
        assert len(longest) <= MAX_SHELL_LINE, f"{len(longest)} characters: {longest[:200]}"
        arguments = shlex.split(command.replace("\\\n", " "))
        literals = [a for a in arguments if a.lstrip().startswith(("{", "["))]
        assert not literals, f"a JSON literal on the command line: {literals[0][:100]}"
        # Options that read JSON get it from a settings file the rule depends on (@FILE).
        assert "$(cat" not in command, command
        for path in re.findall(r" @(\S+)", command):
            assert path.startswith("results/configs/"), command
        check = subprocess.run(["bash", "-n"], input=command, capture_output=True, text=True)
        assert check.returncode == 0, f"{check.stderr}\n{command}"


def test_config_slices_reach_commands_as_files_the_rule_depends_on(jobs):
    readers = [
        job
        for job in jobs
        if job.command and CONFIG_COMMANDS & set(vitalstream_commands(job.command))
    ]
    assert {c for job in readers for c in vitalstream_commands(job.command)} == CONFIG_COMMANDS
    for job in readers:
        config = re.search(r"--config-file (\S+)", job.command)
        assert config, job.command
        assert config.group(1).startswith("results/configs/") and config.group(1) in job.inputs
    writers = [job for job in jobs if job.rule == "write_config"]
    made = {f for job in writers for f in job.outputs}
    read = {f for job in jobs for f in job.inputs if f.startswith("results/configs/")}
    assert read == made


def test_every_rule_running_package_code_lists_exactly_its_code(jobs):
    for job in jobs:
        if not job.command:
            continue
        modules = [COMMAND_MODULES[c] for c in vitalstream_commands(job.command)]
        notebook = [f for f in job.inputs if f.startswith("notebooks/")]
        if notebook:
            modules += codepaths.notebook_modules(REPO / notebook[0], REPO / "scripts")
        closure = codepaths.closure(modules, REPO / "scripts", COMMAND_MODULES)
        expected = {str(p.relative_to(REPO)) for p in closure}
        declared = {f for f in job.inputs if f.startswith("scripts/")}
        assert declared == expected, job.rule


def test_the_paper_takes_every_figure_table_and_values_file_the_rules_make(jobs):
    made = [f for job in jobs for f in job.outputs if Path(f).parent == PAPER]
    (build,) = [job for job in jobs if job.rule == "build_paper"]
    (macros,) = [job for job in jobs if job.rule == "write_macros"]
    generated = {f for f in build.inputs if f.startswith("results/paper/")}
    assert generated == {f for f in made if f.endswith((".tex", ".pdf", ".png"))}
    assert {f for f in macros.inputs if f.endswith("_values.json")} == {
        f for f in made if f.endswith("_values.json")
    }
    names = {Path(f).name for f in generated}
    assert {"macros.tex", "origin.tex", "tab_provenance.tex", "fig_pipeline.tex"} <= names
    assert len(names) > 30
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("<!-- paper-map:start -->") : readme.index("<!-- paper-map:end")]
    listed = set(re.findall(r"`([\w.]+\.(?:pdf|tex|png))`", section))
    assert names <= listed, f"not in the README's map: {sorted(names - listed)}"


# --------------------------------------------------------------------- vitalstream.core.codepaths


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "vitalstream" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def package(tmp_path) -> Path:
    return write_package(
        tmp_path,
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "core/schema.py": "import json\n",
            "core/unused.py": "",
            "core/typing_only.py": "",
            "stream/__init__.py": "",
            "stream/windows.py": (
                "from typing import TYPE_CHECKING\n"
                "from vitalstream.core import schema\n"
                "if TYPE_CHECKING:\n"
                "    from vitalstream.core import typing_only\n"
                "def job():\n"
                "    from .parse import parse\n"  # function-local and relative
                "    return ['python', '-m', 'vitalstream', 'replay']\n"  # a child command
            ),
            "stream/parse.py": "def parse(): ...\n",
            "ingest/__init__.py": "",
            "ingest/producer.py": "import vitalstream.core.schema as s\n",
            "paper/__init__.py": "",
            "paper/latexlog.py": "import re\n",
        },
    )


def test_closure_follows_every_runtime_import_transitively(package):
    commands = {"replay": "vitalstream.ingest.producer"}
    files = codepaths.closure(["vitalstream.stream.windows"], package, commands)
    names = {str(p.relative_to(package / "vitalstream")) for p in files}
    assert names == {
        "__init__.py",
        "core/__init__.py",
        "core/schema.py",
        "stream/__init__.py",
        "stream/windows.py",
        "stream/parse.py",
        "ingest/__init__.py",
        "ingest/producer.py",
    }
    only_latexlog = codepaths.closure(["vitalstream.paper.latexlog"], package)
    assert [p.name for p in only_latexlog] == ["__init__.py", "__init__.py", "latexlog.py"]


def test_an_unknown_child_command_and_unreadable_sources_are_errors(package):
    with pytest.raises(ValueError, match="replay"):
        codepaths.closure(["vitalstream.stream.windows"], package, {})
    (package / "vitalstream" / "core" / "broken.py").write_text("def (:\n")
    with pytest.raises(ValueError, match=r"broken\.py"):
        codepaths.closure(["vitalstream.core.broken"], package)


def test_notebook_modules_are_the_package_modules_its_code_cells_import(package, tmp_path):
    cells = [
        {"cell_type": "markdown", "source": ["import vitalstream.core.unused\n"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "import pandas as pd\n"]},
        {"cell_type": "code", "source": ["from vitalstream.core.schema import json\n"]},
        {"cell_type": "code", "source": ["from vitalstream.stream import parse\n"]},
    ]
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    assert codepaths.notebook_modules(notebook, package) == [
        "vitalstream.core.schema",
        "vitalstream.stream",
        "vitalstream.stream.parse",
    ]


def closure_of(command: str) -> set[str]:
    files = codepaths.closure([COMMAND_MODULES[command]], REPO / "scripts", COMMAND_MODULES)
    return {str(p.relative_to(REPO / "scripts" / "vitalstream")) for p in files}


def test_the_package_commands_closures_hold_what_they_run_and_nothing_else():
    assert "stream/windows.py" in closure_of("run")
    assert "stream/windows.py" in closure_of("run-shared")
    assert "ingest/producer.py" in closure_of("run")  # started as a child process
    for command in ("cohort", "physionet", "train-sepsis"):
        assert "stream/windows.py" not in closure_of(command), command
    # latex-check's arguments are checked by core.cliargs (standard library only).
    assert closure_of("latex-check") == {
        "__init__.py",
        "core/__init__.py",
        "core/cliargs.py",
        "paper/__init__.py",
        "paper/latexlog.py",
    }


def test_config_values_reach_commands_quoted(tmp_path):
    """A configured value with a space or a quote reaches its command as one argument: every
    config value a rule pastes into a command is shell-quoted (`{params.x:q}`, `{input.x:q}`)."""
    defaults = tmp_path / "it's a dir" / "spark defaults.conf"
    defaults.parent.mkdir()
    defaults.write_text((REPO / "envs/spark/spark-defaults.conf").read_text())
    servers = "127.0.0.1:19092,127.0.0.1:19093"
    overlay = tmp_path / "awkward.json"
    overlay.write_text(
        json.dumps(
            {
                "spark": {"defaults_file": str(defaults)},
                "kafka": {"bootstrap_servers": servers},
                "models": {"sepsis2019": {"max_patients": 1000}},
            }
        )
    )
    targets = ["results/paper/design_values.json", "results/perf/producer_bench.json"]
    jobs = dry_run_jobs(
        *targets, "results/models/sepsis2019/model.json", "--configfile", QUICK, str(overlay)
    )
    commands = {job.rule: job.command for job in jobs if job.command}
    design = shlex.split(commands["write_design_values"].replace("\\\n", " "))
    assert design[design.index("--spark-defaults") + 1] == str(defaults)
    producer = shlex.split(commands["bench_producer"].replace("\\\n", " "))
    assert producer[producer.index("--bootstrap-servers") + 1] == servers
    sepsis = shlex.split(commands["sepsis_model"].replace("\\\n", " "))
    assert sepsis[sepsis.index("--max-patients") + 1] == "1000"


def test_jobs_find_the_local_services_through_the_environment(jobs):
    """Each invocation's services are recorded in results/.stack/<run id>/ (stack.smk): a
    command names that directory as $VITALSTREAM_STACK_DIR, which the job's shell expands, so
    the command and params Snakemake records are the same in every invocation (no job re-runs
    for a new run id) and two workflows in one checkout never read each other's state."""
    states = [
        state
        for job in jobs
        if job.command
        for state in re.findall(r"--(?:broker|search)-state (\S+)", job.command)
    ]
    assert states, "no job uses the local services"
    assert set(states) <= {
        '"$VITALSTREAM_STACK_DIR/kafka.json"',
        '"$VITALSTREAM_STACK_DIR/opensearch.json"',
    }
