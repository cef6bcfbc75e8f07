# Notebooks: papermill executes each analysis notebook with its parameters; the executed copy
# lands under results/notebooks/, its figures, tables and macro values (`*_values.json`) under
# results/paper/, where the paper rules find them (paper.smk: paper_outputs).
HEADLINE = f"results/runs/{config['paper']['headline_run']}"


# Small series a figure needs, extracted from a run's sink directories (vitalstream.measure.runseries):
# the notebooks and a results archive read these instead of windows/, alerts/ and events/.
rule extract_run_series:
    input:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        code=code_inputs("run-series"),
    output:
        "results/runs/{experiment}/{condition}/rep{rep}/{series}.parquet",
    log:
        "results/logs/extract_run_series/{experiment}/{condition}/rep{rep}/{series}.log",
    wildcard_constraints:
        series="commit_latency|append_delays",
    conda:
        "../../envs/stream.yaml"
    shell:
        """
        python -m vitalstream run-series {wildcards.series} --run-dir $(dirname {input.metrics}) \\
        --out {output} >{log} 2>&1
        """


rule run_notebook_run_overview:
    input:
        notebook="notebooks/run_overview.ipynb",
        metrics=f"{HEADLINE}/metrics.json",
        latency=f"{HEADLINE}/commit_latency.parquet",
        code=code_inputs(notebook="notebooks/run_overview.ipynb"),
    output:
        executed="results/notebooks/run_overview.ipynb",
        figure=report(
            "results/paper/fig_run_latency.pdf",
            category="Pipeline",
            caption="../report/fig_run_latency.rst",
        ),
        table="results/paper/tab_run_summary.tex",
    log:
        "results/logs/run_notebook_run_overview.log",
    conda:
        "../../envs/notebook.yaml"
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.metrics),
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p run_dir {params.run_dir} -p figure {output.figure} -p table {output.table} \\
        >{log} 2>&1
        """


# The Data section: the cohort the experiments replay beside the real PhysioNet sources. The raw
# tables are summarised once (realism check, per-source statistics, example trajectories); the
# notebook reads only the summaries (so it also runs from a results archive).
DATA_COHORT = "main"


rule summarise_data:
    input:
        events=f"data/cohorts/{DATA_COHORT}/events.parquet",
        labels=f"data/cohorts/{DATA_COHORT}/labels.parquet",
        summaries=DATA_TARGETS,
        physionet=expand(
            "data/physionet/{source}/{table}.parquet",
            source=physionet_sources(),
            table=["events", "labels", "quarantine"],
        ),
        code=code_inputs("data-summary"),
    output:
        summary="results/data/data_summary.json",
        realism="results/data/realism.json",
        trajectories="results/data/trajectories.parquet",
    log:
        "results/logs/summarise_data.log",
    conda:
        "../../envs/notebook.yaml"
    params:
        # data/physionet: the folder above each source's own folder.
        physionet_dir=lambda wildcards, input: os.path.dirname(
            os.path.dirname(input.summaries[0])
        ),
        sources=",".join(physionet_sources()),
    shell:
        """
        python -m vitalstream data-summary --cohort-events {input.events} \\
        --cohort-labels {input.labels} --physionet-dir {params.physionet_dir} \\
        --sources {params.sources} --summary-json {output.summary} \\
        --realism-json {output.realism} --trajectories {output.trajectories} >{log} 2>&1
        """


rule run_notebook_data_overview:
    input:
        notebook="notebooks/data_overview.ipynb",
        summary=rules.summarise_data.output.summary,
        realism=rules.summarise_data.output.realism,
        trajectories=rules.summarise_data.output.trajectories,
        summaries=DATA_TARGETS,
        code=code_inputs(notebook="notebooks/data_overview.ipynb"),
    output:
        executed="results/notebooks/data_overview.ipynb",
        figure=report(
            "results/paper/fig_trajectories.pdf",
            category="Data",
            caption="../report/fig_trajectories.rst",
        ),
        cohort_table="results/paper/tab_cohort.tex",
        realism_table="results/paper/tab_realism.tex",
        schema_table="results/paper/tab_schema.tex",
        generator_table="results/paper/tab_generator.tex",
        values="results/paper/data_overview_values.json",
    log:
        "results/logs/run_notebook_data_overview.log",
    conda:
        "../../envs/notebook.yaml"
    params:
        cohort=DATA_COHORT,
        physionet_dir=lambda wildcards, input: os.path.dirname(
            os.path.dirname(input.summaries[0])
        ),
        sources=",".join(physionet_sources()),
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p data_summary {input.summary} -p realism_json {input.realism} \\
        -p trajectories {input.trajectories} -p cohort_name {params.cohort:q} \\
        -p physionet_dir {params.physionet_dir} -p sources {params.sources} \\
        -p values_json {output.values} -p fig_trajectories {output.figure} \\
        -p tab_cohort {output.cohort_table} -p tab_realism {output.realism_table} \\
        -p tab_schema {output.schema_table} -p tab_generator {output.generator_table} \\
        >{log} 2>&1
        """


# RQ1: latency and throughput vs patients and partitions (performance group rq1).


rule run_notebook_rq1_scaling:
    input:
        notebook="notebooks/rq1_scaling.ipynb",
        metrics=group_files("rq1", "metrics.json"),
        series=group_files("rq1", "lag.csv"),
        code=code_inputs(notebook="notebooks/rq1_scaling.ipynb"),
    output:
        executed="results/notebooks/rq1_scaling.ipynb",
        scaling=report(
            "results/paper/fig_rq1_scaling.pdf",
            category="RQ1 scaling",
            caption="../report/fig_rq1_scaling.rst",
        ),
        cdf=report(
            "results/paper/fig_rq1_cdf.pdf",
            category="RQ1 scaling",
            caption="../report/fig_rq1_cdf.rst",
        ),
        table="results/paper/tab_rq1.tex",
        values="results/paper/rq1_values.json",
    log:
        "results/logs/run_notebook_rq1_scaling.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p runs_root results/runs -p experiment rq1 -p fig_scaling {output.scaling} \\
        -p fig_cdf {output.cdf} -p table {output.table} -p values_json {output.values} \\
        >{log} 2>&1
        """


# RQ5: tuning knobs, sustainable throughput, the blueprint's configuration, the raw ceiling.


rule run_notebook_rq5_tuning:
    input:
        notebook="notebooks/rq5_tuning.ipynb",
        metrics=group_files("rq5", "metrics.json"),
        series=group_files("rq5", "lag.csv"),
        ceiling=group_ceiling("rq5"),
        producer="results/perf/producer_bench.json",
        code=code_inputs(notebook="notebooks/rq5_tuning.ipynb"),
    output:
        executed="results/notebooks/rq5_tuning.ipynb",
        sustainable=report(
            "results/paper/fig_rq5_sustainable.pdf",
            category="RQ5 tuning",
            caption="../report/fig_rq5_sustainable.rst",
        ),
        timeline=report(
            "results/paper/fig_rq5_timeline.pdf",
            category="RQ5 tuning",
            caption="../report/fig_rq5_timeline.rst",
        ),
        table="results/paper/tab_rq5.tex",
        ratio="results/paper/tab_rq5_ratio.tex",
        chain="results/paper/tab_rq5_chain.tex",
        values="results/paper/rq5_values.json",
    log:
        "results/logs/run_notebook_rq5_tuning.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p runs_root results/runs -p experiment rq5 -p ceiling_json {input.ceiling} \\
        -p producer_json {input.producer} \\
        -p fig_sustainable {output.sustainable} -p fig_timeline {output.timeline} \\
        -p table {output.table} -p ratio_table {output.ratio} -p chain_table {output.chain} \\
        -p values_json {output.values} >{log} 2>&1
        """


# Where a micro-batch's time goes, at the lowest and the highest level (rule measure_breakdown);
# the cost model fitted to it and its predictions (config breakdown.cost_model).
declare_config("breakdown_cost_model", lambda _: config["breakdown"]["cost_model"])


rule run_notebook_perf_breakdown:
    input:
        notebook="notebooks/perf_breakdown.ipynb",
        breakdown="results/perf/breakdown.json",
        cost_model=config_file("breakdown_cost_model"),
        rq5_values="results/paper/rq5_values.json",
        code=code_inputs(notebook="notebooks/perf_breakdown.ipynb"),
    output:
        executed="results/notebooks/perf_breakdown.ipynb",
        figure=report(
            "results/paper/fig_breakdown.pdf",
            category="RQ5 tuning",
            caption="../report/fig_breakdown.rst",
        ),
        table="results/paper/tab_levers.tex",
        cost_table="results/paper/tab_costmodel.tex",
        values="results/paper/breakdown_values.json",
    log:
        "results/logs/run_notebook_perf_breakdown.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p breakdown_json {input.breakdown} -p figure {output.figure} \\
        -p lever_table {output.table} -p cost_table {output.cost_table} \\
        -p cost_model_json {input.cost_model} -p rq5_values_json {input.rq5_values} \\
        -p values_json {output.values} >{log} 2>&1
        """


# Fault tolerance: the job killed, the broker killed, one node of three killed (vitalstream.experiments.faults).


rule run_notebook_faults:
    input:
        notebook="notebooks/faults.ipynb",
        metrics=group_files("faults", "metrics.json"),
        delays=group_files("faults", "append_delays.parquet"),
        code=code_inputs(notebook="notebooks/faults.ipynb"),
    output:
        executed="results/notebooks/faults.ipynb",
        table="results/paper/tab_faults.tex",
        figure=report(
            "results/paper/fig_faults.pdf",
            category="Fault tolerance",
            caption="../report/fig_faults.rst",
        ),
        values="results/paper/faults_values.json",
    log:
        "results/logs/run_notebook_faults.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p runs_root results/runs -p experiment faults -p table {output.table} \\
        -p figure {output.figure} -p values_json {output.values} >{log} 2>&1
        """


# RQ2: edge gateways, bytes on the wire against diagnostic accuracy.


rule run_notebook_rq2_bandwidth:
    input:
        notebook="notebooks/rq2_bandwidth.ipynb",
        metrics=experiment_files("rq2", "metrics.json"),
        accuracy=experiment_files("rq2", "accuracy.json"),
        gateways=gateway_reports("rq2"),
        code=code_inputs(notebook="notebooks/rq2_bandwidth.ipynb"),
    output:
        executed="results/notebooks/rq2_bandwidth.ipynb",
        figure=report(
            "results/paper/fig_rq2_tradeoff.pdf",
            category="RQ2 edge gateways",
            caption="../report/fig_rq2_tradeoff.rst",
        ),
        table="results/paper/tab_rq2.tex",
        values="results/paper/rq2_values.json",
    log:
        "results/logs/run_notebook_rq2_bandwidth.log",
    conda:
        "../../envs/notebook.yaml"
    params:
        baseline=config["experiments"].get("rq2", {}).get("baseline", "raw"),
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p runs_root results/runs -p gateways_root results/gateways -p experiment rq2 \\
        -p baseline {params.baseline:q} -p figure {output.figure} -p table {output.table} \\
        -p values_json {output.values} >{log} 2>&1
        """


# RQ3: late and out-of-order data against the watermark.


rule run_notebook_rq3_lateness:
    input:
        notebook="notebooks/rq3_lateness.ipynb",
        metrics=experiment_files("rq3", "metrics.json"),
        validation=experiment_files("rq3", "validation.json"),
        provenance=experiment_files("rq3", "provenance.json"),
        condition=experiment_files("rq3", "condition.json"),
        code=code_inputs(notebook="notebooks/rq3_lateness.ipynb"),
    output:
        executed="results/notebooks/rq3_lateness.ipynb",
        figure=report(
            "results/paper/fig_rq3_watermark.pdf",
            category="RQ3 late data",
            caption="../report/fig_rq3_watermark.rst",
        ),
        table="results/paper/tab_rq3.tex",
        values="results/paper/rq3_values.json",
    log:
        "results/logs/run_notebook_rq3_lateness.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p runs_root results/runs -p experiment rq3 -p figure {output.figure} \\
        -p table {output.table} -p values_json {output.values} >{log} 2>&1
        """


# Window ablation: detection delay against false alarms per window length.


rule run_notebook_ablation_windows:
    input:
        notebook="notebooks/ablation_windows.ipynb",
        metrics=experiment_files("ablation", "metrics.json"),
        accuracy=experiment_files("ablation", "accuracy.json"),
        code=code_inputs(notebook="notebooks/ablation_windows.ipynb"),
    output:
        executed="results/notebooks/ablation_windows.ipynb",
        figure=report(
            "results/paper/fig_ablation_windows.pdf",
            category="Window ablation",
            caption="../report/fig_ablation_windows.rst",
        ),
        table="results/paper/tab_ablation.tex",
        values="results/paper/ablation_values.json",
    log:
        "results/logs/run_notebook_ablation_windows.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p runs_root results/runs -p experiment ablation -p figure {output.figure} \\
        -p table {output.table} -p values_json {output.values} >{log} 2>&1
        """


# RQ4: the streaming model against batch models and NEWS2/qSOFA on PhysioNet 2019 set A
# (rule compare_models).


rule run_notebook_rq4_models:
    input:
        notebook="notebooks/rq4_models.ipynb",
        metrics=rules.compare_models.output.metrics,
        prequential=rules.compare_models.output.prequential,
        reliability=rules.compare_models.output.reliability,
        curves=rules.compare_models.output.curves,
        code=code_inputs(notebook="notebooks/rq4_models.ipynb"),
    output:
        executed="results/notebooks/rq4_models.ipynb",
        curves=report(
            "results/paper/fig_rq4_curves.pdf",
            category="RQ4 models",
            caption="../report/fig_rq4_curves.rst",
        ),
        prequential=report(
            "results/paper/fig_rq4_prequential.pdf",
            category="RQ4 models",
            caption="../report/fig_rq4_prequential.rst",
        ),
        calibration=report(
            "results/paper/fig_rq4_calibration.pdf",
            category="RQ4 models",
            caption="../report/fig_rq4_calibration.rst",
        ),
        table="results/paper/tab_rq4.tex",
        values="results/paper/rq4_values.json",
    log:
        "results/logs/run_notebook_rq4_models.log",
    conda:
        "../../envs/notebook.yaml"
    params:
        models_dir=lambda wildcards, input: os.path.dirname(input.metrics),
    shell:
        """
        papermill {input.notebook} {output.executed} -k python3 --cwd . --no-progress-bar \\
        -p models_dir {params.models_dir} -p fig_curves {output.curves} \\
        -p fig_prequential {output.prequential} -p fig_calibration {output.calibration} \\
        -p table {output.table} -p values_json {output.values} >{log} 2>&1
        """
