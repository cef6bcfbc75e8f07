"""The processes of the live monitor: its broker and search node kept over a state folder, the
streaming job's child process, and the record of a running ``up``.

A live system must come back as it was. So, unlike a run's broker (started fresh and formatted
every time), the live broker is restarted over its own data when its state folder already has
one: the same topics, the same offsets, the same consumer groups. The search node keeps its data
folder anyway. With the job's checkpoint beside them, a second ``up`` continues where the first
one stopped.

Every process started here is watched: the broker and the node by watchdogs that stop them when
``up`` dies, the job and the simulator by the kernel (parent-death signal), so a stop, even a
SIGKILL of ``up``, leaves no process behind.

Not for: the command line and the status loop (vitalstream.serving.up).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitalstream.core.livesettings import LiveSettings
from vitalstream.core.settings import KafkaSettings, SearchSettings
from vitalstream.experiments.run import spawn_child
from vitalstream.services import broker, searchnode, supervise, topics
from vitalstream.services.broker import BrokerHandle, LocalBroker
from vitalstream.services.searchnode import NodeHandle
from vitalstream.serving.livejob import STARTED

JOB_START_TIMEOUT_S = 240.0


class LiveError(RuntimeError):
    """The live system cannot start or keep running; the message says why, on one line."""


# --------------------------------------------------------------------------- services


@dataclass
class Services:
    """The broker and search node the live system uses; handles only for those it started."""

    bootstrap: str
    search_url: str | None
    broker: BrokerHandle | None = None
    node: NodeHandle | None = None
    started: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop what this ``up`` started (never an external service), node first."""
        if self.node is not None:
            searchnode.stop(self.node)
            self.node = None
        if self.broker is not None:
            broker.stop(self.broker)
            self.broker = None


def _start_broker(work_dir: Path, partitions: int, parent: int) -> BrokerHandle:
    """The live broker: restarted over its data when the folder has one, else a new one."""
    state_file = work_dir / "broker.json"
    if state_file.exists():
        old = BrokerHandle.from_state(supervise.read_state(state_file))
        broker.stop(old, timeout=30)  # a broker an earlier up left (its watchdog may be slow)
        try:
            handle = LocalBroker().restart(old, watch_parent=parent)
        except supervise.StartError as error:
            raise LiveError(
                f"the live broker in {work_dir} did not restart: {' '.join(str(error).split())}"
            ) from error
    else:
        handle = LocalBroker().start(work_dir, partitions_default=partitions, watch_parent=parent)
    supervise.write_state(state_file, handle.to_state())
    return handle


def start_services(
    kafka: KafkaSettings, search: SearchSettings | None, live: LiveSettings, heap_mb: int
) -> Services:
    """The configured services, else local ones over ``live.state_dir`` (watched by us)."""
    parent = os.getpid()
    services = Services(bootstrap=kafka.bootstrap_servers or "", search_url=None)
    try:
        if not kafka.bootstrap_servers:
            services.broker = _start_broker(live.state_dir / "broker", live.partitions, parent)
            services.bootstrap = services.broker.bootstrap_servers
            services.started.append("broker")
        if search is not None and search.url:
            services.search_url = search.url
        elif search is not None:
            work = live.state_dir / "search"
            services.node = searchnode.start_node(work, heap_mb=heap_mb, watch_parent=parent)
            services.search_url = services.node.url
            services.started.append("search node")
    except BaseException:
        services.stop()
        raise
    return services


def ensure_topics(bootstrap: str, live: LiveSettings, replication: int) -> None:
    """The input and alerts topics, created when missing (kept when they exist)."""
    existing = set(topics.list_topics(bootstrap))
    for name, partitions in ((live.topic, live.partitions), (live.alerts_topic, 1)):
        if name not in existing:
            topics.create_topic(bootstrap, name, partitions=partitions, replication=replication)


# --------------------------------------------------------------------------- the job process


class JobProcess:
    """The streaming job's child process: started, watched, restarted from its checkpoint."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.command = command
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, stopping: Any) -> None:
        """Launch an attempt and wait until its queries run (``stopping()`` true: give up)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        mark = self.log.stat().st_size if self.log.exists() else 0
        env = {"PYSPARK_PYTHON": sys.executable}
        self.proc = spawn_child(self.command, self.log, own_group=True, env=env)
        deadline = time.monotonic() + JOB_START_TIMEOUT_S
        while STARTED.encode() not in self.log.read_bytes()[mark:]:
            if self.proc.poll() is not None:
                raise LiveError(f"the live job exited with {self.proc.returncode}; see {self.log}")
            if time.monotonic() > deadline or stopping():
                self.stop(timeout_s=10)
                if stopping():
                    return
                raise LiveError(f"the live job did not start in {JOB_START_TIMEOUT_S:.0f} s")
            time.sleep(0.2)

    def exited(self) -> int | None:
        """Its exit status once it has ended (crashed, killed), else None."""
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM to the driver alone (it stops its queries, then Spark and its JVM), then
        SIGKILL of its whole group. The JVM is not signalled: it would shut down under the
        queries while they stop, and fail them."""
        if self.proc is None or self.proc.poll() is not None:
            _kill_group_rest(self.proc.pid) if self.proc is not None else None
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        finally:
            _kill_group_rest(self.proc.pid)


def _kill_group_rest(pgid: int) -> None:
    """Whatever of the job's group outlived its driver (its JVM) goes too."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Child:
    """A helper process of ``up`` (the device simulator): output to a log, ended with ``up``."""

    def __init__(self, command: list[str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.proc = spawn_child(command, log)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (it flushes what it sent), SIGKILL after ``timeout_s``."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
