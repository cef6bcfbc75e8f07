# Experiments: each run replays a cohort through Kafka into the Spark job under one condition.
# The grid comes from config (expanded once, in vitalstream.config.expand_runs); runs are
# serialised through the `experiment_slot` resource (profiles/default) so that no two
# measurements share the 2 cores.


rule run_condition:
    input:
        events=run_events,
    output:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        provenance="results/runs/{experiment}/{condition}/rep{rep}/provenance.json",
        condition="results/runs/{experiment}/{condition}/rep{rep}/condition.json",
    log:
        "results/logs/run_condition/{experiment}/{condition}/rep{rep}.log",
    benchmark:
        "results/benchmarks/run_condition/{experiment}/{condition}/rep{rep}.tsv"
    conda:
        "../../envs/stream.yaml"
    # All cores: no other job (a notebook, a cohort) may run beside a timed run.
    threads: workflow.cores
    resources:
        experiment_slot=1,
    params:
        config=run_config,
        state=STACK_STATE,
    shell:
        "python -m vitalstream run {wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep}"
        " --config-json {params.config} --events {input.events}"
        " --run-dir results/runs/{wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep}"
        " --broker-state {params.state} > {log} 2>&1"


rule compute_reference:
    input:
        events=run_events,
    output:
        windows="results/runs/{experiment}/{condition}/rep{rep}/reference/windows.parquet",
        alerts="results/runs/{experiment}/{condition}/rep{rep}/reference/alerts.parquet",
    log:
        "results/logs/compute_reference/{experiment}/{condition}/rep{rep}.log",
    benchmark:
        "results/benchmarks/compute_reference/{experiment}/{condition}/rep{rep}.tsv"
    conda:
        "../../envs/stream.yaml"
    params:
        config=run_config,
    shell:
        "python -m vitalstream reference --events {input.events} --config-json {params.config}"
        " --run {wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep}"
        " --out $(dirname {output.windows}) > {log} 2>&1"


rule validate_run:
    input:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        reference="results/runs/{experiment}/{condition}/rep{rep}/reference/windows.parquet",
    output:
        "results/runs/{experiment}/{condition}/rep{rep}/validation.json",
    log:
        "results/logs/validate_run/{experiment}/{condition}/rep{rep}.log",
    conda:
        "../../envs/stream.yaml"
    shell:
        "python -m vitalstream validate --run-dir $(dirname {input.metrics})"
        " --reference-dir $(dirname {input.reference}) --out {output} > {log} 2>&1"


rule write_validation_table:
    input:
        [f"results/runs/{run.path}/validation.json" for run in validation_runs()],
    output:
        table="results/paper/tab_validation.tex",
        values="results/paper/validation_values.json",
    log:
        "results/logs/write_validation_table.log",
    conda:
        "../../envs/stream.yaml"
    params:
        runs=" ".join(
            f"--run {run.condition} results/runs/{run.path}/validation.json"
            for run in validation_runs()
        ),
    shell:
        "python -m vitalstream validation-table {params.runs} --out {output.table}"
        " --values {output.values} > {log} 2>&1"
