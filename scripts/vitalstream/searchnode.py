"""A real single-node OpenSearch 2.x, run as a local JVM process from Python.

Why this exists: the workflow indexes results into a search engine with the Elasticsearch REST
API, and, as for Kafka (``vitalstream.broker``), the numbers and behaviour must come from a real
node. The machines have no Docker and no OpenSearch tarball, only Maven Central, which holds the
server and its modules as plain jars. So ``envs/opensearch/pom.xml`` resolves them into a
git-ignored cache and a tiny launcher (``envs/opensearch/VitalStreamNode.java``, compiled with
the JDK's ``javac``) starts ``org.opensearch.node.Node`` with those modules as classpath plugins,
the way OpenSearch's own integration tests run nodes. HTTP listens on a free loopback port.

Process care is the broker's (and reuses its helpers): each node JVM leads its own process
group, carries a marker ``-Dvitalstream.searchnode=<tag>`` so it is never confused with a
foreign process, and, when started for a long-lived parent such as the Snakemake main process,
is watched by a detached watchdog that stops it as soon as that parent dies.

Unlike the broker, the data dir is never wiped: a later workflow run that starts a node over
the same work dir finds the indices of earlier runs (OpenSearch recovers them at start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from http.client import HTTPException
from pathlib import Path
from typing import Any

import psutil

from vitalstream.broker import (
    _CHILDREN,
    LOOPBACK,
    _file_lock,
    _parent_alive,
    _process_if_ours,
    _tail,
    _write_json_atomic,
    free_port,
    java_executable,
    java_home,
    kill_group,
    port_is_free,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = Path(__file__).resolve().parents[1]
ENV_DIR = REPO_ROOT / "envs" / "opensearch"
OPENSEARCH_POM = ENV_DIR / "pom.xml"
LAUNCHER_SOURCE = ENV_DIR / "VitalStreamNode.java"
LOG4J2_CONFIG = ENV_DIR / "log4j2.properties"
LAUNCHER_MAIN = "VitalStreamNode"
JARS_ENV_VAR = "VITALSTREAM_OPENSEARCH_JARS"
MARKER_PROPERTY = "vitalstream.searchnode"
CLUSTER_NAME = "vitalstream"
NODE_NAME = "vitalstream-node"
DEFAULT_HEAP_MB = 512

# Jars without which the node cannot serve what VitalStream needs (checked by ensure_jars):
# the server, HTTP over Netty, ingest processors, the mustache engine that renders
# {{_ingest.timestamp}}, and log4j-core (else the node logs nowhere).
REQUIRED_JARS: tuple[str, ...] = (
    "opensearch",
    "transport-netty4-client",
    "analysis-common",
    "ingest-common",
    "lang-mustache-client",
    "mapper-extras-client",
    "aggs-matrix-stats-client",
    "log4j-core",
)

# The system JVM flags of OpenSearch's own launcher (SystemJvmOptions + jvm.options), minus
# -XX:+AlwaysPreTouch, which would make the whole heap resident at once on a shared machine.
# log4j's own shutdown hook is off because the launcher closes the node first, then logging;
# COMPAT locale data keeps 2.x's date parsing identical to the distribution's.
JVM_OPTS: tuple[str, ...] = (
    "-XX:+UseG1GC",
    "-XX:G1ReservePercent=25",
    "-XX:InitiatingHeapOccupancyPercent=30",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ShowCodeDetailsInExceptionMessages",
    "-XX:-UsePerfData",
    "-Xss1m",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
    "-Djna.nosys=true",
    "-Djava.net.preferIPv4Stack=true",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
    "-Dio.netty.allocator.numDirectArenas=0",
    "-Dlog4j.shutdownHookEnabled=false",
    "-Dlog4j2.disable.jmx=true",
    "-Djava.locale.providers=SPI,COMPAT",
)

READY_TIMEOUT_S = 120.0
WATCHDOG_POLL_S = 1.0
# argv elements that identify a watchdog process (see start_watchdog)
WATCHDOG_MARKERS: tuple[str, ...] = ("vitalstream.searchnode", "watchdog")
START_ATTEMPTS = 3

_STDOUT_NAME = "node.out"
_LOG_NAME = f"{CLUSTER_NAME}.log"  # log4j2.properties: <path.logs>/<cluster name>.log


# --------------------------------------------------------------------------- jars


def default_jars_dir() -> Path:
    """Where the node's jars live: ``$VITALSTREAM_OPENSEARCH_JARS`` or ``.cache/jars/opensearch``.

    Same convention as the broker: the env var lets CI share one cache between clones, the
    default sits in the git-ignored ``.cache/`` that ``make jars`` fills.
    """
    override = os.environ.get(JARS_ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / ".cache" / "jars" / "opensearch"


def _jar(jars_dir: Path, artifact: str) -> Path | None:
    """The jar ``<artifact>-<version>.jar`` in ``jars_dir`` (version starts with a digit)."""
    for jar in sorted(jars_dir.glob(f"{artifact}-*.jar")):
        if re.fullmatch(rf"{re.escape(artifact)}-\d[\w.]*\.jar", jar.name):
            return jar
    return None


def ensure_jars(jars_dir: Path | None = None) -> Path:
    """``jars_dir`` if it holds every jar the node needs; else a clear error naming the fix.

    No download here (unlike the broker's jars): resolving ~50 MB of OpenSearch jars in the
    middle of a workflow or a test would hide a set-up step, so ``make jars`` owns it.
    """
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    missing = [a for a in REQUIRED_JARS if not jars_dir.is_dir() or _jar(jars_dir, a) is None]
    if missing:
        raise RuntimeError(
            f"OpenSearch jars missing in {jars_dir}: {', '.join(missing)}. Run `make jars` "
            f"(it resolves {OPENSEARCH_POM.relative_to(REPO_ROOT)} with Maven), or point "
            f"${JARS_ENV_VAR} to a dir holding those jars."
        )
    return jars_dir


def opensearch_version(jars_dir: Path | None = None) -> str:
    """Version of the OpenSearch server jar in use (e.g. ``"2.19.6"``), recorded with results."""
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    jar = _jar(jars_dir, "opensearch")
    if jar is None:
        raise RuntimeError(f"no opensearch-<version>.jar in {jars_dir}; run `make jars`")
    return jar.name.removeprefix("opensearch-").removesuffix(".jar")


def launcher_dir(jars_dir: Path) -> Path:
    """Where the compiled launcher lives: ``<jars>/launcher`` (``<jars>/*`` skips sub-dirs)."""
    return jars_dir / "launcher"


def _launcher_current(target: Path) -> bool:
    """Compiled from the current source? The dir keeps a copy of the source it was built from
    (``make jars`` copies it too), which beats mtimes that git checkouts reset."""
    stamp = target / LAUNCHER_SOURCE.name
    return (
        (target / f"{LAUNCHER_MAIN}.class").is_file()
        and stamp.is_file()
        and stamp.read_bytes() == LAUNCHER_SOURCE.read_bytes()
    )


def ensure_launcher(jars_dir: Path) -> Path:
    """Compile ``envs/opensearch/VitalStreamNode.java`` against ``jars_dir`` unless current.

    ``make jars`` already does it; this covers an edited launcher or a cache filled by hand.
    The classes go to a temporary sibling renamed into place under a lock, so parallel
    starts never run a half-written launcher.
    """
    target = launcher_dir(jars_dir)
    if _launcher_current(target):
        return target
    with _file_lock(jars_dir / ".launcher.lock"):
        if _launcher_current(target):
            return target
        javac = java_home() / "bin" / "javac"
        if not javac.exists():
            raise RuntimeError(
                f"{javac} not found: compiling the OpenSearch launcher needs a JDK 17 "
                "(apt-get install openjdk-17-jdk-headless); or run `make jars` where one exists"
            )
        staging = Path(tempfile.mkdtemp(prefix=".launcher-", dir=jars_dir))
        staging.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared, not secret
        cmd = [str(javac), "-d", str(staging), "-cp", f"{jars_dir}/*", str(LAUNCHER_SOURCE)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"compiling the OpenSearch launcher failed (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        shutil.copyfile(LAUNCHER_SOURCE, staging / LAUNCHER_SOURCE.name)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


# --------------------------------------------------------------------------- configuration


def node_settings(
    *,
    http_port: int,
    transport_port: int,
    data_dir: Path,
    logs_dir: Path,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The node's ``opensearch.yml`` as a flat dict.

    One node that elects itself (``single-node`` discovery: no bootstrap checks, no peers),
    bound to loopback only. The disk-watermark decider is off because a nearly full disk in CI
    would otherwise turn every index read-only mid-run; indices are auto-created by the first
    write, as the workflow's bulk requests expect.
    """
    settings = {
        "cluster.name": CLUSTER_NAME,
        "node.name": NODE_NAME,
        "discovery.type": "single-node",
        "network.host": LOOPBACK,
        "http.host": LOOPBACK,
        "http.port": str(http_port),
        "transport.port": str(transport_port),
        "path.data": str(data_dir),
        "path.logs": str(logs_dir),
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.auto_create_index": "true",
    }
    settings.update(extra or {})
    return settings


def render_settings(settings: dict[str, str]) -> str:
    """``opensearch.yml`` text: one flat ``key: "value"`` line per setting.

    Values are JSON strings, which YAML reads verbatim, so paths with ``:`` or ``#`` stay
    intact; OpenSearch parses "false" or "9200" from strings like any other setting.
    """
    lines = [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
    return "# written by vitalstream.searchnode\n" + "\n".join(lines) + "\n"


def java_command(
    jars_dir: Path, launcher: Path, work_dir: Path, *, heap_mb: int, marker: str
) -> list[str]:
    """The node's ``java`` command line; ``work_dir`` is its ``path.home`` (config/ inside).

    Heap min = max, as OpenSearch wants (no resize pauses, circuit breakers see a fixed heap).
    """
    return [
        str(java_executable()),
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        *JVM_OPTS,
        f"-D{MARKER_PROPERTY}={marker}",
        f"-Djava.io.tmpdir={work_dir / 'tmp'}",
        f"-XX:ErrorFile={work_dir / 'logs' / 'hs_err_pid%p.log'}",
        "-cp",
        f"{jars_dir}/*{os.pathsep}{launcher}",
        LAUNCHER_MAIN,
        str(work_dir),
    ]


def _write_config(
    work_dir: Path, http_port: int, transport_port: int, extra: dict[str, str]
) -> None:
    config = work_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "tmp", "data"):
        (work_dir / sub).mkdir(exist_ok=True)
    settings = node_settings(
        http_port=http_port,
        transport_port=transport_port,
        data_dir=work_dir / "data",
        logs_dir=work_dir / "logs",
        extra=extra,
    )
    (config / "opensearch.yml").write_text(render_settings(settings))
    shutil.copyfile(LOG4J2_CONFIG, config / "log4j2.properties")


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


class NodeStartError(RuntimeError):
    """The node did not become ready; the message holds the tail of its logs."""

    def __init__(self, message: str, *, port_clash: bool = False) -> None:
        super().__init__(message)
        self.port_clash = port_clash


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
        f"{first}--- {handle.log_file}\n{_tail(handle.log_file)}\n"
        f"--- {handle.work_dir / _STDOUT_NAME}\n{_tail(handle.work_dir / _STDOUT_NAME)}"
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


def _pick_port(avoid: int | None = None) -> int:
    """A free loopback port, probed once more (a bind clash is still retried at start)."""
    for _ in range(20):
        port = free_port()
        if port != avoid and port_is_free(port):
            return port
    raise NodeStartError("no free loopback port found")


def _node_markers(tag: str) -> tuple[str, ...]:
    """argv element that identifies the node JVM started with ``tag``."""
    return (f"-D{MARKER_PROPERTY}={tag}",)


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
    transport_port = _pick_port(avoid=port)
    _write_config(work_dir, port, transport_port, extra)
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
    cmd = java_command(jars_dir, launcher, work_dir, heap_mb=heap_mb, marker=marker)
    with (work_dir / _STDOUT_NAME).open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
            start_new_session=True,  # own process group: stopped as a unit, immune to Ctrl-C
        )
    _CHILDREN[proc.pid] = proc
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
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            raise NodeStartError(
                f"OpenSearch node exited with code {proc.returncode} during start-up:\n"
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
    jars_dir = ensure_jars(jars_dir)
    launcher = ensure_launcher(jars_dir)
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    marker = tag or str(work_dir)
    if _find_tagged(marker) is not None:
        raise NodeStartError(f"an OpenSearch node tagged {marker!r} is already running")
    attempts = 1 if port is not None else START_ATTEMPTS
    for attempt in range(1, attempts + 1):
        http_port = port or _pick_port()
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
            return replace(handle, watchdog_pid=start_watchdog(watch_parent, handle))
        except BaseException:
            stop(handle, timeout=10)
            raise
    raise AssertionError("unreachable")


def _find_tagged(marker: str) -> int | None:
    """PID of a live node JVM carrying ``marker`` (two nodes must not share a data dir)."""
    wanted = _node_markers(marker)[0]
    for proc in psutil.process_iter(["cmdline"]):
        if wanted in (proc.info["cmdline"] or []):
            return int(proc.pid)
    return None


# --------------------------------------------------------------------------- stopping


def stop(handle: NodeHandle, timeout: float = 30.0) -> None:
    """Stop a node (SIGTERM: the launcher closes it cleanly) and its watchdog; idempotent."""
    if handle.watchdog_pid:
        kill_group(handle.watchdog_pid, handle.watchdog_pid, WATCHDOG_MARKERS, timeout=5.0)
    if handle.pid:
        kill_group(handle.pid, handle.pgid, _node_markers(handle.tag), timeout)


def node_alive(handle: NodeHandle) -> bool:
    """Is the node's JVM (and not some process that reused its PID) still running?"""
    return _process_if_ours(handle.pid, _node_markers(handle.tag)) is not None


# --------------------------------------------------------------------------- watchdog


def start_watchdog(parent_pid: int, handle: NodeHandle) -> int:
    """Launch the detached watchdog that stops ``handle``'s node when ``parent_pid`` dies.

    Same design as ``broker.start_watchdog``: own session (a Ctrl-C to the parent's terminal
    does not take it down first), parent creation time read here (the PID may be recycled
    before the watchdog's interpreter has started).
    """
    try:
        parent_created = psutil.Process(parent_pid).create_time()
    except psutil.NoSuchProcess:
        parent_created = -1.0  # already dead: the watchdog stops the node at once
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SCRIPTS_DIR), env.get("PYTHONPATH", "")) if p
    )
    cmd = [sys.executable, "-m", "vitalstream.searchnode", "watchdog"]
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


def watchdog(
    parent_pid: int,
    parent_created: float,
    pid: int,
    pgid: int,
    tag: str,
    poll: float = WATCHDOG_POLL_S,
) -> int:
    """Poll until the parent dies (then stop the node) or the node is gone (then exit)."""
    markers = _node_markers(tag)
    print(f"watching parent {parent_pid} for search node pid {pid}", flush=True)
    while _process_if_ours(pid, markers) is not None:
        if not _parent_alive(parent_pid, parent_created):
            print(f"parent {parent_pid} died: stopping search node pid {pid}", flush=True)
            kill_group(pid, pgid, markers, timeout=30.0)
            return 0
        time.sleep(poll)
    print(f"search node pid {pid} is gone: watchdog exits", flush=True)
    return 0


# --------------------------------------------------------------------------- workflow state


def read_state(state_file: Path) -> dict[str, Any]:
    """The JSON written by :func:`start_for_workflow`."""
    return json.loads(Path(state_file).read_text())


def read_url(state_file: Path) -> str:
    """Base URL of the workflow's node, for the rules that index or query it."""
    return str(read_state(state_file)["url"])


def start_for_workflow(
    state_file: Path, work_dir: Path, parent_pid: int | None, **start_kwargs: Any
) -> dict[str, Any]:
    """Start the workflow's node, watched by ``parent_pid``, and record it in ``state_file``.

    ``parent_pid`` is normally the Snakemake main process; None starts no watchdog, for a node
    that must outlive its launcher until ``stop``. A state file left by a crashed run is
    stopped first, so the workflow never runs two nodes over one data dir.
    """
    state_file = Path(state_file)
    if state_file.exists():
        stop_from_state(state_file)
    handle = start_node(work_dir, watch_parent=parent_pid, **start_kwargs)
    state = handle.to_state()
    _write_json_atomic(state_file, state)
    return state


def stop_from_state(state_file: Path, timeout: float = 30.0) -> bool:
    """Stop the node and watchdog named in ``state_file`` and remove it; idempotent.

    Returns True if the file existed. The data dir stays for the next start.
    """
    state_file = Path(state_file)
    try:
        state = read_state(state_file)
    except FileNotFoundError:
        return False
    except json.JSONDecodeError:
        state_file.unlink(missing_ok=True)
        return True
    stop(NodeHandle.from_state(state), timeout=timeout)
    state_file.unlink(missing_ok=True)
    return True


def node_status(state_file: Path) -> dict[str, Any]:
    """State plus liveness: is the JVM there, is the cluster yellow/green, is it watched."""
    state = read_state(state_file)
    handle = NodeHandle.from_state(state)
    alive = node_alive(handle)
    ready = alive and _healthy(handle.url)
    watchdog_alive = _process_if_ours(handle.watchdog_pid, WATCHDOG_MARKERS) is not None
    return {**state, "alive": alive, "ready": ready, "watchdog_alive": watchdog_alive}


# --------------------------------------------------------------------------- CLI


def _cmd_start(args: argparse.Namespace) -> int:
    state = start_for_workflow(
        Path(args.state),
        Path(args.work_dir),
        parent_pid=args.parent,
        port=args.port,
        heap_mb=args.heap_mb,
    )
    print(json.dumps(state, indent=2, sort_keys=True))
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    existed = stop_from_state(Path(args.state))
    print("stopped" if existed else f"no state file {args.state}: nothing to stop")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        status = node_status(Path(args.state))
    except FileNotFoundError:
        print(f"no state file {args.state}: no search node")
        return 1
    print(json.dumps(status, indent=2, sort_keys=True))
    return 0 if status["ready"] else 1


def _cmd_watchdog(args: argparse.Namespace) -> int:
    return watchdog(args.parent, args.parent_created, args.pid, args.pgid, args.tag, poll=args.poll)


def register_cli(subparsers: Any) -> None:
    """Add ``search-node {start,stop,status}`` to the package CLI (``python -m vitalstream``)."""
    parser = subparsers.add_parser("search-node", help="run the local OpenSearch node")
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)
    _add_actions(parser.add_subparsers(dest="search_node_action"))


def _add_actions(actions: Any) -> None:
    """The start/stop/status subcommands, shared by the package CLI and this module's own."""
    start_p = actions.add_parser("start", help="start a node and write its state file")
    start_p.add_argument("--state", required=True, help="JSON state file to write")
    start_p.add_argument("--work-dir", required=True, help="node home: config, data, logs")
    start_p.add_argument(
        "--parent", type=int, default=None, help="PID whose death stops the node (watchdog)"
    )
    start_p.add_argument("--port", type=int, default=None, help="HTTP port (default: free one)")
    start_p.add_argument("--heap-mb", type=int, default=DEFAULT_HEAP_MB, help="JVM heap, MiB")
    start_p.set_defaults(func=_cmd_start)

    stop_p = actions.add_parser("stop", help="stop the node named in a state file")
    stop_p.add_argument("--state", required=True)
    stop_p.set_defaults(func=_cmd_stop)

    status_p = actions.add_parser("status", help="print state and liveness; exit 1 if down")
    status_p.add_argument("--state", required=True)
    status_p.set_defaults(func=_cmd_status)


def _add_watchdog(actions: Any) -> None:
    parser = actions.add_parser("watchdog", help="(internal) stop a node when PID dies")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--parent-created", type=float, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--pgid", type=int, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--poll", type=float, default=WATCHDOG_POLL_S)
    parser.set_defaults(func=_cmd_watchdog)


def main(argv: list[str] | None = None) -> int:
    """``python -m vitalstream.searchnode {start,stop,status,watchdog} ...``.

    The watchdog is launched this way so that it imports only this module, the broker's
    helpers and psutil: it must start fast and never fail to import.
    """
    parser = argparse.ArgumentParser(prog="python -m vitalstream.searchnode")
    actions = parser.add_subparsers(dest="command", required=True)
    _add_actions(actions)
    _add_watchdog(actions)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
