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
    shell:
        "python -m vitalstream train-sepsis --hourly {input.hourly}"
        " --out-dir $(dirname {output.model}) --params {params.model}"
        " --folds {params.folds} --seed {params.seed} > {log} 2>&1"
