# Data: seeded synthetic cohorts (and, later, PhysioNet sources) in the canonical schema.


rule generate_cohort:
    output:
        events="data/cohorts/{cohort}/events.parquet",
        labels="data/cohorts/{cohort}/labels.parquet",
    log:
        "results/logs/generate_cohort/{cohort}.log",
    benchmark:
        "results/benchmarks/generate_cohort/{cohort}.tsv"
    conda:
        "../../envs/stream.yaml"
    params:
        args=cohort_args,
    shell:
        "python -m vitalstream cohort {params.args} --out data/cohorts/{wildcards.cohort}"
        " > {log} 2>&1"
