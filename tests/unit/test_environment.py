"""The pip pins and the conda pins must agree: a drift would make the two set-ups differ."""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from vitalstream.__main__ import COMMANDS
from vitalstream.core import codepaths

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)$")
COMMAND_MODULES = {name: f"vitalstream.{module}" for name, (module, _) in COMMANDS.items()}


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


# --- Each rule's conda env holds what its commands import -------------------------------------
# A rule's env (its `conda:` file) must hold every distribution its shell line runs: the
# third-party imports of the package modules its `python -m vitalstream CMD` executes (found by
# vitalstream.core.codepaths, function-local imports included, `if TYPE_CHECKING:` left out), the
# imports of the notebook papermill runs (plus the kernel), and the tools it calls (papermill).
# `--help` and the command registry import nothing else (vitalstream/__main__.py), so this is
# exactly what `snakemake --use-conda` needs. latexmk and TeX come from Debian, not from pip.
RULES_DIR = REPO / "workflow" / "rules"
SRC = REPO / "scripts"
RULE_HEAD = re.compile(r"^(\s*)rule (\w+):\s*$")
SHELL_TOOLS = {"papermill": {"papermill", "ipykernel"}}  # a papermill kernel is ipykernel
# Import names no installed distribution declares in its metadata (packages_distributions()).
IMPORT_TO_DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "PyYAML"}


@dataclass(frozen=True)
class RuleSpec:
    name: str
    env: str | None  # the `conda:` path as written (relative to workflow/rules/)
    commands: tuple[str, ...]  # `python -m vitalstream CMD`
    notebook: str | None  # the notebook papermill runs
    script: str | None  # a `script:` file (relative to workflow/rules/)
    tools: tuple[str, ...]  # programs of the shell line that come from pip


def _blocks(text: str) -> list[tuple[str, str]]:
    """(rule name, its text) of every `rule NAME:` block (snakefmt layout: a block ends at the
    next non-blank line indented no deeper than its head)."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        head = RULE_HEAD.match(line)
        if not head:
            continue
        indent, body = len(head.group(1)), []
        for following in lines[number + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append((head.group(2), "\n".join(body)))
    return blocks


def _directive_string(block: str, key: str) -> str | None:
    match = re.search(rf"^\s+{key}:\s*\n\s*\"([^\"]+)\"", block, flags=re.MULTILINE)
    return match.group(1) if match else None


def workflow_rules(rules_dir: Path = RULES_DIR) -> list[RuleSpec]:
    """Every rule of the workflow files, read statically (no Snakemake, no config)."""
    specs = []
    for path in sorted(rules_dir.glob("*.smk")):
        for name, block in _blocks(path.read_text()):
            notebook = re.search(r"^\s+notebook=\"([^\"]+)\"", block, flags=re.MULTILINE)
            specs.append(
                RuleSpec(
                    name=name,
                    env=_directive_string(block, "conda"),
                    commands=tuple(re.findall(r"python -m vitalstream ([\w-]+)", block)),
                    notebook=notebook.group(1) if notebook else None,
                    script=_directive_string(block, "script"),
                    tools=tuple(t for t in SHELL_TOOLS if re.search(rf"\b{t}\s", block)),
                )
            )
    return specs


def _runtime_imports(tree: ast.AST) -> set[str]:
    """Top-level names of every absolute import in ``tree`` outside ``if TYPE_CHECKING:``."""
    names: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
        stack.extend(ast.iter_child_nodes(node))
    return names


def _notebook_tree(path: Path) -> ast.Module:
    """A notebook's code cells as one module (IPython magics and shell lines blanked)."""
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c.get("source", [])) for c in cells if c.get("cell_type") == "code"]
    lines = "\n".join(code).split("\n")
    return ast.parse("\n".join("" if s.lstrip().startswith(("%", "!")) else s for s in lines))


@functools.cache
def _installed() -> dict[str, list[str]]:
    return packages_distributions()


def third_party(names: set[str]) -> set[str]:
    """Distributions (canonical names) of the non-stdlib, non-vitalstream import names."""
    installed = _installed()
    local = set(sys.stdlib_module_names) | {"vitalstream", "__future__"}
    distributions = set()
    for name in sorted(names - local):
        found = installed.get(name) or [IMPORT_TO_DISTRIBUTION.get(name, "")]
        assert found[0], f"import {name}: no installed distribution provides it"
        distributions.add(_canonical(found[0]))
    return distributions


@functools.cache
def rule_needs(spec: RuleSpec) -> frozenset[str]:
    """The distributions a rule's shell line (or script) runs, canonical names (cached: the
    check runs once per package removed)."""
    modules = [COMMAND_MODULES[c] for c in spec.commands]
    names: set[str] = set()
    if spec.commands:
        modules.append("vitalstream.__main__")
    if spec.notebook:
        modules += codepaths.notebook_modules(REPO / spec.notebook, SRC)
        names |= _runtime_imports(_notebook_tree(REPO / spec.notebook))
    for path in codepaths.closure(modules, SRC, COMMAND_MODULES):
        names |= _runtime_imports(ast.parse(path.read_text()))
    if spec.script:
        names |= _runtime_imports(ast.parse((RULES_DIR / spec.script).read_text()))
    tools = {_canonical(d) for t in spec.tools for d in SHELL_TOOLS[t]}
    return frozenset(third_party(names) | tools)


def missing_from_envs(
    specs: list[RuleSpec], env_packages: dict[str, set[str]]
) -> dict[str, set[str]]:
    """rule → the distributions it needs that its env's package list lacks (only rules that
    lack some). ``env_packages`` maps a `conda:` path to its pip packages, canonical names."""
    missing = {}
    for spec in specs:
        lacking = rule_needs(spec) - env_packages[spec.env]
        if lacking:
            missing[f"{spec.name} ({spec.env})"] = lacking
    return missing


@pytest.fixture(scope="module")
def rule_specs() -> list[RuleSpec]:
    return workflow_rules()


@pytest.fixture(scope="module")
def env_packages(rule_specs) -> dict[str, set[str]]:
    envs = {spec.env for spec in rule_specs if spec.env}
    return {env: set(conda_pip_pins((RULES_DIR / env).resolve())) for env in envs}


def test_the_rule_reader_finds_every_rule_and_its_env(rule_specs):
    text = "\n".join(p.read_text() for p in RULES_DIR.glob("*.smk"))
    assert len(rule_specs) == len(re.findall(r"^\s*rule \w+:", text, flags=re.MULTILINE))
    assert all(spec.env for spec in rule_specs), [s.name for s in rule_specs if not s.env]
    by_name = {spec.name: spec for spec in rule_specs}
    assert by_name["build_paper"].commands == ("latex-check",)
    assert by_name["run_notebook_run_overview"].tools == ("papermill",)
    assert by_name["run_notebook_run_overview"].notebook == "notebooks/run_overview.ipynb"
    assert by_name["write_config"].script == "../scripts/write_config.py"


def test_every_rule_env_holds_what_its_commands_import(rule_specs, env_packages):
    assert missing_from_envs(rule_specs, env_packages) == {}


def test_the_env_check_fails_when_an_env_lacks_a_package(rule_specs, env_packages):
    """Each env's packages are all needed by some rule (no dead weight), and removing any one
    of them from a copy of the list makes the check name the rules that need it."""
    for env, packages in env_packages.items():
        for package in sorted(packages):
            reduced = {**env_packages, env: packages - {package}}
            missing = missing_from_envs(rule_specs, reduced)
            assert missing, f"{env}: {package} is needed by none of its rules"
            assert all(lacking == {package} for lacking in missing.values()), missing


def test_an_env_file_copy_without_pyyaml_fails_the_check(tmp_path, rule_specs, env_packages):
    stream = "../../envs/stream.yaml"
    copy = tmp_path / "stream.yaml"
    text = (RULES_DIR / stream).read_text()
    copy.write_text(re.sub(r"^\s+- PyYAML==.*\n", "", text, flags=re.MULTILINE))
    missing = missing_from_envs(rule_specs, {**env_packages, stream: set(conda_pip_pins(copy))})
    assert missing[f"generate_cohort ({stream})"] == {"pyyaml"}
    assert all(key.endswith(f"({stream})") for key in missing)


# --- The installable package (pyproject.toml) --------------------------------------------------
def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _requirement_pins(requirements: list[str]) -> dict[str, str]:
    return _pins([r.replace(" ", "") for r in requirements])


def package_imports() -> set[str]:
    """Distributions any module of the package imports (function-local imports included)."""
    names: set[str] = set()
    for path in (SRC / "vitalstream").rglob("*.py"):
        names |= _runtime_imports(ast.parse(path.read_text()))
    return third_party(names)


def test_pyproject_depends_on_what_the_package_imports_at_the_pins():
    dependencies = _requirement_pins(_pyproject()["dependencies"])
    assert set(dependencies) == package_imports()
    pins = requirements()
    assert {name: pins.get(name) for name in dependencies} == dependencies


def test_pyproject_with_its_extras_is_exactly_requirements_txt():
    project = _pyproject()
    extras = project["optional-dependencies"]
    assert sorted(extras) == ["dev", "workflow"]
    pinned = _requirement_pins(project["dependencies"])
    for group in extras.values():
        group_pins = _requirement_pins(group)
        assert not set(group_pins) & set(pinned), "a package listed twice"
        pinned |= group_pins
    assert pinned == requirements()


def test_pyproject_ships_the_resources_the_code_reads():
    """Every file `resource()` is asked for matches the package data globs, through the
    vitalstream/resources/ links (the built wheel is inspected in tests/integration)."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = data["package-data"]["vitalstream"]
    asked = set()
    for path in (SRC / "vitalstream").rglob("*.py"):
        asked |= set(re.findall(r"resource\(\"([^\"]+)\"\)", path.read_text()))
    asked |= {"config/schema.yaml", "config/config.yaml", "envs/opensearch/pom.xml"}
    resources = SRC / "vitalstream" / "resources"
    for relative in sorted(asked):
        assert (resources / relative).is_file(), relative
        assert any(_glob_matches(f"resources/{relative}", g) for g in globs), relative


def _glob_matches(path: str, pattern: str) -> bool:
    """setuptools' package-data glob: `*` stays within one directory."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(map(fnmatch.fnmatch, parts, wanted))
