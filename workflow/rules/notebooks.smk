# Notebooks: papermill executes each analysis notebook with its parameters; the executed copy
# lands under results/notebooks/, its figures and tables under results/paper/.
HEADLINE = f"results/runs/{config['paper']['headline_run']}"
# Macro values computed by notebooks (`<name>_values.json`), merged into macros.tex.
NOTEBOOK_VALUES = ["results/paper/validation_values.json"]


rule run_notebook_run_overview:
    input:
        notebook="notebooks/run_overview.ipynb",
        metrics=f"{HEADLINE}/metrics.json",
    output:
        executed="results/notebooks/run_overview.ipynb",
        figure="results/paper/fig_run_latency.pdf",
        table="results/paper/tab_run_summary.tex",
    log:
        "results/logs/run_notebook_run_overview.log",
    conda:
        "../../envs/notebook.yaml"
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.metrics),
    shell:
        "papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar"
        " -p run_dir {params.run_dir} -p figure {output.figure} -p table {output.table}"
        " > {log} 2>&1"


# The Data section: the cohort the experiments replay beside the real PhysioNet sources
# (realism check, cohort/schema/generator tables, example trajectories, macros).
DATA_COHORT = "main"
NOTEBOOK_VALUES.append("results/paper/data_overview_values.json")


rule run_notebook_data_overview:
    input:
        notebook="notebooks/data_overview.ipynb",
        events=f"data/cohorts/{DATA_COHORT}/events.parquet",
        labels=f"data/cohorts/{DATA_COHORT}/labels.parquet",
        summaries=DATA_TARGETS,
        physionet=expand(
            "data/physionet/{source}/{table}.parquet",
            source=physionet_sources(),
            table=["events", "labels", "quarantine"],
        ),
        realism="scripts/vitalstream/realism.py",
    output:
        executed="results/notebooks/data_overview.ipynb",
        figure="results/paper/fig_trajectories.pdf",
        cohort_table="results/paper/tab_cohort.tex",
        realism_table="results/paper/tab_realism.tex",
        schema_table="results/paper/tab_schema.tex",
        generator_table="results/paper/tab_generator.tex",
        values="results/paper/data_overview_values.json",
        realism="results/data/realism.json",
    log:
        "results/logs/run_notebook_data_overview.log",
    conda:
        "../../envs/notebook.yaml"
    params:
        cohort=DATA_COHORT,
        # data/physionet: the folder above each source's own folder.
        physionet_dir=lambda wildcards, input: os.path.dirname(
            os.path.dirname(input.summaries[0])
        ),
        sources=",".join(physionet_sources()),
    shell:
        "papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar"
        " -p cohort_events {input.events} -p cohort_labels {input.labels}"
        " -p cohort_name {params.cohort} -p physionet_dir {params.physionet_dir}"
        " -p sources {params.sources} -p realism_json {output.realism}"
        " -p values_json {output.values} -p fig_trajectories {output.figure}"
        " -p tab_cohort {output.cohort_table} -p tab_realism {output.realism_table}"
        " -p tab_schema {output.schema_table} -p tab_generator {output.generator_table}"
        " > {log} 2>&1"


# RQ1: latency and throughput vs patients and partitions (performance group rq1).
NOTEBOOK_VALUES.append("results/paper/rq1_values.json")


rule run_notebook_rq1_scaling:
    input:
        notebook="notebooks/rq1_scaling.ipynb",
        metrics=group_files("rq1", "metrics.json"),
        series=group_files("rq1", "lag.csv"),
    output:
        executed="results/notebooks/rq1_scaling.ipynb",
        scaling="results/paper/fig_rq1_scaling.pdf",
        cdf="results/paper/fig_rq1_cdf.pdf",
        table="results/paper/tab_rq1.tex",
        values="results/paper/rq1_values.json",
    log:
        "results/logs/run_notebook_rq1_scaling.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        "papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar"
        " -p runs_root results/runs -p experiment rq1 -p fig_scaling {output.scaling}"
        " -p fig_cdf {output.cdf} -p table {output.table} -p values_json {output.values}"
        " > {log} 2>&1"


# RQ5: tuning knobs, sustainable throughput, the blueprint's configuration, the raw ceiling.
NOTEBOOK_VALUES.append("results/paper/rq5_values.json")


rule run_notebook_rq5_tuning:
    input:
        notebook="notebooks/rq5_tuning.ipynb",
        metrics=group_files("rq5", "metrics.json"),
        series=group_files("rq5", "lag.csv"),
        ceiling="results/perf/ceiling.json",
        producer="results/perf/producer_bench.json",
    output:
        executed="results/notebooks/rq5_tuning.ipynb",
        sustainable="results/paper/fig_rq5_sustainable.pdf",
        timeline="results/paper/fig_rq5_timeline.pdf",
        table="results/paper/tab_rq5.tex",
        ratio="results/paper/tab_rq5_ratio.tex",
        values="results/paper/rq5_values.json",
    log:
        "results/logs/run_notebook_rq5_tuning.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        "papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar"
        " -p runs_root results/runs -p experiment rq5 -p ceiling_json {input.ceiling}"
        " -p producer_json {input.producer}"
        " -p fig_sustainable {output.sustainable} -p fig_timeline {output.timeline}"
        " -p table {output.table} -p ratio_table {output.ratio}"
        " -p values_json {output.values} > {log} 2>&1"


# Fault tolerance: the job killed, the broker killed, one node of three killed (vitalstream.faults).
NOTEBOOK_VALUES.append("results/paper/faults_values.json")


rule run_notebook_faults:
    input:
        notebook="notebooks/faults.ipynb",
        metrics=group_files("faults", "metrics.json"),
    output:
        executed="results/notebooks/faults.ipynb",
        table="results/paper/tab_faults.tex",
        figure="results/paper/fig_faults.pdf",
        values="results/paper/faults_values.json",
    log:
        "results/logs/run_notebook_faults.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        "papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar"
        " -p runs_root results/runs -p experiment faults -p table {output.table}"
        " -p figure {output.figure} -p values_json {output.values} > {log} 2>&1"
