"""The whole quick workflow, as a user runs it, in a scratch copy of the repository: plain
`snakemake --cores all --configfile config/profiles/quick.yaml` from an activated venv (no
PYTHONPATH, SPARK_LOCAL_IP or JAVA_HOME, no make) does what `make paper PROFILE=quick` does;
the PDF is built from the run just made, a second run does nothing, missing TeX is named before
any job runs, and no Kafka, Spark or Python process is left behind — also when the Spark rule
fails."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from audits import assert_the_restarted_job_wrote_the_same_alerts
from quickrun import QUICK, STATUS, WATCHED_JOB, plain_env
from scratch import REPO, physionet_mirror, processes_in
from vitalstream.core import progress
from vitalstream.measure import costmodel, stagecosts
from vitalstream.paper import macros
from vitalstream.sinks.batch import SINK_STAGES

# The quick profile's run is the first test's setup: it gets the run's own limit (quick_run),
# not the suite's 900 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
# The run whose alerts the quick profile indexes (config/profiles/quick.yaml, paper.serving_run).
SERVING_RUN = "skeleton/base/rep1"
MACRO_LINE = re.compile(r"^\\newcommand\{\\(\w+)\}\{(.*)\} % (.+):(\S+)$")


def make(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MAKEFLAGS", "MFLAGS")}
    env["VITALSTREAM_PHYSIONET_MIRROR"] = str(physionet_mirror())
    return subprocess.run(
        ["make", *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )


def snakemake(
    workdir: Path, *args: str, timeout: int = 900, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`snakemake --cores all ARGS --configfile config/profiles/quick.yaml`, plainly."""
    return subprocess.run(
        ["snakemake", "--cores", "all", *args, *QUICK],
        cwd=workdir,
        env=plain_env(workdir, path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stack_state_files(workdir: Path) -> list[Path]:
    """State files of local services some invocation left in results/.stack/<run id>/."""
    stack = workdir / "results" / ".stack"
    return [*stack.glob("*/kafka.json"), *stack.glob("*/opensearch.json")]


def assert_no_processes_left(workdir: Path) -> None:
    deadline = time.monotonic() + 30  # a JVM may take a moment to exit after its parent
    while (left := processes_in(workdir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, "processes left running:\n" + "\n".join(left)


@pytest.fixture(scope="module")
def workdir(quick_workdir) -> Path:
    """The session's scratch copy, where the quick workflow ran (conftest.quick_run)."""
    return quick_workdir


def test_make_status_showed_the_running_experiment_and_then_no_run(workdir, quick_run):
    assert WATCHED_JOB in STATUS["during"]
    assert "remaining" in STATUS["during"]
    assert STATUS["after"].startswith("no workflow is running")
    replay = progress.last_progress(workdir / "results/runs/skeleton/base/rep1/producer.log")
    assert replay is not None and replay["task"] == "replay"
    assert replay["done"] == replay["total"] > 0


def test_quick_workflow_builds_the_pdf_with_the_figure(workdir, quick_run):
    pdf = workdir / "results" / "paper.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 50_000
    log = (workdir / "results" / "paper" / "build" / "main.log").read_text(errors="replace")
    assert "fig_run_latency.pdf" in log, "the figure was not included"
    assert "tab_run_summary.tex" in log, "the table was not included"
    assert not re.search(r"undefined references|Citation .* undefined", log)


def test_every_macro_equals_the_value_in_the_run_files(workdir, quick_run):
    tex = (workdir / "results" / "paper" / "macros.tex").read_text().splitlines()
    parsed = [MACRO_LINE.match(line) for line in tex if line.startswith("\\newcommand")]
    assert all(parsed) and len(parsed) >= len(macros.RUN_MACROS)
    declared = {m.name: m.decimals for m in macros.RUN_MACROS}
    for match in parsed:
        name, body, source, key = match.groups()
        data = json.loads((workdir / source).read_text())
        if name in declared:  # straight from a run's metrics.json / provenance.json
            assert source.startswith("results/runs/skeleton/base/rep1/"), source
            value, decimals = macros.lookup(data, key), declared[name]
        else:  # computed by a notebook or table rule, which names its own source
            value, decimals = data[name]["value"], data[name]["decimals"]
        if value is None:
            assert body == "n/a", name
        elif decimals is None:
            assert body.replace("\\_", "_") in str(value), name
        else:
            assert abs(float(body) - float(value)) <= 0.5 * 10**-decimals + 1e-9, (name, body)
    metrics = json.loads((workdir / "results/runs/skeleton/base/rep1/metrics.json").read_text())
    assert metrics["events_produced"] > 0 and metrics["alerts"] > 0


def test_the_run_is_the_one_just_made(workdir, quick_run):
    provenance = json.loads(
        (workdir / "results/runs/skeleton/base/rep1/provenance.json").read_text()
    )
    made = time.mktime(time.strptime(provenance["date_utc"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert abs(made - time.mktime(time.gmtime())) < 3600
    assert provenance["cohort"]["patients"] == 200  # the quick profile's cohort


def test_no_process_is_left_after_a_successful_run(workdir, quick_run):
    assert_no_processes_left(workdir)
    assert stack_state_files(workdir) == []
    # The run's own state directory went with its services.
    assert list((workdir / "results" / ".stack").glob("*/owner.json")) == []


def test_second_run_does_nothing_and_is_fast(workdir, quick_run):
    start = time.monotonic()
    result = snakemake(workdir, timeout=120)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Nothing to be done" in result.stdout + result.stderr
    assert "Started local Kafka broker" not in result.stderr
    assert elapsed < 15, f"a no-op `snakemake` took {elapsed:.1f} s"


def path_without(tmp_path: Path, *tools: str) -> str:
    """PATH with the same programs, except ``tools``: one directory of links to the rest."""
    farm = tmp_path / "bin"
    farm.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not Path(directory).is_dir():
            continue
        for program in Path(directory).iterdir():
            link = farm / program.name
            if program.name not in tools and not link.exists() and not link.is_symlink():
                link.symlink_to(program)
    return str(farm)


def test_missing_tex_is_named_before_any_job_runs(workdir, quick_run, tmp_path):
    source = workdir / "paper" / "main.tex"
    original, before = source.read_bytes(), source.stat()
    source.write_bytes(original + b"\n% edited\n")  # build_paper is to run
    try:
        result = snakemake(workdir, timeout=120, path=path_without(tmp_path, "latexmk"))
    finally:
        source.write_bytes(original)
        os.utime(source, (before.st_atime, before.st_mtime))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "TeX is missing (latexmk)" in output, output[-2000:]
    assert "sudo apt-get install latexmk texlive-latex-base" in output
    assert "rule build_paper:" not in output, "a job ran before the check"
    assert "Started local" not in output


# Rules that need raw data, Kafka or Spark: a rebuild from an archive must run none of them.
RAW_RULES = re.compile(
    r"rule (run_condition|run_perf_\w+|generate_cohort|compute_reference|validate_run"
    r"|convert_physionet\w*|fetch_physionet|summarise_data|extract_run_series|measure_breakdown"
    r"|bench_producer|run_shared_\w+|gateway_events|score_accuracy|compare_models):"
)


def test_the_paper_rebuilds_from_its_archive_with_identical_macros(workdir, quick_run, tmp_path):
    made = make(workdir, "archive", "PROFILE=quick", timeout=300)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    archive = workdir / "results" / "archive" / "vitalstream-results.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "SHA256SUMS" in names and "results/runs/skeleton/base/rep1/metrics.json" in names
    raw = [n for n in names if re.search(r"events\.parquet$|/(windows|alerts|checkpoints)/", n)]
    assert not raw, f"raw data in the archive: {raw[:5]}"

    rebuilt = tmp_path / "rebuilt"
    result = make(workdir, "paper-from-archive", f"ARCHIVE={archive}", f"ARCHIVE_WORK={rebuilt}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Started local Kafka broker" not in output
    assert not RAW_RULES.search(output), RAW_RULES.search(output)
    original = (workdir / "results" / "paper" / "macros.tex").read_bytes()
    assert (rebuilt / "results" / "paper" / "macros.tex").read_bytes() == original
    assert (rebuilt / "results" / "paper.pdf").read_bytes()[:5] == b"%PDF-"
    assert (
        "\\newcommand{\\BuiltFromArchive}{true}"
        in (rebuilt / "results" / "paper" / "origin.tex").read_text()
    )
    assert_no_processes_left(workdir)

    # One changed byte in one file: refused before anything is unpacked or built.
    corrupted = tmp_path / "corrupted.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(corrupted, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == "results/runs/skeleton/base/rep1/metrics.json":
                data = data.replace(b"1", b"2", 1)
            dst.addfile(member, io.BytesIO(data))
    refused = make(
        workdir, "paper-from-archive", f"ARCHIVE={corrupted}", f"ARCHIVE_WORK={tmp_path / 'bad'}"
    )
    assert refused.returncode != 0
    assert "checksum mismatch: results/runs/skeleton/base/rep1/metrics.json" in refused.stderr
    assert not (tmp_path / "bad").exists()


def planned_rules(output: str) -> dict[str, int]:
    """Rule → job count from the "Job stats" table of a dry run."""
    table = output[output.index("Job stats:") :].splitlines()[3:]
    rows = [line.split() for line in table]
    rows = rows[: next(i for i, r in enumerate(rows) if not r)]
    return {row[0]: int(row[1]) for row in rows if row[0] != "total"}


def test_changing_a_notebook_reruns_only_it_and_the_paper(workdir, quick_run):
    # A real edit: Snakemake skips an input whose mtime changed but whose content did not.
    notebook = workdir / "notebooks" / "rq1_scaling.ipynb"
    original, before = notebook.read_bytes(), notebook.stat()
    notebook.write_bytes(original.rstrip(b"\n") + b"\n\n")
    try:
        result = make(workdir, "paper", "PROFILE=quick", "SNAKEMAKE_ARGS=--dry-run", timeout=120)
    finally:
        notebook.write_bytes(original)
        os.utime(notebook, (before.st_atime, before.st_mtime))
    assert result.returncode == 0, result.stderr[-2000:]
    planned = planned_rules(result.stdout + result.stderr)
    # write_origin_macros: origin.tex names the commit and date of the numbers it sits beside.
    assert set(planned) == {
        "run_notebook_rq1_scaling",
        "write_macros",
        "write_origin_macros",
        "build_paper",
        "all",
    }
    assert "Started local Kafka broker" not in result.stderr


def planned_after_editing(workdir: Path, module: str) -> dict[str, int]:
    """The dry run's plan (modification times only) after a real edit of a package module, which
    is then put back as it was (bytes and modification time)."""
    source = workdir / "scripts" / "vitalstream" / module
    original, before = source.read_bytes(), source.stat()
    source.write_bytes(original + b"\n# edited\n")
    try:
        args = "SNAKEMAKE_ARGS=--dry-run --rerun-triggers mtime"
        result = make(workdir, "paper", "PROFILE=quick", args, timeout=120)
    finally:
        source.write_bytes(original)
        os.utime(source, (before.st_atime, before.st_mtime))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Started local Kafka broker" not in result.stderr
    return planned_rules(result.stdout + result.stderr)


# Before test_failing_spark_rule_...: that test rewrites the runs' settings files.
def test_editing_a_stream_module_reruns_the_runs_and_what_depends_on_them(workdir, quick_run):
    planned = planned_after_editing(workdir, "stream/windows.py")
    # Every kind of job that runs the Spark job: single, shared-session and performance runs.
    assert "run_condition" in planned
    assert any(rule.startswith("run_shared_") for rule in planned), planned
    assert any(rule.startswith("run_perf_") for rule in planned), planned
    # Their results' consumers, down to the PDF.
    assert {"validate_run", "score_accuracy", "run_notebook_rq3_lateness", "write_macros"} <= set(
        planned
    )
    assert "build_paper" in planned
    # Commands that do not import the stream stay as they are.
    unaffected = {
        "generate_cohort",
        "fetch_physionet",
        "convert_physionet",
        "convert_physionet_sepsis2019",
        "sepsis_model",
        "compute_reference",
        "write_config",
        "write_paper_assets",
    }
    assert not unaffected & set(planned), unaffected & set(planned)


def test_editing_a_paper_only_module_rebuilds_only_the_paper(workdir, quick_run):
    planned = planned_after_editing(workdir, "paper/latexlog.py")
    assert set(planned) == {"build_paper", "all"}


# Last of all the quick run's tests: Snakemake removes the outputs of the Spark job it starts
# first before the job fails, and which job that is depends on the scheduler (a CI run lost the
# headline run's folder, which later tests read).
@pytest.mark.spoils_quick_run
def test_failing_spark_rule_stops_the_broker_and_leaves_nothing(workdir, quick_run):
    failing = "tests/integration/fixtures/failing_spark.yaml"
    result = make(
        workdir, "paper", f"SNAKEMAKE_ARGS=--configfile config/profiles/quick.yaml {failing}"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Started local Kafka broker" in output, "the failing run should have needed Kafka"
    # Whichever Spark job the scheduler starts first fails (a single run, a shared session, a
    # load sweep, the model comparison); its log must name the fixture's master as the cause.
    failed = re.search(r"Error in rule (\w+):.*?log: (\S+)", output, flags=re.DOTALL)
    assert failed, output[-2000:]
    rule, log = failed.groups()
    spark_rules = r"run_condition|run_shared_\w+|run_perf_\w+|measure_breakdown|compare_models"
    assert re.fullmatch(spark_rules, rule), rule
    assert "Asked to run locally with 0 threads" in (workdir / log).read_text(), (
        f"{rule} failed otherwise"
    )
    assert "Stopped local Kafka broker" in output
    assert_no_processes_left(workdir)
    assert stack_state_files(workdir) == []


def test_data_section_checks_hold_on_the_run_just_made(workdir, quick_run):
    realism = json.loads((workdir / "results" / "data" / "realism.json").read_text())
    assert set(realism["acceptance_vitals"]) == {"hr", "spo2", "sbp", "rr", "temp"}
    assert realism["all_within_iqr"] is True
    summary = json.loads(
        (workdir / "data" / "physionet" / "sepsis2019" / "summary.json").read_text()
    )
    assert summary["rows"] == summary["valid_rows"] + summary["quarantined_rows"]
    if physionet_mirror() != REPO / "data" / "fixtures" / "physionet":  # the full set A
        assert (summary["patients"], summary["rows"], summary["septic_patients"]) == (
            20_336,
            790_215,
            1_790,
        )


def test_validation_runs_agree_with_the_reference(workdir, quick_run):
    runs = workdir / "results" / "runs" / "validation"
    results = {p.parent.parent.name: json.loads(p.read_text())
               for p in runs.glob("*/rep1/validation.json")}  # fmt: skip
    assert {"in_order", "late"} <= set(results)
    for name, result in results.items():
        assert result["windows_mismatching"] == 0, name
    assert results["in_order"]["windows_complete"] == results["in_order"]["windows_reference"]
    assert results["in_order"]["alerts_missing"] == results["in_order"]["alerts_extra"] == 0
    # Every late reading the stream lost is one the watermark dropped and counted. How many
    # fall behind it here depends on how long the shared session's micro-batches take on two
    # shared cores (0 and 6 in two builds of one commit), so that the late path does drop
    # rows is shown by test_streaming.py::test_late_events_missing_from_windows_equal_the_
    # reported_drops, on a job of its own.
    # A repeat of a reading that arrives behind the watermark is dropped as late, but the
    # reference never counted it (late_duplicates): it is no missing event.
    late = results["late"]
    assert late["events_missing"] == late["dropped_by_watermark"] - late["late_duplicates"]
    assert results["late"]["missing_equals_dropped"]


def test_the_killed_job_restarted_from_its_checkpoint_wrote_the_same_alerts(workdir, quick_run):
    """The quick profile's fault run (faults/spark_kill, vitalstream.experiments.faults): the
    job killed after its third windows batch and restarted from its checkpoint wrote exactly
    the alerts of the uninterrupted run, and the topic and the index hold every one. The
    broker faults are tests/integration/test_faults.py's."""
    run = workdir / "results" / "runs" / "faults" / "spark_kill" / "rep1"
    assert_the_restarted_job_wrote_the_same_alerts(json.loads((run / "metrics.json").read_text()))


def test_the_search_index_holds_exactly_the_alerts_of_the_parquet_sink(workdir, quick_run):
    """Rule export_search_index read the run's documents back from the OpenSearch node the
    workflow started; compared here once more, independently of its own check."""
    import pandas as pd
    from vitalstream.measure import metrics

    run = workdir / "results" / "runs" / SERVING_RUN
    served = workdir / "results" / "serving" / SERVING_RUN
    check = json.loads((served / "check.json").read_text())
    assert check["equal"] and check["windows_equal"], check
    sink = metrics.read_parquet_dir(run / "alerts")
    indexed = pd.read_parquet(served / "index_alerts.parquet")
    assert len(sink) > 100
    assert set(indexed["alert_id"]) == set(sink["alert_id"])
    assert len(indexed) == sink["alert_id"].nunique()
    assert indexed["indexed_at"].notna().all()
    result = json.loads((run / "metrics.json").read_text())["search"]
    assert result["errors"] == 0
    assert result["visible_latency_ms"]["count"] == (sink["kind"] == "window").sum()
    windows = pd.read_parquet(served / "index_windows.parquet")
    assert len(windows) == len(metrics.read_parquet_dir(run / "windows"))


def test_the_hyper_extract_round_trips(workdir, quick_run):
    from vitalstream.serving import hyperextract

    run = workdir / "results" / "runs" / SERVING_RUN
    extract = workdir / "results" / "serving" / SERVING_RUN / "extract.hyper"
    alerts, windows = hyperextract.read_run_dir(run)
    counts = hyperextract.read_counts(extract)
    assert counts == {
        "alerts": len(alerts),
        "hourly": len(hyperextract.hourly_aggregates(alerts, windows)),
    }
    hourly = hyperextract.read_table(extract, "hourly")
    assert hourly["alerts"].sum() == len(alerts)
    assert hourly["windows"].sum() == len(windows)


def test_the_dashboard_from_the_index_renders_in_chromium(workdir, quick_run, tmp_path):
    from headless import dom, marks, rendered

    page = workdir / "results" / "serving" / SERVING_RUN / "dashboard.html"
    html = dom(page, tmp_path / "profile")
    assert rendered(html), html[-2000:]
    drawn = marks(html)
    assert drawn["chart-timeline"] > 0 and drawn["chart-patient"] > 0, drawn
    for name in ("kibana8.ndjson", "opensearch-dashboards.ndjson"):
        lines = (workdir / "results" / "serving" / "kibana" / name).read_text().splitlines()
        assert [json.loads(line)["type"] for line in lines].count("visualization") == 4


def test_the_breakdown_measured_every_stage_at_each_level(workdir, quick_run):
    """`breakdown` (rule measure_breakdown) with the real broker and Spark of the quick run:
    every stage at every level, none negative, the batches reading what the level says."""
    result = json.loads((workdir / "results" / "perf" / "breakdown.json").read_text())
    assert len(result["levels"]) >= 2  # the figure compares two load levels
    for level in result["levels"]:
        size, stages = level["messages"], level["stages"]
        assert set(stages["costs_ms"]) == set(stagecosts.SPARK_STAGES)
        assert all(value >= 0 for value in stages["costs_ms"].values())
        assert all(len(s) == result["repeats"] + 1 for s in stages["samples_ms"].values())
        assert {"rules", "write", "collect"} <= set(stages["driver_ms"])
        # maxOffsetsPerTrigger splits the level over the partitions, rounding each share down.
        slack = result["partitions"]
        assert all(size - slack <= rows <= size for rows in stages["input_rows"]), stages
        assert level["topic_messages"] >= size * (result["batches"] + 1)
        for name in ("windows", "readings"):
            query = level["streaming"][name]
            assert query["batches"] == result["batches"]
            assert all(size - slack <= rows <= size for rows in query["input_rows"]), query
            assert all(query["duration_ms"][k] is not None for k in stagecosts.DURATION_KEYS)
            assert set(query["stage_ms"]) == set(SINK_STAGES)
        parts = stagecosts.segments(level)
        assert set(parts) == set(stagecosts.SEGMENT_LABELS)
        assert all(value >= 0 for value in parts.values())


def test_each_lever_drained_its_batches_beside_the_unchanged_job(workdir, quick_run):
    """The breakdown's levers (config breakdown.levers, the quick profile's selection): in
    each round every lever and the unchanged job drained its topic, the lever without the
    per-reading query with the windows query alone and the others with both, a RocksDB lever's
    windows query on RocksDB (its state metrics) and the others on the default store; the
    table and the macros name them."""
    result = json.loads((workdir / "results" / "perf" / "breakdown.json").read_text())
    levers = result["levers"]
    assert levers["variants"] and len(levers["rounds"]) == levers["repeats"]
    assert levers["warmup"]["msgs_per_s"] > 0  # the uncounted first drain
    for one in levers["rounds"]:
        assert sorted(one["order"]) == sorted(["baseline", *levers["variants"]])
        for name, drain in one["drains"].items():
            alone = not levers["variants"].get(name, {}).get("readings_query", True)
            queries = {"windows"} if alone else {"windows", "readings"}
            assert set(drain["queries"]) == queries, name
            assert drain["msgs_per_s"] > 0, name
            store = "rocksdb" if name.startswith("rocksdb") else "default"
            assert drain["queries"]["windows"]["state_store"] == store, name
    assert levers["summary"]["baseline"]["median_ratio"] == 1.0
    table = (workdir / "results" / "paper" / "tab_levers.tex").read_text()
    assert "RocksDB with changelog checkpointing" in table
    macros_tex = (workdir / "results" / "paper" / "macros.tex").read_text()
    assert "\\newcommand{\\LeverWindowsOnlyVerdict}" in macros_tex


def test_the_cost_model_is_checked_on_one_task_slot_and_on_the_sessions(workdir, quick_run):
    """The cost model (vitalstream.measure.costmodel) of the quick run's breakdown: a warm-up
    drain before the levels; the one-slot lever drained on one Kafka partition and one task
    slot, the two-slot lever on two, the unchanged job on the fewest of cores, Kafka and
    shuffle partitions; each check's measured rate reaches the macros
    beside the prediction, and the predictions' table has a row per core count of the config
    and one for unlimited cores."""
    result = json.loads((workdir / "results" / "perf" / "breakdown.json").read_text())
    assert result["warmup"]["msgs_per_s"] > 0
    one_slot = result["levers"]["variants"]["one_slot"]
    assert one_slot["partitions"] == 1 and one_slot["task_slots"] == 1
    cpus = os.cpu_count() or 1
    assert result["task_slots"] == min(cpus, result["partitions"], result["shuffle_partitions"])
    two_slots = result["levers"]["variants"]["shuffle_two"]["task_slots"]
    assert two_slots == min(cpus, 2)
    model = costmodel.fit(result)
    assert model.fixed_ms >= 0 and model.executor_ms >= 0 and model.driver_ms >= 0
    assert {row["slots"] for row in costmodel.checks(model, result)} == {1, two_slots}
    macros_tex = (workdir / "results" / "paper" / "macros.tex").read_text()
    for name in ("CostCheckOneSlotMeasured", "CostCheckTwoSlotsPredicted", "CostRateUnlimited"):
        assert f"\\newcommand{{\\{name}}}" in macros_tex, name
    table = (workdir / "results" / "paper" / "tab_costmodel.tex").read_text()
    cores = json.loads((workdir / "results" / "configs" / "breakdown_cost_model.json").read_text())
    assert table.count("\\\\") == len(cores["cores"]) + 2  # header, each count, unlimited
    assert "unlimited" in table


def test_every_commit_record_carries_the_sinks_phases(workdir, quick_run):
    """The sink times each phase of every batch (sinks.batch.StageTimer) in its commit record."""
    commits = workdir / "results" / "runs" / "skeleton" / "base" / "rep1" / "commits.jsonl"
    records = [json.loads(line) for line in commits.read_text().splitlines()]
    assert {r["query"] for r in records} == {"windows", "readings"}
    for record in records:
        assert set(record["stage_ms"]) == set(SINK_STAGES)
        assert all(value >= 0 for value in record["stage_ms"].values())


def test_a_search_records_its_probes_and_reports_the_highest_that_held(workdir, quick_run):
    """rq5's tuned condition searches its sustainable rate (experiments.perfsearch) in the
    quick profile: its probes on disk, the bracket and the rate from the probes' verdicts."""
    run = workdir / "results" / "runs" / "rq5" / "tuned" / "rep1"
    metrics_ = json.loads((run / "metrics.json").read_text())
    settings = json.loads((run / "condition.json").read_text())["load"]["search"]
    search = metrics_["rate_search"]
    probes = search["probes"]
    assert 1 <= search["probe_count"] == len(probes) <= settings["max_probes"]
    assert sorted(p.name for p in (run / "probes").iterdir()) == [p["dir"][7:] for p in probes]
    assert probes[0]["rate"] == settings["start"]
    held = [p["rate"] for p in probes if p["held"]]
    failed = [p["rate"] for p in probes if not p["held"]]
    lo, hi = search["bracket"]
    assert lo == (max(held) if held else None)
    assert hi == (min(failed) if failed else None)
    assert metrics_["sustainable_rate"] == (max(held) if held else 0)
    assert all(h < f for h in held for f in failed)
    for probe in probes:
        assert probe["batch_duration_median_ms"] is None or probe["batch_duration_median_ms"] > 0
        probe_dir = run / probe["dir"]
        assert (probe_dir / "metrics.json").exists()
        assert not (probe_dir / "checkpoints").exists()
        one = json.loads((probe_dir / "metrics.json").read_text())
        assert [s["target_rate"] for s in one["steps"]] == [probe["rate"]]
    # The series of the probe the latencies come from, where readers of a ramp run look.
    chosen = next(p for p in probes if p["probe"] == search["latency_probe"])
    assert (run / "lag.csv").read_bytes() == (run / chosen["dir"] / "lag.csv").read_bytes()
    assert [s["probe"] for s in metrics_["steps"]] and len(metrics_["steps"]) == len(probes)
