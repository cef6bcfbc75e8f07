# Archive: the paper's small result files in one .tar.gz, and the paper rebuilt from them.
#
# The paper rules are the rules that write under results/paper (every notebook and table rule,
# write_macros, build_paper): found from the workflow itself, so a new notebook rule is picked
# up by itself. Their inputs under results/ or data/ that no paper rule makes are what
# `make archive` packs (plus RUN_COMPANIONS); their outputs are the products a rebuild is
# compared with; their names are recorded in the archive. `make paper-from-archive` runs
# Snakemake in a work directory laid out by `python -m vitalstream archive unpack`, with
# `--allowed-rules <those names>` (no cohort, Kafka or Spark job can enter the DAG: the archived
# files are taken as they are) and `--config from_archive=DIR` (origin.tex then says so).
from vitalstream.paper import archive as vsarchive

# What to archive, from the paper rules as they are when the DAG is built (every rule file read).
archive_files = lambda: vsarchive.archive_files(papermap.rule_records(workflow.rules))

# Files a run writes beside its metrics.json that no rule declares but notebooks read (RQ1's
# latency.parquet, RQ5's batches.csv), and the run's own record; archived for every run a paper
# rule reads a file of. A notebook that reads another such file adds it here.
RUN_COMPANIONS = [
    "condition.json",
    "provenance.json",
    "latency.parquet",
    "batches.csv",
    "lag.csv",
]
ARCHIVE = "results/archive/vitalstream-results.tar.gz"


# The effective configuration, recorded in the archive (ARCHIVE.json). Not sorted: the order of
# conditions is the order of tables and runs (common.smk).
declare_config("archive", lambda _: config, ordered=True)


rule archive_results:
    input:
        inputs=lambda wildcards: archive_files()["inputs"],
        products=lambda wildcards: archive_files()["products"],
        config=config_file("archive"),
        code=code_inputs("archive"),
    output:
        ARCHIVE,
    log:
        "results/logs/archive_results.log",
    conda:
        "../../envs/paper.yaml"
    # Long lists of paths and names: one a line in `snakemake -p` and the log.
    params:
        inputs=lambda wildcards, input: one_per_line(input.inputs),
        products=lambda wildcards, input: one_per_line(input.products),
        runs=lambda wildcards: one_per_line(archive_files()["runs"]),
        companions=RUN_COMPANIONS,
        rules=lambda wildcards: one_per_line(
            r["name"] for r in papermap.rule_records(workflow.rules)
        ),
    shell:
        """
        python -m vitalstream archive create --config @{input.config} --out {output} \\
        --companions {params.companions} \\
        --inputs {params.inputs} \\
        --products {params.products} \\
        --run-dirs {params.runs} \\
        --rules {params.rules} >{log} 2>&1
        """
