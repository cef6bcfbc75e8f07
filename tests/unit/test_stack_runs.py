"""Each workflow invocation's state directory (services.supervise.claim_run_dir): claimed by the
Snakemake process, live while it lives, and cleaned up only once it is gone. The brokers
themselves: tests/integration/test_stack_scoping.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
from vitalstream.services import supervise


def dead_owner_dir(root: Path) -> Path:
    """A run directory as a Snakemake that has since exited left it."""
    proc = subprocess.Popen(["true"])
    created = psutil.Process(proc.pid).create_time()
    proc.wait()
    run_dir = root / f"{proc.pid}-{int(created * 1000)}"
    run_dir.mkdir(parents=True)
    supervise.write_state(run_dir / supervise.OWNER_FILE, {"pid": proc.pid, "created": created})
    return run_dir


def test_a_claimed_directory_is_this_process_and_live(tmp_path):
    run_dir = supervise.claim_run_dir(tmp_path, os.getpid())
    assert run_dir.parent == tmp_path and run_dir.name.startswith(f"{os.getpid()}-")
    assert supervise.run_owner_alive(run_dir)
    assert supervise.stale_run_dirs(tmp_path) == []


def test_only_the_dead_owners_directory_is_cleaned(tmp_path):
    live = supervise.claim_run_dir(tmp_path, os.getpid())
    (live / "kafka.json").write_text("{}")
    stale = dead_owner_dir(tmp_path)
    (stale / "kafka.json").write_text("{}")
    shared = tmp_path / "opensearch"  # a service's home, no run's: never cleaned
    shared.mkdir()
    stopped: list[Path] = []

    def stop(state_file: Path) -> bool:
        stopped.append(state_file)
        return state_file.exists()

    assert supervise.clean_stale_runs(tmp_path, {"kafka.json": stop}) == [stale]
    assert stopped == [stale / "kafka.json"]
    assert not stale.exists()
    assert (live / "kafka.json").exists() and shared.is_dir()


def test_an_unreadable_owner_file_counts_as_live(tmp_path):
    run_dir = tmp_path / "123-456"
    run_dir.mkdir()
    (run_dir / supervise.OWNER_FILE).write_text("not json")
    assert supervise.run_owner_alive(run_dir)
    assert supervise.stale_run_dirs(tmp_path) == []
