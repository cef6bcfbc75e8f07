"""envs/docker-compose.yml: pinned images, loopback-only ports, the versions this repository
runs, and (when a Compose client is installed) a file Compose itself accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "envs" / "docker-compose.yml"
# An exact release: 4.1.1, 8.19.21, 4.2.0-scala2.13-java17-python3-ubuntu (no latest, no 4.1).
EXACT_TAG = re.compile(r"^\d+\.\d+\.\d+(-[A-Za-z0-9_.-]+)?$")
LOOPBACK = "127.0.0.1"


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def image_tag(image: str) -> tuple[str, str]:
    """``repo``, ``tag`` of an image reference (a registry port is not a tag)."""
    name = image.partition("@")[0]
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, ""
    return repo, tag


def version_of(image: str) -> str:
    return image_tag(image)[1].split("-")[0]


def test_every_image_has_an_exact_version_tag():
    for name, service in services().items():
        tag = image_tag(service["image"])[1]
        assert tag, f"{name}: {service['image']} has no tag"
        assert tag != "latest" and EXACT_TAG.match(tag), f"{name}: {tag} is not an exact version"


def test_every_service_has_a_healthcheck():
    for name, service in services().items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def published(port: str | int | dict) -> tuple[str, str]:
    """``host_ip``, ``published`` of a port entry (short or long syntax)."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), str(port.get("published", ""))
    parts = str(port).split(":")
    if len(parts) == 3:
        return parts[0], parts[1]
    return "", parts[0] if len(parts) == 2 else ""


def test_every_port_listens_on_loopback_only():
    for name, service in services().items():
        if service.get("network_mode") == "host":
            # Nothing published: the daemon binds loopback itself (Spark: --host, SPARK_LOCAL_IP).
            assert "ports" not in service, f"{name}: host network publishes nothing"
            assert service["environment"]["SPARK_LOCAL_IP"] == LOOPBACK, name
            assert f"--host {LOOPBACK}" in service["command"], name
            continue
        assert service.get("ports"), f"{name} publishes no port"
        for port in service["ports"]:
            host_ip, host_port = published(port)
            assert host_ip == LOOPBACK, f"{name}: {port} is not bound to {LOOPBACK}"
            assert host_port, f"{name}: {port} has no fixed host port"


def test_kafka_image_is_the_broker_version_of_the_repository():
    pom = ET.parse(REPO / "envs" / "kafka" / "pom.xml").getroot()
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    kafka_version = pom.findtext("m:properties/m:kafka.version", namespaces=namespace)
    assert kafka_version
    kafka = services()["kafka"]
    assert image_tag(kafka["image"]) == ("apache/kafka", kafka_version)


def test_spark_images_match_pyspark_and_the_search_stack_shares_one_version():
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    all_services = services()
    for name in ("spark-master", "spark-worker"):
        image = all_services[name]["image"]
        assert version_of(image) == pins["pyspark"], f"{name}: {image} vs pyspark"
        assert "scala2.13" in image, "the Kafka connector jars are built for Scala 2.13"
    assert version_of(all_services["elasticsearch"]["image"]).startswith("8.")
    assert version_of(all_services["kibana"]["image"]) == version_of(
        all_services["elasticsearch"]["image"]
    )
    assert all_services["elasticsearch"]["environment"]["xpack.security.enabled"] == "false"


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (v1), if either is installed."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_accepts_the_file():
    command = compose_command()
    if command is None:
        pytest.skip("no `docker compose` or `docker-compose` client installed")
    # `config` only parses and validates: no Docker engine is needed.
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_external_profile_points_at_the_compose_services():
    """config/profiles/external.yaml names the addresses this file publishes."""
    from vitalstream.core.config import load_config

    config = load_config([REPO / "config" / "config.yaml", REPO / "config/profiles/external.yaml"])
    ports = {
        name: {published(p) for p in service.get("ports", [])}
        for name, service in services().items()
    }
    kafka_host, _, kafka_port = config["kafka"]["bootstrap_servers"].rpartition(":")
    assert (LOOPBACK, kafka_port) in ports["kafka"] and kafka_host == LOOPBACK
    search_port = config["search"]["url"].rstrip("/").rpartition(":")[2]
    assert (LOOPBACK, search_port) in ports["elasticsearch"]
    master = config["spark"]["conf"]["spark.master"]
    assert f"--host {LOOPBACK} --port {master.rpartition(':')[2]}" in " ".join(
        map(str, [services()["spark-master"].get("command", "")])
    )
