# Reproduction of Shaban et al., "Truncated Back-propagation for Bilevel Optimization" (AISTATS 2019).
#
#   snakemake --cores all                       every figure and table at paper scale
#   snakemake --cores all --config scale=smoke  the same DAG at a reduced scale (smoke | quick)
#   snakemake --cores all --config scale=dryrun every full-scale job on synthetic data of the real sizes,
#                                               a few iterations each, and the full run's estimated time
#   snakemake --cores 2 figures/fig1_toy_bound.pdf   one output
#
# All logic lives in the `truncback` package; every rule runs one `python -m truncback ...` command.
# Each rules/*.smk adds its final outputs to FINAL_OUTPUTS, which `rule all` requests. The config's
# defaults live in the settings dataclasses; config/schema.yaml is generated from them.
import copy
import json
import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

from truncback.config_schema import any_of, check_config
from truncback.dryrun.caps import dry_run_config
from truncback.runtime.files import timing_path

min_version("8.0")

# The interpreter running Snakemake goes first on PATH, so `python -m truncback` in every rule is the
# environment Snakemake and truncback are installed in, also when it is not activated (.venv/bin/snakemake).
shell.prefix(f'set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; ')


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")
if config["scale"] in ("smoke", "quick"):

    configfile: f"config/{config['scale']}.yaml"

    validate(config, "config/schema.yaml")

FULL_CONFIG = copy.deepcopy(config)  # the paper-scale settings whose run time the dry run estimates
if config["scale"] == "dryrun":
    config.update(dry_run_config(config))

CONFIG_LABELS = check_config(config)  # method specs against their T, unique labels: stops before any job
SCALE = config["scale"]
FIGURES = "figures" if SCALE == "full" else f"figures/{SCALE}"
TABLES = "paper_tables" if SCALE == "full" else f"paper_tables/{SCALE}"
RESULTS = f"results/{SCALE}"
LOGS = f"logs/{SCALE}"
BENCHMARKS = f"benchmarks/{SCALE}"
THREADS = config["threads"]
DEVICE = config["device"]
FINAL_OUTPUTS = []


# Shared definitions first (data paths), then one file per experiment, each adding to FINAL_OUTPUTS.
include: "rules/data.smk"
include: "rules/toy.smk"
include: "rules/hypercleaning.smk"
include: "rules/task_interaction.smk"
include: "rules/omniglot.smk"
include: "rules/complexity.smk"
include: "rules/aid_vs_itd.smk"
include: "rules/fom_ufom.smk"
include: "rules/report.smk"


if SCALE == "dryrun":

    include: "rules/dryrun.smk"


rule all:
    default_target: True
    input:
        FINAL_OUTPUTS,
