"""Java and the jars of the local JVM services: which ``java`` runs them, where their jars are
cached, how Maven fills that cache, and how anything built into it lands there whole.

Why this exists: the Kafka broker and the OpenSearch node (services.broker, services.searchnode)
run from plain Maven Central jars, launched with ``java -cp``; both need a Java 17, a cache dir
that an env var can redirect, and a build step (``mvn dependency:copy-dependencies``, ``javac``)
that parallel first runs must not perform into the same dir at once. That is written once here.

All three sets (Kafka, Spark's Kafka connector, OpenSearch) are fetched the same way: by
``make jars``, or else by their first use, through :func:`resolve_with_maven`.

Not for: starting or stopping processes (services.supervise), nor what a service needs from
its jars (each launcher checks its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from vitalstream.core.paths import cache_dir

DEFAULT_JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")


def java_home() -> Path:
    """The Java installation to run the services with: ``$JAVA_HOME``, the Debian JDK 17, PATH.

    Kafka 4.x and OpenSearch 2.x need Java 17+; the explicit Debian path wins over PATH
    because other tools (Spark's env) may put an older ``java`` first.
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


def jars_dir(env_var: str, name: str) -> Path:
    """A service's jar cache: ``$<env_var>`` or ``<cache>/jars/<name>`` (core.paths.cache_dir:
    ``<repo>/.cache`` in a checkout, the user's cache for an installed package).

    The env var lets CI or a developer share one cache between clones; the default is inside
    the git-ignored ``.cache/`` that ``make jars`` (or the first start) fills.
    """
    override = os.environ.get(env_var)
    return Path(override).expanduser().resolve() if override else cache_dir() / "jars" / name


def find_jar(directory: Path, artifact: str) -> Path | None:
    """The jar ``<artifact>-<version>.jar`` in ``directory``, the version starting with a digit.

    ``opensearch`` never matches ``opensearch-core-2.19.6.jar``, and ``kafka_2.13`` never
    matches a ``-sources``/``-test`` jar (a hyphen is not part of a version).
    """
    if not directory.is_dir():
        return None
    for jar in sorted(directory.glob(f"{artifact}-*.jar")):
        if re.fullmatch(rf"{re.escape(artifact)}-\d[\w.]*\.jar", jar.name):
            return jar
    return None


def jar_version(directory: Path, artifact: str) -> str | None:
    """Version of :func:`find_jar`'s jar (``"4.1.1"``), None if there is none."""
    jar = find_jar(directory, artifact)
    return None if jar is None else jar.name.removeprefix(f"{artifact}-").removesuffix(".jar")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path``, so parallel first runs do not build into one dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_into_place(
    target: Path, is_current: Callable[[Path], bool], build: Callable[[Path], None]
) -> Path:
    """``target`` if ``is_current`` says so; else ``build`` fills a fresh sibling dir, which
    then replaces ``target``, all under the lock ``.<target name>.lock`` beside it.

    An interrupted or failed build never leaves a half-filled classpath behind, and of two
    processes that both found ``target`` stale, only the first builds.
    """
    if is_current(target):
        return target
    with file_lock(target.parent / f".{target.name}.lock"):
        if is_current(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it 0700; the cache is shared, not secret
        try:
            build(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def resolve_with_maven(
    pom: Path,
    target: Path,
    is_complete: Callable[[Path], bool],
    *,
    what: str,
    env_var: str,
    then: Callable[[Path], None] | None = None,
) -> Path:
    """``target`` holding the runtime jars of ``pom``, resolved by Maven unless already there.

    ``is_complete`` decides both whether a download is needed and whether it succeeded;
    ``what`` and ``env_var`` name the jars and the override in the errors. ``then`` builds
    what else belongs to the set (a launcher compiled against the jars) into the same staging
    dir, under the same lock, so the set lands whole or not at all. The command is
    ``make jars``'s, so the first use of a set and ``make jars`` fill the cache alike.
    """

    def download(staging: Path) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError(
                f"{what} are missing in {target} and Maven ('mvn') is not on PATH to fetch "
                "them on first use: install Maven (`apt-get install maven`) and run "
                f"`make jars`, or point ${env_var} to a dir holding the jars of {pom}."
            )
        cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
        cmd += ["-DincludeScope=runtime", f"-DoutputDirectory={staging}"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not is_complete(staging):
            raise RuntimeError(
                f"`{' '.join(cmd)}` failed (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        if then is not None:
            then(staging)

    return build_into_place(target, is_complete, download)
