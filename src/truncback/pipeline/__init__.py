"""Tools around the Snakemake workflow: runs of a scale in a scratch copy (the committed expected
outputs, and the check of a rerun against them), the workflow's lint, and the documentation pages
generated from the committed outputs."""
