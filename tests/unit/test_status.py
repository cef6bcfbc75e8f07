"""``python -m vitalstream status`` on Snakemake logs in the format of Snakemake 9.27.

The fixtures under tests/unit/fixtures/status/ are logs of a tiny real workflow, cut to the
point of interest: ``running.snakemake.log`` while a run_condition job runs (its replay in
progress), ``complete.snakemake.log`` of a finished run. A running workflow is recognised
by a Snakemake process working in its directory; the tests start a stand-in process named
``snakemake`` there (a sleeping Python script) for as long as they need one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from vitalstream.__main__ import main
from vitalstream.core import progress
from vitalstream.experiments import status

FIXTURES = Path(__file__).parent / "fixtures" / "status"
RUNNING_LOG = "2026-12-07T034102.283497.snakemake.log"
EARLIER_LOG = "2026-12-07T021000.000000.snakemake.log"
RUN_LOG = "results/logs/run_condition/skeleton/base/rep1.log"
RUN_DIR = "results/runs/skeleton/base/rep1"
JOB_START = datetime(2026, 12, 7, 3, 41, 3)  # the run_condition block's time stamp


def _install(root: Path, fixture: str, name: str) -> Path:
    log_dir = root / ".snakemake" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(FIXTURES / fixture, log_dir / name))


def _write(path: Path, text: str, *, stamp: datetime = JOB_START + timedelta(seconds=5)) -> None:
    """Write a file dated after the job's start (a log of this run, not of an earlier one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (stamp.timestamp(), stamp.timestamp()))


def _progress_text(*records: dict) -> str:
    return "".join(progress.format_line(**r) + "\n" for r in records)


@pytest.fixture
def snakemake_process(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process that looks like Snakemake working in ``tmp_path`` (its console script)."""
    script = tmp_path / "bin" / "snakemake"
    script.parent.mkdir()
    script.write_text("import time\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    for _ in range(200):  # just after exec the kernel may still show an empty command line
        if b"snakemake" in cmdline.read_bytes():
            break
        time.sleep(0.05)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _status(root: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["status", "--dir", str(root), *extra]) == 0
    return capsys.readouterr().out


def test_the_log_is_parsed_into_jobs_steps_and_their_state(tmp_path: Path) -> None:
    run = status.parse_log(_install(tmp_path, "running.snakemake.log", RUNNING_LOG))
    assert run.job_counts == {"generate_cohort": 1, "sepsis_model": 1, "run_condition": 1, "all": 1}
    assert (run.steps_done, run.steps_total, run.end_line) == (1, 4, None)
    assert run.started == datetime(2026, 12, 7, 3, 41, 2)
    job = run.jobs[1]
    assert (job.rule, job.state, job.started) == ("run_condition", "running", JOB_START)
    assert job.wildcards == {"experiment": "skeleton", "condition": "base", "rep": "1"}
    assert job.logs == [RUN_LOG]
    assert job.benchmark == "results/benchmarks/run_condition/skeleton/base/rep1.tsv"
    assert run.jobs[2].state == "finished"


def test_a_running_experiment_shows_its_rule_wildcards_and_replay_percentage(
    tmp_path: Path, snakemake_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _install(tmp_path, "running.snakemake.log", RUNNING_LOG)
    _write(
        tmp_path / RUN_LOG, "Spark starting\n" + _progress_text({"task": "run", "phase": "replay"})
    )
    _write(
        tmp_path / RUN_DIR / "producer.log",
        _progress_text(
            {"task": "replay", "done": 2000, "total": 20000, "unit": "readings"},
            {"task": "replay", "done": 9000, "total": 20000, "unit": "readings"},
        ),
    )
    out = _status(tmp_path, capsys=capsys)
    assert out.startswith("workflow running since 2026-12-07 03:41:02"), out
    assert "steps: 1 of 4 done (25%)" in out
    assert "  run_condition experiment=skeleton, condition=base, rep=1 for " in out
    assert "    replay 45% (9000/20000 readings)" in out
    assert "    run: phase replay" in out
    assert "remaining: about" in out
    assert "generate_cohort" not in out  # done steps are listed only on request
    assert "  generate_cohort cohort=main" in _status(tmp_path, "--done", capsys=capsys)


def test_a_previous_runs_log_lines_are_not_shown_as_progress(
    tmp_path: Path, snakemake_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _install(tmp_path, "running.snakemake.log", RUNNING_LOG)
    old = _progress_text({"task": "replay", "done": 20000, "total": 20000})
    _write(tmp_path / RUN_DIR / "producer.log", old, stamp=JOB_START - timedelta(hours=1))
    assert "replay" not in _status(tmp_path, capsys=capsys).split("running:")[1]


def test_a_finished_run_is_reported_as_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(tmp_path, "complete.snakemake.log", EARLIER_LOG)
    out = _status(tmp_path, "--verbose", capsys=capsys)
    assert out.startswith("no workflow is running"), out
    assert "'Complete log(s)'" in out and "steps: 4 of 4 done (100%)" in out
    assert "done (4):" in out and "  sepsis_model\n" in out


def test_a_log_without_an_end_and_without_snakemake_is_a_killed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(tmp_path, "running.snakemake.log", RUNNING_LOG)
    out = _status(tmp_path, capsys=capsys)
    assert out.startswith("no workflow is running") and "killed?" in out, out


def test_a_failed_job_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _install(tmp_path, "running.snakemake.log", RUNNING_LOG)
    with log.open("a") as fh:
        fh.write(
            "[Mon Dec  7 03:45:00 2026]\nError in rule run_condition:\n    message: None\n"
            f"    jobid: 1\n    log: {RUN_LOG} (check log file(s) for error details)\n"
            "Shutting down, this might take some time.\n"
            "Exiting because a job execution failed. Look above for error messages\n"
        )
    out = _status(tmp_path, capsys=capsys)
    assert "'Exiting because a job execution failed'" in out
    assert (
        f"failed: run_condition experiment=skeleton, condition=base, rep=1  (log: {RUN_LOG})" in out
    )


def _benchmark(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t10.0\n")


def test_the_estimate_uses_this_jobs_and_the_rules_earlier_benchmarks(tmp_path: Path) -> None:
    _install(tmp_path, "complete.snakemake.log", EARLIER_LOG)  # names the benchmark files
    run = status.parse_log(_install(tmp_path, "running.snakemake.log", RUNNING_LOG))
    _benchmark(tmp_path / "results/benchmarks/run_condition/skeleton/base/rep1.tsv", 50.0)
    _benchmark(tmp_path / "results/benchmarks/sepsis_model.tsv", 100.0)
    result = status.estimate(run, tmp_path, now=JOB_START + timedelta(seconds=10))
    # run_condition: 50 s recorded, 10 s done; sepsis_model 100 s; `all` takes nothing.
    assert result.seconds == pytest.approx(140.0)
    assert result.basis == {"job": 1, "rule": 1}
    assert "this job's earlier run for 1 job" in result.describe()


def test_without_benchmarks_the_estimate_comes_from_the_configuration(tmp_path: Path) -> None:
    run = status.parse_log(_install(tmp_path, "running.snakemake.log", RUNNING_LOG))
    config = {
        "cohorts": {"main": {"hours": 0.5, "patients": 200}},
        "experiments": {
            "skeleton": {
                "cohort": "main",
                "defaults": {"speedup": 240},
                "conditions": {"base": {"sinks": {"search_index": True}}},
            }
        },
    }
    path = tmp_path / "results/configs/run/skeleton/base/rep1.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(config))
    seconds, basis = status.job_seconds(tmp_path, "run_condition", run.jobs[1], {})
    # Half an hour of patient time at 240× is 7.5 s of replay, plus the run's fixed overhead.
    assert (seconds, basis) == (pytest.approx(7.5 + status.RUN_OVERHEAD_S), "config")
    result = status.estimate(run, tmp_path, now=JOB_START)
    assert result.basis == {"config": 1, "default": 1}  # sepsis_model: its rule's default
    assert "the configuration for 1 job" in result.describe()
    assert "rough per-rule defaults for 1 job" in result.describe()


def test_a_ramp_is_estimated_from_its_steps() -> None:
    config = {
        "experiments": {
            "rq1": {
                "repetitions": 1,
                "warmup_s": 10,
                "defaults": {"load": {"step_s": 6, "rates_per_patient": [1, 2, 4]}},
                "grid": [{"param": "load.patients", "values": [1000, 10000]}],
                "select": ["p1000_k1", "p10000_k6"],
                "sustain": {"drain_s": 15},
            }
        }
    }
    per_run = 6 * 3 + 15 + status.RUN_OVERHEAD_S
    assert status.ramp_seconds(config) == pytest.approx(10 + 2 * per_run)


@pytest.mark.parametrize(
    ("record", "text"),
    [
        (
            {"task": "ramp", "done": 2, "total": 6, "step": 3, "rate": 1000},
            "ramp step 3/6 (rate 1000)",
        ),
        (
            {"task": "cv", "done": 1, "total": 5, "unit": "folds", "fold": 2},
            "cv 20% (1/5 folds) (fold 2)",
        ),
        ({"task": "run", "phase": "drain"}, "run: phase drain"),
    ],
)
def test_progress_is_described_for_people(record: dict, text: str) -> None:
    assert status.describe_progress(record) == text


def test_a_directory_without_snakemake_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _status(tmp_path, capsys=capsys)
    assert (
        out == f"no workflow has run in {tmp_path.resolve()}: it has no .snakemake/log directory\n"
    )


def test_lint_and_dry_run_logs_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(tmp_path, "complete.snakemake.log", EARLIER_LOG)
    newer = tmp_path / ".snakemake" / "log" / "2026-12-07T040000.000000.snakemake.log"
    newer.write_text("Congratulations, your workflow is in a good condition!\n")
    assert ".snakemake/log/" + EARLIER_LOG in _status(tmp_path, capsys=capsys)


def test_a_run_still_building_its_dag_is_running(
    tmp_path: Path, snakemake_process: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    _install(tmp_path, "complete.snakemake.log", EARLIER_LOG)
    text = (FIXTURES / "running.snakemake.log").read_text().split("Job stats:")[0]
    (tmp_path / ".snakemake" / "log" / RUNNING_LOG).write_text(text)
    out = _status(tmp_path, capsys=capsys)
    assert out.startswith("workflow running"), out
    assert "building the DAG" in out
