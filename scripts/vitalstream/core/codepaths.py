"""The package's source files a command or a notebook runs: the workflow's code inputs.

A rule that runs ``python -m vitalstream CMD`` (or a notebook) lists as inputs the ``.py`` files
of the modules it can execute, so that editing one re-runs exactly the rules that use it. They
are found statically, by reading the sources (nothing is imported): every ``import`` and
``from ... import`` of the package anywhere in a module (function-local ones included, those
under ``if TYPE_CHECKING:`` left out since they never run), followed transitively, with the
``__init__.py`` of every package on the way (Python runs them first). A module that starts a
child ``python -m vitalstream OTHER`` (a list literal ``[..., "-m", "vitalstream", "OTHER"]``)
also runs OTHER's module, so that is followed too; the caller supplies the command registry
(``vitalstream.__main__.COMMANDS``), which this module does not import.

Not for: files a module reads (config/schema.yaml, Java sources) or third-party packages.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path

PACKAGE = "vitalstream"


def module_file(module: str, src: Path) -> Path | None:
    """The source of ``module`` (``vitalstream.core.config``) under ``src`` (the directory
    holding the package), or None when there is no such module."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _child_command(node: ast.List | ast.Tuple) -> str | None:
    """OTHER in a literal ``[..., "-m", "vitalstream", "OTHER", ...]`` (or the module of
    ``"-m", "vitalstream.x.y"``, prefixed with ``:``)."""
    strings = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
    for i, value in enumerate(strings[:-1]):
        target = strings[i + 1]
        if value != "-m" or not isinstance(target, str):
            continue
        if target == PACKAGE and i + 2 < len(strings) and isinstance(strings[i + 2], str):
            return strings[i + 2]
        if target.startswith(PACKAGE + "."):
            return ":" + target
    return None


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a (possibly relative) ``from X import`` names."""
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


@cache
def _imports(path: Path, module: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(modules named by the imports of ``path``, commands it starts as children)."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as exc:
        raise ValueError(f"{path}: cannot read its imports: {exc}") from exc
    return _names(tree, module, path.name == "__init__.py")


def _names(tree: ast.AST, module: str, is_package: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: set[str] = set()
    commands: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            names.add(base)
            # `from pkg import sub` imports the submodule sub when there is one.
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.List | ast.Tuple) and (command := _child_command(node)):
            commands.add(command)
    inside = (n for n in names if n == PACKAGE or n.startswith(PACKAGE + "."))
    return tuple(sorted(inside)), tuple(sorted(commands))


def _with_packages(module: str) -> list[str]:
    """``module`` and every package above it (``a.b.c`` → ``a``, ``a.b``, ``a.b.c``)."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(
    modules: Iterable[str], src: Path, commands: Mapping[str, str] | None = None
) -> list[Path]:
    """The sources of ``modules`` and of everything they import in the package, transitively
    (sorted). ``commands`` (command → module, ``vitalstream.__main__.COMMANDS``' modules with
    the package prefix) resolves child commands; without it they are not followed."""
    commands = commands or {}
    seen: set[str] = set()
    files: set[Path] = set()
    todo = [m for root in modules for m in _with_packages(root)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(module, src)
        if path is None:
            continue  # a name imported from a module, not a module itself
        files.add(path)
        names, children = _imports(path, module)
        for name in names:
            todo.extend(_with_packages(name))
        for child in children:
            target = child[1:] if child.startswith(":") else commands.get(child)
            if target is None:
                raise ValueError(f"{path}: starts `python -m {PACKAGE} {child}`: no such command")
            todo.extend(_with_packages(target))
    return sorted(files)


def notebook_modules(notebook: Path, src: Path) -> list[str]:
    """The package modules (under ``src``) a notebook's code cells import; IPython magics and
    shell lines are skipped."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{notebook}: not a readable notebook: {exc}") from exc
    names: set[str] = set()
    for number, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        lines = "".join(cell.get("source", [])).split("\n")
        code = "\n".join("" if s.lstrip().startswith(("%", "!")) else s for s in lines)
        try:
            tree = ast.parse(code)
        except SyntaxError as exc:
            raise ValueError(f"{notebook}: code cell {number} is not Python: {exc}") from exc
        names.update(_names(tree, "__main__", is_package=False)[0])
    return sorted(n for n in names if module_file(n, src) is not None)
