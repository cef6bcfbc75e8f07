"""Spark session set-up: settings file, Kafka connector jars, Java and loopback networking.

Every run builds its session here so that all runs share one set of defaults
(envs/spark/spark-defaults.conf), and so that the effective settings and the equivalent
``spark-submit`` command can be recorded with the run's results.

Not for: the streaming job itself (see vitalstream.stream.job).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitalstream.core.paths import resource
from vitalstream.services import jars as jarcache

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULTS_FILE = resource("envs/spark/spark-defaults.conf")
CONNECTOR_POM = resource("envs/spark/pom.xml")
JARS_ENV_VAR = "VITALSTREAM_SPARK_JARS"
JAVA17_HOME = jarcache.DEFAULT_JAVA_HOME
_JAR_VERSION = re.compile(r"-\d[\w.\-]*\.jar$")


def read_defaults(path: Path = DEFAULTS_FILE) -> dict[str, str]:
    """Parse a spark-defaults.conf file (``key  value`` lines, ``#`` comments)."""
    conf: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'key value', got {line!r}")
        conf[parts[0]] = parts[1].strip()
    return conf


def effective_conf(
    defaults_file: Path = DEFAULTS_FILE, *overrides: Mapping[str, Any] | None
) -> dict[str, str]:
    """Defaults file, then each override mapping in turn; values as Spark strings."""
    conf = read_defaults(defaults_file)
    for override in overrides:
        for key, value in (override or {}).items():
            conf[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return conf


def _artifact(jar: Path) -> str:
    """``kafka-clients-3.9.2.jar`` → ``kafka-clients``: the name without its version."""
    return _JAR_VERSION.sub("", jar.name)


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def default_jars_dir() -> Path:
    """Where the connector's jars live: ``$VITALSTREAM_SPARK_JARS`` or ``.cache/jars/spark``
    (read at each call, so that the override also holds after this module was imported)."""
    return jarcache.jars_dir(JARS_ENV_VAR, "spark")


def connector_jars(jars_dir: Path | None = None) -> list[Path]:
    """The Kafka connector's jars that pyspark does not already ship.

    Maven resolves the connector with its whole runtime closure (scala-library, hadoop client,
    slf4j, ...). Putting a second copy of those on the classpath invites version clashes, so only
    artifacts pyspark lacks are added.
    """
    jars_dir = ensure_connector_jars(jars_dir)
    shipped = {_artifact(j) for j in pyspark_jars_dir().glob("*.jar")}
    return sorted(j for j in jars_dir.glob("*.jar") if _artifact(j) not in shipped)


def _has_connector(jars_dir: Path) -> bool:
    return jars_dir.is_dir() and any(jars_dir.glob("spark-sql-kafka-0-10_*.jar"))


def ensure_connector_jars(jars_dir: Path | None = None) -> Path:
    """``jars_dir`` holding the connector, resolved from Maven Central on first use as the
    broker's and the search node's jars are (services.jars: staged, under a lock)."""
    jars_dir = Path(jars_dir) if jars_dir is not None else default_jars_dir()
    return jarcache.resolve_with_maven(
        CONNECTOR_POM,
        jars_dir,
        _has_connector,
        what="Spark's Kafka connector jars",
        env_var=JARS_ENV_VAR,
    )


def prepare_environment() -> None:
    """Java 17 and loopback-only networking for the Spark driver, set before the JVM starts."""
    if "JAVA_HOME" not in os.environ and JAVA17_HOME.exists():
        os.environ["JAVA_HOME"] = str(JAVA17_HOME)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def spark_submit_equivalent(conf: Mapping[str, str], jars: list[Path], argv: list[str]) -> str:
    """The ``spark-submit`` command that would start the same job (recorded for provenance).

    ``argv`` is the application and its arguments, e.g. the package's ``__main__.py`` and
    ``run <run id> ...``; the package must be on PYTHONPATH, as the workflow arranges.
    """
    parts = ["spark-submit", "--master", conf.get("spark.master", "local[*]")]
    for key, value in sorted(conf.items()):
        if key != "spark.master":
            parts += ["--conf", f"{key}={value}"]
    if jars:
        parts += ["--jars", ",".join(str(j) for j in jars)]
    parts += argv
    return "PYTHONPATH=scripts " + shlex.join(parts)


def build_session(conf: Mapping[str, str], *, with_kafka: bool = True) -> SparkSession:
    """A SparkSession with exactly ``conf`` plus the Kafka connector jars.

    The jars go on the driver's class path only when the JVM starts, and a Python process keeps
    its first JVM for every later session: so the jars are added whenever they are available,
    and ``with_kafka=False`` only means that a session may start without them.
    """
    prepare_environment()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    jars = connector_jars() if with_kafka or _has_connector(default_jars_dir()) else []
    if jars:
        builder = builder.config("spark.jars", ",".join(str(j) for j in jars))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
