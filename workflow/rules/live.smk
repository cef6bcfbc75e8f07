# The running system: the live monitor (`python -m vitalstream up`: a broker, a search node and
# the streaming job of its own, webhook delivery, the live dashboard) driven by simulated devices
# and measured as its users meet it (vitalstream.serving.benchlive), and the paper's section on
# it (vitalstream.serving.livevalues). The bench starts its own stack in a work folder of its
# own, results/bench-live/work/, never results/live/, the state of a user's `up`; the
# workflow's own broker and search node stay up but idle.


# What `up` reads of the configuration: the live block, the job's rules and message checks, the
# device formats and the services it would use instead of its own (merged over config.yaml).
LIVE_BENCH_KEYS = [
    "kafka",
    "spark",
    "search",
    "checks",
    "devices",
    "diagnostics",
    "live",
]
declare_config(
    "live_bench",
    lambda _: {key: config[key] for key in LIVE_BENCH_KEYS if key in config},
)


# A timed run: all cores and the experiment slot, so nothing else runs beside it.
rule bench_live:
    input:
        config=config_file("live_bench"),
        spark_defaults=config["spark"]["defaults_file"],
        risk_model=RISK_MODEL_INPUT,
        code=code_inputs("bench-live"),
    output:
        bench="results/bench-live/bench.json",
        screenshot="results/bench-live/dashboard.png",
    log:
        "results/logs/bench_live.log",
    benchmark:
        "results/benchmarks/bench_live.tsv"
    conda:
        "../../envs/stream.yaml"
    threads: workflow.cores
    resources:
        experiment_slot=1,
    shell:
        """
        python -m vitalstream bench-live --config-file {input.config} \\
        --work-dir results/bench-live/work --out {output.bench} \\
        --screenshot {output.screenshot} >{log} 2>&1
        """


# The section's numbers and its figure: a paper rule, so a rebuild from a results archive takes
# the archived bench.json and screenshot instead of starting the live system.
rule write_live_values:
    input:
        bench="results/bench-live/bench.json",
        screenshot="results/bench-live/dashboard.png",
        code=code_inputs("live-values"),
    output:
        values="results/paper/live_values.json",
        figure="results/paper/fig_live_dashboard.png",
    log:
        "results/logs/write_live_values.log",
    conda:
        "../../envs/paper.yaml"
    shell:
        """
        python -m vitalstream live-values --bench {input.bench} --out {output.values} \\
        --screenshot {input.screenshot} --figure {output.figure} >{log} 2>&1
        """
