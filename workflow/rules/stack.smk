# The local stack: one Kafka broker and, when a job needs it, one OpenSearch node for the whole
# workflow, started in `onstart` and stopped in `onsuccess`/`onerror`. A watchdog process kills
# each if Snakemake itself dies (even by SIGKILL), so nothing outlives the workflow. Nothing is
# started when kafka.bootstrap_servers (search.url) is set or when no job needs it (re-running
# a notebook or the PDF starts nothing). The node starts from an empty data dir, so the index
# holds what this invocation indexes and its disk use does not grow from one to the next;
# unless a search export this invocation runs reads a run it does not re-run (indexed by an
# earlier invocation), which an empty index would fail.
from vitalstream.services import broker as vsbroker
from vitalstream.services import searchnode as vssearchnode

KAFKA_RULES = (
    {"run_condition", "measure_ceiling", "bench_producer", "compare_models"}
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


def start_local_stack():
    if not config["kafka"]["bootstrap_servers"] and _jobs_need_kafka():
        state = vsbroker.start_for_workflow(
            Path(STACK_STATE), Path("results/.stack/kafka"), parent_pid=os.getpid()
        )
        print(
            f"Started local Kafka broker at {state['bootstrap_servers']}",
            file=sys.stderr,
        )
    if not SEARCH["url"] and _jobs_need_search():
        state = vssearchnode.start_for_workflow(
            Path(SEARCH_STATE),
            Path("results/.stack/opensearch"),
            parent_pid=os.getpid(),
            clean_data=not _search_index_kept(),
            heap_mb=SEARCH.get("heap_mb", 512),
        )
        print(f"Started local OpenSearch node at {state['url']}", file=sys.stderr)


def stop_local_stack():
    if vsbroker.stop_from_state(Path(STACK_STATE)):
        print("Stopped local Kafka broker", file=sys.stderr)
    if vssearchnode.stop_from_state(Path(SEARCH_STATE)):
        print("Stopped local OpenSearch node", file=sys.stderr)
