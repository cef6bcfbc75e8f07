"""What the README promises about downloads: each of the three jar sets (the Kafka broker,
Spark's Kafka connector, the OpenSearch node and its launcher) is fetched with Maven by its first
use when `make jars` did not fetch it, and a later use downloads nothing. Real Maven, into empty
caches (the env overrides of services.jars), from the local Maven repository ~/.m2."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from vitalstream.services import kafkaconfig, searchconfig, sparkenv

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("mvn") is None, reason="Maven is needed for a first use"),
]

# (env override, first use, a jar the set must hold)
SETS: dict[str, tuple[str, Callable[[], Path], str]] = {
    "kafka": (kafkaconfig.JARS_ENV_VAR, kafkaconfig.ensure_kafka_jars, "kafka_2.13-*.jar"),
    "spark": (
        sparkenv.JARS_ENV_VAR,
        sparkenv.ensure_connector_jars,
        "spark-sql-kafka-0-10_*.jar",
    ),
    "opensearch": (
        searchconfig.JARS_ENV_VAR,
        searchconfig.ensure_jars,
        "launcher/VitalStreamNode.class",
    ),
}


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its inode and modification time: a re-download or
    a rebuild replaces files, so this changes."""
    return {
        str(p.relative_to(directory)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
    }


@pytest.mark.parametrize("name", list(SETS))
def test_first_use_fetches_the_jars_and_a_second_use_downloads_nothing(name, tmp_path, monkeypatch):
    env_var, first_use, expected = SETS[name]
    cache = tmp_path / "jars" / name
    monkeypatch.setenv(env_var, str(cache))

    assert first_use() == cache
    assert list(cache.glob(expected)), f"no {expected} in {cache}"
    assert not list(cache.parent.glob(f".{name}-*")), "a staging dir was left behind"
    before = snapshot(cache)

    # A second use with no Maven on PATH: it can only succeed by downloading nothing.
    monkeypatch.setenv("PATH", str(tmp_path / "no-maven"))
    assert first_use() == cache
    assert snapshot(cache) == before
