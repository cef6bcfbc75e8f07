"""Resources are found in a checkout and in an installed copy alike (vitalstream.core.paths)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
from vitalstream.core import paths

PACKAGE = Path(paths.PACKAGE_DIR)


def _requested_resources() -> set[str]:
    """Every ``resource("...")`` the package asks for, by its path in the repository."""
    found: set[str] = set()
    for module in PACKAGE.rglob("*.py"):
        found.update(re.findall(r'resource\(\s*"([^"]+)"\s*\)', module.read_text()))
    return found


def test_a_checkout_answers_with_its_own_files():
    assert paths.resource("config/schema.yaml") == paths.REPO_ROOT / "config" / "schema.yaml"
    assert paths.in_checkout()


def test_without_a_checkout_the_packed_copy_answers(monkeypatch, tmp_path):
    """What an installed package sees: no repository around, the package data instead."""
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    found = paths.resource("envs/kafka/pom.xml")
    assert found.parent.parent.parent.name == "resources" and found.is_file()
    with pytest.raises(FileNotFoundError, match="neither"):
        paths.resource("envs/missing.xml")


def test_every_requested_resource_is_packed():
    """pyproject's package-data globs cover each file the code asks for, so a wheel has it."""
    requested = _requested_resources()
    assert "config/schema.yaml" in requested
    pyproject = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["vitalstream"]
    for name in requested:
        assert (paths.REPO_ROOT / name).exists(), name
        assert any(fnmatch.fnmatch(f"resources/{name}", g) for g in globs), name


def test_the_jar_cache_is_the_checkout_s_or_the_user_s(monkeypatch, tmp_path):
    from vitalstream.core import paths

    assert paths.cache_dir() == paths.REPO_ROOT / ".cache"
    monkeypatch.setattr(paths, "in_checkout", lambda: False)  # as in an installed package
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.cache_dir() == tmp_path / "vitalstream"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert paths.cache_dir() == Path.home() / ".cache" / "vitalstream"
