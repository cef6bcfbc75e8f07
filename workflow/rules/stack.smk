# The local stack: one Kafka broker for the whole workflow, started in `onstart` and stopped in
# `onsuccess`/`onerror`. A watchdog process kills it if Snakemake itself dies (even by SIGKILL),
# so no broker outlives the workflow. Nothing is started when kafka.bootstrap_servers is set or
# when no job needs Kafka (re-running a notebook or the PDF starts no broker).
from vitalstream import broker as vsbroker

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


def start_local_stack():
    if config["kafka"]["bootstrap_servers"] or not _jobs_need_kafka():
        return
    state = vsbroker.start_for_workflow(
        Path(STACK_STATE), Path("results/.stack/kafka"), parent_pid=os.getpid()
    )
    print(
        f"Started local Kafka broker at {state['bootstrap_servers']}", file=sys.stderr
    )


def stop_local_stack():
    if vsbroker.stop_from_state(Path(STACK_STATE)):
        print("Stopped local Kafka broker", file=sys.stderr)
