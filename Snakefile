# VitalStream: one command (`snakemake --cores all`) regenerates the paper.
# Read the rule files in the order of the data's journey: data → stack → experiments →
# notebooks → paper. Configuration: config/config.yaml (+ --configfile config/profiles/*.yaml).
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/stack.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/notebooks.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        "results/paper.pdf",
        DATA_TARGETS,


onstart:
    start_local_stack()


onsuccess:
    stop_local_stack()


onerror:
    stop_local_stack()
