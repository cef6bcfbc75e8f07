# Settings files: the part of the configuration a rule depends on reaches its command as a small
# JSON file, results/configs/<name>.json, never as a JSON literal on the command line. The rule
# takes the file as an input (`config_file(name)`) and its command reads it (`--config-file`).
# Rule write_config writes every such file (what each holds is declared with declare_config,
# next to the rules that read it; helpers in common.smk). Snakemake's params trigger rewrites a
# file when its slice of the configuration changes, and then, and only then, the rules reading
# it re-run (their input changed): editing another experiment, condition or section re-runs
# nothing else.


rule write_config:
    output:
        config=f"{CONFIG_DIR}/{{name}}.json",
    log:
        "results/logs/write_config/{name}.log",
    localrule: True
    conda:
        "../../envs/paper.yaml"
    # Snakemake records `digest` (its params trigger; a dry run's reason line shows two short
    # digests, not two JSON texts); `text`, taken with `output`, is not recorded.
    params:
        digest=lambda wildcards: config_digest(wildcards.name),
        text=lambda wildcards, output: config_text(wildcards.name),
    script:
        "../scripts/write_config.py"


# The slices of one run, a shared session, a performance group (its order of conditions is the
# order of each round of repetitions), a condition's gateways and a cohort.
declare_config(
    "run", lambda run: vsconfig.run_config_subset(config, vsconfig.RunId.parse(run))
)
declare_config(
    "shared",
    lambda group: vsconfig.runs_config_subset(config, shared_group_runs(group)),
)
declare_config(
    "perf",
    lambda experiment: vsconfig.experiment_config_subset(config, experiment),
    ordered=True,
)
declare_config("gateway", gateway_block)
declare_config("cohort", lambda cohort: config["cohorts"][cohort])
