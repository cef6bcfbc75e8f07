"""The pip pins and the conda pins must agree: a drift would make the two set-ups differ."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        pins[_canonical(match.group(1))] = match.group(2)
    return pins


def requirements() -> dict[str, str]:
    return _pins((REPO / "requirements.txt").read_text().splitlines())


def conda_pip_pins(path: Path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections, f"{path} has no pip section"
    return _pins(pip_sections[0])


def test_environment_yml_lists_exactly_the_pip_pins():
    assert conda_pip_pins(REPO / "environment.yml") == requirements()


def test_environment_yml_brings_java_17_and_maven():
    deps = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    names = [d for d in deps if isinstance(d, str)]
    assert "openjdk=17" in names
    assert "maven" in names
    assert "python=3.11" in names


def test_rule_envs_use_the_same_pins():
    pins = requirements()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs, "no per-rule conda envs under envs/"
    for path in envs:
        for name, version in conda_pip_pins(path).items():
            assert pins.get(name) == version, f"{path.name}: {name}=={version} vs requirements"


def test_lock_file_agrees_with_the_pins():
    lock = _pins((REPO / "envs" / "constraints.txt").read_text().splitlines())
    for name, version in requirements().items():
        assert lock.get(name) == version, f"envs/constraints.txt: {name} {lock.get(name)}"


def test_core_packages_are_pinned():
    pins = requirements()
    for name in (
        "snakemake",
        "pyspark",
        "confluent-kafka",
        "wfdb",
        "pandas",
        "pyarrow",
        "scikit-learn",
        "seaborn",
        "papermill",
        "ipykernel",
        "nbconvert",
    ):
        assert name in pins, name
    major = int(pins["pandas"].split(".")[0])
    assert major < 3, "pyspark 4.2 warns under pandas 3"


def test_every_rule_declares_a_conda_env_that_exists():
    rules = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', rules):
        assert (REPO / "workflow" / "rules" / env).resolve().exists(), env
