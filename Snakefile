# VitalStream: one command (`snakemake --cores all`) regenerates the paper.
# Read the rule files in the order of the data's journey: data → stack → experiments →
# notebooks → serving → live → paper. Configuration: config/config.yaml
# (+ --configfile config/profiles/*.yaml); each rule reads its part of it from a settings
# file, results/configs/<name>.json (configs.smk).
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


# `--config from_archive=DIR`: rebuild the paper from an unpacked results archive in DIR
# (`make paper-from-archive`; workflow/rules/archive.smk). Not part of the validated config.
FROM_ARCHIVE = config.pop("from_archive", None)


validate(config, "config/schema.yaml")


# `snakemake --report report.html` (make report): figures by research question, captions in
# workflow/report/.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/configs.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/stack.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/notebooks.smk"
include: "workflow/rules/serving.smk"
include: "workflow/rules/live.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/archive.smk"


# Each rule that runs package code lists exactly the sources it runs (common.smk: code_inputs).
check_code_inputs()


rule all:
    default_target: True
    input:
        "results/paper.pdf",
        DATA_TARGETS,
        serving_targets(),


# Before any job: TeX is there if the PDF is to be built, then the local services (stack.smk).
onstart:
    check_tex()
    start_local_stack()


onsuccess:
    stop_local_stack()


onerror:
    stop_local_stack(keep_logs=True)
