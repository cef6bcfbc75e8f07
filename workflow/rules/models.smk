# Models: the PhysioNet 2019 sepsis model, cross-validated by patient on set A, then trained on
# all of it (vitalstream.sepsis). A target of its own (`snakemake --cores all sepsis_model`);
# `python -m vitalstream score-sepsis` applies it to any directory of challenge PSV files.
SEPSIS = config.get("models", {}).get("sepsis2019", {})


rule sepsis_model:
    input:
        hourly="data/physionet/sepsis2019/hourly.parquet",
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
        model=shlex.quote(json.dumps(SEPSIS.get("params", {}), sort_keys=True)),
        folds=SEPSIS.get("folds", 5),
        seed=SEPSIS.get("seed", 0),
        sample=(
            f"--max-patients {SEPSIS['max_patients']}"
            if SEPSIS.get("max_patients") is not None
            else ""
        ),
    shell:
        "python -m vitalstream train-sepsis --hourly {input.hourly}"
        " --out-dir $(dirname {output.model}) --params {params.model}"
        " --folds {params.folds} --seed {params.seed} {params.sample} > {log} 2>&1"


# RQ4: the streaming model (prequential; updated in a Spark query's foreachBatch reading the
# hour batches from Kafka, vitalstream.streamlearn) against the batch models (Spark MLlib
# logistic regression, gradient-boosted trees) and NEWS2/qSOFA, on set A (vitalstream.rq4;
# results/models/rq4/). It uses the workflow's broker and Spark: one experiment slot.
RQ4 = config.get("models", {}).get("rq4", {})


rule compare_models:
    input:
        hourly="data/physionet/sepsis2019/hourly.parquet",
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
        settings=shlex.quote(json.dumps(RQ4, sort_keys=True)),
        gbt=shlex.quote(json.dumps(SEPSIS.get("params", {}), sort_keys=True)),
        scores=shlex.quote(json.dumps(config["diagnostics"]["scores"], sort_keys=True)),
        spark=shlex.quote(json.dumps(config["spark"].get("conf", {}), sort_keys=True)),
        bootstrap=(
            f"--bootstrap-servers {config['kafka']['bootstrap_servers']}"
            if config["kafka"]["bootstrap_servers"]
            else ""
        ),
        state=STACK_STATE,
    shell:
        "python -m vitalstream compare-models --hourly {input.hourly}"
        " --settings {params.settings} --gbt-params {params.gbt} --scores {params.scores}"
        " --spark-conf {params.spark} {params.bootstrap} --broker-state {params.state}"
        " --out-dir $(dirname {output.metrics}) > {log} 2>&1"


# The window risk model every job applies (vitalstream.riskmodel): fitted on the reference
# windows of a cohort no experiment replays.
if "risk_model" in config:

    rule train_window_risk:
        input:
            events=f"data/cohorts/{config['risk_model']['cohort']}/events.parquet",
            labels=f"data/cohorts/{config['risk_model']['cohort']}/labels.parquet",
            code="scripts/vitalstream/riskmodel.py",
        output:
            RISK_MODEL,
        log:
            "results/logs/train_window_risk.log",
        benchmark:
            "results/benchmarks/train_window_risk.tsv"
        conda:
            "../../envs/stream.yaml"
        params:
            config=shlex.quote(
                json.dumps(
                    {
                        "diagnostics": {
                            k: v
                            for k, v in config["diagnostics"].items()
                            if k != "risk_model"
                        },
                        "risk_model": config["risk_model"],
                    },
                    sort_keys=True,
                )
            ),
        shell:
            "python -m vitalstream train-window-risk --events {input.events}"
            " --labels {input.labels} --config-json {params.config} --out {output} > {log} 2>&1"

    # The same model trained on what RQ2's edge gateways let through (vitalstream.riskedge):
    # one row per RQ2 condition (the profile's selection), scored on held-out patients.
    # A list of [condition, gateway] pairs: the experiment's order survives sort_keys.
    RISK_EDGE_CONDITIONS = [
        [run.condition, vsconfig.condition_params(config, run)["gateway"]]
        for run in RUNS
        if run.experiment == "rq2" and run.rep == 1
    ]

    rule risk_edge_study:
        input:
            events=f"data/cohorts/{config['risk_model']['cohort']}/events.parquet",
            labels=f"data/cohorts/{config['risk_model']['cohort']}/labels.parquet",
            model=RISK_MODEL,
            code=["scripts/vitalstream/riskedge.py", "scripts/vitalstream/gateway.py"],
        output:
            "results/models/window_risk/edge.json",
        log:
            "results/logs/risk_edge_study.log",
        benchmark:
            "results/benchmarks/risk_edge_study.tsv"
        conda:
            "../../envs/stream.yaml"
        params:
            config=shlex.quote(
                json.dumps(
                    {
                        "diagnostics": {
                            k: v
                            for k, v in config["diagnostics"].items()
                            if k != "risk_model"
                        },
                        "risk_model": config["risk_model"],
                        "conditions": RISK_EDGE_CONDITIONS,
                    },
                    sort_keys=True,
                )
            ),
        shell:
            "python -m vitalstream risk-edge --events {input.events} --labels {input.labels}"
            " --model {input.model} --config-json {params.config} --out {output} > {log} 2>&1"
