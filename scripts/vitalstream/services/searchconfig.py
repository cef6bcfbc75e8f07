"""What a local OpenSearch node is made of before it runs: its jars, its compiled launcher, its
``opensearch.yml`` and its ``java`` command line.

Why this exists: services.searchnode runs a node from the Maven Central jars that
``envs/opensearch/pom.xml`` resolves (``make jars``, or else the first start), started by a tiny
launcher class (``envs/opensearch/VitalStreamNode.java``) that loads OpenSearch's modules as
classpath plugins; what the node needs on disk, and which JVM flags and marker it runs with, is
the OpenSearch-specific half of that and is written here.

Not for: starting, watching or stopping a node (services.searchnode, services.supervise), nor
talking to a running one (services.searchnode's ``request_json``, vitalstream.sinks.search).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from vitalstream.core.paths import resource
from vitalstream.services import jars, supervise
from vitalstream.services.supervise import LOOPBACK

OPENSEARCH_POM_PATH = "envs/opensearch/pom.xml"
OPENSEARCH_POM = resource(OPENSEARCH_POM_PATH)
LAUNCHER_SOURCE = resource("envs/opensearch/VitalStreamNode.java")
LOG4J2_CONFIG = resource("envs/opensearch/log4j2.properties")
LAUNCHER_MAIN = "VitalStreamNode"
JARS_ENV_VAR = "VITALSTREAM_OPENSEARCH_JARS"
MARKER_PROPERTY = "vitalstream.searchnode"
CLUSTER_NAME = "vitalstream"
DATA_DIR_NAME = "data"  # in the node's work dir (path.data)
NODE_NAME = "vitalstream-node"

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


# Disk used (of the data dir's file system) at which the node stops allocating new shards
# (low), moves shards away (high; a single node has nowhere to move them) and blocks writes
# to its indices (flood stage). OpenSearch's defaults (85/90/95 %) would block a 20-GB disk
# with 1 GB free; these leave a small disk's last 3 % to the other services.
DISK_WATERMARKS: dict[str, str] = {
    "cluster.routing.allocation.disk.watermark.low": "90%",
    "cluster.routing.allocation.disk.watermark.high": "95%",
    "cluster.routing.allocation.disk.watermark.flood_stage": "97%",
}


def default_jars_dir() -> Path:
    """Where the node's jars live: ``$VITALSTREAM_OPENSEARCH_JARS`` or ``.cache/jars/opensearch``.

    Same convention as the broker: the env var lets CI share one cache between clones, the
    default sits in the git-ignored ``.cache/`` that ``make jars`` fills.
    """
    return jars.jars_dir(JARS_ENV_VAR, "opensearch")


def _has_jars(jars_dir: Path) -> bool:
    return all(jars.find_jar(jars_dir, artifact) is not None for artifact in REQUIRED_JARS)


def ensure_jars(jars_dir: Path | None = None) -> Path:
    """``jars_dir`` holding every jar the node needs and its compiled launcher; resolved with
    Maven and compiled on first use otherwise, as the broker's jars are (services.jars).

    The launcher is compiled into the same staging dir under the same lock, so a parallel
    first start never sees jars without a launcher. Without Maven the error names
    ``make jars``.
    """
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    return jars.resolve_with_maven(
        OPENSEARCH_POM,
        jars_dir,
        _has_jars,
        what="OpenSearch jars",
        env_var=JARS_ENV_VAR,
        then=lambda staging: _compile_launcher(staging, launcher_dir(staging)),
    )


def opensearch_version(jars_dir: Path | None = None) -> str:
    """Version of the OpenSearch server jar in use (e.g. ``"2.19.6"``), recorded with results."""
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    version = jars.jar_version(jars_dir, "opensearch")
    if version is None:
        raise RuntimeError(f"no opensearch-<version>.jar in {jars_dir}; run ensure_jars()")
    return version


def launcher_dir(jars_dir: Path) -> Path:
    """Where the compiled launcher lives: ``<jars>/launcher`` (``<jars>/*`` skips sub-dirs)."""
    return jars_dir / "launcher"


def launcher_current(target: Path) -> bool:
    """Compiled from the current source? The dir keeps a copy of the source it was built from
    (``make jars`` copies it too), which beats mtimes that git checkouts reset."""
    stamp = target / LAUNCHER_SOURCE.name
    return (
        (target / f"{LAUNCHER_MAIN}.class").is_file()
        and stamp.is_file()
        and stamp.read_bytes() == LAUNCHER_SOURCE.read_bytes()
    )


def _compile_launcher(jars_dir: Path, out_dir: Path) -> None:
    """``javac`` the launcher against ``jars_dir`` into ``out_dir``, with a copy of its source
    beside the classes (what :func:`launcher_current` compares)."""
    javac = jars.java_home() / "bin" / "javac"
    if not javac.exists():
        raise RuntimeError(
            f"{javac} not found: compiling the OpenSearch launcher needs a JDK 17 "
            "(apt-get install openjdk-17-jdk-headless); or run `make jars` where one exists"
        )
    cmd = [str(javac), "-d", str(out_dir), "-cp", f"{jars_dir}/*", str(LAUNCHER_SOURCE)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(
            f"compiling the OpenSearch launcher failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )
    shutil.copyfile(LAUNCHER_SOURCE, out_dir / LAUNCHER_SOURCE.name)


def ensure_launcher(jars_dir: Path) -> Path:
    """Compile ``envs/opensearch/VitalStreamNode.java`` against ``jars_dir`` unless current.

    :func:`ensure_jars` and ``make jars`` already do it; this covers an edited launcher. The
    classes go to a temporary sibling renamed into place under a lock, so parallel starts
    never run a half-written launcher.
    """
    return jars.build_into_place(
        launcher_dir(jars_dir),
        launcher_current,
        lambda staging: _compile_launcher(jars_dir, staging),
    )


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
    bound to loopback only; indices are auto-created by the first write, as the workflow's bulk
    requests expect. The disk-threshold decider is on, with watermarks for a small, shared disk
    (DISK_WATERMARKS): the node stops growing its indices before the disk is full, rather
    than filling it under Kafka, Spark and the results (a blocked index fails the run's bulk
    requests loudly; OpenSearch lifts the block once space is freed).
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
        "cluster.routing.allocation.disk.threshold_enabled": "true",
        **DISK_WATERMARKS,
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
    return "# written by vitalstream.services.searchnode\n" + "\n".join(lines) + "\n"


def java_command(
    jars_dir: Path, launcher: Path, work_dir: Path, *, heap_mb: int, marker: str
) -> list[str]:
    """The node's ``java`` command line; ``work_dir`` is its ``path.home`` (config/ inside).

    Heap min = max, as OpenSearch wants (no resize pauses, circuit breakers see a fixed heap).
    """
    return [
        str(jars.java_executable()),
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        *JVM_OPTS,
        supervise.marker_arg(MARKER_PROPERTY, marker),
        f"-Djava.io.tmpdir={work_dir / 'tmp'}",
        f"-XX:ErrorFile={work_dir / 'logs' / 'hs_err_pid%p.log'}",
        "-cp",
        f"{jars_dir}/*{os.pathsep}{launcher}",
        LAUNCHER_MAIN,
        str(work_dir),
    ]


def write_config(
    work_dir: Path, http_port: int, transport_port: int, extra: dict[str, str]
) -> None:
    """The node's home in ``work_dir``: ``config/`` (rewritten: new ports each start), and the
    ``logs/``, ``tmp/`` and ``data/`` dirs (kept: a later node recovers the indices)."""
    config = work_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "tmp", DATA_DIR_NAME):
        (work_dir / sub).mkdir(exist_ok=True)
    settings = node_settings(
        http_port=http_port,
        transport_port=transport_port,
        data_dir=work_dir / DATA_DIR_NAME,
        logs_dir=work_dir / "logs",
        extra=extra,
    )
    (config / "opensearch.yml").write_text(render_settings(settings))
    shutil.copyfile(LOG4J2_CONFIG, config / "log4j2.properties")
