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
* Kafka: a static-quorum KRaft cluster of three combined nodes (vitalstream.services.broker's
  ``start_cluster``, as the fault experiments use it), so topics can be replicated three times.

The process care is services.supervise's, as for the broker: a leaked JVM keeps ports and heap
and would skew the next measurement. Each daemon runs in its own process group (its executors
inherit it), carries a marker ``-Dvitalstream.spark=<tag>/<role>`` in its command line, and is
only ever stopped after that marker was found in the live process, so a stale state file whose
PIDs were reused never kills someone else's process.

CLI: ``python -m vitalstream cluster start --work-dir DIR --state FILE`` starts both on the
profile's ports (or ``--free-ports``) and writes the state JSON (``bootstrap_servers``,
``spark_master`` and the ``--config`` overrides for Snakemake); ``cluster stop --state FILE``
stops everything it names; ``cluster status --state FILE`` checks it.

Not for: the workflow's own single broker and local-mode Spark (services.broker,
services.sparkenv), nor real clusters on other hosts (their addresses go in a profile).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shlex
import shutil
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

from vitalstream.core.cliargs import memory_size, port_list, positive_int, tcp_port, writable_dir
from vitalstream.core.paths import resource
from vitalstream.services import broker, jars, servicecli, supervise, topics
from vitalstream.services.supervise import LOOPBACK

PROFILE = resource("config/profiles/cluster.yaml")
MARKER_PROPERTY = "vitalstream.spark"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# The daemons only schedule; the work happens in the executors (spark.executor.memory).
DAEMON_MEMORY = "256m"
KAFKA_NODES = 3
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


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
        """The argv element that identifies this daemon's JVM (see :func:`stop_daemon`)."""
        return supervise.marker_arg(MARKER_PROPERTY, f"{self.tag}/{self.role}")

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


def _daemon_env(tag: str, role: str, conf_dir: Path) -> dict[str, str]:
    """Environment of a daemon: Spark on loopback, small daemon heaps, the marker, an empty
    conf dir (no stray spark-defaults.conf of the machine applies), Java 17.

    Executors inherit the worker's environment, so SPARK_LOCAL_IP also binds them to
    127.0.0.1 and they reach the driver there.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_"))}
    marker = supervise.marker_arg(MARKER_PROPERTY, f"{tag}/{role}")
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_PUBLIC_DNS=LOOPBACK,
        SPARK_DAEMON_MEMORY=DAEMON_MEMORY,
        SPARK_DAEMON_JAVA_OPTS=f"{marker} -XX:-UsePerfData",
        JAVA_HOME=str(jars.java_home()),
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
    env = _daemon_env(tag, role, conf_dir)
    proc = supervise.spawn(cmd, output=daemon.log_file, cwd=work_dir, env=env)
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
            code = supervise.exit_code(proc)
            if code is not None:
                raise ClusterError(
                    f"Spark {daemon.role} exited with code {code} during start-up:\n"
                    f"{supervise.tail(daemon.log_file, 30)}"
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
        if fixed is not None and not supervise.port_is_free(fixed):
            raise ClusterError(f"port {fixed} is already in use on {LOOPBACK}")
    port = port or supervise.pick_port()
    webui_port = webui_port or supervise.pick_port(avoid=[port])
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
            worker_port = supervise.pick_port(avoid=taken)
            worker_webui = supervise.pick_port(avoid=[*taken, worker_port])
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
    marker is not in the command line yet then; see supervise.kill_child)."""
    supervise.kill_child(proc)
    stop_daemon(daemon, timeout=5)


def stop_daemon(daemon: SparkDaemon, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the daemon's process group (a worker's executors are in it), SIGKILL it after
    ``timeout``, then kill any descendant that left the group. Returns True if it was running.

    Descendants are listed while the daemon is verified ours (its marker is in its command
    line); psutil refuses to signal a listed process whose PID was since reused.
    """
    proc = supervise.process_if_ours(daemon.pid, (daemon.marker,))
    if proc is None:
        return False
    try:
        descendants = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    supervise.kill_group(daemon.pid, daemon.pgid, (daemon.marker,), timeout)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(descendants, timeout=10)
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
    """A KRaft cluster of ``nodes`` nodes on loopback (vitalstream.services.broker), on ``ports`` or
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
    """Record ``cluster`` in ``state_file`` (atomically); returns what was written."""
    state = cluster.to_state()
    supervise.write_state(state_file, state)
    return state


def stop_from_state(state_file: Path, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop whatever ``state_file`` names and remove it; idempotent. True if it existed."""
    return supervise.stop_from_state(
        state_file, lambda state: stop(LoopbackCluster.from_state(state), timeout)
    )


def status(state_file: Path) -> dict[str, Any]:
    """The state plus what answers now: the master's workers and applications, the brokers'
    metadata."""
    state = supervise.read_state(state_file)
    cluster = LoopbackCluster.from_state(state)
    try:
        master = master_state(cluster.spark.master.webui_port)
    except (OSError, urllib.error.URLError, ValueError):
        master = {}
    brokers_up = topics.live_brokers(cluster.bootstrap_servers, timeout=5.0)
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
        kafka_ports = list(args.kafka_ports)
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
    except (ClusterError, supervise.StartError) as err:
        # Whatever had started is stopped again by start(); a taken port is the usual cause.
        print(f"cluster start failed: {err}", file=sys.stderr)
        return 1
    state = write_state(state_file, cluster)
    servicecli.print_state(state)
    config_args = " ".join(shlex.quote(a) for a in cluster.snakemake_config_args())
    print(
        "\nRun the workflow against it:\n  snakemake <targets> --cores all --configfile "
        f"config/profiles/cluster.yaml --config {config_args}\n"
        f"Stop it: python -m vitalstream cluster stop --state {shlex.quote(str(state_file))}"
    )
    return 0


def _start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-dir", required=True, type=writable_dir, help="dir for data, work dirs and logs"
    )
    parser.add_argument(
        "--profile",
        default=str(PROFILE),
        help="profile whose ports to use (default: config/profiles/cluster.yaml)",
    )
    parser.add_argument(
        "--free-ports", action="store_true", help="free ports instead of the profile's"
    )
    parser.add_argument(
        "--kafka-ports", type=port_list, help="comma-separated listener ports of the 3 nodes"
    )
    parser.add_argument("--spark-port", type=tcp_port, help="the master's port")
    parser.add_argument(
        "--webui-port", type=tcp_port, help="the master's web UI port (default free)"
    )
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--worker-cores", type=positive_int, default=1)
    parser.add_argument("--worker-memory", type=memory_size, default="2g")


COMMANDS = servicecli.ServiceCommands(
    command="cluster",
    noun="cluster",
    help="run a Spark standalone cluster and a 3-broker Kafka on loopback",
    start=_cmd_start,
    add_start_arguments=_start_arguments,
    stop=stop_from_state,
    status=status,
    start_help="start both and write the state file (stopping the one it names, if any)",
    stop_help="stop everything a state file names",
)


def register_cli(subparsers: Any) -> None:
    """Add ``cluster {start,stop,status}`` to the package CLI (``python -m vitalstream``)."""
    servicecli.register(subparsers, COMMANDS)
