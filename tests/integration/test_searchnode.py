"""Integration tests of services.searchnode against a real local OpenSearch node (no Docker).

They prove what the workflow relies on: a node starts from the Maven Central jars on a free
loopback port, an ingest pipeline stamps documents with ``{{_ingest.timestamp}}`` (so the
mustache module is really there), bulk indexing with explicit ids is idempotent, the data dir
survives a stop and a restart through the workflow's state file, and no JVM is left behind,
neither after ``stop`` nor after ``kill -9`` of the process the node was started for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from vitalstream.services import searchnode

pytestmark = pytest.mark.integration

PIPELINE = "vitalstream-stamp"
INDEX = "vitals-test"


def _tag(name: str) -> str:
    """A marker unique to this test run, so nodes of other runs are never confused with ours."""
    return f"pytest-search-{name}-{uuid.uuid4().hex[:8]}"


def _tagged(tag: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose argv carries ``-Dvitalstream.searchnode=<tag>``."""
    marker = f"-D{searchnode.MARKER_PROPERTY}={tag}"
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _gone(pid: int | None) -> bool:
    """Exited, or a zombie (an exited child of this process stays one until it is reaped)."""
    try:
        return psutil.Process(pid or 0).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _bulk(url: str, docs: dict[str, dict[str, object]]) -> dict[str, object]:
    """Index ``docs`` (id -> source) through the stamping pipeline, visible to search on return."""
    lines = []
    for doc_id, source in docs.items():
        lines += [json.dumps({"index": {"_index": INDEX, "_id": doc_id}}), json.dumps(source)]
    body = "\n".join(lines) + "\n"
    answer = searchnode.request_json(
        url, "POST", f"_bulk?pipeline={PIPELINE}&refresh=wait_for", body
    )
    assert answer["errors"] is False, answer
    return answer


def _count(url: str) -> int:
    return int(searchnode.request_json(url, "GET", f"{INDEX}/_count")["count"])


def test_ingest_pipeline_stamps_documents_and_reindexing_is_idempotent(tmp_path: Path) -> None:
    started = time.monotonic()
    handle = searchnode.start_node(tmp_path / "node", tag=_tag("ingest"))
    startup_s = time.monotonic() - started
    try:
        assert [p.pid for p in _tagged(handle.tag)] == [handle.pid]
        rss_mb = psutil.Process(handle.pid).memory_info().rss / 2**20
        print(f"start-up to yellow: {startup_s:.1f} s, JVM RSS {rss_mb:.0f} MiB")

        health = searchnode.request_json(handle.url, "GET", "_cluster/health")
        assert health["cluster_name"] == "vitalstream"
        assert health["number_of_nodes"] == 1
        assert health["status"] in ("green", "yellow")
        info = searchnode.request_json(handle.url, "GET", "/")
        assert info["version"]["distribution"] == "opensearch"
        assert info["version"]["number"] == handle.opensearch_version == "2.19.6"

        pipeline = {
            "description": "stamp each document with the time it was indexed",
            "processors": [{"set": {"field": "indexed_at", "value": "{{_ingest.timestamp}}"}}],
        }
        ack = searchnode.request_json(handle.url, "PUT", f"_ingest/pipeline/{PIPELINE}", pipeline)
        assert ack == {"acknowledged": True}

        docs = {"stay-1": {"hr": 81, "spo2": 97}, "stay-2": {"hr": 112, "spo2": 91}}
        first = _bulk(handle.url, docs)
        assert [item["index"]["result"] for item in first["items"]] == ["created", "created"]
        assert _count(handle.url) == 2
        second = _bulk(handle.url, docs)  # same ids: overwritten, not duplicated
        assert [item["index"]["result"] for item in second["items"]] == ["updated", "updated"]
        assert _count(handle.url) == 2

        hits = searchnode.request_json(handle.url, "GET", f"{INDEX}/_search")["hits"]["hits"]
        assert sorted(hit["_id"] for hit in hits) == ["stay-1", "stay-2"]
        for hit in hits:
            stamp = hit["_source"]["indexed_at"]
            assert "{{" not in stamp  # rendered by mustache, not stored verbatim
            when = datetime.fromisoformat(stamp)
            assert when.tzinfo is not None
            assert abs(time.time() - when.timestamp()) < 600
        mapping = searchnode.request_json(handle.url, "GET", f"{INDEX}/_mapping")
        assert mapping[INDEX]["mappings"]["properties"]["indexed_at"]["type"] == "date"
        settings = searchnode.request_json(handle.url, "GET", f"{INDEX}/_settings")
        assert settings[INDEX]["settings"]["index"]["number_of_replicas"] == "0"
    finally:
        searchnode.stop(handle)
    assert not searchnode.node_alive(handle)
    assert not _tagged(handle.tag)
    assert _gone(handle.pid)


def test_workflow_state_round_trip_and_restart_keep_the_documents(tmp_path: Path) -> None:
    state_file = tmp_path / "search-node.json"
    work_dir = tmp_path / "node"
    state = searchnode.start_for_workflow(state_file, work_dir, parent_pid=os.getpid())
    handle = searchnode.NodeHandle.from_state(state)
    try:
        assert searchnode.read_url(state_file) == state["url"] == handle.url
        assert state["watchdog_pid"] and not _gone(state["watchdog_pid"])
        status = searchnode.node_status(state_file)
        assert status["alive"] and status["ready"] and status["watchdog_alive"]
        docs = "".join(
            json.dumps({"index": {"_index": INDEX, "_id": str(i)}})
            + "\n"
            + json.dumps({"i": i})
            + "\n"
            for i in range(3)
        )
        searchnode.request_json(handle.url, "POST", "_bulk?refresh=wait_for", docs)
        assert _count(handle.url) == 3
    finally:
        assert searchnode.stop_from_state(state_file) is True
    assert not state_file.exists()
    assert not searchnode.node_alive(handle)
    assert _wait_until(lambda: _gone(state["watchdog_pid"]), 10)
    assert searchnode.stop_from_state(state_file) is False  # idempotent

    # A later run over the same work dir: new ports, same data.
    again = searchnode.start_for_workflow(state_file, work_dir, parent_pid=None)
    try:
        assert again["watchdog_pid"] is None
        assert _count(again["url"]) == 3
    finally:
        assert searchnode.stop_from_state(state_file) is True
    assert not searchnode.node_alive(searchnode.NodeHandle.from_state(again))


def test_watchdog_stops_the_node_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(["sleep", "600"])
    handle = searchnode.start_node(tmp_path / "node", tag=_tag("watchdog"), watch_parent=parent.pid)
    try:
        assert handle.watchdog_pid is not None
        time.sleep(1.5)  # the watchdog polls once a second: it must not fire while parent lives
        assert searchnode.node_alive(handle)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_until(lambda: not _tagged(handle.tag), 60)
        assert _wait_until(lambda: _gone(handle.watchdog_pid), 10)
    finally:
        searchnode.stop(handle)
        if parent.poll() is None:
            parent.kill()
