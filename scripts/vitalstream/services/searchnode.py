"""A real single-node OpenSearch 2.x, run as a local JVM process from Python.

Why this exists: the workflow indexes results into a search engine with the Elasticsearch REST
API, and, as for Kafka (``services.broker``), the numbers and behaviour must come from a real
node. The machines have no Docker and no OpenSearch tarball, only Maven Central, which holds the
server and its modules as plain jars. So ``envs/opensearch/pom.xml`` resolves them into a
git-ignored cache and a tiny launcher (``envs/opensearch/VitalStreamNode.java``, compiled with
the JDK's ``javac``) starts ``org.opensearch.node.Node`` with those modules as classpath plugins,
the way OpenSearch's own integration tests run nodes. HTTP listens on a free loopback port.

Process care is services.supervise's, as for the broker: each node JVM leads its own process
group, carries a marker ``-Dvitalstream.searchnode=<tag>`` so it is never confused with a
foreign process, and, when started for a long-lived parent such as the Snakemake main process,
is watched by a detached watchdog that stops it as soon as that parent dies.

A node over an existing work dir recovers its indices at start-up (OpenSearch's own
recovery); the workflow's node starts from an empty data dir instead (``start_for_workflow``
with ``clean_data``), so the index holds what this workflow run indexed and its disk use does
not grow from run to run.

Not for: the node's jars, launcher, ``opensearch.yml`` and java command line
(services.searchconfig), indexing a run's alerts (vitalstream.sinks.search, which talks to any
server with the same REST API), process supervision (services.supervise).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from http.client import HTTPException
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import positive_int, tcp_port, writable_dir
from vitalstream.services import searchconfig, servicecli, supervise
from vitalstream.services.searchconfig import CLUSTER_NAME, MARKER_PROPERTY, opensearch_version
from vitalstream.services.supervise import LOOPBACK, port_is_free

DEFAULT_HEAP_MB = 512

READY_TIMEOUT_S = 120.0
# argv elements that identify a node's watchdog (see supervise.start_watchdog)
WATCHDOG_MARKERS: tuple[str, ...] = supervise.watchdog_markers(MARKER_PROPERTY)
WATCHDOG_STOP_TIMEOUT_S = 30.0
START_ATTEMPTS = 3

_STDOUT_NAME = "node.out"
_LOG_NAME = f"{CLUSTER_NAME}.log"  # log4j2.properties: <path.logs>/<cluster name>.log


# --------------------------------------------------------------------------- HTTP


class NodeRequestError(RuntimeError):
    """The node answered with an HTTP error; ``status`` and ``body`` say what it objected to."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def request_json(
    url: str, method: str, path: str, body: Any = None, *, timeout: float = 30.0
) -> Any:
    """One REST call with the standard library (no client dependency for a few requests).

    ``body``: a dict/list is sent as JSON; a str/bytes as NDJSON (``_bulk``), which must end
    with a newline. Returns the decoded JSON answer; HTTP errors raise :class:`NodeRequestError`.
    """
    data: bytes | None = None
    headers = {"Accept": "application/json"}
    if isinstance(body, (str, bytes)):
        data = body.encode() if isinstance(body, str) else body
        headers["Content-Type"] = "application/x-ndjson"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    full = url.rstrip("/") + "/" + path.lstrip("/")
    req = urllib.request.Request(full, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = resp.read()
    except urllib.error.HTTPError as err:
        raise NodeRequestError(
            method, full, err.code, err.read().decode(errors="replace")
        ) from None
    return json.loads(payload) if payload else None


def _healthy(url: str, timeout: float = 5.0) -> bool:
    """Does the node answer cluster health with yellow or green (all primaries assigned)?"""
    path = f"_cluster/health?wait_for_status=yellow&timeout={max(1, int(timeout) - 1)}s"
    try:
        health = request_json(url, "GET", path, timeout=timeout)
    except (OSError, HTTPException, NodeRequestError, ValueError):  # refused, 408/503, cut off
        return False
    if not isinstance(health, dict) or health.get("timed_out"):
        return False
    return health.get("status") in ("yellow", "green")


# --------------------------------------------------------------------------- handle, start


@dataclass(frozen=True)
class NodeHandle:
    """What is needed to use and later stop one running node (also saved to the state file)."""

    pid: int
    pgid: int
    port: int
    transport_port: int
    work_dir: Path
    tag: str
    opensearch_version: str
    watchdog_pid: int | None = None

    @property
    def url(self) -> str:
        """Base URL of the REST API, e.g. ``http://127.0.0.1:45123``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_file(self) -> Path:
        """The node's log (see envs/opensearch/log4j2.properties), appended across restarts."""
        return self.work_dir / "logs" / _LOG_NAME

    def to_state(self) -> dict[str, Any]:
        """JSON-able dict for the workflow's state file."""
        return {
            "url": self.url,
            "pid": self.pid,
            "pgid": self.pgid,
            "watchdog_pid": self.watchdog_pid,
            "port": self.port,
            "transport_port": self.transport_port,
            "work_dir": str(self.work_dir),
            "tag": self.tag,
            "opensearch_version": self.opensearch_version,
            "log_file": str(self.log_file),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NodeHandle:
        """Inverse of :meth:`to_state`."""
        return cls(
            pid=int(state["pid"]),
            pgid=int(state["pgid"]),
            port=int(state["port"]),
            transport_port=int(state["transport_port"]),
            work_dir=Path(state["work_dir"]),
            tag=str(state["tag"]),
            opensearch_version=str(state["opensearch_version"]),
            watchdog_pid=state.get("watchdog_pid"),
        )


class NodeStartError(supervise.StartError):
    """The node did not become ready; the message holds the tail of its logs."""


def _logs_tail(handle: NodeHandle, log_offset: int = 0) -> str:
    """The first ERROR lines this start logged (a long stack trace can push the cause out of
    the tail), then the tails of the log and of the JVM's own output."""
    errors: list[str] = []
    with contextlib.suppress(OSError), handle.log_file.open("rb") as log:
        log.seek(log_offset)
        lines = log.read().decode(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if "][ERROR]" in line and len(errors) < 6:
                errors += lines[i : i + 2]
    first = "first errors:\n" + "\n".join(errors) + "\n" if errors else ""
    return (
        f"{first}--- {handle.log_file}\n{supervise.tail(handle.log_file)}\n"
        f"--- {handle.work_dir / _STDOUT_NAME}\n{supervise.tail(handle.work_dir / _STDOUT_NAME)}"
    )


def _bind_failed(handle: NodeHandle, log_offset: int) -> bool:
    """Did this start fail because a port was taken? (Only the log written by this start.)"""
    with contextlib.suppress(OSError), handle.log_file.open("rb") as log:
        log.seek(log_offset)
        if b"BindException" in log.read():  # also matches BindTransportException
            return True
    with contextlib.suppress(OSError):
        return "BindException" in (handle.work_dir / _STDOUT_NAME).read_text(errors="replace")
    return False


def _node_markers(tag: str) -> tuple[str, ...]:
    """argv element that identifies the node JVM started with ``tag``."""
    return (supervise.marker_arg(MARKER_PROPERTY, tag),)


def _start_once(
    jars_dir: Path,
    launcher: Path,
    work_dir: Path,
    port: int,
    *,
    heap_mb: int,
    marker: str,
    extra: dict[str, str],
    ready_timeout: float,
) -> NodeHandle:
    transport_port = supervise.pick_port(avoid=[port])
    searchconfig.write_config(work_dir, port, transport_port, extra)
    handle = NodeHandle(
        pid=0,
        pgid=0,
        port=port,
        transport_port=transport_port,
        work_dir=work_dir,
        tag=marker,
        opensearch_version=opensearch_version(jars_dir),
    )
    log_offset = handle.log_file.stat().st_size if handle.log_file.exists() else 0
    cmd = searchconfig.java_command(jars_dir, launcher, work_dir, heap_mb=heap_mb, marker=marker)
    # Its own session: stopped as a unit, immune to a Ctrl-C in the launcher's terminal.
    proc = supervise.spawn(cmd, output=work_dir / _STDOUT_NAME, cwd=work_dir)
    handle = replace(handle, pid=proc.pid, pgid=proc.pid)
    try:
        _wait_ready(proc, handle, ready_timeout, log_offset)
        _single_node_defaults(handle.url)
    except BaseException:  # also Ctrl-C: the JVM is in its own session, it would survive
        stop(handle, timeout=10)
        raise
    return handle


def _wait_ready(
    proc: subprocess.Popen[bytes], handle: NodeHandle, timeout: float, log_offset: int
) -> None:
    """Block until cluster health is yellow or green, or raise with the logs' tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = supervise.exit_code(proc)
        if code is not None:
            raise NodeStartError(
                f"OpenSearch node exited with code {code} during start-up:\n"
                f"{_logs_tail(handle, log_offset)}",
                port_clash=_bind_failed(handle, log_offset),
            )
        if _healthy(handle.url, timeout=min(5.0, max(1.0, deadline - time.monotonic()))):
            return
        time.sleep(0.25)
    raise NodeStartError(
        f"OpenSearch node not ready (cluster health yellow) after {timeout:.0f} s:\n"
        f"{_logs_tail(handle, log_offset)}"
    )


def _single_node_defaults(url: str) -> None:
    """New indices get 0 replicas, so a one-node cluster is green, not forever yellow.

    A persistent cluster setting (kept in the data dir), not opensearch.yml: OpenSearch 2.19
    reads ``cluster.default_number_of_replicas`` from cluster metadata only and ignores the
    node-level value. Idempotent; indices created before keep their replica count.
    """
    body = {"persistent": {"cluster.default_number_of_replicas": 0}}
    request_json(url, "PUT", "_cluster/settings", body)


def start_node(
    work_dir: Path,
    *,
    port: int | None = None,
    heap_mb: int = DEFAULT_HEAP_MB,
    tag: str = "",
    watch_parent: int | None = None,
    jars_dir: Path | None = None,
    extra_settings: dict[str, str] | None = None,
    ready_timeout: float = READY_TIMEOUT_S,
) -> NodeHandle:
    """Start a node over ``work_dir`` and return once cluster health is yellow or better.

    ``work_dir`` is the node's home: config/ is rewritten (new ports each time), data/ is kept,
    so indices of an earlier node over the same dir are recovered. ``tag`` (default: the work
    dir) becomes the ``-Dvitalstream.searchnode=`` marker. A random port can (rarely) be taken
    between pick and bind, so a bind clash is retried on new ports unless ``port`` is fixed.
    ``watch_parent``: PID whose death stops the node (detached watchdog); None for none.
    """
    jars_dir = searchconfig.ensure_jars(jars_dir)
    launcher = searchconfig.ensure_launcher(jars_dir)
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    marker = tag or str(work_dir)
    if supervise.find_marked(_node_markers(marker)[0]) is not None:
        raise NodeStartError(f"an OpenSearch node tagged {marker!r} is already running")
    attempts = 1 if port is not None else START_ATTEMPTS
    for attempt in range(1, attempts + 1):
        http_port = port or supervise.pick_port()
        if not port_is_free(http_port):
            raise NodeStartError(f"port {http_port} is already in use on {LOOPBACK}")
        try:
            handle = _start_once(
                jars_dir,
                launcher,
                work_dir,
                http_port,
                heap_mb=heap_mb,
                marker=marker,
                extra=extra_settings or {},
                ready_timeout=ready_timeout,
            )
        except NodeStartError as err:
            if err.port_clash and attempt < attempts:
                continue
            raise
        if watch_parent is None:
            return handle
        try:
            return replace(handle, watchdog_pid=_start_watchdog(watch_parent, handle))
        except BaseException:
            stop(handle, timeout=10)
            raise
    raise AssertionError("unreachable")


def _start_watchdog(parent_pid: int, handle: NodeHandle) -> int:
    """A detached watchdog that stops ``handle``'s node when ``parent_pid`` dies (its PID)."""
    return supervise.start_watchdog(
        parent_pid,
        pid=handle.pid,
        pgid=handle.pgid,
        marker_property=MARKER_PROPERTY,
        tag=handle.tag,
        what="search node",
        work_dir=handle.work_dir,
        stop_timeout=WATCHDOG_STOP_TIMEOUT_S,
    )


# --------------------------------------------------------------------------- stopping


def stop(handle: NodeHandle, timeout: float = 30.0) -> None:
    """Stop a node (SIGTERM: the launcher closes it cleanly) and its watchdog; idempotent."""
    supervise.stop_watchdog(handle.watchdog_pid, MARKER_PROPERTY)
    if handle.pid:
        supervise.kill_group(handle.pid, handle.pgid, _node_markers(handle.tag), timeout)


def node_alive(handle: NodeHandle) -> bool:
    """Is the node's JVM (and not some process that reused its PID) still running?"""
    return supervise.process_if_ours(handle.pid, _node_markers(handle.tag)) is not None


# --------------------------------------------------------------------------- workflow state


def read_state(state_file: Path) -> dict[str, Any]:
    """The JSON written by :func:`start_for_workflow`."""
    return supervise.read_state(state_file)


def read_url(state_file: Path) -> str:
    """Base URL of the workflow's node, for the rules that index or query it."""
    return str(read_state(state_file)["url"])


def start_for_workflow(
    state_file: Path,
    work_dir: Path,
    parent_pid: int | None,
    *,
    clean_data: bool = False,
    **start_kwargs: Any,
) -> dict[str, Any]:
    """Start the workflow's node, watched by ``parent_pid``, and record it in ``state_file``.

    ``parent_pid`` is normally the Snakemake main process; None starts no watchdog, for a node
    that must outlive its launcher until ``stop``. A node the same state file already names
    is stopped first; the workflow gives each of its runs a state file of its own
    (supervise.claim_run_dir), so this never stops another workflow's node. ``clean_data``
    empties the data dir before the start (after that stop): the node holds only what is
    indexed from now on, and the indices of earlier runs no longer take disk space.
    """
    state_file = Path(state_file)
    if state_file.exists():
        stop_from_state(state_file)
    if clean_data:
        clean_data_dir(Path(work_dir))
    handle = start_node(work_dir, watch_parent=parent_pid, **start_kwargs)
    state = handle.to_state()
    supervise.write_state(state_file, state)
    return state


def node_running_over(work_dir: Path) -> bool:
    """Does a node tagged with ``work_dir`` (the default tag) run over it, e.g. another
    workflow's? Its data dir is then that node's, neither to clean nor to start over."""
    marker = _node_markers(str(Path(work_dir).resolve()))[0]
    return supervise.find_marked(marker) is not None


def clean_data_dir(work_dir: Path) -> None:
    """Remove the indices in ``work_dir``'s data dir. Refused while a node tagged with the
    work dir runs over it: deleting a live node's files would corrupt it, not empty it."""
    if node_running_over(work_dir):
        raise NodeStartError(f"an OpenSearch node over {work_dir} is running; stop it first")
    shutil.rmtree(Path(work_dir) / searchconfig.DATA_DIR_NAME, ignore_errors=True)


def stop_from_state(state_file: Path, timeout: float = 30.0) -> bool:
    """Stop the node and watchdog named in ``state_file`` and remove it; idempotent.

    Returns True if the file existed. The data dir stays for the next start.
    """
    return supervise.stop_from_state(
        state_file, lambda state: stop(NodeHandle.from_state(state), timeout=timeout)
    )


def node_status(state_file: Path) -> dict[str, Any]:
    """State plus liveness: is the JVM there, is the cluster yellow/green, is it watched."""
    state = read_state(state_file)
    handle = NodeHandle.from_state(state)
    alive = node_alive(handle)
    ready = alive and _healthy(handle.url)
    watchdog_alive = supervise.watchdog_alive(handle.watchdog_pid, MARKER_PROPERTY)
    return {**state, "alive": alive, "ready": ready, "watchdog_alive": watchdog_alive}


# --------------------------------------------------------------------------- CLI


def _start(args: argparse.Namespace) -> int:
    state = start_for_workflow(
        Path(args.state),
        Path(args.work_dir),
        parent_pid=args.parent,
        clean_data=args.clean_data,
        port=args.port,
        heap_mb=args.heap_mb,
    )
    servicecli.print_state(state)
    return 0


def _start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-dir", required=True, type=writable_dir, help="node home: config, data, logs"
    )
    parser.add_argument(
        "--parent",
        type=positive_int,
        default=None,
        help="PID whose death stops the node (watchdog)",
    )
    parser.add_argument("--port", type=tcp_port, default=None, help="HTTP port (default: free one)")
    parser.add_argument(
        "--heap-mb", type=positive_int, default=DEFAULT_HEAP_MB, help="JVM heap, MiB"
    )
    parser.add_argument(
        "--clean-data", action="store_true", help="start from an empty data dir (no indices)"
    )


COMMANDS = servicecli.ServiceCommands(
    command="search-node",
    noun="search node",
    help="run the local OpenSearch node",
    start=_start,
    add_start_arguments=_start_arguments,
    stop=stop_from_state,
    status=node_status,
    start_help="start a node and write its state file",
    stop_help="stop the node named in a state file",
)


def register_cli(subparsers: Any) -> None:
    """Add ``search-node {start,stop,status}`` to the package CLI (``python -m vitalstream``)."""
    servicecli.register(subparsers, COMMANDS)


if __name__ == "__main__":
    # The watchdog runs as ``python -m vitalstream.services.supervise``.
    sys.exit(servicecli.main(COMMANDS, "vitalstream.services.searchnode"))
