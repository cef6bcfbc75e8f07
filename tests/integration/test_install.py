"""`pip install .` (not editable) gives a `vitalstream` command that works away from the
checkout: the wheel carries the resources the code reads (config schema and defaults, Maven
poms, Spark defaults) through the vitalstream/resources/ links, and the command finds them with
vitalstream.core.paths.resource().

The scratch venv sees the project venv's site-packages through a .pth file (no download of
pyspark and friends), but the package itself comes only from the wheel built from a copy of the
repository: the test checks where ``vitalstream`` is imported from. The wheel is built with
pip's build isolation (setuptools from PyPI or pip's cache): the venv's own setuptools is too old
for pyproject's licence metadata."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# What a source distribution of the package holds (pyproject.toml's inputs).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "scripts", "config", "envs")
RESOURCES = (
    "config/schema.yaml",
    "config/config.yaml",
    "config/profiles/cluster.yaml",
    "envs/spark/spark-defaults.conf",
    "envs/spark/pom.xml",
    "envs/kafka/pom.xml",
    "envs/kafka/log4j2.yaml",
    "envs/opensearch/pom.xml",
    "envs/opensearch/VitalStreamNode.java",
    "envs/opensearch/log4j2.properties",
    "envs/kafka-tools/pom.xml",
    "live/index.html",
    "live/app.js",
    "live/app.css",
)
COMMANDS = (
    "cohort",
    "physionet",
    "reference",
    "score-sepsis",
    "train-sepsis",
    "validate",
    "bench-producer",
    "up",
    "simulate",
    "receiver",
)


def copy_sources(root: Path) -> Path:
    """The package's sources at ``root`` (links kept): the build writes build/ and *.egg-info
    there, never into the checkout."""
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, symlinks=True, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, root / name)
    return root


def clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user who installed the package: its venv first on PATH, no
    PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the scratch venv, the wheel, the environment): the wheel built from a copy of the
    repository and installed, with its dependencies, into a fresh venv."""
    tmp = tmp_path_factory.mktemp("install")
    source = copy_sources(tmp / "src")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (purelib / "project-venv.pth").write_text(f"{sysconfig.get_path('purelib')}\n")
    env = clean_env(venv)
    python = str(venv / "bin" / "python")
    wheels = tmp / "wheels"
    run([python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)], tmp, env)
    (wheel,) = wheels.glob("vitalstream-*.whl")
    # Not --no-deps: pip checks the wheel's exact pins against the packages it sees.
    run([python, "-m", "pip", "install", "-q", str(wheel)], tmp, env)
    return venv, wheel, env


def test_the_wheel_carries_the_resources_and_the_licence(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for relative in RESOURCES:
        assert f"vitalstream/resources/{relative}" in names, relative
    assert (
        any(n.endswith(".dist-info/licenses/LICENSE") for n in names) == (REPO / "LICENSE").exists()
    )
    assert not any(n.startswith(("scripts/", "tests/", "workflow/")) for n in names)


def test_the_command_comes_from_the_scratch_venv(installed, tmp_path):
    venv, _, env = installed
    command = shutil.which("vitalstream", path=env["PATH"])
    assert command is not None and Path(command).parent == venv / "bin"
    probe = (
        "import json, vitalstream; from vitalstream.core import config, paths;"
        "print(json.dumps([vitalstream.__file__, str(config.SCHEMA_PATH), paths.in_checkout()]))"
    )
    out = run([str(venv / "bin" / "python"), "-c", probe], tmp_path, env).stdout
    package, schema, in_checkout = json.loads(out)
    assert Path(package).is_relative_to(venv), package
    assert Path(schema).is_relative_to(venv), schema
    assert not in_checkout


def test_each_command_answers_help_from_any_directory(installed, tmp_path):
    _, _, env = installed
    listing = run(["vitalstream", "--help"], tmp_path, env).stdout
    for command in COMMANDS:
        assert command in listing
        usage = run(["vitalstream", command, "--help"], tmp_path, env).stdout
        assert f"vitalstream {command}" in usage


def test_cohort_then_physionet_do_real_work(installed, tmp_path):
    _, _, env = installed
    run(
        ["vitalstream", "cohort", "--patients", "3", "--hours", "1", "--seed", "7", "--out", "c"],
        tmp_path,
        env,
    )
    events = pd.read_parquet(tmp_path / "c" / "events.parquet")
    labels = pd.read_parquet(tmp_path / "c" / "labels.parquet")
    assert events["patient_id"].nunique() == 3 == len(labels)

    mirror = REPO / "data" / "fixtures" / "physionet"
    args = ["vitalstream", "physionet", "bidmc", "--mirror", str(mirror), "--offline"]
    run([*args, "--out", "bidmc"], tmp_path, env)
    summary = json.loads((tmp_path / "bidmc" / "summary.json").read_text())
    assert summary["source"] == "bidmc" and summary["patients"] == 5
    converted = pd.read_parquet(tmp_path / "bidmc" / "events.parquet")
    assert len(converted) == summary["valid_rows"] > 0
