"""The package's import rule, checked on every module's syntax tree (no module is imported).

The rule is written in ``vitalstream/__init__.py`` and its stage order is ``vitalstream.STAGES``:
a module imports only its own stage and earlier ones (``core`` first, then ``services``), with
no import cycles and no ``_``-prefixed name taken from another module; no module exceeds
``MAX_MODULE_LINES`` lines. Every import statement counts, wherever it is: function-local,
under ``if TYPE_CHECKING:``, in ``try`` blocks, relative or absolute. The checker is a set of
plain functions over a package directory, so the tests at the bottom can plant each kind of
violation in a throw-away package and see it reported, module and line.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from vitalstream import STAGES

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "scripts" / "vitalstream"
# Long enough for one cohesive module, short enough to read in a sitting; longer is two modules.
MAX_MODULE_LINES = 700


@dataclass(frozen=True)
class Import:
    """One module of the package reached by one import statement."""

    importer: str
    line: int
    target: str  # the module imported, or the module a name is taken from
    name: str | None = None  # the name taken from ``target`` when it is not a module itself


@dataclass(frozen=True)
class Violation:
    """A broken rule, where it is: ``module:line: message``."""

    module: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.message}"


def discover_modules(package_dir: Path) -> dict[str, Path]:
    """Every module of the package by dotted name; a package is named by its ``__init__``."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve_relative(importer: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name of ``from ..x import y``'s ``..x``, seen from ``importer``."""
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    if path.name != "__init__.py":  # a plain module's level 1 is its own package
        package.pop()
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _owning_module(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a module of the package, if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(importer: str, path: Path, modules: Mapping[str, Path]) -> list[Import]:
    """The package's modules ``importer`` reaches, from every import statement in its file.

    ``ast.walk`` visits function bodies, ``TYPE_CHECKING`` and ``try`` blocks alike, so a
    function-local import (the usual way a cycle hides) is an edge like any other.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(importer, path, node)
            # ``from pkg import x``: x is a submodule if the package has one by that name.
            targets = [
                (f"{base}.{alias.name}", None)
                if f"{base}.{alias.name}" in modules
                else (base, alias.name)
                for alias in node.names
            ]
        else:
            continue
        for dotted, name in targets:
            target = _owning_module(dotted, modules)
            if target is None or target == importer:
                continue
            # A module's own ancestors run before it anyway; naming them adds no dependency.
            if importer.startswith(f"{target}.") and name is None:
                continue
            found.append(Import(importer, node.lineno, target, name))
    return found


def import_graph(package_dir: Path) -> list[Import]:
    """Every import between the package's modules, in module and line order."""
    modules = discover_modules(package_dir)
    return sorted(
        (imp for module, path in modules.items() for imp in imports_of(module, path, modules)),
        key=lambda imp: (imp.importer, imp.line, imp.target),
    )


def _strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _cycle_through(
    start: str, members: set[str], edges: Mapping[str, Sequence[Import]]
) -> list[Import]:
    """One shortest cycle from ``start`` back to it inside a component, as its imports."""
    parents: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for imp in edges.get(module, ()):
                if imp.target not in members or imp.target in parents:
                    continue
                parents[imp.target] = imp
                if imp.target == start:
                    cycle = [imp]
                    while cycle[0].importer != start:
                        cycle.insert(0, parents[cycle[0].importer])
                    return cycle
                following.append(imp.target)
        frontier = following
    return []  # unreachable for a strongly connected component


def find_cycles(imports: Sequence[Import]) -> list[Violation]:
    """One violation per import cycle, naming each import of one cycle with its line."""
    edges: dict[str, list[Import]] = {}
    for imp in imports:
        edges.setdefault(imp.importer, []).append(imp)
    graph = {module: {imp.target for imp in out} for module, out in edges.items()}
    violations = []
    for component in _strongly_connected(graph):
        cycle = _cycle_through(component[0], set(component), edges)
        path = " → ".join(f"{imp.importer}:{imp.line}" for imp in cycle)
        violations.append(
            Violation(
                component[0],
                cycle[0].line,
                f"import cycle {path} → {component[0]} (modules: {', '.join(component)})",
            )
        )
    return violations


def stage_rank(module: str, stages: Sequence[str]) -> int | None:
    """Where a module sits in the journey; ``None`` for a module outside every stage.

    The package's ``__init__`` comes before ``core`` (it imports nothing, all may import it) and
    ``__main__``, the command registry, after ``paper`` (it may import any command module).
    """
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    if parts[1] == "__main__" and len(parts) == 2:
        return len(stages)
    return stages.index(parts[1]) if parts[1] in stages else None


def find_direction_violations(
    imports: Sequence[Import], modules: Mapping[str, Path], stages: Sequence[str]
) -> list[Violation]:
    """Imports against the stage order, modules outside every stage, ``__init__`` imports."""
    violations = [
        Violation(module, 1, f"{module} is in no stage of {tuple(stages)}")
        for module in modules
        if stage_rank(module, stages) is None
    ]
    for imp in imports:
        importer_rank = stage_rank(imp.importer, stages)
        target_rank = stage_rank(imp.target, stages)
        if importer_rank is None or target_rank is None:
            continue  # reported above, once per module rather than per import
        if modules[imp.importer].name == "__init__.py":
            violations.append(
                Violation(
                    imp.importer,
                    imp.line,
                    f"package __init__ imports {imp.target}; __init__ modules import nothing "
                    "of the package, so that importing a stage stays cheap",
                )
            )
        elif target_rank > importer_rank:
            violations.append(
                Violation(
                    imp.importer,
                    imp.line,
                    f"{imp.importer} imports {imp.target}: {_stage_name(imp.importer)} comes "
                    f"before {_stage_name(imp.target)} in the stage order {tuple(stages)}",
                )
            )
    return violations


def _stage_name(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_private_imports(imports: Sequence[Import]) -> list[Violation]:
    """``from other import _name``: another module's private name (dunders are public)."""
    return [
        Violation(
            imp.importer,
            imp.line,
            f"{imp.importer} imports the private name {imp.name} of {imp.target}",
        )
        for imp in imports
        if imp.name and imp.name.startswith("_") and not imp.name.startswith("__")
    ]


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` of a chain of attribute lookups on a name, else ``None``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value)
        return f"{owner}.{node.attr}" if owner else None
    return None


def find_private_attribute_uses(package_dir: Path) -> list[Violation]:
    """``broker._tail(...)`` after ``from pkg.services import broker``: the same private name
    taken without naming it in the import, which would otherwise slip past the import check.
    """
    modules = discover_modules(package_dir)
    violations = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        bound: dict[str, str] = {}  # local name → the module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.partition(".")[0]
                    bound[local] = alias.name if alias.asname else local
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_relative(importer, path, node)
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        bound[alias.asname or alias.name] = f"{base}.{alias.name}"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            owner = _dotted(node.value)
            if node.attr.startswith("__") or owner is None:
                continue
            head, _, rest = owner.partition(".")
            target = ".".join(filter(None, [bound.get(head, ""), rest])) if head in bound else ""
            if target in modules and target != importer:
                violations.append(
                    Violation(
                        importer,
                        node.lineno,
                        f"{importer} uses the private name {node.attr} of {target}",
                    )
                )
    return violations


def find_long_modules(
    modules: Mapping[str, Path], max_lines: int = MAX_MODULE_LINES
) -> list[Violation]:
    """Modules over ``max_lines`` lines, reported at their first line past the limit."""
    violations = []
    for module, path in modules.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > max_lines:
            violations.append(
                Violation(module, max_lines + 1, f"{lines} lines, over the {max_lines} limit")
            )
    return violations


def check_package(package_dir: Path, stages: Sequence[str]) -> dict[str, list[Violation]]:
    """Every rule's violations in a package directory, by rule."""
    modules = discover_modules(package_dir)
    imports = import_graph(package_dir)
    return {
        "cycles": find_cycles(imports),
        "direction": find_direction_violations(imports, modules, stages),
        "private": find_private_imports(imports) + find_private_attribute_uses(package_dir),
        "size": find_long_modules(modules),
    }


def _report(violations: Sequence[Violation]) -> str:
    return "\n".join(str(v) for v in violations)


# --- the real package -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package_violations() -> dict[str, list[Violation]]:
    return check_package(PACKAGE_DIR, STAGES)


def test_every_subpackage_is_a_stage_in_order() -> None:
    subpackages = {p.parent.name for p in PACKAGE_DIR.glob("*/__init__.py")}
    assert subpackages == set(STAGES)
    assert len(STAGES) == len(set(STAGES))
    assert STAGES[:2] == ("core", "services")


def test_checker_sees_the_package() -> None:
    """Guards the checker itself: a walk that found no imports would pass every rule."""
    imports = import_graph(PACKAGE_DIR)
    assert len(discover_modules(PACKAGE_DIR)) > 50
    assert len(imports) > 200
    assert len({imp.importer for imp in imports if imp.target == "vitalstream.core.schema"}) > 5


def test_no_import_cycles(package_violations: dict[str, list[Violation]]) -> None:
    assert not package_violations["cycles"], _report(package_violations["cycles"])


def test_imports_follow_the_stage_order(package_violations: dict[str, list[Violation]]) -> None:
    assert not package_violations["direction"], _report(package_violations["direction"])


def test_no_private_names_across_modules(package_violations: dict[str, list[Violation]]) -> None:
    assert not package_violations["private"], _report(package_violations["private"])


def test_modules_are_at_most_700_lines(package_violations: dict[str, list[Violation]]) -> None:
    assert not package_violations["size"], _report(package_violations["size"])


# --- the checker on planted violations --------------------------------------------------------

FAKE_STAGES = ("core", "services", "data", "stream")


def _fake_package(root: Path, files: Mapping[str, str]) -> Path:
    """A package ``fake`` with one empty ``__init__`` per stage, plus ``files`` (path → code)."""
    package = root / "fake"
    for stage in FAKE_STAGES:
        (package / stage).mkdir(parents=True)
        (package / stage / "__init__.py").write_text('"""Stage."""\n')
    (package / "__init__.py").write_text('"""Fake."""\n')
    for relative, code in files.items():
        (package / relative).write_text(textwrap.dedent(code))
    return package


CLEAN = {
    "core/schema.py": "FIELDS = ('patient_id',)\n",
    "data/cohort.py": """\
        from fake.core.schema import FIELDS
        from fake.core import schema
        from . import helpers
        import fake.core.schema as schema_module
        from fake import __doc__ as package_doc
        """,
    "data/helpers.py": "from ..core.schema import FIELDS\n",
    "stream/job.py": "from fake.data.cohort import FIELDS\n",
}


def test_a_clean_package_reports_nothing(tmp_path: Path) -> None:
    package = _fake_package(tmp_path, CLEAN)
    assert check_package(package, FAKE_STAGES) == {
        "cycles": [],
        "direction": [],
        "private": [],
        "size": [],
    }
    edges = {(imp.importer, imp.target) for imp in import_graph(package)}
    assert ("fake.data.cohort", "fake.data.helpers") in edges  # ``from . import helpers``
    assert ("fake.data.helpers", "fake.core.schema") in edges  # ``from ..core.schema import``


def test_a_cycle_through_a_function_local_import_is_reported(tmp_path: Path) -> None:
    package = _fake_package(
        tmp_path,
        {
            "data/cohort.py": "from fake.data.gateway import reduce\n",
            "data/gateway.py": """\
                def reduce():
                    from fake.data import cohort

                    return cohort
                """,
        },
    )
    violations = check_package(package, FAKE_STAGES)
    assert [str(v) for v in violations["cycles"]] == [
        "fake.data.cohort:1: import cycle fake.data.cohort:1 → fake.data.gateway:2 → "
        "fake.data.cohort (modules: fake.data.cohort, fake.data.gateway)"
    ]
    assert not violations["direction"]


@pytest.mark.parametrize(
    ("code", "line"),
    [
        ("from fake.stream.job import run\n", 1),
        ("from fake.stream import job\n", 1),
        ("import fake.stream.job\n", 1),
        ("from ..stream.job import run\n", 1),
        ("def later():\n    from fake.stream.job import run\n", 2),
        (
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
            "    from fake.stream.job import Job\n",
            4,
        ),
        ("try:\n    import fake.stream.job as job\nexcept ImportError:\n    job = None\n", 2),
    ],
    ids=["from", "from-package", "import", "relative", "function-local", "type-checking", "try"],
)
def test_core_importing_a_later_stage_is_reported(tmp_path: Path, code: str, line: int) -> None:
    package = _fake_package(tmp_path, {"core/schema.py": code, "stream/job.py": "def run(): ...\n"})
    violations = check_package(package, FAKE_STAGES)["direction"]
    assert [str(v) for v in violations] == [
        f"fake.core.schema:{line}: fake.core.schema imports fake.stream.job: core comes before "
        f"stream in the stage order {FAKE_STAGES}"
    ]


def test_services_importing_data_is_reported_but_data_importing_services_is_not(
    tmp_path: Path,
) -> None:
    package = _fake_package(
        tmp_path,
        {
            "services/broker.py": "x = 1\n\n\nfrom fake.data.cohort import FIELDS\n",
            "data/cohort.py": "from fake.services.broker import x\nFIELDS = ()\n",
        },
    )
    violations = check_package(package, FAKE_STAGES)
    assert [(v.module, v.line) for v in violations["direction"]] == [("fake.services.broker", 4)]
    assert len(violations["cycles"]) == 1  # the same pair is also a cycle


def test_a_module_outside_every_stage_and_an_importing_init_are_reported(tmp_path: Path) -> None:
    package = _fake_package(
        tmp_path,
        {
            "loose.py": "x = 1\n",
            "core/schema.py": "FIELDS = ()\n",
            "data/__init__.py": "from fake.core.schema import FIELDS\n",
        },
    )
    messages = [str(v) for v in check_package(package, FAKE_STAGES)["direction"]]
    assert messages[0] == f"fake.loose:1: fake.loose is in no stage of {FAKE_STAGES}"
    assert messages[1].startswith("fake.data:1: package __init__ imports fake.core.schema")
    assert len(messages) == 2


def test_a_private_name_from_another_module_is_reported(tmp_path: Path) -> None:
    package = _fake_package(
        tmp_path,
        {
            "core/schema.py": "_FIELDS = ()\n__all__ = ['_FIELDS']\n",
            "data/cohort.py": (
                "from fake.core.schema import __all__\n"
                "from fake.core.schema import _FIELDS as fields\n"
            ),
        },
    )
    violations = check_package(package, FAKE_STAGES)["private"]
    assert [str(v) for v in violations] == [
        "fake.data.cohort:2: fake.data.cohort imports the private name _FIELDS of fake.core.schema"
    ]


def test_a_private_name_through_a_module_attribute_is_reported(tmp_path: Path) -> None:
    package = _fake_package(
        tmp_path,
        {
            "core/schema.py": "_FIELDS = ()\nFIELDS = _FIELDS\n",
            "data/cohort.py": (
                "import fake.core.schema\n"
                "from fake.core import schema as s\n"
                "\n"
                "\n"
                "def fields():\n"
                "    return s._FIELDS, s.FIELDS, s.__doc__, fake.core.schema._FIELDS\n"
            ),
        },
    )
    violations = check_package(package, FAKE_STAGES)["private"]
    assert sorted(str(v) for v in violations) == 2 * [
        "fake.data.cohort:6: fake.data.cohort uses the private name _FIELDS of fake.core.schema"
    ]


def test_a_module_over_the_limit_is_reported_and_one_at_it_is_not(tmp_path: Path) -> None:
    package = _fake_package(
        tmp_path,
        {
            "data/long.py": "x = 1\n" * (MAX_MODULE_LINES + 1),
            "data/full.py": "x = 1\n" * MAX_MODULE_LINES,
        },
    )
    assert [str(v) for v in check_package(package, FAKE_STAGES)["size"]] == [
        f"fake.data.long:{MAX_MODULE_LINES + 1}: {MAX_MODULE_LINES + 1} lines, "
        f"over the {MAX_MODULE_LINES} limit"
    ]
