"""A scratch copy of the repository for tests that run the workflow as a user does
(tests/integration/test_workflow.py, test_cluster.py): sources copied, the venv and jar cache
shared by symlink, no results, and the PhysioNet mirror CI uses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
# Large or generated things are shared with the checkout (symlinks), not copied.
SHARED = (".venv", ".cache")
SKIPPED = {"results", ".snakemake", "__pycache__", ".pytest_cache", ".ruff_cache", *SHARED}


def physionet_mirror() -> Path:
    """The PhysioNet mirror the scratch copy reads: CI's (or the shared copy beside the
    checkout), else the small real subset committed as a test fixture."""
    configured = os.environ.get("VITALSTREAM_PHYSIONET_MIRROR")
    for candidate in (configured, REPO.parent / "shared" / "data" / "physionet"):
        if candidate and (Path(candidate) / "MANIFEST.sha256").exists():
            return Path(candidate).resolve()
    return REPO / "data" / "fixtures" / "physionet"


def copy_repository(root: Path) -> Path:
    """The repository at ``root``: generated data stays out, fixtures come along."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        if Path(directory) == REPO / "data":
            return [n for n in names if n != "fixtures"]
        return [n for n in names if n in SKIPPED]

    shutil.copytree(REPO, root, symlinks=True, ignore=ignore)
    for name in SHARED:
        (root / name).symlink_to(REPO / name)
    (root / "results").mkdir()
    return root


def processes_in(*dirs: Path) -> list[str]:
    """Processes started from these directories (their cwd or command line is inside one),
    this test process excepted: what a run must not leave behind."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cwd = proc.info["cwd"] or ""
            cmdline = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if proc.pid == os.getpid():
            continue
        if any(cwd.startswith(str(d)) or str(d) in cmdline for d in dirs):
            found.append(f"{proc.pid}: {cmdline[:200]}")
    return found
