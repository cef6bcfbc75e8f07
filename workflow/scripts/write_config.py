"""Rule write_config (workflow/rules/configs.smk): write a rule's settings file.

The text is the rule's `params.text` (the config slice as JSON, made by common.smk: config_text);
Snakemake's params trigger re-runs this job exactly when the slice changes (`params.digest`). A
script, not a `run:` block: Snakemake runs a `run:` job in a new Snakemake process that parses
the whole workflow again (seconds per file); a script job is one short Python process.
"""

from pathlib import Path

text = snakemake.params.text
Path(snakemake.output.config).write_text(text)
Path(snakemake.log[0]).write_text(
    f"{snakemake.output.config}: {len(text)} characters, digest {snakemake.params.digest}\n"
)
