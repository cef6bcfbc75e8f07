"""``status``: what a running workflow is doing, read from the workflow's own files.

A full ``make paper`` runs for over an hour and its terminal shows only "N of M steps": each
rule writes to its own log. This command reads, from the repository root or ``--dir``:

* Snakemake's newest main log, ``.snakemake/log/*.snakemake.log``: the job stats table, each
  job's block (rule, ``jobid``, ``log``, ``wildcards``, ``benchmark``, its start time),
  "Finished jobid: N", "Error in rule", "N of M steps (P%) done" and the end lines;
* the running jobs' logs (and the ``producer.log`` beside their outputs, where a run's replay
  writes) for the last progress line of each task (vitalstream.core.progress);
* ``results/benchmarks/**.tsv`` of earlier runs (the ``s`` column) for a remaining-time
  estimate; without any, the configuration slices in ``results/configs/`` (a replay's patient
  time over its speed-up, a ramp's steps) and otherwise a rough default per rule. The output
  says which basis each part of the estimate has.

Whether a workflow runs: the newest log has no end line ("Complete log", "Exiting because a
job execution failed", "Nothing to be done", ...) and a Snakemake process works in the
directory (psutil), or, where processes cannot be seen, ``.snakemake/locks/`` holds locks.

Not for: controlling a run (stopping, resuming) or reading results; only reading.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vitalstream.core.cliargs import existing_dir
from vitalstream.core.paths import REPO_ROOT, in_checkout
from vitalstream.core.progress import fraction, parse_line

END_MARKERS = (
    "Complete log(s):",
    "Nothing to be done",
    "Exiting because a job execution failed",
    "Cancelling snakemake on user request",
    "Terminating processes on user request",
)
DRY_RUN = "This was a dry-run"
# Rough durations (s) of a job when neither a benchmark nor the configuration says more;
# the first matching prefix wins.
DEFAULT_SECONDS: tuple[tuple[str, float], ...] = (
    ("all", 0.0),
    ("write_config", 1.0),
    ("run_perf_", 600.0),
    ("run_shared_", 300.0),
    ("run_condition", 180.0),
    ("run_notebook_", 90.0),
    ("measure_breakdown", 180.0),
    ("bench_producer", 60.0),
    ("sepsis_model", 300.0),
    ("compare_models", 300.0),
    ("build_paper", 60.0),
    ("", 30.0),
)
# Spark session start, job start, drain and metrics around a replay (s).
RUN_OVERHEAD_S = 45.0
_BLOCK = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):\s*$")
_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]\s*$")
_FINISHED = re.compile(r"^Finished job(?:id:)? (\d+)")  # 9.x; "Finished job N." before
_ERROR = re.compile(r"^Error in rule (\S+):")
_STEPS = re.compile(r"^(\d+) of (\d+) steps \((\d+)%\) done")
_FIELD = re.compile(r"^ {4}(\w+): ?(.*)$")
_STATS_ROW = re.compile(r"^(\S+)\s+(\d+)\s*$")


@dataclass
class Job:
    """One job of the run as its block in the main log describes it."""

    jobid: int
    rule: str
    started: datetime | None = None
    logs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    wildcards: dict[str, str] = field(default_factory=dict)
    benchmark: str | None = None
    state: str = "running"  # running, finished or failed

    @property
    def label(self) -> str:
        """``run_condition experiment=skeleton, condition=base, rep=1``."""
        wildcards = ", ".join(f"{k}={v}" for k, v in self.wildcards.items())
        return f"{self.rule} {wildcards}".strip()


@dataclass
class RunLog:
    """What a main log says about its run."""

    path: Path
    started: datetime | None = None
    job_counts: dict[str, int] = field(default_factory=dict)
    steps_done: int = 0
    steps_total: int | None = None
    jobs: dict[int, Job] = field(default_factory=dict)
    end_line: str | None = None
    dry_run: bool = False
    building: bool = False  # "Building DAG of jobs": a run (or another command) has begun

    def in_state(self, state: str) -> list[Job]:
        return [job for job in self.jobs.values() if job.state == state]


def _split_list(text: str) -> list[str]:
    """A block's comma-separated paths, without Snakemake's trailing remarks."""
    text = text.split(" (check log file", 1)[0]
    return [part.strip() for part in text.split(", ") if part.strip()]


def _wildcards(text: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in text.split(", ") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def _stamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None


def _fill(job: Job, key: str, value: str) -> None:
    """One ``    key: value`` line of a job block."""
    if key == "log":
        job.logs = _split_list(value)
    elif key == "output":
        job.outputs = _split_list(value)
    elif key == "wildcards":
        job.wildcards = _wildcards(value)
    elif key == "benchmark":
        job.benchmark = value.strip() or None


def _job_stats(lines: Sequence[str], start: int) -> dict[str, int]:
    """The ``Job stats:`` table from line ``start`` on: rule → count (without ``total``)."""
    counts: dict[str, int] = {}
    for line in lines[start + 3 :]:
        match = _STATS_ROW.match(line)
        if match is None:
            break
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def parse_log(path: Path, text: str | None = None) -> RunLog:
    """Read a Snakemake main log (9.x format) into a :class:`RunLog`."""
    if text is None:
        text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    run = RunLog(path=path)
    stamp: datetime | None = None
    current: Job | None = None  # the block whose fields are being read
    for i, line in enumerate(lines):
        if current is not None:
            field_match = _FIELD.match(line)
            if field_match:
                if current.jobid >= 0:
                    _fill(current, field_match.group(1), field_match.group(2))
                elif field_match.group(1) == "jobid" and field_match.group(2).isdigit():
                    failed = run.jobs.get(int(field_match.group(2)))
                    if failed is not None:
                        failed.state = "failed"
                continue
            current = None
        _read_line(run, lines, i, line, stamp)
        if (match := _STAMP.match(line)) is not None:
            stamp = _stamp(match.group(1))
        elif (match := _BLOCK.match(line)) is not None:
            current = _new_job(run, lines, i, match.group(1), stamp)
        elif _ERROR.match(line):
            current = Job(jobid=-1, rule="")  # its jobid line marks the failed job
    return run


def _read_line(run: RunLog, lines: Sequence[str], i: int, line: str, stamp: Any) -> None:
    """The one-line facts: date, job stats, finished jobs, step counts, end lines."""
    if line.startswith("  Date: ") and run.started is None:
        with contextlib.suppress(ValueError):
            run.started = datetime.strptime(line.strip()[6:], "%Y-%m-%d %H:%M:%S")
    elif line.startswith("Job stats:") and not run.job_counts:
        run.job_counts = _job_stats(lines, i)
        run.steps_total = sum(run.job_counts.values())
    elif (match := _FINISHED.match(line)) is not None:
        job = run.jobs.get(int(match.group(1)))
        if job is not None:
            job.state = "finished"
    elif (match := _STEPS.match(line)) is not None:
        run.steps_done, run.steps_total = int(match.group(1)), int(match.group(2))
    elif line.startswith(DRY_RUN):
        run.dry_run = True
    elif line.startswith("Building DAG of jobs"):
        run.building = True
    elif any(line.startswith(marker) for marker in END_MARKERS) and run.end_line is None:
        run.end_line = next(m for m in END_MARKERS if line.startswith(m)).rstrip(":")
    if run.started is None and stamp is not None:
        run.started = stamp


def _new_job(
    run: RunLog, lines: Sequence[str], i: int, rule: str, stamp: datetime | None
) -> Job | None:
    """A job block starts at line ``i``; its ``jobid:`` line may come after other fields."""
    for line in lines[i + 1 : i + 40]:
        match = _FIELD.match(line)
        if match is None:
            break
        if match.group(1) == "jobid" and match.group(2).strip().isdigit():
            job = Job(jobid=int(match.group(2)), rule=rule, started=stamp)
            run.jobs[job.jobid] = job
            return job
    return None


# ------------------------------------------------------------------------- which log, alive


def main_logs(root: Path) -> list[Path]:
    """The main logs of ``root``, newest first (their names are their start times)."""
    return sorted((root / ".snakemake" / "log").glob("*.snakemake.log"), reverse=True)


def newest_run(root: Path) -> RunLog | None:
    """The newest log of a real run: lint runs, dry runs and failed parses are skipped. A run
    still building its DAG (for a minute on the full grid) counts while Snakemake is alive."""
    for path in main_logs(root):
        run = parse_log(path)
        if run.dry_run:
            continue
        if run.job_counts or run.jobs or run.end_line:
            return run
        if run.building and snakemake_alive(root):
            return run
    return None


def snakemake_alive(root: Path) -> bool | None:
    """True if a Snakemake process works in ``root``; None when processes cannot be seen."""
    import psutil  # lazy: only `status` looks at processes

    target = root.resolve()
    try:
        processes = list(psutil.process_iter(["cmdline", "cwd"]))
    except (psutil.Error, OSError):
        return None
    for process in processes:
        argv, cwd = process.info["cmdline"] or [], process.info["cwd"]
        if cwd and _is_snakemake(argv) and _workdir(argv, Path(cwd)) == target:
            return True
    return False


def _is_snakemake(argv: Sequence[str]) -> bool:
    """``…/bin/snakemake …`` (the console script, maybe behind its interpreter) or ``-m
    snakemake``."""
    head = [Path(arg).name for arg in argv[:2]]
    return "snakemake" in head or any(
        argv[i] == "-m" and argv[i + 1] == "snakemake" for i in range(min(len(argv) - 1, 3))
    )


def _workdir(argv: Sequence[str], cwd: Path) -> Path:
    """The directory a Snakemake command line works in (``--directory``/``-d`` or its cwd)."""
    for i, arg in enumerate(argv[:-1]):
        if arg in ("--directory", "-d"):
            return (cwd / argv[i + 1]).resolve()
    return cwd.resolve()


def is_running(run: RunLog, root: Path) -> tuple[bool, str]:
    """Whether the run of ``run`` still runs, and why we think so."""
    if run.end_line is not None:
        return False, f"its log ends with {run.end_line!r}"
    alive = snakemake_alive(root)
    if alive is None:
        locks = list((root / ".snakemake" / "locks").glob("*.lock"))
        if locks:
            return True, "its log has no end line and .snakemake/locks/ holds locks"
        return False, "its log has no end line and no locks are held (killed?)"
    if alive:
        return True, "its log has no end line and a Snakemake process works here"
    return False, "its log has no end line but no Snakemake process works here (killed?)"


# ------------------------------------------------------------------------------- progress


def progress_by_task(path: Path, not_before: float | None = None) -> dict[str, dict[str, Any]]:
    """The last progress line of each task in the file at ``path`` (its tail), in order of
    appearance; nothing if the file is older than ``not_before`` (a previous run's log)."""
    try:
        if not_before is not None and path.stat().st_mtime < not_before:
            return {}
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 256 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return {}
    records: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        record = parse_line(line)
        if record is not None:
            records.pop(record["task"], None)
            records[record["task"]] = record
    return records


def job_progress(job: Job, root: Path) -> dict[str, dict[str, Any]]:
    """Progress of a running job: its logs, then the ``producer.log`` beside its outputs
    (a run's replay and load generator write there, vitalstream.experiments.run)."""
    not_before = job.started.timestamp() - 1 if job.started else None
    files = [root / log for log in job.logs]
    dirs = dict.fromkeys((root / out).parent for out in job.outputs)
    files += [d / "producer.log" for d in dirs]
    records: dict[str, dict[str, Any]] = {}
    for path in files:
        records.update(progress_by_task(path, not_before))
    return records


def describe_progress(record: Mapping[str, Any]) -> str:
    """``replay 45% (9000/20000 readings)``, ``ramp step 3/6 (rate 1000)``, ``run: drain``."""
    task, parts = str(record["task"]), []
    share = fraction(record)
    if "step" in record and "total" in record:
        parts.append(f"{task} step {record['step']}/{record['total']}")
    elif share is not None:
        unit = f" {record['unit']}" if record.get("unit") else ""
        parts.append(f"{task} {share:.0%} ({record['done']}/{record['total']}{unit})")
    elif "done" in record:
        parts.append(f"{task} {record['done']} {record.get('unit') or ''}".rstrip())
    else:
        parts.append(task + ":")
    extras = [
        f"{key} {record[key]}"
        for key in ("phase", "fold", "rate", "run")
        if key in record and record[key] is not None
    ]
    if extras and parts[0].endswith(":"):
        return f"{parts[0]} {', '.join(extras)}"
    return parts[0] + (f" ({', '.join(extras)})" if extras else "")


# ------------------------------------------------------------------------------ estimates


def benchmark_seconds(path: Path) -> float | None:
    """The wall-clock seconds (``s``) of a Snakemake benchmark file, or None."""
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        values = [float(row["s"]) for row in rows if row.get("s") not in (None, "", "NA")]
    except (OSError, ValueError, KeyError):
        return None
    return statistics.fmean(values) if values else None


def rule_benchmarks(root: Path, logs: Iterable[Path]) -> dict[str, list[float]]:
    """Recorded seconds per rule: each benchmark path a log names for a rule (this run's and
    earlier ones'), read from ``root``."""
    paths: dict[str, set[str]] = {}
    for log in logs:
        for job in parse_log(log).jobs.values():
            if job.benchmark:
                paths.setdefault(job.rule, set()).add(job.benchmark)
    seconds: dict[str, list[float]] = {}
    for rule, names in paths.items():
        values = [benchmark_seconds(root / name) for name in sorted(names)]
        seconds[rule] = [v for v in values if v is not None]
    return {rule: values for rule, values in seconds.items() if values}


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def replay_seconds(config: Mapping[str, Any]) -> float | None:
    """The longest replay of a configuration slice: a cohort's patient hours / speed-up."""
    cohorts = config.get("cohorts") or {}
    longest = None
    for experiment in (config.get("experiments") or {}).values():
        hours = (cohorts.get(experiment.get("cohort")) or {}).get("hours")
        defaults = experiment.get("defaults") or {}
        for condition in (experiment.get("conditions") or {"": {}}).values():
            speedup = (condition or {}).get("speedup", defaults.get("speedup"))
            if isinstance(hours, int | float) and isinstance(speedup, int | float) and speedup:
                seconds = hours * 3600 / speedup
                longest = seconds if longest is None else max(longest, seconds)
    return longest


def ramp_seconds(config: Mapping[str, Any]) -> float | None:
    """A performance group's ramps: steps × step length per run, plus warm-up and drains."""
    total = 0.0
    for experiment in (config.get("experiments") or {}).values():
        load = (experiment.get("defaults") or {}).get("load") or {}
        steps = len(load.get("rates_per_patient") or load.get("rates") or [1])
        grid = experiment.get("grid") or []
        runs = len(experiment.get("select") or []) or max(
            1, len(experiment.get("conditions") or {})
        )
        if not experiment.get("select") and grid:
            runs = 1
            for axis in grid:
                runs *= max(1, len(axis.get("values") or []))
        drain = float((experiment.get("sustain") or {}).get("drain_s", 15))
        per_run = float(load.get("step_s", 0)) * steps + drain + RUN_OVERHEAD_S
        total += float(experiment.get("warmup_s", 0)) + per_run * runs * int(
            experiment.get("repetitions", 1)
        )
    return total or None


def config_seconds(root: Path, job: Job | None, rule: str) -> float | None:
    """A job's duration from its configuration slice (results/configs/), when it has one."""
    configs = root / "results" / "configs"
    if rule == "run_condition":
        if job is not None and {"experiment", "condition", "rep"} <= job.wildcards.keys():
            w = job.wildcards
            files = [configs / "run" / w["experiment"] / w["condition"] / f"rep{w['rep']}.json"]
        else:
            files = sorted((configs / "run").glob("**/*.json"))
        values = [replay_seconds(c) for f in files if (c := _load_json(f)) is not None]
        known = [v for v in values if v is not None]
        return statistics.fmean(known) + RUN_OVERHEAD_S if known else None
    match = re.fullmatch(r"run_shared_(.+)_(\d+)", rule)
    if match:
        config = _load_json(configs / "shared" / match.group(1) / f"{match.group(2)}.json")
        seconds = replay_seconds(config) if config else None
        return seconds + RUN_OVERHEAD_S if seconds is not None else None
    match = re.fullmatch(r"run_perf_(.+)", rule)
    if match:
        config = _load_json(configs / "perf" / f"{match.group(1)}.json")
        return ramp_seconds(config) if config else None
    return None


def default_seconds(rule: str) -> float:
    return next(seconds for prefix, seconds in DEFAULT_SECONDS if rule.startswith(prefix))


@dataclass
class Estimate:
    """Remaining seconds, and how many jobs each basis estimated."""

    seconds: float = 0.0
    basis: Counter[str] = field(default_factory=Counter)

    def add(self, seconds: float, basis: str) -> None:
        if basis == "default" and seconds == 0:
            return  # the target rule (`all`): no work, nothing to report
        self.seconds += max(seconds, 0.0)
        self.basis[basis] += 1

    def describe(self) -> str:
        names = {
            "job": "this job's earlier run",
            "rule": "earlier runs of the rule (median)",
            "config": "the configuration",
            "default": "rough per-rule defaults",
        }
        parts = [f"{names[b]} for {n} job{'s' if n != 1 else ''}" for b, n in self.basis.items()]
        return "; ".join(parts) or "no jobs left"


def job_seconds(
    root: Path, rule: str, job: Job | None, recorded: Mapping[str, list[float]]
) -> tuple[float, str]:
    """How long a job takes, and the basis: its own benchmark from an earlier run, the median
    of its rule's, its configuration, or the rule's default."""
    if job is not None and job.benchmark:
        own = benchmark_seconds(root / job.benchmark)
        if own is not None:
            return own, "job"
    if recorded.get(rule):
        return statistics.median(recorded[rule]), "rule"
    from_config = config_seconds(root, job, rule)
    if from_config is not None:
        return from_config, "config"
    return default_seconds(rule), "default"


def estimate(run: RunLog, root: Path, now: datetime) -> Estimate:
    """Remaining time of the jobs not yet finished (running ones: minus their time so far)."""
    recorded = rule_benchmarks(root, main_logs(root))
    result = Estimate()
    for job in run.in_state("running"):
        seconds, basis = job_seconds(root, job.rule, job, recorded)
        elapsed = (now - job.started).total_seconds() if job.started else 0.0
        result.add(seconds - elapsed, basis)
    seen = Counter(job.rule for job in run.jobs.values())
    for rule, count in run.job_counts.items():
        for _ in range(max(count - seen[rule], 0)):
            seconds, basis = job_seconds(root, rule, None, recorded)
            result.add(seconds, basis)
    return result


# -------------------------------------------------------------------------------- report


def duration(seconds: float) -> str:
    """``2 h 05 min``, ``4 min 10 s``, ``12 s``."""
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def report(root: Path, *, verbose: bool = False, now: datetime | None = None) -> list[str]:
    """The status of the workflow in ``root`` as lines of text."""
    now = now or datetime.now()
    if not (root / ".snakemake" / "log").is_dir():
        return [f"no workflow has run in {root}: it has no .snakemake/log directory"]
    run = newest_run(root)
    if run is None:
        return [f"no workflow run found in {root}/.snakemake/log (only lint or dry runs)"]
    running, why = is_running(run, root)
    steps = _steps_line(run)
    log = run.path.relative_to(root) if run.path.is_relative_to(root) else run.path
    if not running:
        lines = [f"no workflow is running: the newest run ({log}) ended; {why}", steps]
        failed = run.in_state("failed")
        lines += [f"failed: {job.label}  (log: {', '.join(job.logs) or 'none'})" for job in failed]
        return lines + (_done_lines(run) if verbose else [])
    since = f"since {run.started:%Y-%m-%d %H:%M:%S} " if run.started else ""
    age = f"({duration((now - run.started).total_seconds())}) " if run.started else ""
    lines = [f"workflow running {since}{age}— log {log}", steps]
    lines += _running_lines(run, root, now)
    lines += [f"failed: {job.label}" for job in run.in_state("failed")]
    remaining = estimate(run, root, now)
    lines.append(
        f"remaining: about {duration(remaining.seconds)} (estimated from {remaining.describe()})"
    )
    return lines + (_done_lines(run) if verbose else [])


def _steps_line(run: RunLog) -> str:
    total = run.steps_total if run.steps_total is not None else "?"
    share = f" ({run.steps_done / run.steps_total:.0%})" if run.steps_total else ""
    return f"steps: {run.steps_done} of {total} done{share}"


def _running_lines(run: RunLog, root: Path, now: datetime) -> list[str]:
    jobs = run.in_state("running")
    if not jobs and not run.job_counts:
        return ["running: no job yet (Snakemake is building the DAG of jobs)"]
    if not jobs:
        return ["running: no job (Snakemake is choosing the next ones)"]
    lines = ["running:"]
    for job in jobs:
        elapsed = f" for {duration((now - job.started).total_seconds())}" if job.started else ""
        lines.append(f"  {job.label}{elapsed}")
        lines += [f"    {describe_progress(r)}" for r in job_progress(job, root).values()]
    return lines


def _done_lines(run: RunLog) -> list[str]:
    done = run.in_state("finished")
    return [f"done ({len(done)}):", *(f"  {job.label}" for job in done)]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="what the running workflow does: jobs, progress, time left"
    )
    parser.add_argument(
        "--dir",
        type=existing_dir,
        default=None,
        help="the workflow's directory (default: the repository root, else the current one)",
    )
    parser.add_argument(
        "--verbose", "--done", action="store_true", help="also list the finished steps"
    )
    parser.set_defaults(func=_cli_status)


def _cli_status(args: argparse.Namespace) -> int:
    root = args.dir or (REPO_ROOT if in_checkout() else Path.cwd())
    for line in report(root.resolve(), verbose=args.verbose):
        print(line)
    return 0
