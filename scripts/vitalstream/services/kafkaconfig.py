"""What a local Kafka broker is made of before it runs: its jars, its ``server.properties``,
its formatted KRaft log dir and its ``java`` command line.

Why this exists: services.broker runs brokers (one, or a static-quorum cluster) from the Maven
Central jars that ``envs/kafka/pom.xml`` resolves; what each node needs on disk, and which JVM
flags and marker it runs with, is the Kafka-specific half of that and is written here.

Not for: starting, watching or stopping a broker (services.broker, services.supervise), nor
topics on a running one (services.topics).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from vitalstream.core.paths import resource
from vitalstream.services import jars, supervise, topics
from vitalstream.services.supervise import LOOPBACK

KAFKA_POM = resource("envs/kafka/pom.xml")
LOG4J2_CONFIG = resource("envs/kafka/log4j2.yaml")
JARS_ENV_VAR = "VITALSTREAM_KAFKA_JARS"
MARKER_PROPERTY = "vitalstream.broker"
KAFKA_JAR = "kafka_2.13"  # the broker's own jar; its version is Kafka's

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

DATA_DIR_NAME = "kraft-data"


def default_jars_dir() -> Path:
    """Where the broker's jars live: ``$VITALSTREAM_KAFKA_JARS`` or ``<repo>/.cache/jars/kafka``.

    The env var lets CI or a developer share one cache between clones; the default is inside
    the git-ignored ``.cache/`` so a fresh clone rebuilds it with ``ensure_kafka_jars``.
    """
    return jars.jars_dir(JARS_ENV_VAR, "kafka")


def _has_kafka_jars(jars_dir: Path) -> bool:
    return jars.find_jar(jars_dir, KAFKA_JAR) is not None


def ensure_kafka_jars(jars_dir: Path | None = None) -> Path:
    """Make sure ``jars_dir`` holds the broker's runtime jars, resolving them with Maven if not
    (into a staging dir renamed into place only when Maven succeeded, see services.jars)."""
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    return jars.resolve_with_maven(
        KAFKA_POM, jars_dir, _has_kafka_jars, what="Kafka jars", env_var=JARS_ENV_VAR
    )


KAFKA_TOOLS_POM = resource("envs/kafka-tools/pom.xml")
TOOLS_ENV_VAR = "VITALSTREAM_KAFKA_TOOLS_JARS"
TOOLS_JAR = "kafka-tools"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"


def ensure_kafka_tools_jars(jars_dir: Path | None = None) -> Path:
    """Apache Kafka's own command-line tools (the console producer), resolved like the
    broker's jars on first use: a client of the live topic that VitalStream did not write."""
    if jars_dir is None:
        jars_dir = jars.jars_dir(TOOLS_ENV_VAR, "kafka-tools")
    return jars.resolve_with_maven(
        KAFKA_TOOLS_POM,
        jars_dir,
        lambda d: jars.find_jar(d, TOOLS_JAR) is not None,
        what="Kafka's tools jars",
        env_var=TOOLS_ENV_VAR,
    )


def console_producer_command(bootstrap: str, topic: str) -> list[str]:
    """``kafka-console-producer.sh --bootstrap-server B --topic T`` without the tarball: one
    JSON message per line of its standard input."""
    tools = ensure_kafka_tools_jars()
    return [
        str(jars.java_executable()),
        "-cp",
        f"{tools}/*",
        CONSOLE_PRODUCER,
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
    ]


def kafka_version(jars_dir: Path | None = None) -> str:
    """Version of the Kafka jars in use (e.g. ``"4.1.1"``), read from the jar file name.

    Recorded next to every result so the paper states exactly which broker produced it.
    """
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    version = jars.jar_version(jars_dir, KAFKA_JAR)
    if version is None:
        raise RuntimeError(f"no {KAFKA_JAR}-<version>.jar in {jars_dir}; run ensure_kafka_jars()")
    return version


def random_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding (22 chars).

    Same rule as Kafka's ``Uuid.randomUuid``: an id starting with ``-`` would read as a CLI
    flag, so such ids are drawn again. Avoids a second JVM start just for ``random-uuid``.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


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
        # The same disk bounds as every topic the workflow creates (services.topics), for any
        # topic created without them: a day (Kafka's default is a week) and 1 GiB per
        # partition (no bound by default), in 128-MiB segments (1 GiB by default, which
        # would let a partition hold twice its bound before a segment could be deleted).
        "log.retention.ms": str(topics.RETENTION_MS),
        "log.retention.bytes": str(topics.RETENTION_BYTES),
        "log.segment.bytes": str(topics.SEGMENT_BYTES),
    }
    props.update(extra or {})
    return props


def write_properties(path: Path, props: dict[str, str]) -> None:
    """``props`` as a Java properties file (``key=value`` lines)."""
    lines = [f"{key}={value}" for key, value in props.items()]
    path.write_text("# written by vitalstream.services.broker\n" + "\n".join(lines) + "\n")


def java_command(
    jars_dir: Path, work_dir: Path, main: str, *args: str, marker: str = ""
) -> list[str]:
    """A ``java`` command line with the broker's classpath and logging (to work_dir/logs)."""
    if not LOG4J2_CONFIG.exists():
        raise RuntimeError(f"missing {LOG4J2_CONFIG}: the broker would log nowhere")
    cmd = [str(jars.java_executable()), *JVM_OPTS]
    if marker:
        cmd.append(supervise.marker_arg(MARKER_PROPERTY, marker))
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
    cmd = java_command(
        jars_dir, work_dir, STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(config), *flags
    )
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            f"Kafka storage format failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-4000:]}"
        )


def prepare_node(
    jars_dir: Path, node_dir: Path, props: dict[str, str], cluster_id: str, *, standalone: bool
) -> None:
    """Write ``node_dir/server.properties`` and format a fresh KRaft log dir beside it: the
    data and logs of an earlier broker in ``node_dir`` are wiped (every run measures an empty
    broker, and its logs are this broker's only)."""
    node_dir.mkdir(parents=True, exist_ok=True)
    for stale in (node_dir / DATA_DIR_NAME, node_dir / "logs"):
        shutil.rmtree(stale, ignore_errors=True)
    config = node_dir / "server.properties"
    write_properties(config, props)
    format_storage(jars_dir, node_dir, config, cluster_id, standalone=standalone)
