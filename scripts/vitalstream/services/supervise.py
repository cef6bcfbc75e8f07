"""Supervision of the local JVM services: process groups, markers, watchdogs, state files, ports.

Why this exists: the paper's numbers come from real JVMs (the Kafka broker, the OpenSearch node,
the loopback Spark and Kafka cluster) started from Python, and a leaked JVM keeps ports, disk and
heap and skews the next benchmark. Every service is therefore handled the same way, written once
here:

* it is launched in its own session (:func:`spawn`), so its process group is stopped as a unit
  and a Ctrl-C to the launcher's terminal does not reach it half-way;
* its command line carries a marker (``-Dvitalstream.broker=<tag>``), and no PID is ever
  signalled before the marker was found in that live process (:func:`process_if_ours`): a state
  file may name a PID that meanwhile belongs to someone else;
* when started for a long-lived parent (the Snakemake main process) it is watched by a detached
  watchdog, ``python -m vitalstream.services.supervise watchdog ...``, that stops it as soon as
  that parent dies, even by ``kill -9`` (:func:`start_watchdog`);
* the workflow finds it through a JSON state file written atomically (:func:`write_state`),
  in a directory of that workflow run's own (:func:`claim_run_dir`), so that two workflows
  never stop each other's services;
* its ports are free loopback ports picked here (:func:`pick_port`).

Not for: what a service is (its command line, configuration, readiness: services.broker,
services.searchnode, services.cluster), nor Java and jar caches (services.jars). The watchdog
entry imports only this module and psutil, so that it starts fast and never fails to import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import psutil

from vitalstream.core.paths import SCRIPTS_DIR

LOOPBACK = "127.0.0.1"
WATCHDOG_MODULE = "vitalstream.services.supervise"
WATCHDOG_POLL_S = 1.0
PORT_PICKS = 50

# Popen objects of the services and watchdogs this process launched: kept so that stopping them
# reaps them (no zombies) and so that Python does not warn about still-running children at exit.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class StartError(RuntimeError):
    """A service did not become ready; ``port_clash`` says whether a taken port was the cause
    (then a start on freshly picked ports may succeed)."""

    def __init__(self, message: str, *, port_clash: bool = False) -> None:
        super().__init__(message)
        self.port_clash = port_clash


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """A TCP port that is free on loopback right now (the OS picks it, so rarely reused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Can a server bind ``127.0.0.1:port`` now? Probed with SO_REUSEADDR, as the JVMs bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def port_open(port: int) -> bool:
    """Does something accept connections on ``127.0.0.1:port``?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def pick_port(avoid: Collection[int] = ()) -> int:
    """A free loopback port not in ``avoid``, probed once more the way a server will bind it.

    The probe skips a port taken since the OS offered it, instead of a JVM failing on it
    seconds later; it narrows but cannot close that window, so the launchers also retry a
    start whose bind failed (:attr:`StartError.port_clash`).
    """
    for _ in range(PORT_PICKS):
        port = free_port()
        if port not in avoid and port_is_free(port):
            return port
    raise StartError("no free loopback port found")


# --------------------------------------------------------------------------- processes


def marker_arg(marker_property: str, tag: str) -> str:
    """The JVM argument ``-D<property>=<tag>`` that marks a service's process as ours."""
    return f"-D{marker_property}={tag}"


def spawn(
    cmd: Sequence[str],
    *,
    output: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    append: bool = False,
) -> subprocess.Popen[bytes]:
    """Run ``cmd`` in its own session, stdout and stderr to ``output`` (appended if ``append``).

    The child leads its own process group (its PID is the group's id), which is stopped as a
    unit and is immune to signals sent to the launcher's terminal.
    """
    with output.open("ab" if append else "wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """The exit status of a child :func:`spawn` started, None while it runs."""
    code = proc.poll()
    if code is not None:
        _CHILDREN.pop(proc.pid, None)  # reaped by poll: nothing left to wait for
    return code


def process_if_ours(pid: int | None, markers: Collection[str]) -> psutil.Process | None:
    """The live process ``pid`` if every one of ``markers`` is an element of its argv.

    Whole argv elements are compared, so tag ``/tmp/a`` never matches a process tagged
    ``/tmp/ab``. A zombie counts as gone (and is reaped if it is our child).
    """
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return None
        argv = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc if all(marker in argv for marker in markers) else None


def find_marked(marker: str) -> int | None:
    """PID of some live process whose argv holds the element ``marker``, None if there is none."""
    for proc in psutil.process_iter(["cmdline"]):
        if marker in (proc.info["cmdline"] or []):
            return int(proc.pid)
    return None


def _reap(pid: int) -> None:
    """Collect the exit status of a child we launched, so it does not linger as a zombie."""
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _gone(proc: psutil.Process) -> bool:
    """Exited, or a zombie: an orphan's zombie may never be reaped if PID 1 does not reap."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait for ``proc`` to exit, reaping it if it is our child."""
    child = _CHILDREN.get(proc.pid)
    if child is not None:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        _CHILDREN.pop(proc.pid, None)
        return True
    deadline = time.monotonic() + timeout
    while not _gone(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_group(
    pid: int, pgid: int, markers: Collection[str], timeout: float = 30.0, *, graceful: bool = True
) -> bool:
    """SIGTERM process group ``pgid`` (led by ``pid``), then SIGKILL it after ``timeout``.

    Only if ``pid`` still carries ``markers``. The JVMs shut down cleanly on SIGTERM (Kafka
    flushes its logs, OpenSearch closes its indices); SIGKILL is the fallback for a wedged one,
    and the only signal when not ``graceful`` (a crash, for fault experiments). Returns True
    if something was stopped.
    """
    proc = process_if_ours(pid, markers)
    if proc is None:
        return False
    steps = [(signal.SIGTERM, timeout)] if graceful else []
    for sig, wait in [*steps, (signal.SIGKILL, 10.0)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        if _wait_gone(proc, wait):
            break
    _reap(pid)
    return True


def kill_child(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a child :func:`spawn` started, and reap it.

    No marker check: an unreaped child's PID cannot have been reused, so its group is ours
    even before it exec'ed the command line that carries the marker.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    _CHILDREN.pop(proc.pid, None)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log, for an error message (``(no <name>)`` if missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


# --------------------------------------------------------------------------- watchdog


def watchdog_markers(marker_property: str) -> tuple[str, ...]:
    """argv elements of the watchdogs of one kind of service (see :func:`start_watchdog`)."""
    return (WATCHDOG_MODULE, "watchdog", marker_property)


def parent_alive(parent_pid: int, parent_created: float) -> bool:
    """Alive, not a zombie, and the same process (a recycled PID has another creation time)."""
    try:
        proc = psutil.Process(parent_pid)
        same = abs(proc.create_time() - parent_created) < 0.05
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_watchdog(
    parent_pid: int,
    *,
    pid: int,
    pgid: int,
    marker_property: str,
    tag: str,
    what: str,
    work_dir: Path,
    stop_timeout: float,
) -> int:
    """Launch the detached watchdog that stops a service when ``parent_pid`` dies; its PID.

    The service is the process ``pid`` (group ``pgid``) marked ``-D<marker_property>=<tag>``;
    ``what`` names it in the watchdog's log, ``work_dir/watchdog.log``. The watchdog runs in
    its own session, so neither a Ctrl-C to the parent's terminal nor the death of the parent's
    process group takes it down before it did its job. The parent's creation time is read here,
    not in the watchdog: the parent may die while the watchdog's interpreter is still starting,
    and its PID could then already name another process.
    """
    try:
        parent_created = psutil.Process(parent_pid).create_time()
    except psutil.NoSuchProcess:
        parent_created = -1.0  # already dead: the watchdog stops the service at once
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SCRIPTS_DIR), env.get("PYTHONPATH", "")) if p
    )
    cmd = [sys.executable, "-m", WATCHDOG_MODULE, "watchdog", "--property", marker_property]
    cmd += ["--parent", str(parent_pid), "--parent-created", repr(parent_created)]
    cmd += ["--pid", str(pid), "--pgid", str(pgid), "--tag", tag]
    cmd += ["--what", what, "--stop-timeout", repr(stop_timeout)]
    proc = spawn(cmd, output=work_dir / "watchdog.log", cwd=work_dir, env=env, append=True)
    return proc.pid


def stop_watchdog(watchdog_pid: int | None, marker_property: str) -> None:
    """Stop a watchdog :func:`start_watchdog` launched (None or a gone one: nothing to do)."""
    if watchdog_pid:
        markers = watchdog_markers(marker_property)
        kill_group(watchdog_pid, watchdog_pid, markers, timeout=5.0)


def watchdog_alive(watchdog_pid: int | None, marker_property: str) -> bool:
    """Is that watchdog (and not a process that reused its PID) still running?"""
    return process_if_ours(watchdog_pid, watchdog_markers(marker_property)) is not None


def watch(
    parent_pid: int,
    parent_created: float,
    pid: int,
    pgid: int,
    markers: Collection[str],
    *,
    what: str = "service",
    stop_timeout: float = 30.0,
    poll: float = WATCHDOG_POLL_S,
) -> int:
    """Poll until the parent dies (then stop the service) or the service is gone (then exit).

    Polling beats prctl(PR_SET_PDEATHSIG): it works whatever process launched the service and
    also after ``kill -9`` of a parent that is not the service's direct parent.
    """
    print(f"watching parent {parent_pid} for {what} pid {pid}", flush=True)
    while process_if_ours(pid, markers) is not None:
        if not parent_alive(parent_pid, parent_created):
            print(f"parent {parent_pid} died: stopping {what} pid {pid}", flush=True)
            kill_group(pid, pgid, markers, timeout=stop_timeout)
            return 0
        time.sleep(poll)
    print(f"{what} pid {pid} is gone: watchdog exits", flush=True)
    return 0


# --------------------------------------------------------------------------- state files


def write_state(state_file: Path, state: dict[str, Any]) -> None:
    """Write ``state`` as JSON to ``state_file`` atomically: a reader sees the old file or the
    whole new one, never a half-written file (the temporary sibling is renamed over it)."""
    state_file = Path(state_file)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(f".{state_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(state_file)


def read_state(state_file: Path) -> dict[str, Any]:
    """The JSON of a state file (FileNotFoundError if there is none)."""
    state: dict[str, Any] = json.loads(Path(state_file).read_text())
    return state


def stop_from_state(state_file: Path, stop: Callable[[dict[str, Any]], None]) -> bool:
    """Stop what ``state_file`` names with ``stop`` and remove the file; idempotent.

    Returns True if the file existed. An unreadable file names nothing that could be stopped
    safely, so it is only removed.
    """
    state_file = Path(state_file)
    try:
        state = read_state(state_file)
    except FileNotFoundError:
        return False
    except json.JSONDecodeError:
        state_file.unlink(missing_ok=True)
        return True
    stop(state)
    state_file.unlink(missing_ok=True)
    return True


# --------------------------------------------------------------------------- workflow runs

# A workflow's services are recorded in a directory of their own under the checkout's stack
# root (results/.stack/<run id>/), so two workflows in one checkout never share (and never
# stop) each other's state files. The run id is the owner's PID and start time; the owner
# file lets a later run tell a live owner's directory from one a dead owner left behind.
OWNER_FILE = "owner.json"
STACK_DIR_ENV = "VITALSTREAM_STACK_DIR"


def claim_run_dir(root: Path, owner_pid: int) -> Path:
    """A new, empty directory under ``root`` for the services of the workflow ``owner_pid``
    (normally the Snakemake main process), recorded as its owner."""
    created = psutil.Process(owner_pid).create_time()
    run_dir = Path(root) / f"{owner_pid}-{int(created * 1000)}"
    run_dir.mkdir(parents=True, exist_ok=False)
    write_state(run_dir / OWNER_FILE, {"pid": owner_pid, "created": created})
    return run_dir


def run_owner_alive(run_dir: Path) -> bool:
    """Is the process that claimed ``run_dir`` still running (not a process that reused its
    PID)? A directory without a readable owner file is no workflow run's: it counts as live,
    so it is never cleaned up by mistake."""
    try:
        owner = read_state(Path(run_dir) / OWNER_FILE)
        return parent_alive(int(owner["pid"]), float(owner["created"]))
    except (OSError, ValueError, KeyError, TypeError):
        return True


def stale_run_dirs(root: Path) -> list[Path]:
    """The run directories under ``root`` whose owner is dead (a crashed or killed run)."""
    root = Path(root)
    if not root.is_dir():
        return []
    claimed = sorted(d for d in root.iterdir() if (d / OWNER_FILE).is_file())
    return [d for d in claimed if not run_owner_alive(d)]


def clean_stale_runs(root: Path, stoppers: dict[str, Callable[[Path], bool]]) -> list[Path]:
    """Stop what the state files of dead owners' run directories name, then remove those
    directories; a live owner's directory is never touched. ``stoppers`` maps a state file's
    name (``kafka.json``) to the function that stops what it names (``stop_from_state``).
    Their watchdogs have normally stopped the services already; this catches the rest."""
    cleaned = []
    for run_dir in stale_run_dirs(root):
        for name, stop in stoppers.items():
            stop(run_dir / name)
        shutil.rmtree(run_dir, ignore_errors=True)
        cleaned.append(run_dir)
    return cleaned


# --------------------------------------------------------------------------- watchdog entry


def main(argv: list[str] | None = None) -> int:
    """``python -m vitalstream.services.supervise watchdog ...``: what :func:`start_watchdog`
    runs (internal: its arguments are not a user interface)."""
    parser = argparse.ArgumentParser(prog=f"python -m {WATCHDOG_MODULE}")
    actions = parser.add_subparsers(dest="command", required=True)
    watchdog = actions.add_parser("watchdog", help="(internal) stop a service when PID dies")
    watchdog.add_argument("--property", required=True, help="the service's marker property")
    watchdog.add_argument("--parent", type=int, required=True)
    watchdog.add_argument("--parent-created", type=float, required=True)
    watchdog.add_argument("--pid", type=int, required=True)
    watchdog.add_argument("--pgid", type=int, required=True)
    watchdog.add_argument("--tag", required=True)
    watchdog.add_argument("--what", default="service", help="the service's name in the log")
    watchdog.add_argument("--stop-timeout", type=float, default=30.0)
    watchdog.add_argument("--poll", type=float, default=WATCHDOG_POLL_S)
    args = parser.parse_args(argv)
    markers = (marker_arg(args.property, args.tag),)
    return watch(
        args.parent,
        args.parent_created,
        args.pid,
        args.pgid,
        markers,
        what=args.what,
        stop_timeout=args.stop_timeout,
        poll=args.poll,
    )


if __name__ == "__main__":
    sys.exit(main())
