"""A scale-out stack on loopback: a Spark standalone master with workers, and a KRaft cluster.

Why this exists: the ``cluster`` profile (config/profiles/cluster.yaml) runs the unchanged
pipeline against a Spark standalone master (``spark.master``) and an external multi-broker
Kafka cluster (``kafka.bootstrap_servers``), where the default profile runs Spark in local mode
beside a single broker the workflow starts itself. Scaling out must not need new code, and
that claim is only worth something if it is tested: so this module brings such a cluster up on
one machine, from what the repository already has, and the integration test
(tests/integration/test_cluster.py) runs the same condition through it and in local mode and
compares the alerts. Users with real hosts need none of this; they edit the profile.

* Spark: a master and N workers from pyspark's own Spark distribution (its ``bin/spark-class``
  and ``jars/``; no Spark download), every daemon bound to 127.0.0.1, executors in separate
  JVMs started by the workers. Ready once the master's web UI JSON (``/json/``) lists N ALIVE
  workers: a worker that is up but not registered would leave the application without cores.
* Kafka: a static-quorum KRaft cluster of three combined nodes (vitalstream.broker's
  ``start_cluster``, as the fault experiments use it), so topics can be replicated three times.

Why so much process care (as in vitalstream.broker): a leaked JVM keeps ports and heap and
would skew the next measurement. Each daemon runs in its own process group (its executors
inherit it), carries a marker ``-Dvitalstream.spark=<tag>/<role>`` in its command line, and is
only ever stopped after that marker was found in the live process, so a stale state file whose
PIDs were reused never kills someone else's process.

CLI: ``python -m vitalstream cluster start --work-dir DIR --state FILE`` starts both on the
profile's ports (or ``--free-ports``) and writes the state JSON (``bootstrap_servers``,
``spark_master`` and the ``--config`` overrides for Snakemake); ``cluster stop --state FILE``
stops everything it names; ``cluster status --state FILE`` checks it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import yaml

from vitalstream import broker
from vitalstream.config import REPO_ROOT

LOOPBACK = broker.LOOPBACK
PROFILE = REPO_ROOT / "config" / "profiles" / "cluster.yaml"
MARKER_PROPERTY = "vitalstream.spark"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# The daemons only schedule; the work happens in the executors (spark.executor.memory).
DAEMON_MEMORY = "256m"
KAFKA_NODES = 3
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0

# Popen objects of the daemons this process launched, so that stop() can reap them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ClusterError(RuntimeError):
    """The loopback cluster could not be started; the message holds the daemon's log tail."""


def spark_home() -> Path:
    """pyspark's install: a complete Spark distribution (``bin/spark-class``, ``jars/``).

    The daemons run from it so that master, workers, executors and driver are one Spark
    version, the one the driver already uses; no second Spark is downloaded or configured.
    """
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").exists():
        raise ClusterError(f"no bin/spark-class in {home}: pyspark's install is incomplete")
    return home


# --------------------------------------------------------------------------- Spark daemons


@dataclass(frozen=True)
class SparkDaemon:
    """One running master or worker JVM (also saved to the state file)."""

    role: str  # "master" or "worker<i>"
    pid: int
    pgid: int
    port: int
    webui_port: int
    work_dir: Path
    tag: str

    @property
    def marker(self) -> str:
        """The argv element that identifies this daemon's JVM (see :func:`_daemon_process`)."""
        return f"-D{MARKER_PROPERTY}={self.tag}/{self.role}"

    @property
    def log_file(self) -> Path:
        """stdout and stderr of the daemon (Spark's default log4j profile logs to the console)."""
        return self.work_dir / f"{self.role}.out"

    def to_state(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "pid": self.pid,
            "pgid": self.pgid,
            "port": self.port,
            "webui_port": self.webui_port,
            "work_dir": str(self.work_dir),
            "tag": self.tag,
            "log_file": str(self.log_file),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SparkDaemon:
        return cls(
            role=str(state["role"]),
            pid=int(state["pid"]),
            pgid=int(state["pgid"]),
            port=int(state["port"]),
            webui_port=int(state["webui_port"]),
            work_dir=Path(state["work_dir"]),
            tag=str(state["tag"]),
        )


@dataclass(frozen=True)
class SparkStandalone:
    """A running standalone master and its workers."""

    master: SparkDaemon
    workers: tuple[SparkDaemon, ...]

    @property
    def master_url(self) -> str:
        """The ``spark.master`` applications connect to."""
        return f"spark://{LOOPBACK}:{self.master.port}"

    @property
    def webui_url(self) -> str:
        return f"http://{LOOPBACK}:{self.master.webui_port}"


def master_state(webui_port: int, timeout: float = 2.0) -> dict[str, Any]:
    """The master's own account of the cluster: its web UI's ``/json/`` (workers with their
    state, running and completed applications)."""
    url = f"http://{LOOPBACK}:{webui_port}/json/"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def alive_workers(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Workers the master counts as ALIVE (a dead worker stays listed as DEAD for a while)."""
    return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


def _daemon_env(tag: str, role: str, conf_dir: Path) -> dict[str, str]:
    """Environment of a daemon: Spark on loopback, small daemon heaps, the marker, an empty
    conf dir (no stray spark-defaults.conf of the machine applies), Java 17.

    Executors inherit the worker's environment, so SPARK_LOCAL_IP also binds them to
    127.0.0.1 and they reach the driver there.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_PUBLIC_DNS=LOOPBACK,
        SPARK_DAEMON_MEMORY=DAEMON_MEMORY,
        SPARK_DAEMON_JAVA_OPTS=f"-D{MARKER_PROPERTY}={tag}/{role} -XX:-UsePerfData",
        JAVA_HOME=str(broker.java_home()),
    )
    return env


def _launch_daemon(
    role: str,
    main_class: str,
    args: list[str],
    port: int,
    webui_port: int,
    work_dir: Path,
    tag: str,
) -> tuple[subprocess.Popen[bytes], SparkDaemon]:
    """Run ``spark-class main_class args`` in its own session (not yet ready).

    ``spark-class`` builds the java command line (Spark's module options for Java 17) and
    execs it, so the PID is the JVM's and its process group holds the executors too.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    conf_dir = work_dir.parent / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    daemon = SparkDaemon(role, 0, 0, port, webui_port, work_dir, tag)
    cmd = [str(spark_home() / "bin" / "spark-class"), main_class, *args]
    with daemon.log_file.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
            env=_daemon_env(tag, role, conf_dir),
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc, SparkDaemon(role, proc.pid, proc.pid, port, webui_port, work_dir, tag)


def _wait_master(
    procs: Sequence[tuple[subprocess.Popen[bytes], SparkDaemon]],
    webui_port: int,
    workers: int,
    timeout: float,
) -> dict[str, Any]:
    """Block until the master's JSON shows ``workers`` ALIVE workers (0: the master is up);
    raise with the log tail of a daemon that exited meanwhile."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        for proc, daemon in procs:
            if proc.poll() is not None:
                raise ClusterError(
                    f"Spark {daemon.role} exited with code {proc.returncode} during start-up:\n"
                    f"{_tail(daemon.log_file)}"
                )
        try:
            state = master_state(webui_port)
        except (OSError, urllib.error.URLError, ValueError) as err:
            last_error = str(err)
        else:
            if state.get("status") == "ALIVE" and len(alive_workers(state)) >= workers:
                return state
            last_error = f"status {state.get('status')}, {len(alive_workers(state))} workers"
        time.sleep(0.5)
    raise ClusterError(
        f"Spark master not ready with {workers} workers after {timeout:.0f} s ({last_error})"
    )


def _free_port(avoid: Sequence[int] = ()) -> int:
    for _ in range(50):
        port = broker.free_port()
        if port not in avoid and broker.port_is_free(port):
            return port
    raise ClusterError("no free loopback port found")


def start_spark(
    work_dir: Path,
    workers: int = 2,
    *,
    port: int | None = None,
    webui_port: int | None = None,
    worker_cores: int = 1,
    worker_memory: str = "2g",
    tag: str = "",
    ready_timeout: float = READY_TIMEOUT_S,
) -> SparkStandalone:
    """Start a standalone master and ``workers`` workers on loopback, each in its own
    ``work_dir/<role>`` (executor work dirs, with their logs and fetched jars, live under
    ``work_dir/worker<i>/work``); return once all workers are registered and ALIVE.

    ``port`` and ``webui_port`` of the master default to free ones; workers always get free
    ports (applications only need the master's). Everything started is stopped again if
    start-up fails, also on Ctrl-C.
    """
    work_dir = Path(work_dir).resolve()
    marker = tag or str(work_dir)
    for fixed in (port, webui_port):
        if fixed is not None and not broker.port_is_free(fixed):
            raise ClusterError(f"port {fixed} is already in use on {LOOPBACK}")
    port = port or _free_port()
    webui_port = webui_port or _free_port(avoid=[port])
    launched: list[tuple[subprocess.Popen[bytes], SparkDaemon]] = []
    try:
        launched.append(
            _launch_daemon(
                "master",
                MASTER_CLASS,
                ["--host", LOOPBACK, "--port", str(port), "--webui-port", str(webui_port)],
                port,
                webui_port,
                work_dir / "master",
                marker,
            )
        )
        _wait_master(launched, webui_port, 0, ready_timeout)
        taken = [port, webui_port]
        for i in range(1, workers + 1):
            worker_port = _free_port(avoid=taken)
            worker_webui = _free_port(avoid=[*taken, worker_port])
            taken += [worker_port, worker_webui]
            worker_dir = work_dir / f"worker{i}"
            # A fresh cluster: no executor dirs (logs, fetched jars) of an earlier start.
            shutil.rmtree(worker_dir / "work", ignore_errors=True)
            args = ["--host", LOOPBACK, "--port", str(worker_port)]
            args += ["--webui-port", str(worker_webui), "--cores", str(worker_cores)]
            args += ["--memory", worker_memory, "--work-dir", str(worker_dir / "work")]
            args.append(f"spark://{LOOPBACK}:{port}")
            launched.append(
                _launch_daemon(
                    f"worker{i}",
                    WORKER_CLASS,
                    args,
                    worker_port,
                    worker_webui,
                    worker_dir,
                    marker,
                )
            )
        _wait_master(launched, webui_port, workers, ready_timeout)
    except BaseException:
        for proc, daemon in reversed(launched):
            _stop_launched(proc, daemon)
        raise
    daemons = [daemon for _, daemon in launched]
    return SparkStandalone(daemons[0], tuple(daemons[1:]))


def _stop_launched(proc: subprocess.Popen[bytes], daemon: SparkDaemon) -> None:
    """Stop a daemon this process launched, also before ``spark-class`` exec'ed the JVM (the
    marker is not in the command line yet then): an unreaped child's PID cannot be reused, so
    its process group is ours whatever its command line."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    _CHILDREN.pop(proc.pid, None)
    stop_daemon(daemon, timeout=5)


def _daemon_process(daemon: SparkDaemon) -> psutil.Process | None:
    """The live JVM of ``daemon``, if its command line still carries the daemon's marker (a
    reused PID belongs to someone else and is never signalled)."""
    try:
        proc = psutil.Process(daemon.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc if daemon.marker in proc.cmdline() else None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def stop_daemon(daemon: SparkDaemon, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the daemon's process group (a worker's executors are in it), SIGKILL it after
    ``timeout``, then kill any descendant that left the group. Returns True if it was running.

    Descendants are listed while the daemon is verified ours; psutil refuses to signal a
    listed process whose PID was since reused.
    """
    proc = _daemon_process(daemon)
    if proc is None:
        return False
    try:
        descendants = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    broker.kill_group(daemon.pid, daemon.pgid, (daemon.marker,), timeout)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(descendants, timeout=10)
    launched = _CHILDREN.pop(daemon.pid, None)
    if launched is not None:
        launched.poll()
    return True


def stop_spark(spark: SparkStandalone, timeout: float = STOP_TIMEOUT_S) -> None:
    """Workers first (each stops its executors), then the master."""
    for worker in spark.workers:
        stop_daemon(worker, timeout)
    stop_daemon(spark.master, timeout)


# --------------------------------------------------------------------------- Kafka


def start_kafka(
    work_dir: Path,
    nodes: int = KAFKA_NODES,
    *,
    ports: Sequence[int] | None = None,
    tag: str = "",
    watch_parent: int | None = None,
) -> list[broker.BrokerHandle]:
    """A KRaft cluster of ``nodes`` nodes on loopback (vitalstream.broker), on ``ports`` or
    free ones; topics default to min(nodes, 3) replicas, min.insync.replicas 2."""
    return broker.LocalBroker().start_cluster(
        work_dir, nodes, tag=tag, watch_parent=watch_parent, listener_ports=ports
    )


def stop_kafka(handles: Sequence[broker.BrokerHandle], timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop all nodes at once: one by one, the last nodes lose their quorum and each would
    wait out its controlled shutdown before the SIGKILL."""
    if not handles:
        return
    with concurrent.futures.ThreadPoolExecutor(len(handles)) as pool:
        list(pool.map(lambda h: broker.stop(h, timeout=timeout), handles))


# --------------------------------------------------------------------------- both


@dataclass(frozen=True)
class LoopbackCluster:
    """A standalone Spark cluster and a Kafka cluster, as the cluster profile expects them."""

    spark: SparkStandalone
    brokers: tuple[broker.BrokerHandle, ...]
    work_dir: Path

    @property
    def bootstrap_servers(self) -> str:
        return broker.cluster_bootstrap(list(self.brokers))

    @property
    def spark_master(self) -> str:
        return self.spark.master_url

    def config_overrides(self) -> dict[str, Any]:
        """What a Snakemake ``--config`` must set over the cluster profile to use this cluster
        (Snakemake merges nested values, so the profile's other settings stay)."""
        return {
            "kafka": {"bootstrap_servers": self.bootstrap_servers},
            "spark": {"conf": {"spark.master": self.spark_master}},
        }

    def snakemake_config_args(self) -> list[str]:
        """``--config`` arguments (KEY=YAML) for :meth:`config_overrides`."""
        return [f"{k}={json.dumps(v)}" for k, v in self.config_overrides().items()]

    def to_state(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "spark_master": self.spark_master,
            "spark_webui": self.spark.webui_url,
            "work_dir": str(self.work_dir),
            "config_overrides": self.config_overrides(),
            "snakemake_config_args": self.snakemake_config_args(),
            "kafka": [h.to_state() for h in self.brokers],
            "spark": {
                "master": self.spark.master.to_state(),
                "workers": [w.to_state() for w in self.spark.workers],
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LoopbackCluster:
        spark = SparkStandalone(
            SparkDaemon.from_state(state["spark"]["master"]),
            tuple(SparkDaemon.from_state(w) for w in state["spark"]["workers"]),
        )
        brokers = tuple(broker.BrokerHandle.from_state(h) for h in state["kafka"])
        return cls(spark, brokers, Path(state["work_dir"]))


def start(
    work_dir: Path,
    *,
    workers: int = 2,
    kafka_ports: Sequence[int] | None = None,
    spark_port: int | None = None,
    webui_port: int | None = None,
    worker_cores: int = 1,
    worker_memory: str = "2g",
    tag: str = "",
) -> LoopbackCluster:
    """Kafka (three nodes) in ``work_dir/kafka``, then Spark in ``work_dir/spark``; ports
    default to free ones. If Spark fails to start, the brokers are stopped again."""
    work_dir = Path(work_dir).resolve()
    marker = tag or f"cluster-{work_dir}"
    brokers = start_kafka(work_dir / "kafka", ports=kafka_ports, tag=f"{marker}/kafka")
    try:
        spark = start_spark(
            work_dir / "spark",
            workers,
            port=spark_port,
            webui_port=webui_port,
            worker_cores=worker_cores,
            worker_memory=worker_memory,
            tag=f"{marker}/spark",
        )
    except BaseException:
        stop_kafka(brokers, timeout=5)
        raise
    return LoopbackCluster(spark, tuple(brokers), work_dir)


def stop(cluster: LoopbackCluster, timeout: float = STOP_TIMEOUT_S) -> None:
    """Spark first (no executor is left polling a vanished broker), then Kafka."""
    stop_spark(cluster.spark, timeout)
    stop_kafka(cluster.brokers, timeout)


def write_state(state_file: Path, cluster: LoopbackCluster) -> dict[str, Any]:
    state = cluster.to_state()
    state_file = Path(state_file)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(f".{state_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(state_file)
    return state


def stop_from_state(state_file: Path, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop whatever ``state_file`` names and remove it; idempotent. True if it existed."""
    state_file = Path(state_file)
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        return False
    stop(LoopbackCluster.from_state(state), timeout)
    state_file.unlink(missing_ok=True)
    return True


def _brokers_up(bootstrap: str) -> int:
    """Nodes the cluster's metadata lists as live (0 when no node answers)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    try:
        return len(admin.list_topics(timeout=5).brokers)
    except KafkaException:
        return 0


def status(state_file: Path) -> dict[str, Any]:
    """The state plus what answers now: the master's workers and applications, the brokers'
    metadata."""
    state = json.loads(Path(state_file).read_text())
    cluster = LoopbackCluster.from_state(state)
    try:
        master = master_state(cluster.spark.master.webui_port)
    except (OSError, urllib.error.URLError, ValueError):
        master = {}
    brokers_up = _brokers_up(cluster.bootstrap_servers)
    return {
        **state,
        "spark_alive_workers": len(alive_workers(master)) if master else 0,
        "spark_applications": len(master.get("activeapps", []))
        + len(master.get("completedapps", [])),
        "kafka_brokers_up": brokers_up,
        "ready": bool(master)
        and len(alive_workers(master)) == len(cluster.spark.workers)
        and brokers_up == len(cluster.brokers),
    }


# --------------------------------------------------------------------------- profile ports


def profile_endpoints(profile: Path = PROFILE) -> tuple[list[int], int]:
    """The Kafka ports and the Spark master port the cluster profile names, so that the
    loopback cluster started with defaults is the one the unchanged profile points at.

    Refuses a profile whose hosts are not loopback: it names a real cluster, which this
    module must not impersonate.
    """
    config = yaml.safe_load(Path(profile).read_text())
    servers = str(config["kafka"]["bootstrap_servers"])
    master = str(config["spark"]["conf"]["spark.master"])
    kafka = [urlparse(f"kafka://{s.strip()}") for s in servers.split(",") if s.strip()]
    spark = urlparse(master)
    hosts = {u.hostname for u in [*kafka, spark]}
    if spark.scheme != "spark" or hosts - {LOOPBACK, "localhost"}:
        raise ClusterError(
            f"{profile} names {servers} and {master}, not 127.0.0.1: pass --free-ports or "
            "explicit --kafka-ports/--spark-port"
        )
    return [int(u.port or 9092) for u in kafka], int(spark.port or 7077)


# --------------------------------------------------------------------------- CLI


def _cmd_start(args: argparse.Namespace) -> int:
    state_file = Path(args.state)
    if state_file.exists():
        stop_from_state(state_file)
    kafka_ports: list[int] | None = None
    spark_port: int | None = None
    if not args.free_ports:
        kafka_ports, spark_port = profile_endpoints(Path(args.profile))
    if args.kafka_ports:
        kafka_ports = [int(p) for p in args.kafka_ports.split(",")]
    if args.spark_port:
        spark_port = args.spark_port
    try:
        cluster = start(
            Path(args.work_dir),
            workers=args.workers,
            kafka_ports=kafka_ports,
            spark_port=spark_port,
            webui_port=args.webui_port,
            worker_cores=args.worker_cores,
            worker_memory=args.worker_memory,
        )
    except (ClusterError, broker.BrokerStartError) as err:
        # Whatever had started is stopped again by start(); a taken port is the usual cause.
        print(f"cluster start failed: {err}", file=sys.stderr)
        return 1
    state = write_state(state_file, cluster)
    print(json.dumps(state, indent=2, sort_keys=True))
    config_args = " ".join(shlex.quote(a) for a in cluster.snakemake_config_args())
    print(
        "\nRun the workflow against it:\n  snakemake <targets> --cores all --configfile "
        f"config/profiles/cluster.yaml --config {config_args}\n"
        f"Stop it: python -m vitalstream cluster stop --state {shlex.quote(str(state_file))}"
    )
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    existed = stop_from_state(Path(args.state))
    print("stopped" if existed else f"no state file {args.state}: nothing to stop")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        report = status(Path(args.state))
    except FileNotFoundError:
        print(f"no state file {args.state}: no cluster")
        return 1
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["ready"] else 1


def register_cli(subparsers: Any) -> None:
    """Add ``cluster {start,stop,status}`` to the package CLI (``python -m vitalstream``)."""
    parser = subparsers.add_parser(
        "cluster", help="run a Spark standalone cluster and a 3-broker Kafka on loopback"
    )
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)
    actions = parser.add_subparsers(dest="cluster_action")

    start_p = actions.add_parser(
        "start", help="start both and write the state file (stopping the one it names, if any)"
    )
    start_p.add_argument("--work-dir", required=True, help="dir for data, work dirs and logs")
    start_p.add_argument("--state", required=True, help="JSON state file to write")
    start_p.add_argument(
        "--profile",
        default=str(PROFILE),
        help="profile whose ports to use (default: config/profiles/cluster.yaml)",
    )
    start_p.add_argument(
        "--free-ports", action="store_true", help="free ports instead of the profile's"
    )
    start_p.add_argument("--kafka-ports", help="comma-separated listener ports of the 3 nodes")
    start_p.add_argument("--spark-port", type=int, help="the master's port")
    start_p.add_argument("--webui-port", type=int, help="the master's web UI port (default free)")
    start_p.add_argument("--workers", type=int, default=2)
    start_p.add_argument("--worker-cores", type=int, default=1)
    start_p.add_argument("--worker-memory", default="2g")
    start_p.set_defaults(func=_cmd_start)

    stop_p = actions.add_parser("stop", help="stop everything a state file names")
    stop_p.add_argument("--state", required=True)
    stop_p.add_argument("--work-dir", help="ignored (the state file names everything)")
    stop_p.set_defaults(func=_cmd_stop)

    status_p = actions.add_parser("status", help="print state and liveness; exit 1 if not ready")
    status_p.add_argument("--state", required=True)
    status_p.set_defaults(func=_cmd_status)
