# Paper: numbers reach the text only through generated macros; figures and tables come from the
# notebook rules; latexmk builds results/paper.pdf from paper/ plus the generated files. Which
# files those are is read from the rules' declared outputs under results/paper/ (common.smk:
# paper_outputs), so a new notebook or table rule reaches the macros and the PDF by itself.
from vitalstream.paper import design as vsdesign

PAPER_SOURCES = ["paper/main.tex", "paper/references.bib", "paper/latexmkrc"] + sorted(
    str(p) for p in Path("paper/sections").glob("*.tex")
)


# The study's settings the text states (rule thresholds, delay models, tuned and blueprint
# settings), from the config the runs used (vitalstream.paper.design).
declare_config("design_values", lambda _: vsdesign.subset(config))


rule write_design_values:
    input:
        spark_defaults=config["spark"]["defaults_file"],
        config=config_file("design_values"),
        code=code_inputs("design-values"),
    output:
        "results/paper/design_values.json",
    log:
        "results/logs/write_design_values.log",
    conda:
        "../../envs/paper.yaml"
    shell:
        """
        python -m vitalstream design-values --config-json @{input.config} \\
        --spark-defaults {input.spark_defaults:q} --out {output} >{log} 2>&1
        """


# The window risk model in the stream: its training, its alerts' accuracy in a scored run and
# their latency in the headline run (vitalstream.models.riskmodel).
if "risk_model" in config and "risk_model_run" in config["paper"]:

    rule write_risk_values:
        input:
            model=RISK_MODEL,
            accuracy=f"results/runs/{config['paper']['risk_model_run']}/accuracy.json",
            metrics=f"{HEADLINE}/metrics.json",
            code=code_inputs("risk-values"),
        output:
            "results/paper/risk_values.json",
        log:
            "results/logs/write_risk_values.log",
        conda:
            "../../envs/paper.yaml"
        shell:
            """
            python -m vitalstream risk-values --model {input.model} \\
            --accuracy {input.accuracy} --metrics {input.metrics} --out {output} >{log} 2>&1
            """

    # The same model trained behind RQ2's edge gateways (vitalstream.models.riskedge).
    rule write_risk_edge_table:
        input:
            study="results/models/window_risk/edge.json",
            code=code_inputs("risk-edge-table"),
        output:
            table="results/paper/tab_risk_edge.tex",
            values="results/paper/risk_edge_values.json",
        log:
            "results/logs/write_risk_edge_table.log",
        conda:
            "../../envs/paper.yaml"
        shell:
            """
            python -m vitalstream risk-edge-table --study {input.study} \\
            --table {output.table} --values {output.values} >{log} 2>&1
            """


# The PhysioNet 2019 sepsis model cross-validated on set A beside the challenge's published
# figures (vitalstream.models.sepsis; rule sepsis_model).
if "sepsis2019" in config.get("models", {}):

    rule write_sepsis_table:
        input:
            card="results/models/sepsis2019/model.json",
            code=code_inputs("sepsis-table"),
        output:
            table="results/paper/tab_sepsis_cv.tex",
            values="results/paper/sepsis_values.json",
        log:
            "results/logs/write_sepsis_table.log",
        conda:
            "../../envs/paper.yaml"
        shell:
            """
            python -m vitalstream sepsis-table --card {input.card} \\
            --table {output.table} --values {output.values} >{log} 2>&1
            """


# What the pipeline figure and the rule and score tables depend on (common.smk).
declare_config("paper_assets", paper_assets_config)


rule write_paper_assets:
    input:
        config=config_file("paper_assets"),
        risk_model=RISK_MODEL_INPUT,
        code=code_inputs("paper-assets"),
    output:
        figure="results/paper/fig_pipeline.tex",
        rules="results/paper/tab_rules.tex",
        scores="results/paper/tab_scores.tex",
    log:
        "results/logs/write_paper_assets.log",
    conda:
        "../../envs/paper.yaml"
    shell:
        """
        python -m vitalstream paper-assets --config-file {input.config} \\
        --out-dir $(dirname {output.figure}) >{log} 2>&1
        """


# The bad-input table of the methods (vitalstream.paper.badinputs; docs/bad-inputs.md holds the
# same rows, tests/unit/test_bad_inputs.py checks them against the tests they name).
rule write_bad_input_table:
    input:
        code=code_inputs("bad-input-table"),
    output:
        table="results/paper/tab_bad_inputs.tex",
    log:
        "results/logs/write_bad_input_table.log",
    conda:
        "../../envs/paper.yaml"
    shell:
        """
        python -m vitalstream bad-input-table --format latex --out {output.table:q} >{log} 2>&1
        """


# Where the results come from (origin.tex, `vitalstream archive origin`): this checkout, or
# the results archive a rebuild unpacked (archive.smk).
rule write_origin_macros:
    input:
        macros="results/paper/macros.tex",
        archived=[f"{FROM_ARCHIVE}/ARCHIVE.json"] if FROM_ARCHIVE else [],
        code=code_inputs("archive"),
    output:
        "results/paper/origin.tex",
    log:
        "results/logs/write_origin_macros.log",
    conda:
        "../../envs/paper.yaml"
    params:
        archive=["--archive-dir", FROM_ARCHIVE] if FROM_ARCHIVE else [],
    shell:
        "python -m vitalstream archive origin --out {output} {params.archive:q} > {log} 2>&1"


# The appendix's figure/table → rule map (vitalstream.paper.papermap; also the README's), built
# from the rules when the DAG is (common.smk: paper_map).
declare_config("paper_map", paper_map, ordered=True)


rule write_provenance_table:
    input:
        rows=config_file("paper_map"),
        code=code_inputs("paper-map"),
    output:
        table="results/paper/tab_provenance.tex",
        rows="results/paper/paper_map.json",
    log:
        "results/logs/write_provenance_table.log",
    conda:
        "../../envs/paper.yaml"
    shell:
        """
        python -m vitalstream paper-map --rows-file {input.rows} --table {output.table} \\
        --out-json {output.rows} >{log} 2>&1
        """


# Every macro values file the rules above declare (`results/paper/*_values.json`).
NOTEBOOK_VALUES = paper_outputs("_values.json")


rule write_macros:
    input:
        metrics=f"{HEADLINE}/metrics.json",
        provenance=f"{HEADLINE}/provenance.json",
        values=NOTEBOOK_VALUES,
        code=code_inputs("macros"),
    output:
        tex="results/paper/macros.tex",
        sidecar="results/paper/macros.json",
    log:
        "results/logs/write_macros.log",
    conda:
        "../../envs/paper.yaml"
    params:
        values=lambda wildcards, input: one_per_line(input.values),
    shell:
        """
        python -m vitalstream macros --metrics {input.metrics} --provenance {input.provenance} \\
        --out {output.tex} --out-json {output.sidecar} \\
        --values {params.values} >{log} 2>&1
        """


# Every figure, table and macro file the rules above declare (`results/paper/*.tex`, `*.pdf`,
# and `*.png`: the live dashboard's screenshot, a raster in any format).
GENERATED = paper_outputs(".tex", ".pdf", ".png")


rule build_paper:
    input:
        sources=PAPER_SOURCES,
        generated=GENERATED,
        code=code_inputs("latex-check"),
    output:
        pdf="results/paper.pdf",
    log:
        "results/logs/build_paper.log",
    conda:
        "../../envs/paper.yaml"
    params:
        build="results/paper/build",
    # latexmk succeeds on undefined references and overfull lines; latex-check does not.
    shell:
        """
        set -e
        TEXINPUTS=results/paper/:paper/: BIBINPUTS=paper/: latexmk -r paper/latexmkrc \\
        -outdir={params.build} paper/main.tex >{log} 2>&1
        python -m vitalstream latex-check {params.build}/main.log >>{log} 2>&1
        cp {params.build}/main.pdf {output.pdf}
        """
