"""A conda stand-in: one rule env's pip packages, installed alone into a fresh venv, run that
env's rules' real commands. `snakemake --use-conda` builds envs/paper.yaml from exactly this
list; the unit test (tests/unit/test_environment.py) proves the list covers the rules' imports
statically, this one proves it by running them.

The venv gets only envs/paper.yaml's pip list (at the lock's pins, envs/constraints.txt) from
PyPI; the package comes from nowhere but what the shell line provides (the workflow's
``shell.prefix``: PYTHONPATH=scripts, the working directory being the repository)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from vitalstream.core import config as vsconfig
from vitalstream.paper import design

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ENV_FILE = REPO / "envs" / "paper.yaml"
RULES = REPO / "workflow" / "rules" / "paper.smk"
PLACEHOLDER = re.compile(r"\{(\w+(?:\.\w+)?)(?::q)?\}")


def pip_packages(env_file: Path) -> list[str]:
    env = yaml.safe_load(env_file.read_text())
    (section,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return section


def shell_prefix() -> str:
    """The prefix common.smk gives every shell job (Snakemake's `{{` unescaped)."""
    match = re.search(r'shell\.prefix\("(.+)"\)', (REPO / "workflow/rules/common.smk").read_text())
    assert match, "common.smk sets no shell.prefix"
    return match.group(1).replace("{{", "{").replace("}}", "}")


def rule_shell(name: str, values: dict[str, str]) -> str:
    """Rule ``name``'s shell command from paper.smk, its placeholders filled from ``values``
    (``{input.config}``, ``{output}``, ``{log}``; ``:q`` quotes are not needed for tmp paths)."""
    text = RULES.read_text()
    head = re.search(rf"^\s*rule {name}:\n", text, flags=re.MULTILINE)
    assert head, name
    block = text[head.end() :]
    shell = re.search(r'shell:\n\s*"""(.*?)"""', block, flags=re.DOTALL) or re.search(
        r'shell:\n\s*"(.*?)"\n', block
    )
    assert shell, f"{name}: no shell command"
    command = ast.literal_eval(f'"""{shell.group(1)}"""')  # a Python string in the .smk
    missing = set(PLACEHOLDER.findall(command)) - set(values)
    assert not missing, f"{name}: no value for {missing}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], command)


@pytest.fixture(scope="module")
def rule_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a job in a venv holding only the env file's pip packages."""
    venv = tmp_path_factory.mktemp("conda-standin") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    # --no-compile: byte-compiling pyspark's sources takes most of an install's minutes.
    install = [python, "-m", "pip", "install", "-q", "--no-compile", *pip_packages(ENV_FILE)]
    install += ["-c", str(REPO / "envs" / "constraints.txt")]
    result = subprocess.run(install, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    keep = ("HOME", "LANG", "TMPDIR", "JAVA_HOME", "SPARK_LOCAL_IP")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_job(name: str, values: dict[str, str], env: dict[str, str]) -> None:
    """Run rule ``name``'s command as Snakemake does: bash, the prefix, cwd the repository."""
    command = shell_prefix() + rule_shell(name, values)
    result = subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    log = Path(values["log"]).read_text() if Path(values["log"]).exists() else ""
    assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}\n{log[-3000:]}"


def test_the_venv_has_no_vitalstream_of_its_own(rule_env, tmp_path):
    probe = "import importlib.util as u; print(u.find_spec('vitalstream') is None)"
    out = subprocess.run(
        ["python", "-c", probe], cwd=tmp_path, env=rule_env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "True"


def test_write_bad_input_table_runs_in_the_paper_env(rule_env, tmp_path):
    table = tmp_path / "tab_bad_inputs.tex"
    values = {"output.table": str(table), "log": str(tmp_path / "job.log")}
    run_job("write_bad_input_table", values, rule_env)
    text = table.read_text()
    assert "tab:bad-inputs" in text and "\\bottomrule" in text


def test_write_design_values_runs_in_the_paper_env(rule_env, tmp_path):
    config = vsconfig.load_config()
    settings = tmp_path / "design_values.json"
    settings.write_text(json.dumps(design.subset(config), default=str))
    out = tmp_path / "design_values.json.out"
    values = {
        "input.config": str(settings),
        "input.spark_defaults": config["spark"]["defaults_file"],
        "output": str(out),
        "log": str(tmp_path / "job.log"),
    }
    run_job("write_design_values", values, rule_env)
    written = json.loads(out.read_text())
    assert {"RuleTachycardiaBpm", "SuppressionMinutes", "TunedShufflePartitions"} <= set(written)
    assert all("value" in macro and "source" in macro for macro in written.values())
