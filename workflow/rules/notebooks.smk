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
