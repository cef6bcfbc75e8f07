# Experiments: each run replays a cohort through Kafka into the Spark job under one condition.
# The grid comes from config (expanded once, in vitalstream.config.expand_runs); runs are
# serialised through the `experiment_slot` resource (profiles/default) so that no two
# measurements share the 2 cores.


rule run_condition:
    input:
        events=lambda wc: f"data/cohorts/{cohort_of(wc)}/events.parquet",
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
