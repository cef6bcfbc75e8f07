# Models: the PhysioNet 2019 sepsis model, cross-validated by patient on set A, then trained on
# all of it (vitalstream.models.sepsis). A target of its own (`snakemake --cores all sepsis_model`);
# `python -m vitalstream score-sepsis` applies it to any directory of challenge PSV files.
SEPSIS = config.get("models", {}).get("sepsis2019", {})
# The model's hyperparameters (also RQ4's gradient-boosted trees, rule compare_models).
declare_config("sepsis_params", lambda _: SEPSIS.get("params", {}))


rule sepsis_model:
    input:
        hourly="data/physionet/sepsis2019/hourly.parquet",
        model_params=config_file("sepsis_params"),
        code=code_inputs("train-sepsis"),
    output:
        model="results/models/sepsis2019/model.joblib",
        card="results/models/sepsis2019/model.json",
        predictions="results/models/sepsis2019/cv_predictions.parquet",
    log:
        "results/logs/sepsis_model.log",
    benchmark:
        "results/benchmarks/sepsis_model.tsv"
    conda:
        "../../envs/stream.yaml"
    threads: workflow.cores
    params:
        folds=SEPSIS.get("folds", 5),
        seed=SEPSIS.get("seed", 0),
        sample=(
            ["--max-patients", SEPSIS["max_patients"]]
            if SEPSIS.get("max_patients") is not None
            else []
        ),
    shell:
        """
        python -m vitalstream train-sepsis --hourly {input.hourly} \\
        --out-dir $(dirname {output.model}) --params @{input.model_params} \\
        --folds {params.folds:q} --seed {params.seed:q} {params.sample:q} >{log} 2>&1
        """


# RQ4: the streaming model (prequential; updated in a Spark query's foreachBatch reading the
# hour batches from Kafka, vitalstream.models.streamlearn) against the batch models (Spark MLlib
# logistic regression, gradient-boosted trees) and NEWS2/qSOFA, on set A (vitalstream.models.rq4;
# results/models/rq4/). It uses the workflow's broker and Spark: one experiment slot.
RQ4 = config.get("models", {}).get("rq4", {})
declare_config("rq4", lambda _: RQ4)
declare_config("scores", lambda _: config["diagnostics"]["scores"])
declare_config("spark_conf", lambda _: config["spark"].get("conf", {}))


rule compare_models:
    input:
        hourly="data/physionet/sepsis2019/hourly.parquet",
        settings=config_file("rq4"),
        gbt=config_file("sepsis_params"),
        scores=config_file("scores"),
        spark=config_file("spark_conf"),
        code=code_inputs("compare-models"),
    output:
        metrics="results/models/rq4/metrics.json",
        prequential="results/models/rq4/prequential.csv",
        reliability="results/models/rq4/reliability.csv",
        curves="results/models/rq4/curves.csv",
        predictions="results/models/rq4/predictions.parquet",
    log:
        "results/logs/compare_models.log",
    benchmark:
        "results/benchmarks/compare_models.tsv"
    conda:
        "../../envs/stream.yaml"
    threads: workflow.cores
    resources:
        experiment_slot=1,
    params:
        bootstrap=bootstrap_args(),
        state=STACK_STATE,
    shell:
        """
        python -m vitalstream compare-models --hourly {input.hourly} \\
        --settings @{input.settings} --gbt-params @{input.gbt} \\
        --scores @{input.scores} --spark-conf @{input.spark} \\
        {params.bootstrap:q} --broker-state {params.state} \\
        --out-dir $(dirname {output.metrics}) >{log} 2>&1
        """


# The window risk model every job applies (vitalstream.models.riskmodel): fitted on the reference
# windows of a cohort no experiment replays.
if "risk_model" in config:
    # The rules the model is trained with and the model's own settings.
    RISK_SETTINGS = {
        "diagnostics": {
            k: v for k, v in config["diagnostics"].items() if k != "risk_model"
        },
        "risk_model": config["risk_model"],
    }
    declare_config("window_risk", lambda _: RISK_SETTINGS)

    rule train_window_risk:
        input:
            events=f"data/cohorts/{config['risk_model']['cohort']}/events.parquet",
            labels=f"data/cohorts/{config['risk_model']['cohort']}/labels.parquet",
            config=config_file("window_risk"),
            code=code_inputs("train-window-risk"),
        output:
            RISK_MODEL,
        log:
            "results/logs/train_window_risk.log",
        benchmark:
            "results/benchmarks/train_window_risk.tsv"
        conda:
            "../../envs/stream.yaml"
        shell:
            """
            python -m vitalstream train-window-risk --events {input.events} \\
            --labels {input.labels} --config-json @{input.config} \\
            --out {output} >{log} 2>&1
            """

    # The same model trained on what RQ2's edge gateways let through (vitalstream.models.riskedge):
    # one row per RQ2 condition (the profile's selection), scored on held-out patients.
    # A list of [condition, gateway] pairs: the experiment's order survives sorted keys.
    RISK_EDGE_CONDITIONS = [
        [run.condition, vsconfig.condition_params(config, run)["gateway"]]
        for run in RUNS
        if run.experiment == "rq2" and run.rep == 1
    ]
    declare_config(
        "risk_edge", lambda _: {**RISK_SETTINGS, "conditions": RISK_EDGE_CONDITIONS}
    )

    rule risk_edge_study:
        input:
            events=f"data/cohorts/{config['risk_model']['cohort']}/events.parquet",
            labels=f"data/cohorts/{config['risk_model']['cohort']}/labels.parquet",
            model=RISK_MODEL,
            config=config_file("risk_edge"),
            code=code_inputs("risk-edge"),
        output:
            "results/models/window_risk/edge.json",
        log:
            "results/logs/risk_edge_study.log",
        benchmark:
            "results/benchmarks/risk_edge_study.tsv"
        conda:
            "../../envs/stream.yaml"
        shell:
            """
            python -m vitalstream risk-edge --events {input.events} --labels {input.labels} \\
            --model {input.model} --config-json @{input.config} \\
            --out {output} >{log} 2>&1
            """
