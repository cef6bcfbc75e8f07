"""Two workflows in one checkout never stop each other's services: each Snakemake invocation
records its broker in a directory of its own (results/.stack/<run id>/, claimed in `onstart`,
workflow/rules/stack.smk), stopping one leaves the other's broker answering, and only a run
whose Snakemake is gone is cleaned up. Real brokers; a `sleep` process stands in for each
Snakemake main process (what the watchdogs and the owner check watch)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from vitalstream.services import broker, supervise

pytestmark = pytest.mark.integration

STOPPERS = {"kafka.json": broker.stop_from_state}


@pytest.fixture
def owners() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Stand-ins for Snakemake main processes, killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def start_workflow_stack(root: Path, owner: int, *, watched: bool = True) -> Path:
    """What `onstart` does for one invocation: clean stale runs, claim a run directory, start
    the broker watched by the owner, recorded in that directory."""
    supervise.clean_stale_runs(root, STOPPERS)
    run_dir = supervise.claim_run_dir(root, owner)
    parent = owner if watched else None  # None: as if its watchdog had been killed too
    broker.start_for_workflow(run_dir / "kafka.json", run_dir / "kafka", parent_pid=parent)
    return run_dir


def test_two_workflows_in_one_checkout_keep_their_own_brokers(tmp_path, owners):
    root = tmp_path / "results" / ".stack"
    owners += [subprocess.Popen(["sleep", "600"]) for _ in range(4)]
    first, second, crashed, later = (o.pid for o in owners)
    run_a = start_workflow_stack(root, first)
    run_b = start_workflow_stack(root, second)
    dirs: list[Path] = [run_a, run_b]
    try:
        assert run_a != run_b
        state_a = broker.broker_status(run_a / "kafka.json")
        state_b = broker.broker_status(run_b / "kafka.json")
        assert state_a["ready"] and state_b["ready"]
        assert state_a["bootstrap_servers"] != state_b["bootstrap_servers"]

        # The first workflow ends (onsuccess): the second's broker still answers.
        assert broker.stop_from_state(run_a / "kafka.json")
        assert broker.broker_status(run_b / "kafka.json")["ready"]

        # A third run's Snakemake dies with its broker unwatched: the next invocation stops
        # that broker and removes its directory, and leaves the live second run alone.
        run_c = start_workflow_stack(root, crashed, watched=False)
        dirs.append(run_c)
        stale = broker.BrokerHandle.from_state(broker.read_state(run_c / "kafka.json"))
        owners[2].kill()
        owners[2].wait()
        assert supervise.stale_run_dirs(root) == [run_c]
        run_d = start_workflow_stack(root, later)
        dirs.append(run_d)
        assert not run_c.exists()
        marker = supervise.marker_arg(broker.MARKER_PROPERTY, stale.tag)
        assert supervise.process_if_ours(stale.pid, [marker]) is None, "stale broker runs on"
        assert broker.broker_status(run_b / "kafka.json")["ready"]
        assert broker.broker_status(run_d / "kafka.json")["ready"]
        assert supervise.stale_run_dirs(root) == []
    finally:
        for run_dir in dirs:
            broker.stop_from_state(run_dir / "kafka.json", timeout=10)
