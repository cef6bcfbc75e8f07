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
from vitalstream import archive as vsarchive
from vitalstream import papermap

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


rule write_origin_macros:
    input:
        macros="results/paper/macros.tex",
        archived=[f"{FROM_ARCHIVE}/ARCHIVE.json"] if FROM_ARCHIVE else [],
    output:
        "results/paper/origin.tex",
    log:
        "results/logs/write_origin_macros.log",
    conda:
        "../../envs/paper.yaml"
    params:
        archive=f"--archive-dir {FROM_ARCHIVE}" if FROM_ARCHIVE else "",
    shell:
        "python -m vitalstream archive origin --out {output} {params.archive} > {log} 2>&1"


rule write_provenance_table:
    input:
        code="scripts/vitalstream/papermap.py",
    output:
        table="results/paper/tab_provenance.tex",
        rows="results/paper/paper_map.json",
    log:
        "results/logs/write_provenance_table.log",
    conda:
        "../../envs/paper.yaml"
    params:
        rows=lambda wildcards: shlex.quote(
            json.dumps(
                papermap.build(GENERATED, papermap.rule_records(workflow.rules))
            )
        ),
    shell:
        "python -m vitalstream paper-map --rows {params.rows} --table {output.table}"
        " --out-json {output.rows} > {log} 2>&1"


rule archive_results:
    input:
        inputs=lambda wildcards: archive_files()["inputs"],
        products=lambda wildcards: archive_files()["products"],
    output:
        ARCHIVE,
    log:
        "results/logs/archive_results.log",
    conda:
        "../../envs/paper.yaml"
    params:
        runs=lambda wildcards: archive_files()["runs"],
        companions=RUN_COMPANIONS,
        rules=lambda wildcards: [
            r["name"] for r in papermap.rule_records(workflow.rules)
        ],
        # Not sorted: the order of conditions is the order of tables and runs (common.smk).
        config=shlex.quote(json.dumps(config, default=str)),
    shell:
        "python -m vitalstream archive create --inputs {input.inputs} --products {input.products}"
        " --run-dirs {params.runs} --companions {params.companions} --rules {params.rules}"
        " --config {params.config} --out {output} > {log} 2>&1"
