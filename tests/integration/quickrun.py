"""The quick workflow run as a user runs it, in a scratch copy of the repository: plain
`snakemake --cores all --configfile config/profiles/quick.yaml` from an activated venv, with
`make status` watched while it runs. One run per test session (the fixtures ``quick_workdir``
and ``quick_run`` in conftest.py): tests/integration/test_workflow.py checks it whole, and
test_cluster.py compares its headline run with the same run on the loopback cluster."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from scratch import physionet_mirror

QUICK = ("--configfile", "config/profiles/quick.yaml")  # last: it takes every word after it
# `make status` while the run runs must show this job with its progress: a replay percentage
# or the run's phase (the quick profile's replay itself lasts seconds; the job about a minute).
WATCHED_JOB = "run_condition experiment=skeleton, condition=base, rep=1"
JOB_PROGRESS = re.compile(r"^\s+(replay \d+% \(\d+/\d+ readings\)|run: phase \w+)", re.M)
# What `make status` showed during the run and after it (filled by run_quick).
STATUS: dict[str, str] = {}


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


def run_quick(workdir: Path, logs: Path) -> subprocess.CompletedProcess[str]:
    """The quick workflow in ``workdir``; its output in ``logs`` (files, not pipes: a full pipe
    would block it). Asserts that it succeeded and that `make status` showed it running."""
    with (logs / "out").open("w+") as out, (logs / "err").open("w+") as err:
        proc = subprocess.Popen(
            ["snakemake", "--cores", "all", *QUICK],
            cwd=workdir,
            env=plain_env(workdir),
            stdout=out,
            stderr=err,
            text=True,
        )
        try:
            seen = watch_status(workdir, proc, timeout_s=1800)
            proc.wait(timeout=1800)  # 2 shared cores may be busy with more
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(60)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert seen is not None, "`make status` never showed skeleton/base/rep1 in progress"
    STATUS.update(during=seen, after=make_status(workdir))
    return result
