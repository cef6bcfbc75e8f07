# Data: seeded synthetic cohorts and real PhysioNet sources, both in the canonical schema.


rule generate_cohort:
    input:
        config=config_file("cohort/{cohort}"),
        code=code_inputs("cohort"),
    output:
        events="data/cohorts/{cohort}/events.parquet",
        labels="data/cohorts/{cohort}/labels.parquet",
    log:
        "results/logs/generate_cohort/{cohort}.log",
    benchmark:
        "results/benchmarks/generate_cohort/{cohort}.tsv"
    conda:
        "../../envs/stream.yaml"
    shell:
        """
        python -m vitalstream cohort --config {input.config} \\
        --out $(dirname {output.events}) >{log} 2>&1
        """


# PhysioNet: fetch (verified local mirror, else a verified, resumable download of the pinned
# version into data/physionet/<source>/raw/), then convert to the schema.
# The summary.json files of the configured sources; the paper's `all` depends on them.
DATA_TARGETS = [f"data/physionet/{s}/summary.json" for s in physionet_sources()]
declare_config("physionet", physionet_download_config)


rule fetch_physionet:
    input:
        manifest=physionet_manifest,
        settings=config_file("physionet/{source}"),
        code=code_inputs("physionet"),
    output:
        "data/physionet/{source}/fetched.json",
    log:
        "results/logs/fetch_physionet/{source}.log",
    benchmark:
        "results/benchmarks/fetch_physionet/{source}.tsv"
    wildcard_constraints:
        source="|".join(vsphysionet.SOURCES),
    conda:
        "../../envs/stream.yaml"
    params:
        mirror=physionet_mirror_args,
    shell:
        """
        python -m vitalstream physionet {wildcards.source} {params.mirror:q} \\
        --config-file {input.settings} --out data/physionet/{wildcards.source} --step fetch \\
        >{log} 2>&1
        """


rule convert_physionet:
    input:
        fetched="data/physionet/{source}/fetched.json",
        code=code_inputs("physionet"),
    output:
        events="data/physionet/{source}/events.parquet",
        labels="data/physionet/{source}/labels.parquet",
        quarantine="data/physionet/{source}/quarantine.parquet",
        summary="data/physionet/{source}/summary.json",
    log:
        "results/logs/convert_physionet/{source}.log",
    benchmark:
        "results/benchmarks/convert_physionet/{source}.tsv"
    wildcard_constraints:
        source="|".join(s for s in vsphysionet.SOURCES if s != "sepsis2019"),
    conda:
        "../../envs/stream.yaml"
    params:
        start=physionet_start,
    shell:
        """
        python -m vitalstream physionet {wildcards.source} --out data/physionet/{wildcards.source} \\
        --step convert --start {params.start:q} >{log} 2>&1
        """


# sepsis2019 also keeps the challenge's native hourly table (all 41 columns) for the models.
use rule convert_physionet as convert_physionet_sepsis2019 with:
    output:
        events="data/physionet/{source}/events.parquet",
        labels="data/physionet/{source}/labels.parquet",
        quarantine="data/physionet/{source}/quarantine.parquet",
        summary="data/physionet/{source}/summary.json",
        hourly="data/physionet/{source}/hourly.parquet",
    wildcard_constraints:
        source="sepsis2019",
