"""Provenance of a run: what ran, with what, where and when.

Written next to every run's metrics so that a number in the paper can be traced to the
configuration, seeds, package versions, Spark settings, the equivalent ``spark-submit`` command,
the git commit and the machine that produced it. The paper's set-up section is generated from it.

Not for: anything that changes a run's behaviour.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from vitalstream.core.paths import REPO_ROOT
from vitalstream.core.runsettings import RunSettings
from vitalstream.core.settings import KafkaSettings
from vitalstream.services import broker

PACKAGES = (
    "pyspark",
    "confluent-kafka",
    "pandas",
    "pyarrow",
    "numpy",
    "snakemake",
    "scikit-learn",
    "wfdb",
    "papermill",
    "seaborn",
    "matplotlib",
)


# What a run's code is: a change elsewhere (paper text, README) does not make a run "dirty".
CODE_PATHS = ("scripts", "workflow", "config", "envs", "Snakefile")


def git_commit(
    repo: Path = REPO_ROOT, paths: tuple[str, ...] | None = CODE_PATHS
) -> dict[str, Any]:
    """HEAD's hash and whether the work tree differs from it in ``paths`` (None: any tracked
    file; unknown outside a checkout)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # Code paths: untracked files there count too; the whole tree: tracked files only.
        scope = ["--", *paths] if paths is not None else ["--untracked-files=no"]
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", *scope],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "short": "unknown", "dirty": None}
    return {"commit": head, "short": head[:8], "dirty": bool(status.strip())}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def java_version() -> str:
    java = Path(os.environ.get("JAVA_HOME", "/usr")) / "bin" / "java"
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    first = (out.stderr or out.stdout).splitlines()[0]
    return first.split('"')[1] if '"' in first else first


def machine() -> dict[str, Any]:
    """The hardware and OS the numbers come from."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": cpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java_version(),
    }


def collect(
    run_settings: RunSettings,
    kafka: KafkaSettings,
    spark_conf: Mapping[str, str],
    jars: list[Path],
    topic: str,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The provenance record of one run (``command``: the vitalstream command that made it,
    default the single-run ``run`` command)."""
    from vitalstream.services.sparkenv import spark_submit_equivalent

    run, condition = run_settings.run, run_settings.condition
    cohort = run_settings.cohort or {}
    seeds = {"cohort": cohort["seed"]} if cohort else {}
    if condition.load is not None:
        seeds["load"] = condition.load.seed
    command = command or [
        "run",
        run.path,
        "--config",
        "<config files>",
        "--events",
        "<events.parquet>",
        "--run-dir",
        f"results/runs/{run.path}",
    ]
    return {
        "run": run.path,
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "condition": dict(condition.record),
        "cohort": dict(cohort),
        "seeds": seeds,
        "kafka": {
            "bootstrap_servers_configured": kafka.bootstrap_servers,
            "version": broker.kafka_version(),
            "topic": topic,
        },
        "spark_conf": dict(spark_conf),
        "spark_submit": spark_submit_equivalent(
            spark_conf,
            jars,
            ["scripts/vitalstream/__main__.py", *command],
        ),
        "packages": package_versions(),
        "git": git_commit(),
        "machine": machine(),
    }
