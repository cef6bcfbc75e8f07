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
