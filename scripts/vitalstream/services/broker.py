"""A real single-node Apache Kafka broker (KRaft), run as a local JVM process from Python.

Why this exists: the paper measures a Kafka -> Spark pipeline, so the numbers must come from a
real broker, yet the machines have no Docker and no Kafka tarball, only Maven Central. So the
broker's runtime jars are resolved by ``envs/kafka/pom.xml`` into a git-ignored cache and
``kafka.Kafka`` is launched directly with ``java -cp``, in combined broker+controller mode on
loopback ports picked at random, so that several brokers (tests, parallel runs) never collide.
``LocalBroker.start_cluster`` starts several such nodes as one static-quorum cluster, for the
fault experiments and the loopback cluster (services.cluster).

The process care is services.supervise's: each broker leads its own process group, carries the
marker ``-Dvitalstream.broker=<tag>`` (so tests and humans can find it, and no reused PID is
ever signalled), and, when started for a long-lived parent such as the Snakemake main process,
is watched by a detached watchdog that stops it as soon as that parent dies, even by ``kill -9``.

Not for: the broker's jars, ``server.properties`` and java command line (services.kafkaconfig),
topics and offsets on a running broker (services.topics; both re-exported here under their old
names), Spark's side of Kafka (services.sparkenv).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import positive_int, writable_dir
from vitalstream.services import kafkaconfig, servicecli, supervise
from vitalstream.services.kafkaconfig import KAFKA_MAIN, MARKER_PROPERTY, random_cluster_id
from vitalstream.services.kafkaconfig import default_jars_dir as default_jars_dir
from vitalstream.services.kafkaconfig import ensure_kafka_jars as ensure_kafka_jars
from vitalstream.services.kafkaconfig import kafka_version as kafka_version
from vitalstream.services.kafkaconfig import server_properties as server_properties
from vitalstream.services.supervise import LOOPBACK
from vitalstream.services.supervise import free_port as free_port
from vitalstream.services.supervise import port_is_free as port_is_free
from vitalstream.services.topics import create_topic as create_topic
from vitalstream.services.topics import delete_topic as delete_topic
from vitalstream.services.topics import list_topics as list_topics
from vitalstream.services.topics import metadata_ready
from vitalstream.services.topics import partition_leaders as partition_leaders
from vitalstream.services.topics import topic_end_offsets as topic_end_offsets

READY_TIMEOUT_S = 60.0
# argv elements that identify a broker's watchdog (see supervise.start_watchdog)
WATCHDOG_MARKERS: tuple[str, ...] = supervise.watchdog_markers(MARKER_PROPERTY)
WATCHDOG_STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3

_LOG_NAME = "server.log"
_STDOUT_NAME = "broker.out"


@dataclass(frozen=True)
class BrokerHandle:
    """What is needed to use and later stop one running broker (also saved to the state file)."""

    pid: int
    pgid: int
    port: int
    controller_port: int
    work_dir: Path
    tag: str
    kafka_version: str
    watchdog_pid: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The ``bootstrap.servers`` string clients connect to."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's log4j log (see envs/kafka/log4j2.yaml)."""
        return self.work_dir / "logs" / _LOG_NAME

    def to_state(self) -> dict[str, Any]:
        """JSON-able dict for the workflow's state file."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "pid": self.pid,
            "pgid": self.pgid,
            "watchdog_pid": self.watchdog_pid,
            "port": self.port,
            "controller_port": self.controller_port,
            "work_dir": str(self.work_dir),
            "tag": self.tag,
            "kafka_version": self.kafka_version,
            "log_file": str(self.log_file),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BrokerHandle:
        """Inverse of :meth:`to_state`."""
        return cls(
            pid=int(state["pid"]),
            pgid=int(state["pgid"]),
            port=int(state["port"]),
            controller_port=int(state["controller_port"]),
            work_dir=Path(state["work_dir"]),
            tag=str(state["tag"]),
            kafka_version=str(state["kafka_version"]),
            watchdog_pid=state.get("watchdog_pid"),
        )


# --------------------------------------------------------------------------- start


class BrokerStartError(supervise.StartError):
    """The broker did not become ready; the message holds the tail of its logs."""


def _bind_failed(handle: BrokerHandle) -> bool:
    """Did the broker die because a port was taken? (The cause sits far above the log tail.)"""
    for path in (handle.log_file, handle.work_dir / _STDOUT_NAME):
        with contextlib.suppress(OSError):
            if "java.net.BindException" in path.read_text(errors="replace"):
                return True
    return False


def _wait_ready(proc: subprocess.Popen[bytes], handle: BrokerHandle, timeout: float) -> None:
    """Block until the broker serves metadata, or raise with its log tail.

    The cheap TCP probe comes first so that librdkafka does not spin on a closed port.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = supervise.exit_code(proc)
        if code is not None:
            stdout = handle.work_dir / _STDOUT_NAME
            logs = supervise.tail(handle.log_file) + "\n" + supervise.tail(stdout)
            raise BrokerStartError(
                f"Kafka broker exited with code {code} during start-up:\n{logs}",
                port_clash=_bind_failed(handle),
            )
        if supervise.port_open(handle.port) and metadata_ready(handle.bootstrap_servers):
            return
        time.sleep(0.2)
    stop(handle, timeout=5)
    log_tail = supervise.tail(handle.log_file)
    raise BrokerStartError(f"Kafka broker not ready after {timeout:.0f} s; log tail:\n{log_tail}")


@dataclass
class LocalBroker:
    """Launcher of local brokers: where the jars are and how big the JVM may be.

    One instance can start any number of brokers, each in its own work dir.
    """

    jars_dir: Path = field(default_factory=default_jars_dir)
    ready_timeout: float = READY_TIMEOUT_S
    extra_properties: dict[str, str] = field(default_factory=dict)

    def start(
        self,
        work_dir: Path,
        *,
        port: int | None = None,
        node_id: int = 1,
        partitions_default: int = 1,
        tag: str = "",
        watch_parent: int | None = None,
    ) -> BrokerHandle:
        """Start a fresh broker in ``work_dir`` and return once clients can use it.

        The KRaft data and log dirs inside ``work_dir`` are wiped first: every run measures an
        empty, freshly formatted broker. ``tag`` (default: the work dir) becomes the
        ``-Dvitalstream.broker=`` marker that identifies the JVM. Random ports can (rarely) be
        taken by someone else between pick and bind, so a bind clash is retried on new ports
        when ``port`` was not fixed.
        """
        jars_dir = ensure_kafka_jars(self.jars_dir)
        work_dir = Path(work_dir).resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        marker = tag or str(work_dir)
        attempts = 1 if port is not None else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            listener_port = port or supervise.pick_port()
            if not port_is_free(listener_port):
                raise BrokerStartError(f"port {listener_port} is already in use on {LOOPBACK}")
            try:
                handle = self._start_once(
                    jars_dir, work_dir, listener_port, node_id, partitions_default, marker
                )
            except BrokerStartError as err:
                if err.port_clash and attempt < attempts:
                    continue
                raise
            return _watched(handle, watch_parent)
        raise AssertionError("unreachable")

    def _start_once(
        self,
        jars_dir: Path,
        work_dir: Path,
        port: int,
        node_id: int,
        partitions_default: int,
        marker: str,
    ) -> BrokerHandle:
        controller_port = supervise.pick_port(avoid=[port])
        props = server_properties(
            node_id=node_id,
            port=port,
            controller_port=controller_port,
            data_dir=work_dir / kafkaconfig.DATA_DIR_NAME,
            partitions_default=partitions_default,
            extra=self.extra_properties,
        )
        kafkaconfig.prepare_node(jars_dir, work_dir, props, random_cluster_id(), standalone=True)
        proc, handle = _launch(jars_dir, work_dir, port, controller_port, marker)
        try:
            _wait_ready(proc, handle, self.ready_timeout)
        except BaseException:  # also Ctrl-C: the JVM is in its own session, it would survive
            stop(handle, timeout=5)
            raise
        return handle

    def restart(self, handle: BrokerHandle, watch_parent: int | None = None) -> BrokerHandle:
        """Start a stopped (or killed) broker again from its work dir: same ports, same
        ``server.properties``, same data; nothing is wiped or formatted. Kafka recovers its
        logs at start-up, as after a crash. For fault experiments (experiments.faults)."""
        if _alive(handle):
            raise BrokerStartError(f"broker {handle.tag} is still running")
        supervise.stop_watchdog(handle.watchdog_pid, MARKER_PROPERTY)  # it watched the old JVM
        jars_dir = ensure_kafka_jars(self.jars_dir)
        proc, new = _launch(
            jars_dir, handle.work_dir, handle.port, handle.controller_port, handle.tag, fresh=False
        )
        try:
            _wait_ready(proc, new, self.ready_timeout)
            return _watched(new, watch_parent)
        except BaseException:
            stop(new, timeout=5)
            raise

    def start_cluster(
        self,
        work_dir: Path,
        nodes: int = 3,
        *,
        tag: str = "",
        min_insync: int = 2,
        watch_parent: int | None = None,
        listener_ports: Sequence[int] | None = None,
    ) -> list[BrokerHandle]:
        """Start ``nodes`` combined broker+controller nodes on loopback as one KRaft cluster
        with a static quorum (``controller.quorum.voters``), each in ``work_dir/node<i>``.

        Internal topics are replicated to every node (at most 3) and ``min.insync.replicas``
        is ``min_insync``, so that with ``acks=all`` an acknowledged message is on at least
        that many nodes and one node can die without losing it. Returns once every node
        serves metadata (each waits for a quorum, so all are launched before any is awaited).
        ``listener_ports`` fixes the client ports (a profile names them, services.cluster);
        default: free ones. Controller ports are always free ones.
        """
        jars_dir = ensure_kafka_jars(self.jars_dir)
        work_dir = Path(work_dir).resolve()
        marker = tag or str(work_dir)
        if listener_ports is not None:
            if len(listener_ports) != nodes:
                raise ValueError(f"{len(listener_ports)} listener ports for {nodes} nodes")
            taken = [p for p in listener_ports if not port_is_free(p)]
            if taken:
                raise BrokerStartError(f"ports {taken} are already in use on {LOOPBACK}")
        clients = list(listener_ports or [])
        ports: list[tuple[int, int]] = []
        for i in range(nodes):
            port = clients[i] if clients else supervise.pick_port()
            ports.append((port, supervise.pick_port(avoid=[port, *clients])))
        voters = ",".join(f"{i + 1}@{LOOPBACK}:{c}" for i, (_, c) in enumerate(ports))
        replication = str(min(nodes, 3))
        insync = str(min(min_insync, nodes))
        extra = {
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": insync,
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": insync,
            "default.replication.factor": replication,
            "min.insync.replicas": insync,
        } | self.extra_properties
        cluster_id = random_cluster_id()
        launched: list[tuple[subprocess.Popen[bytes], BrokerHandle]] = []
        try:
            for i, (port, controller_port) in enumerate(ports):
                node_dir = work_dir / f"node{i + 1}"
                props = server_properties(
                    node_id=i + 1,
                    port=port,
                    controller_port=controller_port,
                    data_dir=node_dir / kafkaconfig.DATA_DIR_NAME,
                    partitions_default=1,
                    extra=extra,
                    voters=voters,
                )
                kafkaconfig.prepare_node(jars_dir, node_dir, props, cluster_id, standalone=False)
                node_marker = f"{marker}/node{i + 1}"
                launched.append(_launch(jars_dir, node_dir, port, controller_port, node_marker))
            for proc, handle in launched:
                _wait_ready(proc, handle, self.ready_timeout)
            return [_watched(handle, watch_parent) for _, handle in launched]
        except BaseException:
            for _, handle in launched:
                stop(handle, timeout=5)
            raise


def _watched(handle: BrokerHandle, watch_parent: int | None) -> BrokerHandle:
    """``handle`` with a watchdog that stops it when ``watch_parent`` dies (None: as is).

    If the watchdog cannot be started, the broker is stopped: it must not run unwatched.
    """
    if watch_parent is None:
        return handle
    try:
        watchdog_pid = supervise.start_watchdog(
            watch_parent,
            pid=handle.pid,
            pgid=handle.pgid,
            marker_property=MARKER_PROPERTY,
            tag=handle.tag,
            what="broker",
            work_dir=handle.work_dir,
            stop_timeout=WATCHDOG_STOP_TIMEOUT_S,
        )
    except BaseException:
        stop(handle, timeout=5)
        raise
    return replace(handle, watchdog_pid=watchdog_pid)


def _launch(
    jars_dir: Path, work_dir: Path, port: int, controller_port: int, marker: str, fresh: bool = True
) -> tuple[subprocess.Popen[bytes], BrokerHandle]:
    """Run the broker JVM of ``work_dir/server.properties`` in its own session (not yet
    ready). A restart (``fresh`` False) appends to the stdout file instead of replacing it."""
    config = work_dir / "server.properties"
    cmd = kafkaconfig.java_command(jars_dir, work_dir, KAFKA_MAIN, str(config), marker=marker)
    proc = supervise.spawn(cmd, output=work_dir / _STDOUT_NAME, cwd=work_dir, append=not fresh)
    handle = BrokerHandle(
        pid=proc.pid,
        pgid=proc.pid,  # its own session: the JVM leads its own process group
        port=port,
        controller_port=controller_port,
        work_dir=work_dir,
        tag=marker,
        kafka_version=kafka_version(jars_dir),
    )
    return proc, handle


def start_broker(work_dir: Path, **kwargs: Any) -> BrokerHandle:
    """Shortcut for ``LocalBroker().start(work_dir, **kwargs)``."""
    return LocalBroker().start(work_dir, **kwargs)


def cluster_bootstrap(handles: list[BrokerHandle]) -> str:
    """``bootstrap.servers`` naming every node of a cluster."""
    return ",".join(h.bootstrap_servers for h in handles)


# --------------------------------------------------------------------------- stopping


def _markers(handle: BrokerHandle) -> tuple[str, ...]:
    """argv element that identifies the broker JVM of ``handle``."""
    return (supervise.marker_arg(MARKER_PROPERTY, handle.tag),)


def _alive(handle: BrokerHandle) -> bool:
    """Is the broker's JVM (and not some process that reused its PID) still running?"""
    return supervise.process_if_ours(handle.pid, _markers(handle)) is not None


def stop(handle: BrokerHandle, timeout: float = 30.0) -> None:
    """Stop a broker and its watchdog; safe to call twice or on an already dead broker.

    Kafka shuts down cleanly on SIGTERM (flushes logs, closes the quorum), in under a second
    when idle; SIGKILL after ``timeout`` is the fallback for a wedged JVM.
    """
    supervise.stop_watchdog(handle.watchdog_pid, MARKER_PROPERTY)
    supervise.kill_group(handle.pid, handle.pgid, _markers(handle), timeout)


def crash(handle: BrokerHandle) -> None:
    """Kill a broker with SIGKILL: no clean shutdown, no flush, as a crash would (faults)."""
    supervise.kill_group(handle.pid, handle.pgid, _markers(handle), graceful=False)


# --------------------------------------------------------------------------- workflow state


def listening_pid(bootstrap: str) -> int | None:
    """The process listening on the first bootstrap server's port on this machine (loopback or
    any address): the broker, so that a performance run can sample its CPU. None when it
    cannot be told (a remote broker, a port of another user's process, no permission)."""
    import psutil

    host, _, port_text = bootstrap.split(",")[0].strip().rpartition(":")
    if not port_text.isdigit() or host not in {LOOPBACK, "localhost", "::1", ""}:
        return None
    port = int(port_text)
    local = {LOOPBACK, "0.0.0.0", "::", "::1", "localhost"}
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for conn in connections:
        if (
            conn.status == psutil.CONN_LISTEN
            and conn.laddr
            and conn.laddr.port == port
            and conn.laddr.ip in local
            and conn.pid
        ):
            return int(conn.pid)
    return None


def read_state(state_file: Path) -> dict[str, Any]:
    """The JSON written by :func:`start_for_workflow`."""
    return supervise.read_state(state_file)


def read_bootstrap(state_file: Path) -> str:
    """``bootstrap.servers`` of the workflow's broker, for producers, consumers and Spark."""
    return str(read_state(state_file)["bootstrap_servers"])


def start_for_workflow(
    state_file: Path, work_dir: Path, parent_pid: int | None, **start_kwargs: Any
) -> dict[str, Any]:
    """Start the workflow's broker, watched by ``parent_pid``, and record it in ``state_file``.

    ``parent_pid`` is normally the Snakemake main process (``os.getpid()`` in ``onstart``);
    None starts no watchdog, for a broker that must outlive its launcher until ``stop``.

    A broker the same state file already names is stopped first, so a state file never names
    the wrong one. The workflow gives each of its runs a state file of its own
    (supervise.claim_run_dir), so this never stops another workflow's broker.
    """
    state_file = Path(state_file)
    if state_file.exists():
        stop_from_state(state_file)
    handle = LocalBroker().start(work_dir, watch_parent=parent_pid, **start_kwargs)
    state = handle.to_state()
    supervise.write_state(state_file, state)
    return state


def stop_from_state(state_file: Path, timeout: float = 30.0) -> bool:
    """Stop the broker and watchdog named in ``state_file`` and remove it; idempotent.

    Returns True if the file existed.
    """
    return supervise.stop_from_state(
        state_file, lambda state: stop(BrokerHandle.from_state(state), timeout=timeout)
    )


def broker_status(state_file: Path) -> dict[str, Any]:
    """State plus liveness: is the JVM there, and does it answer metadata requests."""
    state = read_state(state_file)
    handle = BrokerHandle.from_state(state)
    alive = _alive(handle)
    ready = alive and supervise.port_open(handle.port) and metadata_ready(handle.bootstrap_servers)
    watchdog_alive = supervise.watchdog_alive(handle.watchdog_pid, MARKER_PROPERTY)
    return {**state, "alive": alive, "ready": ready, "watchdog_alive": watchdog_alive}


# --------------------------------------------------------------------------- CLI


def _start(args: argparse.Namespace) -> int:
    servicecli.print_state(
        start_for_workflow(Path(args.state), Path(args.work_dir), parent_pid=args.parent)
    )
    return 0


def _start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-dir", required=True, type=writable_dir, help="dir for config, data and logs"
    )
    parser.add_argument(
        "--parent",
        type=positive_int,
        default=None,
        help="PID whose death kills the broker (watchdog)",
    )


COMMANDS = servicecli.ServiceCommands(
    command="broker",
    noun="broker",
    help="run the local Kafka broker",
    start=_start,
    add_start_arguments=_start_arguments,
    stop=stop_from_state,
    status=broker_status,
    start_help="start a broker and write its state file",
    stop_help="stop the broker named in a state file",
)


def register_cli(subparsers: Any) -> None:
    """Add ``broker {start,stop,status}`` to the package CLI (``python -m vitalstream``)."""
    servicecli.register(subparsers, COMMANDS)


if __name__ == "__main__":
    # The watchdog runs as ``python -m vitalstream.services.supervise``.
    sys.exit(servicecli.main(COMMANDS, "vitalstream.services.broker"))
