# Experiments: each run replays a cohort through Kafka into the Spark job under one condition.
# The grid comes from config (expanded once, in vitalstream.core.config.expand_runs); runs are
# serialised through the `experiment_slot` resource (profiles/default) so that no two
# measurements share the 2 cores.


rule run_condition:
    input:
        events=run_events,
        config=config_file("run/{experiment}/{condition}/rep{rep}"),
        risk_model=RISK_MODEL_INPUT,
        code=code_inputs("run"),
    output:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        provenance="results/runs/{experiment}/{condition}/rep{rep}/provenance.json",
        condition="results/runs/{experiment}/{condition}/rep{rep}/condition.json",
    log:
        "results/logs/run_condition/{experiment}/{condition}/rep{rep}.log",
    benchmark:
        "results/benchmarks/run_condition/{experiment}/{condition}/rep{rep}.tsv"
    wildcard_constraints:
        experiment=alternation(REPLAY_EXPERIMENTS),
    conda:
        "../../envs/stream.yaml"
    # All cores: no other job (a notebook, a cohort) may run beside a timed run.
    threads: workflow.cores
    resources:
        experiment_slot=1,
    params:
        state=STACK_STATE,
        search_state=SEARCH_STATE,
    shell:
        """
        python -m vitalstream run {wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep} \\
        --config-file {input.config} --events {input.events} \\
        --run-dir $(dirname {output.metrics}) \\
        --broker-state {params.state} --search-state {params.search_state} >{log} 2>&1
        """


# Shared sessions (validation, RQ3, the window ablation): the runs of one group run at once in
# one Spark session, a job each; runs on the same input read one replay (vitalstream.experiments.siblings).
for _experiment, _index, _runs in shared_groups():

    rule:
        name:
            f"run_shared_{_experiment}_{_index}"
        input:
            events=[run_events_of(run) for run in _runs],
            config=config_file(f"shared/{_experiment}/{_index}"),
            risk_model=RISK_MODEL_INPUT,
            code=code_inputs("run-shared"),
        output:
            metrics=[f"results/runs/{r.path}/metrics.json" for r in _runs],
            provenance=[f"results/runs/{r.path}/provenance.json" for r in _runs],
            condition=[f"results/runs/{r.path}/condition.json" for r in _runs],
        log:
            f"results/logs/run_shared/{_experiment}_{_index}.log",
        benchmark:
            f"results/benchmarks/run_shared/{_experiment}_{_index}.tsv"
        conda:
            "../../envs/stream.yaml"
        threads: workflow.cores
        resources:
            experiment_slot=1,
        params:
            runs=one_per_line(r.path for r in _runs),
            # One events file per run, in the runs' order (duplicates are one replay).
            events=one_per_line(run_events_of(run) for run in _runs),
            state=STACK_STATE,
        shell:
            """
            python -m vitalstream run-shared {params.runs} \\
            --config-file {input.config} --out-root results/runs --broker-state {params.state} \\
            --events {params.events} >{log} 2>&1
            """


# Edge gateways (RQ2): what reaches Kafka when a gateway reduces its devices' readings.
rule gateway_events:
    input:
        events=gateway_input,
        spec=config_file("gateway/{experiment}/{condition}"),
        code=code_inputs("gateway"),
    output:
        events="data/gateways/{experiment}/{condition}/events.parquet",
        report="results/gateways/{experiment}/{condition}/gateway.json",
    log:
        "results/logs/gateway_events/{experiment}/{condition}.log",
    conda:
        "../../envs/stream.yaml"
    shell:
        """
        python -m vitalstream gateway --events {input.events} --spec @{input.spec} \\
        --out {output.events} --report {output.report} >{log} 2>&1
        """


# Alerts against the cohort's ground truth, and against the baseline condition's alerts, per
# group of rules (accuracy.groups, in their configured order: accuracy.json keeps it).
declare_config(
    "accuracy_groups",
    lambda _: config.get("accuracy", {}).get("groups", {"any": []}),
    ordered=True,
)


rule score_accuracy:
    input:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        events=run_events,
        labels=run_labels,
        baseline=baseline_metrics,
        groups=config_file("accuracy_groups"),
        code=code_inputs("accuracy"),
    output:
        "results/runs/{experiment}/{condition}/rep{rep}/accuracy.json",
    log:
        "results/logs/score_accuracy/{experiment}/{condition}/rep{rep}.log",
    conda:
        "../../envs/stream.yaml"
    params:
        baseline=lambda wildcards, input: (
            ["--baseline-run-dir", os.path.dirname(input.baseline[0])]
            if input.baseline
            else []
        ),
    shell:
        """
        python -m vitalstream accuracy --run-dir $(dirname {input.metrics}) \\
        --events {input.events} --labels {input.labels} --groups @{input.groups} \\
        {params.baseline:q} --out {output} >{log} 2>&1
        """


rule compute_reference:
    input:
        events=run_events,
        config=config_file("run/{experiment}/{condition}/rep{rep}"),
        risk_model=RISK_MODEL_INPUT,
        code=code_inputs("reference"),
    output:
        windows="results/runs/{experiment}/{condition}/rep{rep}/reference/windows.parquet",
        alerts="results/runs/{experiment}/{condition}/rep{rep}/reference/alerts.parquet",
    log:
        "results/logs/compute_reference/{experiment}/{condition}/rep{rep}.log",
    benchmark:
        "results/benchmarks/compute_reference/{experiment}/{condition}/rep{rep}.tsv"
    conda:
        "../../envs/stream.yaml"
    shell:
        """
        python -m vitalstream reference --events {input.events} --config-file {input.config} \\
        --run {wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep} \\
        --out $(dirname {output.windows}) >{log} 2>&1
        """


rule validate_run:
    input:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        reference="results/runs/{experiment}/{condition}/rep{rep}/reference/windows.parquet",
        code=code_inputs("validate"),
    output:
        "results/runs/{experiment}/{condition}/rep{rep}/validation.json",
    log:
        "results/logs/validate_run/{experiment}/{condition}/rep{rep}.log",
    conda:
        "../../envs/stream.yaml"
    shell:
        """
        python -m vitalstream validate --run-dir $(dirname {input.metrics}) \\
        --reference-dir $(dirname {input.reference}) --out {output} >{log} 2>&1
        """


rule write_validation_table:
    input:
        validation=[
            f"results/runs/{run.path}/validation.json" for run in validation_runs()
        ],
        code=code_inputs("validation-table"),
    output:
        table="results/paper/tab_validation.tex",
        values="results/paper/validation_values.json",
    log:
        "results/logs/write_validation_table.log",
    conda:
        "../../envs/stream.yaml"
    params:
        runs=one_per_line(
            f"--run {run.condition} results/runs/{run.path}/validation.json"
            for run in validation_runs()
        ),
    shell:
        """
        python -m vitalstream validation-table --out {output.table} --values {output.values} \\
        {params.runs} >{log} 2>&1
        """


# Performance groups (RQ1, RQ5): every run of one experiment in one Spark session, after an
# unmeasured warm-up, repetitions round-robin (vitalstream.experiments.perf says why).
for _experiment in LOAD_EXPERIMENTS:

    rule:
        name:
            f"run_perf_{_experiment}"
        input:
            config=config_file(f"perf/{_experiment}"),
            risk_model=RISK_MODEL_INPUT,
            code=code_inputs("perf-group"),
        output:
            metrics=group_files(_experiment, "metrics.json"),
            provenance=group_files(_experiment, "provenance.json"),
            condition=group_files(_experiment, "condition.json"),
            series=group_files(_experiment, "lag.csv"),
            # The raw ceiling measured in the group's own run (experiment option `ceiling`).
            ceiling=group_ceiling(_experiment),
        log:
            f"results/logs/run_perf/{_experiment}.log",
        benchmark:
            f"results/benchmarks/run_perf/{_experiment}.tsv"
        conda:
            "../../envs/stream.yaml"
        threads: workflow.cores
        resources:
            experiment_slot=1,
        params:
            experiment=_experiment,
            state=STACK_STATE,
        shell:
            """
            python -m vitalstream perf-group {params.experiment} \\
            --config-file {input.config} --out-root results/runs \\
            --broker-state {params.state} >{log} 2>&1
            """


# The levers measured against the job in the same session ({} when the config has none).
declare_config("breakdown_levers", lambda _: config["breakdown"].get("levers") or {})


# Where a micro-batch's time goes: the condition's job at each level, Spark's stages by plan
# prefix, the sink's phases; then which lever buys what (vitalstream.experiments.breakdown).
rule measure_breakdown:
    input:
        config=config_file(f"run/{config['breakdown']['condition']}/rep1"),
        levers=config_file("breakdown_levers"),
        risk_model=RISK_MODEL_INPUT,
        code=code_inputs("breakdown"),
    output:
        "results/perf/breakdown.json",
    log:
        "results/logs/measure_breakdown.log",
    benchmark:
        "results/benchmarks/measure_breakdown.tsv"
    conda:
        "../../envs/stream.yaml"
    threads: workflow.cores
    resources:
        experiment_slot=1,
    params:
        bootstrap=bootstrap_args(),
        state=STACK_STATE,
        condition=config["breakdown"]["condition"],
        levels=config["breakdown"]["levels"],
        repeats=config["breakdown"]["repeats"],
        batches=config["breakdown"]["batches"],
        partitions=config["breakdown"]["partitions"],
    shell:
        """
        python -m vitalstream breakdown {params.bootstrap:q} --config-file {input.config} \\
        --condition {params.condition:q} --levels {params.levels} --repeats {params.repeats} \\
        --batches {params.batches} --partitions {params.partitions} \\
        --levers-file {input.levers} --broker-state {params.state} --out {output} >{log} 2>&1
        """


# Our producer against the blueprint's send-and-wait producer, same broker, same run.
rule bench_producer:
    input:
        code=code_inputs("bench-producer"),
    output:
        "results/perf/producer_bench.json",
    log:
        "results/logs/bench_producer.log",
    benchmark:
        "results/benchmarks/bench_producer.tsv"
    conda:
        "../../envs/stream.yaml"
    threads: workflow.cores
    resources:
        experiment_slot=1,
    params:
        bootstrap=bootstrap_args(),
        state=STACK_STATE,
        messages=config["ceiling"]["messages"],
    shell:
        """
        python -m vitalstream bench-producer {params.bootstrap:q} --messages {params.messages:q} \\
        --broker-state {params.state} --out {output} >{log} 2>&1
        """
