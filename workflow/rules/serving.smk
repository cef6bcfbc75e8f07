# Serving: the alerts of each run with sinks.search_index in the search index (vitalstream.sinks.search),
# read back and checked against the run's Parquet sink; dashboards built from that read-back
# (a self-contained HTML page, vitalstream.serving.dashboard) and for Kibana 8 / OpenSearch Dashboards
# (saved objects, vitalstream.serving.kibana); a Tableau Hyper extract of the run (vitalstream.serving.hyperextract).


# The index holds exactly the run's alerts, or this rule fails and says which differ.
rule export_search_index:
    input:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        code=code_inputs("search-export"),
    output:
        alerts="results/serving/{experiment}/{condition}/rep{rep}/index_alerts.parquet",
        windows="results/serving/{experiment}/{condition}/rep{rep}/index_windows.parquet",
        check="results/serving/{experiment}/{condition}/rep{rep}/check.json",
    log:
        "results/logs/export_search_index/{experiment}/{condition}/rep{rep}.log",
    conda:
        "../../envs/stream.yaml"
    params:
        url=search_url_arg(),
        state=SEARCH_STATE,
        prefix=SEARCH["index_prefix"],
    shell:
        """
        python -m vitalstream search-export {params.url:q} --search-state {params.state} \\
        --prefix {params.prefix:q} --run {wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep} \\
        --run-dir results/runs/{wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep} \\
        --out-dir results/serving/{wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep} \\
        >{log} 2>&1
        """


# Drawn from what the index returned, not from the Parquet sink.
rule search_dashboard:
    input:
        alerts="results/serving/{experiment}/{condition}/rep{rep}/index_alerts.parquet",
        windows="results/serving/{experiment}/{condition}/rep{rep}/index_windows.parquet",
        code=code_inputs("dashboard"),
    output:
        "results/serving/{experiment}/{condition}/rep{rep}/dashboard.html",
    log:
        "results/logs/search_dashboard/{experiment}/{condition}/rep{rep}.log",
    conda:
        "../../envs/notebook.yaml"
    shell:
        """
        python -m vitalstream dashboard --alerts {input.alerts} --windows {input.windows} \\
        --out {output} --title 'VitalStream: {wildcards.experiment}/{wildcards.condition}' \\
        >{log} 2>&1
        """


rule hyper_extract:
    input:
        metrics="results/runs/{experiment}/{condition}/rep{rep}/metrics.json",
        code=code_inputs("hyper-extract"),
    output:
        extract="results/serving/{experiment}/{condition}/rep{rep}/extract.hyper",
        summary="results/serving/{experiment}/{condition}/rep{rep}/extract.json",
    log:
        "results/logs/hyper_extract/{experiment}/{condition}/rep{rep}.log",
    conda:
        "../../envs/stream.yaml"
    shell:
        """
        python -m vitalstream hyper-extract \\
        --run-dir results/runs/{wildcards.experiment}/{wildcards.condition}/rep{wildcards.rep} \\
        --out {output.extract} --summary {output.summary} \\
        --log-dir results/logs/hyper_extract/{wildcards.experiment}/{wildcards.condition} \\
        >{log} 2>&1
        """


rule kibana_objects:
    input:
        code=code_inputs("kibana-objects"),
    output:
        "results/serving/kibana/kibana8.ndjson",
        "results/serving/kibana/opensearch-dashboards.ndjson",
    log:
        "results/logs/kibana_objects.log",
    conda:
        "../../envs/stream.yaml"
    params:
        prefix=SEARCH["index_prefix"],
    shell:
        """
        python -m vitalstream kibana-objects --prefix {params.prefix:q} \\
        --out-dir results/serving/kibana >{log} 2>&1
        """


# The serving paragraph's numbers: the indexed run against the headline run.
if "serving_run" in config["paper"]:
    SERVING = f"results/runs/{config['paper']['serving_run']}"
    SERVED = f"results/serving/{config['paper']['serving_run']}"

    rule write_serving_values:
        input:
            indexed=f"{SERVING}/metrics.json",
            provenance=f"{SERVING}/provenance.json",
            headline=f"{HEADLINE}/metrics.json",
            check=f"{SERVED}/check.json",
            hyper=f"{SERVED}/extract.json",
            code=code_inputs("serving-values"),
        output:
            "results/paper/serving_values.json",
        log:
            "results/logs/write_serving_values.log",
        conda:
            "../../envs/paper.yaml"
        shell:
            """
            python -m vitalstream serving-values --indexed {input.indexed} \\
            --headline {input.headline} --check {input.check} --hyper {input.hyper} \\
            --provenance {input.provenance} \\
            --out {output} >{log} 2>&1
            """
