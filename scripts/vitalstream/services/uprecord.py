"""The record of a running ``up`` in its state folder (``up.json``): one ``up`` per folder, and
where its broker, topic and dashboard are, for the commands that join it (the simulator, Kafka's
console producer) and for scripts.

A record names the process by PID and start time, so a record left by an ``up`` that was killed
is recognised as stale and never blocks the next one.

Not for: starting anything (vitalstream.serving.up).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil

from vitalstream.services import supervise

UP_FILE = "up.json"


class UpRunningError(RuntimeError):
    """Another ``up`` runs over the same state folder."""


def running_up(state_dir: Path) -> dict[str, Any] | None:
    """The record of an ``up`` that still runs over ``state_dir`` (None: none does)."""
    path = state_dir / UP_FILE
    try:
        record = supervise.read_state(path)
    except (OSError, ValueError):
        return None
    try:
        alive = supervise.parent_alive(int(record["pid"]), float(record["created"]))
    except (KeyError, TypeError, ValueError):
        return None
    return record if alive else None


def claim(state_dir: Path) -> dict[str, Any]:
    """Record this process as the ``up`` of ``state_dir``; refuse when another one runs there."""
    state_dir.mkdir(parents=True, exist_ok=True)
    other = running_up(state_dir)
    if other is not None:
        raise UpRunningError(
            f"another `up` (pid {other['pid']}) runs over {state_dir}: stop it first"
        )
    record = {"pid": os.getpid(), "created": psutil.Process().create_time()}
    supervise.write_state(state_dir / UP_FILE, record)
    return record


def record(state_dir: Path, current: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Add ``values`` to the running ``up``'s record (where everything is, for scripts)."""
    current.update(values)
    supervise.write_state(state_dir / UP_FILE, current)
    return current


def release(state_dir: Path) -> None:
    (state_dir / UP_FILE).unlink(missing_ok=True)
