"""The OpenSearch node's settings, opensearch.yml text, java command line, state round trip and
the jar check (no JVM is started here; tests/integration/test_searchnode.py runs real nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from vitalstream.services import searchconfig, searchnode


def settings(**kwargs):
    return searchconfig.node_settings(
        http_port=9200,
        transport_port=9300,
        data_dir=Path("/w/data"),
        logs_dir=Path("/w/logs"),
        **kwargs,
    )


def test_a_single_loopback_node_that_stops_writing_before_the_disk_is_full():
    node = settings()
    assert node["discovery.type"] == "single-node"
    assert node["cluster.name"] == "vitalstream"
    assert node["network.host"] == node["http.host"] == "127.0.0.1"
    assert (node["http.port"], node["transport.port"]) == ("9200", "9300")
    assert node["path.data"] == "/w/data" and node["path.logs"] == "/w/logs"
    assert node["cluster.routing.allocation.disk.threshold_enabled"] == "true"
    watermark = "cluster.routing.allocation.disk.watermark."
    levels = [node[watermark + level] for level in ("low", "high", "flood_stage")]
    assert levels == ["90%", "95%", "97%"]  # a small disk's last 3 % left to the others
    assert node["action.auto_create_index"] == "true"


def test_extra_settings_override_the_defaults():
    node = settings(extra={"action.auto_create_index": "false", "indices.query.bool.x": "1"})
    assert node["action.auto_create_index"] == "false"
    assert node["indices.query.bool.x"] == "1"


def test_the_yaml_reads_back_verbatim_even_with_awkward_paths():
    node = settings()
    node["path.data"] = "/tmp/a: b #c/'d\""
    text = searchconfig.render_settings(node)
    assert yaml.safe_load(text) == node  # every value a string, nothing lost to YAML syntax


def test_java_command_has_fixed_heap_marker_classpath_and_home(tmp_path: Path):
    cmd = searchconfig.java_command(
        tmp_path / "jars",
        tmp_path / "jars" / "launcher",
        tmp_path / "home",
        heap_mb=768,
        marker="t1",
    )
    assert cmd[0].endswith("/bin/java")
    assert "-Xms768m" in cmd and "-Xmx768m" in cmd
    assert "-Dvitalstream.searchnode=t1" in cmd
    assert "-Dlog4j.shutdownHookEnabled=false" in cmd  # the launcher closes the node first
    assert cmd[cmd.index("-cp") + 1] == f"{tmp_path}/jars/*:{tmp_path}/jars/launcher"
    # The marker must precede the main class: JVM flags after it would be program arguments.
    assert cmd.index("-Dvitalstream.searchnode=t1") < cmd.index("VitalStreamNode")
    assert cmd[-2:] == ["VitalStreamNode", str(tmp_path / "home")]


def test_the_handle_round_trips_through_the_state_file_format(tmp_path: Path):
    handle = searchnode.NodeHandle(
        pid=11,
        pgid=11,
        port=45123,
        transport_port=45124,
        work_dir=tmp_path,
        tag="t",
        opensearch_version="2.19.6",
        watchdog_pid=12,
    )
    state = handle.to_state()
    assert state["url"] == "http://127.0.0.1:45123"
    assert searchnode.NodeHandle.from_state(state) == handle


def test_missing_jars_without_maven_name_the_make_target(tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "opensearch-2.19.6.jar").touch()
    (cache / "opensearch-core-2.19.6.jar").touch()  # must not pass for the server jar
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no mvn: nothing to fetch with
    with pytest.raises(RuntimeError, match="make jars"):
        searchconfig.ensure_jars(cache)
    assert sorted(p.name for p in cache.iterdir()) == [
        "opensearch-2.19.6.jar",
        "opensearch-core-2.19.6.jar",
    ]  # the incomplete cache is left as it was, no half-filled staging dir beside it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cache-")] == []
    assert searchconfig.opensearch_version(cache) == "2.19.6"


def test_the_jar_lookup_does_not_confuse_artifacts_sharing_a_prefix(tmp_path: Path):
    (tmp_path / "opensearch-core-2.19.6.jar").touch()
    with pytest.raises(RuntimeError, match=r"no opensearch-<version>\.jar"):
        searchconfig.opensearch_version(tmp_path)


def test_the_launcher_is_rebuilt_when_its_source_changed(tmp_path: Path):
    launcher = tmp_path / "launcher"
    launcher.mkdir()
    assert not searchconfig.launcher_current(launcher)  # nothing compiled yet
    (launcher / "VitalStreamNode.class").write_bytes(b"\xca\xfe")
    (launcher / "VitalStreamNode.java").write_text("// an older launcher\n")
    assert not searchconfig.launcher_current(launcher)
    (launcher / "VitalStreamNode.java").write_bytes(searchconfig.LAUNCHER_SOURCE.read_bytes())
    assert searchconfig.launcher_current(launcher)


def test_the_workflows_node_starts_from_an_empty_data_dir(tmp_path: Path, monkeypatch):
    work_dir = tmp_path / "opensearch"
    (work_dir / "data" / "nodes" / "0").mkdir(parents=True)
    (work_dir / "data" / "nodes" / "0" / "old-index").write_text("an earlier run's index")
    (work_dir / "logs").mkdir()
    started = []

    def fake_start(work, **kwargs):
        started.append(sorted(p.name for p in (work / "data").rglob("*")))
        return searchnode.NodeHandle(1, 1, 9200, 9300, work, "t", "2.19.6")

    monkeypatch.setattr(searchnode, "start_node", fake_start)
    monkeypatch.setattr(searchnode.supervise, "write_state", lambda *a: None)
    monkeypatch.setattr(searchnode.supervise, "find_marked", lambda marker: None)
    searchnode.start_for_workflow(tmp_path / "s.json", work_dir, None, clean_data=True)
    assert started == [[]]  # no data dir left: the node creates an empty one
    assert (work_dir / "logs").is_dir()  # the logs of earlier nodes stay
    # Without clean_data (a node over its own earlier dir) the indices are kept.
    (work_dir / "data").mkdir()
    (work_dir / "data" / "kept").write_text("")
    searchnode.start_for_workflow(tmp_path / "s.json", work_dir, None)
    assert started[-1] == ["kept"]


def test_a_running_nodes_data_is_never_deleted(tmp_path: Path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.setattr(searchnode.supervise, "find_marked", lambda marker: 4242)
    with pytest.raises(searchnode.NodeStartError, match="running"):
        searchnode.clean_data_dir(tmp_path)
    assert (tmp_path / "data").is_dir()


def test_the_workflow_starts_its_node_clean():
    stack = (Path(__file__).resolve().parents[2] / "workflow/rules/stack.smk").read_text()
    call = stack[stack.index("vssearchnode.start_for_workflow(") :]
    assert "clean_data=not _search_index_kept()" in call[: call.index(")\n")]
