# The local stack: one Kafka broker and, when a job needs it, one OpenSearch node for the whole
# workflow, started in `onstart` and stopped in `onsuccess`/`onerror`. A watchdog process kills
# each if Snakemake itself dies (even by SIGKILL), so nothing outlives the workflow. Nothing is
# started when kafka.bootstrap_servers (search.url) is set or when no job needs it (re-running
# a notebook or the PDF starts nothing). Their state files sit in results/.stack/<run id>/, a
# directory of this invocation's own (jobs find it in $VITALSTREAM_STACK_DIR), so a second
# workflow in the same checkout neither reads nor stops this one's services; a directory whose
# Snakemake died is cleaned up by the next invocation. The node starts from an empty data dir,
# so the index holds what this invocation indexes and its disk use does not grow from one to
# the next; unless a search export this invocation runs reads a run it does not re-run
# (indexed by an earlier invocation), which an empty index would fail.
import shutil
import subprocess

from snakemake.exceptions import WorkflowError

from vitalstream.services import broker as vsbroker
from vitalstream.services import searchnode as vssearchnode

KAFKA_RULES = (
    {"run_condition", "measure_breakdown", "bench_producer", "compare_models"}
    | {f"run_perf_{e}" for e in LOAD_EXPERIMENTS}
    | {f"run_shared_{e}_{i}" for e, i, _ in shared_groups()}
)


def _jobs_need_kafka():
    try:
        return any(job.rule.name in KAFKA_RULES for job in workflow.dag.needrun_jobs())
    except AttributeError:
        # A Snakemake without this DAG API: start the broker to be safe.
        return True


SEARCH_RULES = {"export_search_index"}


def _job_needs_search(job):
    if job.rule.name in SEARCH_RULES:
        return True
    if job.rule.name != "run_condition":
        return False
    w = job.wildcards
    return indexes(vsconfig.RunId(w.experiment, w.condition, int(w.rep)))


def _search_index_kept():
    """Does a search export this invocation runs read a run it does not re-run?"""
    try:
        jobs = list(workflow.dag.needrun_jobs())
    except AttributeError:
        return True

    def runs(rules):
        return {
            (j.wildcards.experiment, j.wildcards.condition, j.wildcards.rep)
            for j in jobs
            if j.rule.name in rules
        }

    return bool(runs(SEARCH_RULES) - runs({"run_condition"}))


def _jobs_need_search():
    try:
        return any(_job_needs_search(job) for job in workflow.dag.needrun_jobs())
    except AttributeError:
        return any(indexes(run) for run in RUNS)


STACK_RUN_DIR = None  # this invocation's results/.stack/<run id>/, set by onstart
# The node's home is kept: a later invocation's export may read its index.
SEARCH_WORK_DIR = Path(STACK_ROOT) / "opensearch"


def stale_state_stoppers():
    """State file name → the function that stops what a dead run's file names."""
    return {
        "kafka.json": vsbroker.stop_from_state,
        "opensearch.json": vssearchnode.stop_from_state,
    }


def claim_stack_dir():
    """This invocation's state directory, handed to every job through the environment (jobs
    inherit it; a rule's params would make every job re-run). Stale ones go first."""
    global STACK_RUN_DIR
    for stale in vssupervise.clean_stale_runs(Path(STACK_ROOT), stale_state_stoppers()):
        print(f"Removed {stale}, left by a Snakemake that is gone", file=sys.stderr)
    STACK_RUN_DIR = vssupervise.claim_run_dir(Path(STACK_ROOT), os.getpid()).resolve()
    os.environ[vssupervise.STACK_DIR_ENV] = str(STACK_RUN_DIR)
    return STACK_RUN_DIR


def search_work_dir(run_dir):
    """The node's home: the checkout's, whose index a later invocation may read; a directory
    of this run's own when another workflow's node runs over that one and this run needs no
    earlier index (else a clear error: that node is not ours to stop)."""
    if not vssearchnode.node_running_over(SEARCH_WORK_DIR):
        return SEARCH_WORK_DIR
    if not _search_index_kept():
        return run_dir / "opensearch"
    raise WorkflowError(
        f"the search index in {SEARCH_WORK_DIR} is in use by another workflow's node; "
        "re-run once that workflow has finished (this run reads runs indexed earlier)"
    )


def start_local_stack():
    run_dir = claim_stack_dir()
    if not config["kafka"]["bootstrap_servers"] and _jobs_need_kafka():
        state = vsbroker.start_for_workflow(
            run_dir / "kafka.json", run_dir / "kafka", parent_pid=os.getpid()
        )
        print(
            f"Started local Kafka broker at {state['bootstrap_servers']}",
            file=sys.stderr,
        )
    if not SEARCH["url"] and _jobs_need_search():
        state = vssearchnode.start_for_workflow(
            run_dir / "opensearch.json",
            search_work_dir(run_dir),
            parent_pid=os.getpid(),
            clean_data=not _search_index_kept(),
            heap_mb=SEARCH.get("heap_mb", 512),
        )
        print(f"Started local OpenSearch node at {state['url']}", file=sys.stderr)


def stop_local_stack(keep_logs=False):
    """Stop this invocation's services (never another's); its directory goes too, unless
    `keep_logs` (a failed run: the broker's logs stay until the next invocation)."""
    if STACK_RUN_DIR is None:
        return
    if vsbroker.stop_from_state(STACK_RUN_DIR / "kafka.json"):
        print("Stopped local Kafka broker", file=sys.stderr)
    if vssearchnode.stop_from_state(STACK_RUN_DIR / "opensearch.json"):
        print("Stopped local OpenSearch node", file=sys.stderr)
    if not keep_logs:
        shutil.rmtree(STACK_RUN_DIR, ignore_errors=True)


# Tools from the machine, checked before any job runs: TeX for build_paper. A missing piece is
# named with the Debian packages to install (the Makefile's TEX_PACKAGES, read from there so
# that the list is written once).
TEX_FILES = ("siunitx.sty", "lmodern.sty")


def tex_packages():
    """The Makefile's TEX_PACKAGES (a `:=` assignment continued with backslashes)."""
    text = (REPO / "Makefile").read_text()
    assignment = r"^TEX_PACKAGES\s*:=\s*((?:.*\\\n)*.*)$"
    found = re.search(assignment, text, flags=re.MULTILINE)
    if not found:
        return ["latexmk", "lmodern"]
    return found.group(1).replace("\\\n", " ").split()


def missing_tex():
    """latexmk and the style files build_paper needs that this machine lacks."""
    missing = [] if shutil.which("latexmk") else ["latexmk"]
    if not shutil.which("kpsewhich"):
        return missing + ["kpsewhich (TeX Live)"]
    for name in TEX_FILES:
        found = subprocess.run(["kpsewhich", name], capture_output=True, text=True)
        if found.returncode != 0 or not found.stdout.strip():
            missing.append(name)
    return missing


def check_tex():
    """Stop before any job runs when build_paper is to run and TeX is incomplete."""
    try:
        jobs = workflow.dag.needrun_jobs()
        if not any(job.rule.name == "build_paper" for job in jobs):
            return
    except AttributeError:
        pass  # a Snakemake without this DAG API: check anyway
    missing = missing_tex()
    if missing:
        raise WorkflowError(
            f"TeX is missing ({', '.join(missing)}), which build_paper needs. Install these "
            f"Debian packages, then re-run:\n  sudo apt-get install {' '.join(tex_packages())}"
        )
