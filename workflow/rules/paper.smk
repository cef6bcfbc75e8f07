# Paper: numbers reach the text only through generated macros; figures and tables come from the
# notebook rules; latexmk builds results/paper.pdf from paper/ plus the generated files.
from vitalstream import design as vsdesign

PAPER_SOURCES = ["paper/main.tex", "paper/references.bib", "paper/latexmkrc"] + sorted(
    str(p) for p in Path("paper/sections").glob("*.tex")
)
GENERATED = [
    "results/paper/tab_validation.tex",
    "results/paper/macros.tex",
    "results/paper/fig_pipeline.tex",
    "results/paper/tab_rules.tex",
    "results/paper/tab_scores.tex",
    "results/paper/fig_run_latency.pdf",
    "results/paper/tab_run_summary.tex",
    "results/paper/fig_trajectories.pdf",
    "results/paper/tab_cohort.tex",
    "results/paper/tab_realism.tex",
    "results/paper/tab_schema.tex",
    "results/paper/tab_generator.tex",
    "results/paper/fig_rq1_scaling.pdf",
    "results/paper/fig_rq1_cdf.pdf",
    "results/paper/tab_rq1.tex",
    "results/paper/fig_rq5_sustainable.pdf",
    "results/paper/fig_rq5_timeline.pdf",
    "results/paper/tab_rq5.tex",
    "results/paper/tab_rq5_ratio.tex",
    "results/paper/tab_faults.tex",
    "results/paper/fig_faults.pdf",
    "results/paper/fig_rq2_tradeoff.pdf",
    "results/paper/tab_rq2.tex",
    "results/paper/fig_rq3_watermark.pdf",
    "results/paper/tab_rq3.tex",
    "results/paper/fig_ablation_windows.pdf",
    "results/paper/tab_ablation.tex",
    "results/paper/fig_rq4_curves.pdf",
    "results/paper/fig_rq4_prequential.pdf",
    "results/paper/fig_rq4_calibration.pdf",
    "results/paper/tab_rq4.tex",
    "results/paper/origin.tex",
    "results/paper/tab_provenance.tex",
]


# The study's settings the text states (rule thresholds, delay models, tuned and blueprint
# settings), from the config the runs used (vitalstream.design).
NOTEBOOK_VALUES.append("results/paper/design_values.json")


rule write_design_values:
    input:
        spark_defaults=config["spark"]["defaults_file"],
        code="scripts/vitalstream/design.py",
    output:
        "results/paper/design_values.json",
    log:
        "results/logs/write_design_values.log",
    conda:
        "../../envs/paper.yaml"
    params:
        config=shlex.quote(json.dumps(vsdesign.subset(config), sort_keys=True)),
    shell:
        "python -m vitalstream design-values --config-json {params.config}"
        " --spark-defaults {input.spark_defaults} --out {output} > {log} 2>&1"


# The window risk model in the stream: its training, its alerts' accuracy in a scored run and
# their latency in the headline run (vitalstream.riskmodel).
if "risk_model" in config and "risk_model_run" in config["paper"]:
    NOTEBOOK_VALUES.append("results/paper/risk_values.json")

    rule write_risk_values:
        input:
            model=RISK_MODEL,
            accuracy=f"results/runs/{config['paper']['risk_model_run']}/accuracy.json",
            metrics=f"{HEADLINE}/metrics.json",
        output:
            "results/paper/risk_values.json",
        log:
            "results/logs/write_risk_values.log",
        conda:
            "../../envs/paper.yaml"
        shell:
            "python -m vitalstream risk-values --model {input.model}"
            " --accuracy {input.accuracy} --metrics {input.metrics} --out {output} > {log} 2>&1"

    # The same model trained behind RQ2's edge gateways (vitalstream.riskedge).
    NOTEBOOK_VALUES.append("results/paper/risk_edge_values.json")
    GENERATED.append("results/paper/tab_risk_edge.tex")

    rule write_risk_edge_table:
        input:
            study="results/models/window_risk/edge.json",
        output:
            table="results/paper/tab_risk_edge.tex",
            values="results/paper/risk_edge_values.json",
        log:
            "results/logs/write_risk_edge_table.log",
        conda:
            "../../envs/paper.yaml"
        shell:
            "python -m vitalstream risk-edge-table --study {input.study}"
            " --table {output.table} --values {output.values} > {log} 2>&1"


# The PhysioNet 2019 sepsis model cross-validated on set A beside the challenge's published
# figures (vitalstream.sepsis; rule sepsis_model).
if "sepsis2019" in config.get("models", {}):
    NOTEBOOK_VALUES.append("results/paper/sepsis_values.json")
    GENERATED.append("results/paper/tab_sepsis_cv.tex")

    rule write_sepsis_table:
        input:
            card="results/models/sepsis2019/model.json",
        output:
            table="results/paper/tab_sepsis_cv.tex",
            values="results/paper/sepsis_values.json",
        log:
            "results/logs/write_sepsis_table.log",
        conda:
            "../../envs/paper.yaml"
        shell:
            "python -m vitalstream sepsis-table --card {input.card}"
            " --table {output.table} --values {output.values} > {log} 2>&1"


rule write_macros:
    input:
        metrics=f"{HEADLINE}/metrics.json",
        provenance=f"{HEADLINE}/provenance.json",
        values=NOTEBOOK_VALUES,
    output:
        tex="results/paper/macros.tex",
        sidecar="results/paper/macros.json",
    log:
        "results/logs/write_macros.log",
    conda:
        "../../envs/paper.yaml"
    shell:
        "python -m vitalstream macros --metrics {input.metrics} --provenance {input.provenance}"
        " --values {input.values} --out {output.tex} --out-json {output.sidecar} > {log} 2>&1"


rule write_paper_assets:
    input:
        code=[
            "scripts/vitalstream/paper_tables.py",
            "scripts/vitalstream/diagnostics.py",
            "scripts/vitalstream/scores.py",
        ],
        risk_model=RISK_MODEL_INPUT,
    output:
        figure="results/paper/fig_pipeline.tex",
        rules="results/paper/tab_rules.tex",
        scores="results/paper/tab_scores.tex",
    log:
        "results/logs/write_paper_assets.log",
    conda:
        "../../envs/paper.yaml"
    params:
        config=paper_assets_config(),
        out_dir=lambda wildcards, output: os.path.dirname(output.figure),
    shell:
        "python -m vitalstream paper-assets --config-json {params.config}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule build_paper:
    input:
        sources=PAPER_SOURCES,
        generated=GENERATED,
    output:
        pdf="results/paper.pdf",
    log:
        "results/logs/build_paper.log",
    conda:
        "../../envs/paper.yaml"
    params:
        build="results/paper/build",
    shell:
        "TEXINPUTS=results/paper/:paper/: BIBINPUTS=paper/: latexmk -r paper/latexmkrc"
        " -outdir={params.build} paper/main.tex > {log} 2>&1"
        # latexmk succeeds on undefined references and overfull lines; this check does not.
        " && python -m vitalstream latex-check {params.build}/main.log >> {log} 2>&1"
        " && cp {params.build}/main.pdf {output.pdf}"
