"""The quick workflow run as a user runs it, in a scratch copy of the repository: plain
`snakemake --cores all --configfile config/profiles/quick.yaml` from an activated venv, with
`make status` watched while it runs. One run per test session, started in the background at
the first integration test (the fixtures ``quick_workdir``, ``quick_started`` and ``quick_run``
in conftest.py): tests/integration/test_workflow.py checks it whole, and
test_cluster.py compares its headline run with the same run on the loopback cluster."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

from scratch import physionet_mirror

QUICK = ("--configfile", "config/profiles/quick.yaml")  # last: it takes every word after it
# `make status` while the run runs must show this job with its progress: a replay percentage
# or the run's phase (the quick profile's replay itself lasts seconds; the job about a minute).
WATCHED_JOB = "run_condition experiment=skeleton, condition=base, rep=1"
JOB_PROGRESS = re.compile(r"^\s+(replay \d+% \(\d+/\d+ readings\)|run: phase \w+)", re.M)
# What `make status` showed during the run and after it (filled by QuickRun.finish).
STATUS: dict[str, str] = {}
# The run's own time limit, from its start: 2 shared cores are busy with the other tests too.
TIMEOUT_S = 2400.0


def plain_env(workdir: Path, path: str | None = None) -> dict[str, str]:
    """An activated venv and nothing else the workflow needs: what a user's shell holds."""
    drop = {"PYTHONPATH", "SPARK_LOCAL_IP", "JAVA_HOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    venv = workdir / ".venv"
    env["PATH"] = os.pathsep.join([str(venv / "bin"), path or env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    env["VITALSTREAM_PHYSIONET_MIRROR"] = str(physionet_mirror())
    return env


def make_status(workdir: Path) -> str:
    """`make status` in the checkout, as a user types it in a second terminal."""
    env = plain_env(workdir)
    return subprocess.run(
        ["make", "-s", "status"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    ).stdout


def watch_status(workdir: Path, proc: subprocess.Popen[str], timeout_s: float) -> str | None:
    """Poll `make status` while the workflow runs until it shows the watched job's progress."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        out = make_status(workdir)
        if WATCHED_JOB in out and JOB_PROGRESS.search(out.split(WATCHED_JOB, 1)[1]):
            return out
        time.sleep(1)
    return None


class QuickRun:
    """The quick workflow running in the background in ``workdir``, its output in ``logs``
    (files, not pipes: a full pipe would block it), with `make status` watched from a thread
    until it shows the watched job in progress. Started at the first integration test, so the
    tests that do not need it run beside it on the cores its Spark jobs leave idle; ``finish``
    waits for it and asserts that it succeeded and that `make status` showed it running."""

    def __init__(self, workdir: Path, logs: Path) -> None:
        self.workdir = workdir
        self.started = time.monotonic()
        self.out = (logs / "out").open("w+")
        self.err = (logs / "err").open("w+")
        self.proc = subprocess.Popen(
            ["snakemake", "--cores", "all", *QUICK],
            cwd=workdir,
            env=plain_env(workdir),
            stdout=self.out,
            stderr=self.err,
            text=True,
        )
        self.seen: str | None = None
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()
        self.result: subprocess.CompletedProcess[str] | None = None

    def _watch(self) -> None:
        self.seen = watch_status(self.workdir, self.proc, timeout_s=TIMEOUT_S)

    def finish(self) -> subprocess.CompletedProcess[str]:
        """The finished run (waited for once; later calls return the same result)."""
        if self.result is None:
            try:
                left = TIMEOUT_S - (time.monotonic() - self.started)
                self.proc.wait(timeout=max(left, 1))
                self.watcher.join(timeout=120)
            finally:
                self.stop()
            with self.out, self.err:
                self.out.seek(0)
                self.err.seek(0)
                self.result = subprocess.CompletedProcess(
                    self.proc.args, self.proc.returncode, self.out.read(), self.err.read()
                )
            STATUS.update(during=self.seen or "", after=make_status(self.workdir))
        result = self.result
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert self.seen is not None, "`make status` never showed skeleton/base/rep1 in progress"
        return result

    def stop(self) -> None:
        """Ends the run if it still runs (an interrupted session), as Ctrl-C would."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
