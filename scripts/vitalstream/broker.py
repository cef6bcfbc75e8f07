"""A real single-node Apache Kafka broker (KRaft), run as a local JVM process from Python.

Why this exists: the paper measures a Kafka -> Spark pipeline, so the numbers must come from a
real broker, yet the machines have no Docker and no Kafka tarball, only Maven Central. So the
broker's runtime jars are resolved by ``envs/kafka/pom.xml`` into a git-ignored cache and
``kafka.Kafka`` is launched directly with ``java -cp``, in combined broker+controller mode on
loopback ports picked at random, so that several brokers (tests, parallel runs) never collide.

Why so much process care: a leaked JVM keeps ports, disk and 512 MiB of heap, and would skew
the next benchmark. Each broker gets its own process group (stopped as a unit), a marker
system property ``-Dvitalstream.broker=<tag>`` (so tests and humans can find it), and, when it
is started for a long-lived parent such as the Snakemake main process, a tiny detached
watchdog that kills the broker as soon as that parent dies, even by ``kill -9``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = Path(__file__).resolve().parents[1]
KAFKA_POM = REPO_ROOT / "envs" / "kafka" / "pom.xml"
LOG4J2_CONFIG = REPO_ROOT / "envs" / "kafka" / "log4j2.yaml"
DEFAULT_JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
JARS_ENV_VAR = "VITALSTREAM_KAFKA_JARS"
MARKER_PROPERTY = "vitalstream.broker"
LOOPBACK = "127.0.0.1"

KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
# The JVM flags of Kafka's own kafka-run-class.sh, plus a heap small enough for a 2-core,
# shared machine; ExitOnOutOfMemoryError makes a starving broker fail loudly, not limp on.
JVM_OPTS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
    "-Djava.net.preferIPv4Stack=true",
)

READY_TIMEOUT_S = 60.0
WATCHDOG_POLL_S = 1.0
# argv elements that identify a watchdog process (see start_watchdog)
WATCHDOG_MARKERS: tuple[str, ...] = ("vitalstream.broker", "watchdog")
START_ATTEMPTS = 3

_LOG_NAME = "server.log"
_STDOUT_NAME = "broker.out"
_DATA_DIR_NAME = "kraft-data"

# Popen objects of the brokers/watchdogs this process launched: kept so that stop() can reap
# them (no zombies) and so that Python does not warn about still-running children at exit.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def default_jars_dir() -> Path:
    """Where the broker's jars live: ``$VITALSTREAM_KAFKA_JARS`` or ``<repo>/.cache/jars/kafka``.

    The env var lets CI or a developer share one cache between clones; the default is inside
    the git-ignored ``.cache/`` so a fresh clone rebuilds it with ``ensure_kafka_jars``.
    """
    override = os.environ.get(JARS_ENV_VAR)
    return Path(override).expanduser().resolve() if override else REPO_ROOT / ".cache/jars/kafka"


KAFKA_JARS_DIR = default_jars_dir()


def _has_kafka_jars(jars_dir: Path) -> bool:
    return jars_dir.is_dir() and any(jars_dir.glob("kafka_2.13-*.jar"))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock so parallel first runs do not download into the same dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_kafka_jars(jars_dir: Path | None = None) -> Path:
    """Make sure ``jars_dir`` holds the broker's runtime jars, resolving them with Maven if not.

    The copy goes to a temporary sibling dir that is renamed into place only when Maven
    succeeded, so an interrupted download never leaves a half-filled classpath behind.
    """
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    if _has_kafka_jars(jars_dir):
        return jars_dir
    with _file_lock(jars_dir.parent / f".{jars_dir.name}.lock"):
        if _has_kafka_jars(jars_dir):
            return jars_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError(
                f"Kafka jars are missing in {jars_dir} and Maven ('mvn') is not on PATH: "
                "install Maven (e.g. `apt-get install maven`) or point "
                f"${JARS_ENV_VAR} to a dir holding the jars of {KAFKA_POM}."
            )
        staging = Path(tempfile.mkdtemp(prefix=f".{jars_dir.name}-", dir=jars_dir.parent))
        staging.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared, not secret
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not _has_kafka_jars(staging):
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        shutil.rmtree(jars_dir, ignore_errors=True)
        staging.rename(jars_dir)
    return jars_dir


def kafka_version(jars_dir: Path | None = None) -> str:
    """Version of the Kafka jars in use (e.g. ``"4.1.1"``), read from the jar file name.

    Recorded next to every result so the paper states exactly which broker produced it.
    """
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    for jar in sorted(jars_dir.glob("kafka_2.13-*.jar")):
        match = re.fullmatch(r"kafka_2\.13-(.+)\.jar", jar.name)
        if match and not match.group(1).endswith(("-sources", "-javadoc", "-test")):
            return match.group(1)
    raise RuntimeError(f"no kafka_2.13-<version>.jar in {jars_dir}; run ensure_kafka_jars()")


def java_home() -> Path:
    """The Java installation to run Kafka with: ``$JAVA_HOME``, the Debian JDK 17, or PATH.

    Kafka 4.x needs Java 17+; the explicit Debian path wins over PATH because other tools
    (Spark's env) may put an older ``java`` first.
    """
    env_home = os.environ.get("JAVA_HOME")
    if env_home and (Path(env_home) / "bin" / "java").exists():
        return Path(env_home)
    if (DEFAULT_JAVA_HOME / "bin" / "java").exists():
        return DEFAULT_JAVA_HOME
    on_path = shutil.which("java")
    if on_path:
        return Path(on_path).resolve().parents[1]
    raise RuntimeError(
        "no Java found: set JAVA_HOME or install a JDK 17 (apt-get install openjdk-17-jdk-headless)"
    )


def java_executable() -> Path:
    """The ``java`` binary inside :func:`java_home`."""
    return java_home() / "bin" / "java"


def free_port() -> int:
    """A TCP port that is free on loopback right now (the OS picks it, so rarely reused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Can a server bind ``127.0.0.1:port`` now? Probed with SO_REUSEADDR, as Kafka binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding (22 chars).

    Same rule as Kafka's ``Uuid.randomUuid``: an id starting with ``-`` would read as a CLI
    flag, so such ids are drawn again. Avoids a second JVM start just for ``random-uuid``.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


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


def server_properties(
    *,
    node_id: int,
    port: int,
    controller_port: int,
    data_dir: Path,
    partitions_default: int,
    extra: dict[str, str] | None = None,
    voters: str | None = None,
) -> dict[str, str]:
    """The broker's ``server.properties`` as a dict.

    Combined broker+controller with a dynamic single-voter quorum (the Kafka 4.x way:
    ``controller.quorum.bootstrap.servers`` + ``format --standalone``), or, with ``voters``
    (``id@host:port,...``), one node of a static multi-node quorum (``start_cluster``).
    Everything listens on 127.0.0.1 only. Replication factors are 1 for one node (a cluster
    passes its own in ``extra``), and the initial rebalance delay is 0 because a benchmark
    should not wait 3 s for a consumer group.
    """
    quorum = (
        {"controller.quorum.voters": voters}
        if voters
        else {"controller.quorum.bootstrap.servers": f"{LOOPBACK}:{controller_port}"}
    )
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        **quorum,
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": (
            f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(partitions_default),
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        # 50 offsets partitions (the default) make the first consumer group wait while the
        # broker creates them all; one node and a handful of groups need far fewer.
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    props.update(extra or {})
    return props


def _write_properties(path: Path, props: dict[str, str]) -> None:
    lines = [f"{key}={value}" for key, value in props.items()]
    path.write_text("# written by vitalstream.broker\n" + "\n".join(lines) + "\n")


def _java_cmd(jars_dir: Path, work_dir: Path, main: str, *args: str, marker: str = "") -> list[str]:
    """A ``java`` command line with the broker's classpath and logging (to work_dir/logs)."""
    if not LOG4J2_CONFIG.exists():
        raise RuntimeError(f"missing {LOG4J2_CONFIG}: the broker would log nowhere")
    cmd = [str(java_executable()), *JVM_OPTS]
    if marker:
        cmd.append(f"-D{MARKER_PROPERTY}={marker}")
    cmd += [
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dkafka.logs.dir={work_dir / 'logs'}",
        "-cp",
        f"{jars_dir}/*",
        main,
        *args,
    ]
    return cmd


def format_storage(
    jars_dir: Path, work_dir: Path, config: Path, cluster_id: str, *, standalone: bool = True
) -> None:
    """Format the KRaft log dir (``kafka-storage.sh format``), mandatory in 4.x.

    ``--standalone`` seeds the dynamic quorum with this node as the only voter; a node of a
    static quorum (``controller.quorum.voters``) is formatted without it, every node with the
    same cluster id. Without a format step the broker refuses to start at all.
    """
    flags = ["--standalone"] if standalone else []
    cmd = _java_cmd(
        jars_dir, work_dir, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(config), *flags
    )
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            f"Kafka storage format failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _admin(bootstrap: str, timeout: float) -> Any:
    """A confluent_kafka AdminClient (imported lazily: the watchdog does not need librdkafka)."""
    from confluent_kafka.admin import AdminClient

    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "socket.timeout.ms": int(timeout * 1000),
            "log_level": 3,  # errors only: connection-refused chatter while polling is expected
        }
    )


def _metadata_ready(bootstrap: str) -> bool:
    """True once the broker answers a metadata request with itself as a live broker."""
    from confluent_kafka import KafkaException

    admin = _admin(bootstrap, 2.0)
    try:
        metadata = admin.list_topics(timeout=2)
    except KafkaException:
        return False
    return len(metadata.brokers) > 0


class BrokerStartError(RuntimeError):
    """The broker did not become ready; the message holds the tail of its logs."""

    def __init__(self, message: str, *, port_clash: bool = False) -> None:
        super().__init__(message)
        self.port_clash = port_clash


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
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            logs = _tail(handle.log_file) + "\n" + _tail(handle.work_dir / _STDOUT_NAME)
            raise BrokerStartError(
                f"Kafka broker exited with code {proc.returncode} during start-up:\n{logs}",
                port_clash=_bind_failed(handle),
            )
        if _port_open(handle.port) and _metadata_ready(handle.bootstrap_servers):
            return
        time.sleep(0.2)
    stop(handle, timeout=5)
    raise BrokerStartError(
        f"Kafka broker not ready after {timeout:.0f} s; log tail:\n{_tail(handle.log_file)}"
    )


def _pick_port(avoid: int | None = None) -> int:
    """A free loopback port, probed once more the way Kafka will bind it.

    The probe skips a port taken since it was picked here instead of in a JVM that fails
    seconds later; it narrows but cannot close that window, so a bind failure at start-up
    is also retried on new ports.
    """
    for _ in range(20):
        port = free_port()
        if port != avoid and port_is_free(port):
            return port
    raise BrokerStartError("no free loopback port found")


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
            listener_port = port or _pick_port()
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
            if watch_parent is not None:
                try:
                    watchdog = start_watchdog(watch_parent, handle)
                except BaseException:
                    stop(handle, timeout=5)
                    raise
                handle = replace(handle, watchdog_pid=watchdog)
            return handle
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
        controller_port = _pick_port(avoid=port)
        data_dir = work_dir / _DATA_DIR_NAME
        for stale in (data_dir, work_dir / "logs"):  # a fresh broker, and logs of this one only
            shutil.rmtree(stale, ignore_errors=True)
        config = work_dir / "server.properties"
        props = server_properties(
            node_id=node_id,
            port=port,
            controller_port=controller_port,
            data_dir=data_dir,
            partitions_default=partitions_default,
            extra=self.extra_properties,
        )
        _write_properties(config, props)
        format_storage(jars_dir, work_dir, config, random_cluster_id())
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
        logs at start-up, as after a crash. For fault experiments (vitalstream.faults)."""
        if _process_if_ours(handle.pid, _broker_markers(handle.tag)) is not None:
            raise BrokerStartError(f"broker {handle.tag} is still running")
        if handle.watchdog_pid:  # it watched the old process
            kill_group(handle.watchdog_pid, handle.watchdog_pid, WATCHDOG_MARKERS, timeout=5.0)
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
        ``listener_ports`` fixes the client ports (a profile names them, vitalstream.cluster);
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
            port = clients[i] if clients else _pick_port()
            controller_port = _pick_port(avoid=port)
            while controller_port in clients:
                controller_port = _pick_port(avoid=port)
            ports.append((port, controller_port))
        voters = ",".join(f"{i + 1}@{LOOPBACK}:{c}" for i, (_, c) in enumerate(ports))
        replication = str(min(nodes, 3))
        extra = {
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": str(min(min_insync, nodes)),
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": str(min(min_insync, nodes)),
            "default.replication.factor": replication,
            "min.insync.replicas": str(min(min_insync, nodes)),
        } | self.extra_properties
        cluster_id = random_cluster_id()
        launched: list[tuple[subprocess.Popen[bytes], BrokerHandle]] = []
        try:
            for i, (port, controller_port) in enumerate(ports):
                node_dir = work_dir / f"node{i + 1}"
                node_dir.mkdir(parents=True, exist_ok=True)
                data_dir = node_dir / _DATA_DIR_NAME
                for stale in (data_dir, node_dir / "logs"):
                    shutil.rmtree(stale, ignore_errors=True)
                config = node_dir / "server.properties"
                props = server_properties(
                    node_id=i + 1,
                    port=port,
                    controller_port=controller_port,
                    data_dir=data_dir,
                    partitions_default=1,
                    extra=extra,
                    voters=voters,
                )
                _write_properties(config, props)
                format_storage(jars_dir, node_dir, config, cluster_id, standalone=False)
                launched.append(
                    _launch(jars_dir, node_dir, port, controller_port, f"{marker}/node{i + 1}")
                )
            for proc, handle in launched:
                _wait_ready(proc, handle, self.ready_timeout)
            handles = [handle for _, handle in launched]
            for i, handle in enumerate(handles):
                handles[i] = _watched(handle, watch_parent)
        except BaseException:
            for _, handle in launched:
                stop(handle, timeout=5)
            raise
        return handles


def _watched(handle: BrokerHandle, watch_parent: int | None) -> BrokerHandle:
    """``handle`` with a watchdog that stops it when ``watch_parent`` dies (None: as is)."""
    if watch_parent is None:
        return handle
    return replace(handle, watchdog_pid=start_watchdog(watch_parent, handle))


def _launch(
    jars_dir: Path, work_dir: Path, port: int, controller_port: int, marker: str, fresh: bool = True
) -> tuple[subprocess.Popen[bytes], BrokerHandle]:
    """Run the broker JVM of ``work_dir/server.properties`` in its own session (not yet
    ready). A restart (``fresh`` False) appends to the stdout file instead of replacing it."""
    config = work_dir / "server.properties"
    cmd = _java_cmd(jars_dir, work_dir, KAFKA_MAIN, str(config), marker=marker)
    with (work_dir / _STDOUT_NAME).open("wb" if fresh else "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    handle = BrokerHandle(
        pid=proc.pid,
        pgid=proc.pid,  # start_new_session: the JVM leads its own process group
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


# --------------------------------------------------------------------------- stopping


def _broker_markers(tag: str) -> tuple[str, ...]:
    """argv element that identifies the broker JVM started with ``tag``."""
    return (f"-D{MARKER_PROPERTY}={tag}",)


def _process_if_ours(pid: int | None, markers: tuple[str, ...]) -> psutil.Process | None:
    """The live process ``pid`` if every one of ``markers`` is an element of its argv.

    The check guards against PID reuse: a state file may name a PID that, after a reboot or
    a long time, belongs to an unrelated process that must not be killed. Whole argv elements
    are compared, so tag ``/tmp/a`` never matches a broker tagged ``/tmp/ab``.
    """
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return None
        argv = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc if all(marker in argv for marker in markers) else None


def _reap(pid: int) -> None:
    """Collect the exit status of a child we launched, so it does not linger as a zombie."""
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _gone(proc: psutil.Process) -> bool:
    """Exited, or a zombie: an orphan's zombie may never be reaped if PID 1 does not reap."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait for ``proc`` to exit, reaping it if it is our child."""
    child = _CHILDREN.get(proc.pid)
    if child is not None:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        _CHILDREN.pop(proc.pid, None)
        return True
    deadline = time.monotonic() + timeout
    while not _gone(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_group(pid: int, pgid: int, markers: tuple[str, ...], timeout: float = 30.0) -> bool:
    """SIGTERM process group ``pgid`` (led by ``pid``), then SIGKILL it after ``timeout``.

    Kafka shuts down cleanly on SIGTERM (flushes logs, closes the quorum), in under a second
    when idle; SIGKILL is the fallback for a wedged JVM. Returns True if something was stopped.
    """
    proc = _process_if_ours(pid, markers)
    if proc is None:
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        if _wait_gone(proc, wait):
            break
    _reap(pid)
    return True


def crash(handle: BrokerHandle) -> None:
    """Kill a broker with SIGKILL: no clean shutdown, no flush, as a crash would (faults)."""
    if _process_if_ours(handle.pid, _broker_markers(handle.tag)) is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(handle.pgid, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        _wait_gone(psutil.Process(handle.pid), 10.0)
    _reap(handle.pid)


def cluster_bootstrap(handles: list[BrokerHandle]) -> str:
    """``bootstrap.servers`` naming every node of a cluster."""
    return ",".join(h.bootstrap_servers for h in handles)


def partition_leaders(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """Leader node id of every partition of ``topic``."""
    admin = _admin(bootstrap, timeout)
    metadata = admin.list_topics(topic=topic, timeout=timeout)
    return {p: meta.leader for p, meta in metadata.topics[topic].partitions.items()}


def stop(handle: BrokerHandle, timeout: float = 30.0) -> None:
    """Stop a broker and its watchdog; safe to call twice or on an already dead broker."""
    if handle.watchdog_pid:
        kill_group(handle.watchdog_pid, handle.watchdog_pid, WATCHDOG_MARKERS, timeout=5.0)
    kill_group(handle.pid, handle.pgid, _broker_markers(handle.tag), timeout)


# --------------------------------------------------------------------------- topics


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    replication: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
    *,
    exists_ok: bool = True,
) -> None:
    """Create a topic and wait until every partition has a leader.

    The AdminClient stays referenced (``admin``) until its future resolved: librdkafka may
    hang or crash when the client is garbage-collected with a request in flight. Waiting for
    leaders avoids the first produce after creation failing with UNKNOWN_TOPIC_OR_PART.
    """
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    admin = _admin(bootstrap, timeout)
    topic = NewTopic(
        name, num_partitions=partitions, replication_factor=replication, config=dict(config or {})
    )
    futures = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)
    ignore = KafkaError.TOPIC_ALREADY_EXISTS if exists_ok else None
    # Read, never pop: the dict is the client's own map that its callback resolves.
    if not _await_admin_future(futures[name], timeout, ignore):
        existing = len(admin.list_topics(topic=name, timeout=timeout).topics[name].partitions)
        if existing != partitions:
            raise ValueError(f"topic {name!r} exists with {existing} partitions, not {partitions}")
    _wait_for(
        lambda: _leaders_ready(admin, name, partitions),
        timeout,
        f"topic {name!r}: partitions without a leader after {timeout} s",
    )


def _await_admin_future(future: Any, timeout: float, ignore: int | None) -> bool:
    """Wait for an AdminClient future; False if it failed with the ignorable error ``ignore``.

    ``exception()`` instead of ``result()``: an ignored error is never raised, so it gets no
    traceback whose frames would form a cycle future -> exception -> frames -> future and keep
    the AdminClient (with its librdkafka threads, which log connection errors once the broker
    stopped) alive until some later GC pass.
    """
    from confluent_kafka import KafkaException

    error = future.exception(timeout=timeout)
    if error is None:
        return True
    if ignore is not None and isinstance(error, KafkaException) and error.args[0].code() == ignore:
        return False
    raise error


def _leaders_ready(admin: Any, name: str, partitions: int) -> bool:
    meta = admin.list_topics(topic=name, timeout=5).topics.get(name)
    if meta is None or meta.error is not None:
        return False
    parts = meta.partitions.values()
    return len(parts) >= partitions and all(p.leader >= 0 for p in parts)


def _wait_for(check: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.1)


def delete_topic(
    bootstrap: str, name: str, timeout: float = 30.0, *, missing_ok: bool = True
) -> None:
    """Delete a topic and wait until the broker no longer lists it (so it can be recreated)."""
    from confluent_kafka import KafkaError

    admin = _admin(bootstrap, timeout)
    futures = admin.delete_topics([name], operation_timeout=timeout, request_timeout=timeout)
    ignore = KafkaError.UNKNOWN_TOPIC_OR_PART if missing_ok else None
    _await_admin_future(futures[name], timeout, ignore)
    _wait_for(
        lambda: name not in admin.list_topics(timeout=5).topics,
        timeout,
        f"topic {name!r} still listed {timeout} s after deletion",
    )


def list_topics(bootstrap: str, timeout: float = 10.0) -> list[str]:
    """Names of the non-internal topics on the broker."""
    admin = _admin(bootstrap, timeout)
    return sorted(t for t in admin.list_topics(timeout=timeout).topics if not t.startswith("__"))


def topic_end_offsets(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """High watermark of every partition of ``topic``: ``{partition: end offset}``.

    The sum is the number of records ever written (no compaction/retention in a run), which
    is how a consumer knows it has read everything. A consumer (not the AdminClient) is used
    because ``get_watermark_offsets`` is the direct, uncached way to read them; it joins no
    group, so it disturbs no one.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"vitalstream-watermarks-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        meta = consumer.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KeyError(f"topic {topic!r} not found on {bootstrap}: {meta and meta.error}")
        offsets = {}
        for partition in sorted(meta.partitions):
            tp = TopicPartition(topic, partition)
            _low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            offsets[partition] = int(high)
        return offsets
    finally:
        consumer.close()


# --------------------------------------------------------------------------- watchdog


def start_watchdog(parent_pid: int, handle: BrokerHandle) -> int:
    """Launch the detached watchdog that kills ``handle``'s broker when ``parent_pid`` dies.

    It runs in its own session so that neither a Ctrl-C to the parent's terminal nor the
    death of the parent's process group takes it down before it did its job. The parent's
    creation time is read here, not in the watchdog: the parent may die while the watchdog's
    interpreter is still starting, and its PID could then already name another process.
    """
    try:
        parent_created = psutil.Process(parent_pid).create_time()
    except psutil.NoSuchProcess:
        parent_created = -1.0  # already dead: the watchdog stops the broker at once
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SCRIPTS_DIR), env.get("PYTHONPATH", "")) if p
    )
    cmd = [sys.executable, "-m", "vitalstream.broker", "watchdog"]
    cmd += ["--parent", str(parent_pid), "--parent-created", repr(parent_created)]
    cmd += ["--pid", str(handle.pid), "--pgid", str(handle.pgid), "--tag", handle.tag]
    with (handle.work_dir / "watchdog.log").open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=handle.work_dir,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _parent_alive(parent_pid: int, parent_created: float) -> bool:
    """Alive, not a zombie, and the same process (a recycled PID has another creation time)."""
    try:
        proc = psutil.Process(parent_pid)
        same = abs(proc.create_time() - parent_created) < 0.05
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def watchdog(
    parent_pid: int,
    parent_created: float,
    pid: int,
    pgid: int,
    tag: str,
    poll: float = WATCHDOG_POLL_S,
) -> int:
    """Poll until the parent dies (then stop the broker) or the broker is gone (then exit).

    Polling beats prctl(PR_SET_PDEATHSIG): it works whatever process launched the broker and
    also after ``kill -9`` of a parent that is not the broker's direct parent.
    """
    markers = _broker_markers(tag)
    print(f"watching parent {parent_pid} for broker pid {pid}", flush=True)
    while _process_if_ours(pid, markers) is not None:
        if not _parent_alive(parent_pid, parent_created):
            print(f"parent {parent_pid} died: stopping broker pid {pid}", flush=True)
            kill_group(pid, pgid, markers, timeout=10.0)
            return 0
        time.sleep(poll)
    print(f"broker pid {pid} is gone: watchdog exits", flush=True)
    return 0


# --------------------------------------------------------------------------- workflow state


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_state(state_file: Path) -> dict[str, Any]:
    """The JSON written by :func:`start_for_workflow`."""
    return json.loads(Path(state_file).read_text())


def read_bootstrap(state_file: Path) -> str:
    """``bootstrap.servers`` of the workflow's broker, for producers, consumers and Spark."""
    return str(read_state(state_file)["bootstrap_servers"])


def start_for_workflow(
    state_file: Path, work_dir: Path, parent_pid: int | None, **start_kwargs: Any
) -> dict[str, Any]:
    """Start the workflow's broker, watched by ``parent_pid``, and record it in ``state_file``.

    ``parent_pid`` is normally the Snakemake main process (``os.getpid()`` in ``onstart``);
    None starts no watchdog, for a broker that must outlive its launcher until ``stop``.

    A state file left by a crashed run is stopped first, so the workflow never ends up with
    two brokers or a state file naming the wrong one.
    """
    state_file = Path(state_file)
    if state_file.exists():
        stop_from_state(state_file)
    handle = LocalBroker().start(work_dir, watch_parent=parent_pid, **start_kwargs)
    state = handle.to_state()
    _write_json_atomic(state_file, state)
    return state


def stop_from_state(state_file: Path, timeout: float = 30.0) -> bool:
    """Stop the broker and watchdog named in ``state_file`` and remove it; idempotent.

    Returns True if the file existed.
    """
    state_file = Path(state_file)
    try:
        state = read_state(state_file)
    except FileNotFoundError:
        return False
    except json.JSONDecodeError:
        state_file.unlink(missing_ok=True)
        return True
    stop(BrokerHandle.from_state(state), timeout=timeout)
    state_file.unlink(missing_ok=True)
    return True


def broker_status(state_file: Path) -> dict[str, Any]:
    """State plus liveness: is the JVM there, and does it answer metadata requests."""
    state = read_state(state_file)
    handle = BrokerHandle.from_state(state)
    alive = _process_if_ours(handle.pid, _broker_markers(handle.tag)) is not None
    ready = alive and _port_open(handle.port) and _metadata_ready(handle.bootstrap_servers)
    watchdog_alive = _process_if_ours(handle.watchdog_pid, WATCHDOG_MARKERS) is not None
    return {**state, "alive": alive, "ready": ready, "watchdog_alive": watchdog_alive}


# --------------------------------------------------------------------------- CLI


def _cmd_start(args: argparse.Namespace) -> int:
    state = start_for_workflow(Path(args.state), Path(args.work_dir), parent_pid=args.parent)
    print(json.dumps(state, indent=2, sort_keys=True))
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    existed = stop_from_state(Path(args.state))
    print("stopped" if existed else f"no state file {args.state}: nothing to stop")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        status = broker_status(Path(args.state))
    except FileNotFoundError:
        print(f"no state file {args.state}: no broker")
        return 1
    print(json.dumps(status, indent=2, sort_keys=True))
    return 0 if status["ready"] else 1


def _cmd_watchdog(args: argparse.Namespace) -> int:
    return watchdog(args.parent, args.parent_created, args.pid, args.pgid, args.tag, poll=args.poll)


def register_cli(subparsers: Any) -> None:
    """Add ``broker {start,stop,status}`` to the package CLI (``python -m vitalstream``)."""
    parser = subparsers.add_parser("broker", help="run the local Kafka broker")
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)
    _add_actions(parser.add_subparsers(dest="broker_action"))


def _add_actions(actions: Any) -> None:
    """The start/stop/status subcommands, shared by the package CLI and this module's own."""
    start_p = actions.add_parser("start", help="start a broker and write its state file")
    start_p.add_argument("--state", required=True, help="JSON state file to write")
    start_p.add_argument("--work-dir", required=True, help="dir for config, data and logs")
    start_p.add_argument(
        "--parent", type=int, default=None, help="PID whose death kills the broker (watchdog)"
    )
    start_p.set_defaults(func=_cmd_start)

    stop_p = actions.add_parser("stop", help="stop the broker named in a state file")
    stop_p.add_argument("--state", required=True)
    stop_p.set_defaults(func=_cmd_stop)

    status_p = actions.add_parser("status", help="print state and liveness; exit 1 if down")
    status_p.add_argument("--state", required=True)
    status_p.set_defaults(func=_cmd_status)


def _add_watchdog(actions: Any) -> None:
    parser = actions.add_parser("watchdog", help="(internal) stop a broker when PID dies")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--parent-created", type=float, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--pgid", type=int, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--poll", type=float, default=WATCHDOG_POLL_S)
    parser.set_defaults(func=_cmd_watchdog)


def main(argv: list[str] | None = None) -> int:
    """``python -m vitalstream.broker {start,stop,status,watchdog} ...``.

    The watchdog is launched this way (not through ``python -m vitalstream``) so that it
    imports nothing but this module and psutil: it must start fast and never fail to import.
    """
    parser = argparse.ArgumentParser(prog="python -m vitalstream.broker")
    actions = parser.add_subparsers(dest="command", required=True)
    _add_actions(actions)
    _add_watchdog(actions)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
