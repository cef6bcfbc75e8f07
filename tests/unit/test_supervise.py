"""The shared supervision of local services (services.supervise): state files, port choice, the
marker check that guards every signal, and the watchdog. The processes here are short Python
sleepers, not JVMs (tests/integration/test_broker.py and test_searchnode.py run real ones)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from vitalstream.services import broker, searchnode, servicecli, supervise

PROPERTY = "vitalstream.pytest"


def _wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A service stand-in: a process in its own session whose argv carries a marker."""
    marker = supervise.marker_arg(PROPERTY, "t1")
    cmd = [sys.executable, "-c", "import time; time.sleep(60)", marker]
    proc = supervise.spawn(cmd, output=tmp_path / "sleeper.out", cwd=tmp_path)
    assert _wait_until(lambda: marker in psutil.Process(proc.pid).cmdline(), 10)
    yield proc
    supervise.kill_child(proc)


# --------------------------------------------------------------------------- state files


def test_a_state_file_round_trips_and_a_failed_write_leaves_the_old_one(tmp_path: Path):
    state_file = tmp_path / "deep" / "state.json"
    supervise.write_state(state_file, {"pid": 12, "tag": "a"})
    assert supervise.read_state(state_file) == {"pid": 12, "tag": "a"}
    with pytest.raises(TypeError):  # not JSON-able: nothing may reach the file
        supervise.write_state(state_file, {"pid": 13, "tag": object()})
    assert supervise.read_state(state_file) == {"pid": 12, "tag": "a"}
    supervise.write_state(state_file, {"pid": 14})
    assert supervise.read_state(state_file) == {"pid": 14}
    assert [p.name for p in state_file.parent.iterdir()] == ["state.json"]  # no temp file left


def test_stop_from_state_stops_what_the_file_names_once(tmp_path: Path):
    state_file = tmp_path / "state.json"
    stopped: list[dict[str, object]] = []
    assert supervise.stop_from_state(state_file, stopped.append) is False
    supervise.write_state(state_file, {"pid": 12})
    assert supervise.stop_from_state(state_file, stopped.append) is True
    assert stopped == [{"pid": 12}] and not state_file.exists()
    assert supervise.stop_from_state(state_file, stopped.append) is False  # idempotent
    state_file.write_text('{"pid": 1')  # cut off: names nothing that could be stopped safely
    assert supervise.stop_from_state(state_file, stopped.append) is True
    assert stopped == [{"pid": 12}] and not state_file.exists()


# --------------------------------------------------------------------------- ports


def test_a_picked_port_avoids_the_taken_and_the_excluded(monkeypatch: pytest.MonkeyPatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((supervise.LOOPBACK, 0))  # bound, not listening: a server's bind fails
        taken = squatter.getsockname()[1]
        excluded = supervise.free_port()
        assert not supervise.port_is_free(taken) and supervise.port_is_free(excluded)
        real_free_port = supervise.free_port
        offers = iter([taken, excluded])
        monkeypatch.setattr(supervise, "free_port", lambda: next(offers, None) or real_free_port())
        port = supervise.pick_port(avoid=[excluded])
        assert port not in (taken, excluded) and supervise.port_is_free(port)
        monkeypatch.setattr(supervise, "free_port", lambda: taken)
        with pytest.raises(supervise.StartError, match="no free loopback port"):
            supervise.pick_port()


# --------------------------------------------------------------------------- processes


def test_only_a_process_carrying_every_marker_is_ours(sleeper: subprocess.Popen[bytes]):
    marker = supervise.marker_arg(PROPERTY, "t1")
    assert supervise.process_if_ours(sleeper.pid, [marker]) is not None
    assert supervise.find_marked(marker) == sleeper.pid
    # A prefix of the marker is not the marker: tag "t" never matches a process tagged "t1".
    assert supervise.process_if_ours(sleeper.pid, [supervise.marker_arg(PROPERTY, "t")]) is None
    assert supervise.process_if_ours(sleeper.pid, [marker, "-Dother=1"]) is None
    assert supervise.process_if_ours(None, [marker]) is None
    # A PID whose argv lacks the marker (reused, say) is never signalled.
    assert not supervise.kill_group(sleeper.pid, sleeper.pid, ["-Dother=1"], timeout=1)
    assert supervise.exit_code(sleeper) is None
    assert supervise.kill_group(sleeper.pid, sleeper.pid, [marker], timeout=5)
    assert sleeper.poll() is not None  # stopped and reaped: no zombie left behind
    assert supervise.process_if_ours(sleeper.pid, [marker]) is None
    assert not supervise.kill_group(sleeper.pid, sleeper.pid, [marker], timeout=1)


def test_watch_stops_the_service_once_the_parent_is_not_the_same_process(
    sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
):
    me = psutil.Process()
    assert supervise.parent_alive(me.pid, me.create_time())
    assert not supervise.parent_alive(me.pid, me.create_time() - 60)  # a recycled PID
    markers = [supervise.marker_arg(PROPERTY, "t1")]
    code = supervise.watch(me.pid, me.create_time() - 60, sleeper.pid, sleeper.pid, markers)
    assert code == 0 and _gone(sleeper.pid)
    assert f"died: stopping service pid {sleeper.pid}" in capsys.readouterr().out


def test_the_watchdog_carries_its_markers_and_outlives_nothing(
    sleeper: subprocess.Popen[bytes], tmp_path: Path
):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    watchdog_pid = supervise.start_watchdog(
        parent.pid,
        pid=sleeper.pid,
        pgid=sleeper.pid,
        marker_property=PROPERTY,
        tag="t1",
        what="sleeper",
        work_dir=tmp_path,
        stop_timeout=5.0,
    )
    try:
        # The markers that stop and status look for are in the command line actually run.
        assert _wait_until(lambda: supervise.watchdog_alive(watchdog_pid, PROPERTY), 10)
        assert not supervise.watchdog_alive(watchdog_pid, "vitalstream.other")
        parent.kill()
        parent.wait()
        assert _wait_until(lambda: _gone(sleeper.pid), 15), "the service outlived its parent"
        assert _wait_until(lambda: _gone(watchdog_pid), 10), "the watchdog did not exit"
        assert "died: stopping sleeper" in (tmp_path / "watchdog.log").read_text()
    finally:
        supervise.stop_watchdog(watchdog_pid, PROPERTY)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_each_service_has_its_own_markers():
    assert broker.WATCHDOG_MARKERS != searchnode.WATCHDOG_MARKERS
    assert supervise.marker_arg(broker.MARKER_PROPERTY, "x") == "-Dvitalstream.broker=x"
    assert supervise.marker_arg(searchnode.MARKER_PROPERTY, "x") == "-Dvitalstream.searchnode=x"


def _service(ready: bool, stopped: list[Path]) -> servicecli.ServiceCommands:
    def status(state: Path) -> dict:
        if not state.exists():
            raise FileNotFoundError(state)
        return {"port": 1, "ready": ready}

    def stop(state: Path) -> bool:
        stopped.append(state)
        return state.exists()

    return servicecli.ServiceCommands(
        command="thing",
        noun="thing",
        help="a test service",
        start=lambda args: 0,
        add_start_arguments=lambda parser: parser.add_argument("--work-dir", required=True),
        stop=stop,
        status=status,
    )


def test_every_service_answers_status_and_stop_alike(tmp_path, capsys):
    """No state file: status says so and exits 1, stop says there was nothing; a state file:
    status prints it and exits 0 only when the service is ready."""
    state = tmp_path / "thing.json"
    stopped: list[Path] = []
    assert servicecli.main(_service(True, stopped), "m", ["status", "--state", str(state)]) == 1
    assert f"no state file {state}: no thing" in capsys.readouterr().out
    assert servicecli.main(_service(True, stopped), "m", ["stop", "--state", str(state)]) == 0
    assert "nothing to stop" in capsys.readouterr().out and stopped == [state]
    state.write_text("{}")
    assert servicecli.main(_service(True, stopped), "m", ["status", "--state", str(state)]) == 0
    assert '"ready": true' in capsys.readouterr().out
    assert servicecli.main(_service(False, stopped), "m", ["status", "--state", str(state)]) == 1
    assert servicecli.main(_service(True, stopped), "m", ["stop", "--state", str(state)]) == 0
    assert capsys.readouterr().out.strip().endswith("stopped")
