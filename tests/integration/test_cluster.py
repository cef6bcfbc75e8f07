"""The cluster profile, on loopback: the quick profile's indexed headline run through a Spark
standalone master with two workers and a three-broker KRaft cluster (both started by
`python -m vitalstream cluster start`), indexing into an OpenSearch node started separately,
gives the same alerts, windows and index as the same run in local mode (the workflow's own
broker and search node, Spark local[2]: the session's quick workflow, conftest.quick_run).
Scale-out needs no new code, and this is also the test of the external-services path
(config/profiles/external.yaml): the workflow starts none of the services it is pointed at.

Why the results must be identical: windows are event-time windows in append mode, emitted
once the watermark passes them, and the alert ids are a hash of patient, rule and time; so if
every message is consumed (checked here too), neither the micro-batch boundaries nor which
executor ran a task can change what is found. Only a mean's last bits may depend on how Spark
split a window's readings over batches, so floats are compared to 1e-9.

Like tests/integration/test_workflow.py, the workflow runs in a scratch copy of the
repository, with the PhysioNet mirror passed by environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from scratch import copy_repository, physionet_mirror, processes_in
from vitalstream.services import cluster, searchnode
from vitalstream.sinks import search

# The session's quick workflow may run in this module's setup (conftest.quick_run): it gets the
# run's own limit, not the suite's 900 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
# The quick profile's serving run: its headline run, which indexes its alerts there.
RUN = "results/runs/skeleton/base/rep1"
SERVED = "results/serving/skeleton/base/rep1"
# The run, and its alerts read back from the index and checked against its Parquet sink.
TARGET = f"{SERVED}/check.json"
QUICK = "config/profiles/quick.yaml"
PROFILE = "config/profiles/cluster.yaml"
# Alert and window columns compared; wall-clock stamps and batch ids legitimately differ.
ALERT_KEY = ["alert_id", "rule", "patient_id", "time"]
ALERT_COLUMNS = [*ALERT_KEY, "kind", "value", "suppressed"]
WINDOW_KEY = ["patient_id", "window_start", "window_end"]
WINDOW_IGNORED = {"last_send_wall_ns", "batch_id"}
TIMINGS: dict[str, float] = {}


def environment(workdir: Path) -> dict[str, str]:
    """What the Makefile exports: the venv's tools first, the copy's package, Java 17,
    loopback Spark."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(workdir / "scripts")
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["VITALSTREAM_PHYSIONET_MIRROR"] = str(physionet_mirror())
    java17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    if "JAVA_HOME" not in env and java17.exists():
        env["JAVA_HOME"] = str(java17)
    return env


def run(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=workdir,
        env=environment(workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`snakemake TARGET --cores 2 ARGS` (targets before --configfile, which takes every
    following word); the run's output is kept next to it for a failing assertion."""
    exe = str(Path(sys.executable).parent / "snakemake")
    result = run(workdir, exe, TARGET, "--cores", "2", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return copy_repository(tmp_path_factory.mktemp("cluster") / "vitalstream")


@pytest.fixture(scope="module")
def loopback(workdir, quick_run) -> Iterator[dict]:
    """The loopback cluster, started by the CLI on free ports; stopped at the end even if a
    test failed (the last test stops it itself and checks that nothing is left). Started after
    the session's quick workflow (``quick_run``), which must not share the cores with a
    cluster idling beside it (that cost it 90 s in CI)."""
    cluster_dir = workdir.parent / "loopback"
    state_file = cluster_dir / "state.json"
    python = sys.executable
    start = time.monotonic()
    result = run(
        workdir,
        *(python, "-m", "vitalstream", "cluster", "start", "--free-ports"),
        *("--work-dir", str(cluster_dir), "--state", str(state_file)),
        timeout=300,
    )
    TIMINGS["cluster_start_s"] = time.monotonic() - start
    try:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        state = json.loads(state_file.read_text())
        yield {**state, "dir": cluster_dir, "state_file": state_file}
    finally:
        run(workdir, python, "-m", "vitalstream", "cluster", "stop", "--state", str(state_file))


@pytest.fixture(scope="module")
def search_node(workdir) -> Iterator[searchnode.NodeHandle]:
    """An OpenSearch node started outside the workflow, like a user's own server."""
    handle = searchnode.start_node(workdir.parent / "opensearch", tag="pytest-external-search")
    try:
        yield handle
    finally:
        searchnode.stop(handle)


@pytest.fixture(scope="module")
def cluster_run(workdir, loopback, search_node) -> dict:
    """The indexed headline run on the cluster: the quick profile, then the cluster profile,
    then the loopback cluster's ports and the external node's URL. Its run and serving dirs
    are moved aside (results/cluster_run/)."""
    start = time.monotonic()
    result = snakemake(
        workdir,
        *("--configfile", QUICK, PROFILE, "--config", *loopback["snakemake_config_args"]),
        f'search={{"url": "{search_node.url}"}}',
    )
    TIMINGS["cluster_workflow_s"] = time.monotonic() - start
    master = cluster.master_state(loopback["spark"]["master"]["webui_port"])
    kept = workdir / "results" / "cluster_run"
    kept.mkdir()
    (workdir / RUN).rename(kept / "run")
    (workdir / SERVED).rename(kept / "served")
    return {
        "dir": kept / "run",
        "served": kept / "served",
        "output": result.stdout + result.stderr,
        "master": master,
    }


@pytest.fixture(scope="module")
def local_run(quick_workdir, quick_run) -> dict:
    """The same run in local mode: the session's quick workflow (conftest.quick_run), which
    starts its own broker and search node and runs Spark local[2]. Its headline run is this
    one's target with the same profile, so it is not run a second time here."""
    return {
        "dir": quick_workdir / RUN,
        "served": quick_workdir / SERVED,
        "output": quick_run.stdout + quick_run.stderr,
    }


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def provenance(run_dir: Path) -> dict:
    return json.loads((run_dir / "provenance.json").read_text())


def alerts(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "alerts")[ALERT_COLUMNS]
    # Sorted by every column: a duplicated reading fires the same alert (same id) twice.
    return frame.sort_values(ALERT_COLUMNS).reset_index(drop=True)


def windows(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_parquet(run_dir / "windows")
    frame = frame[[c for c in frame.columns if c not in WINDOW_IGNORED]]
    return frame.sort_values(WINDOW_KEY).reset_index(drop=True)


def replicas_and_isr(bootstrap: str, topic: str) -> dict[int, tuple[list[int], list[int]]]:
    """Replica and in-sync replica node ids of every partition of ``topic``."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    meta = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert meta.error is None, meta.error
    return {p: (list(m.replicas), list(m.isrs)) for p, m in meta.partitions.items()}


def test_cluster_run_used_the_standalone_master_and_both_workers(loopback, cluster_run):
    assert "Started local Kafka broker" not in cluster_run["output"]
    assert "Started local OpenSearch node" not in cluster_run["output"]
    conf = provenance(cluster_run["dir"])["spark_conf"]
    assert conf["spark.master"] == loopback["spark_master"] != "local[2]"
    apps = cluster_run["master"]["completedapps"] + cluster_run["master"]["activeapps"]
    assert [app["name"] for app in apps] == ["vitalstream"], apps
    assert apps[0]["cores"] == 2  # spark.cores.max: one executor per 1-core worker
    # Each worker ran an executor of that application (its work dir: app-<id>/<executor>/).
    for worker in loopback["spark"]["workers"]:
        app_dirs = [p.name for p in (Path(worker["work_dir"]) / "work").iterdir()]
        assert app_dirs == [apps[0]["id"]], (worker["role"], app_dirs)


def test_topics_were_replicated_on_the_three_brokers(loopback, cluster_run):
    record = provenance(cluster_run["dir"])
    assert record["kafka"]["bootstrap_servers_configured"] == loopback["bootstrap_servers"]
    assert len(loopback["bootstrap_servers"].split(",")) == 3
    topic = record["kafka"]["topic"]
    # The alerts topic stays after the run: every partition on all three nodes, all in sync.
    partitions = replicas_and_isr(loopback["bootstrap_servers"], f"{topic}.alerts")
    assert partitions and all(
        sorted(replicas) == sorted(isr) == [1, 2, 3] for replicas, isr in partitions.values()
    ), partitions
    # The readings topic is deleted after the run; every node logged a replica of each of its
    # partitions when it was created.
    count = metrics(cluster_run["dir"])["condition"]["kafka_partitions"]
    for node in loopback["kafka"]:
        log = Path(node["log_file"]).read_text(errors="replace")
        for partition in range(count):
            assert f"Created log for partition {topic}-{partition} " in log, node["work_dir"]


def test_every_message_was_consumed_in_both_modes(cluster_run, local_run):
    clustered, local = metrics(cluster_run["dir"]), metrics(local_run["dir"])
    assert "Started local Kafka broker" in local_run["output"]
    assert provenance(local_run["dir"])["spark_conf"]["spark.master"].startswith("local")
    assert clustered["events_produced"] == local["events_produced"] > 0
    for key in ("events_processed", "events_in_windows", "quarantined", "windows"):
        assert clustered[key] == local[key], key
    assert clustered["dropped_by_watermark"] == local["dropped_by_watermark"] == 0


def test_alerts_are_identical(cluster_run, local_run):
    clustered, local = alerts(cluster_run["dir"]), alerts(local_run["dir"])
    assert len(local) > 0
    pd.testing.assert_frame_equal(clustered, local, check_exact=False, rtol=1e-9, atol=1e-12)
    assert (
        metrics(cluster_run["dir"])["alerts_by_rule"] == metrics(local_run["dir"])["alerts_by_rule"]
    )


def test_the_external_and_the_local_index_hold_the_same_alerts(search_node, cluster_run, local_run):
    assert "Started local OpenSearch node" in local_run["output"]
    for served in (cluster_run["served"], local_run["served"]):
        check = json.loads((served / "check.json").read_text())
        assert check["equal"] and check["windows_equal"], check
    columns = ["_id", "patient_id", "rule", "time", "value", "suppressed"]
    clustered, local = (
        pd.read_parquet(r["served"] / "index_alerts.parquet")[columns].sort_values("_id")
        for r in (cluster_run, local_run)
    )
    assert len(local) > 0
    pd.testing.assert_frame_equal(
        clustered.reset_index(drop=True), local.reset_index(drop=True), check_exact=True
    )
    # The external node holds the cluster run's documents (nobody deleted them afterwards).
    run = RUN.removeprefix("results/runs/")
    assert len(search.export(search_node.url, "vitalstream", search.ALERTS, run)) == len(local)


def test_windows_are_identical(cluster_run, local_run):
    clustered, local = windows(cluster_run["dir"]), windows(local_run["dir"])
    assert len(local) == metrics(local_run["dir"])["windows"] > 0
    pd.testing.assert_frame_equal(clustered, local, check_exact=False, rtol=1e-9, atol=1e-12)


def test_stop_leaves_no_process(workdir, loopback, local_run):
    start = time.monotonic()
    result = run(
        workdir,
        *(sys.executable, "-m", "vitalstream", "cluster", "stop"),
        *("--state", str(loopback["state_file"])),
    )
    TIMINGS["cluster_stop_s"] = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert not loopback["state_file"].exists()
    deadline = time.monotonic() + 30
    while (left := processes_in(workdir, loopback["dir"])) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, "processes left running:\n" + "\n".join(left)
    print("timings:", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))
