# Shared definitions, included first: the validated config, the folders of the scale, each command's
# code version, and the files every experiment's jobs make. Rule files read only what is defined here
# (and `rules.<name>`), never another rule file's globals.
import copy
import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path

from truncback.pipeline import interrupts

signal.signal(signal.SIGINT, interrupts.while_reading)  # before the slow imports, until the Snakefile's end

import torch
from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from truncback.cli import COMMANDS
from truncback.tools.config_schema import any_of, check_config
from truncback.data import layout as data_layout
from truncback.data import sources as data_sources
from truncback.data.local import missing_from_data_dir
from truncback.pipeline.config_input import ConfigError, given_as, methods_from_labels, schema_problem, target_hint
from truncback.experiments.registry import EXPERIMENTS, Scale, computing, report_inputs, report_options
from truncback.rehearsal.caps import rehearsal_config
from truncback.rehearsal.estimates import expected_run_time
from truncback.runtime.code_version import code_version
from truncback.runtime.files import timing_path

min_version("8.0")

# The interpreter running Snakemake goes first on PATH, so `python -m truncback` in every rule is the
# environment Snakemake and truncback are installed in, also when it is not activated (.venv/bin/snakemake).
shell.prefix(f'set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; ')


def stop(message):
    """Ends Snakemake before any job with one line saying what is wrong: a mistake of the user's (config,
    data, targets) gets no traceback, which Snakemake would print for an error raised here."""
    sys.exit(f"Error: {message}")


def validated(config):
    """Fills the config's defaults in and checks it against config/schema.yaml, methods given on the command
    line as labels (`--config hypercleaning_methods=krmd-K1,rmd`) made specs first; returns those options
    by section (for messages about their specs)."""
    try:
        given = methods_from_labels(config)
        validate(config, "../config/schema.yaml")
    except ConfigError as error:
        stop(error)
    except WorkflowError as error:
        if not isinstance(error.__context__, ValidationError):
            raise
        stop(schema_problem(error.__context__))
    return given


configfile: "config/config.yaml"


if config.get("scale") == "dryrun":
    stop(
        "scale=dryrun is called scale=rehearsal (every paper-scale job on synthetic data, a few iterations "
        "each); `snakemake -n` is Snakemake's dry run. Use --config scale=rehearsal"
    )
CONFIG_GIVEN = validated(config)
if config["scale"] in ("smoke", "quick", "offline"):

    configfile: f"config/{config['scale']}.yaml"

    CONFIG_GIVEN = validated(config)  # the overlay, under the command line's values again


FULL_CONFIG = copy.deepcopy(config)  # the paper-scale settings whose run time the rehearsal estimates
if config["scale"] == "rehearsal":
    config.update(rehearsal_config(config))

try:  # method specs against their T, unique labels: stops before any job
    CONFIG_LABELS = check_config(config)
except ValueError as error:
    stop(given_as(str(error), CONFIG_GIVEN))
SCALE = config["scale"]
FIGURES = "figures" if SCALE == "full" else f"figures/{SCALE}"
TABLES = "paper_tables" if SCALE == "full" else f"paper_tables/{SCALE}"
RESULTS = f"results/{SCALE}"
LOGS = f"logs/{SCALE}"
BENCHMARKS = f"benchmarks/{SCALE}"
THREADS = config["threads"]
DEVICE = config["device"]
GPU_JOB = 0 if DEVICE == "cpu" else 1  # `resources: gpu` of the jobs that compute on the device
# `rule all` requests these; each rules/*.smk adds its figures and tables.
FINAL_OUTPUTS = []


def code(command):
    """The code version of `python -m truncback <command>`: a digest of the syntax trees of the modules
    it runs (truncback.runtime.code_version). As a param, it reruns the job when that code changes."""
    return code_version(COMMANDS[command])


# The commands whose outputs torch computes (numbers, timings, memory): the hyper-optimisations, the
# features, the measurements and benchmarks, as each experiment's descriptor declares. Their rules carry
# torch's version as the param `torch` (and those computing on the device DEVICE as the param `device`), so a
# torch upgrade reruns them, and the tables, figures and report reading their outputs, and no data job;
# check_code_params enforces it.
COMPUTING = computing()
TORCH = str(torch.__version__)


# Every rule declares its resources. A job the rehearsal measured (its benchmark file) declares mem_mb = its
# peak resident memory there x 1.5, rounded up to 500 MB (1000 at least), and runtime = its estimated
# paper-scale time on the rehearsal's machine x 2 (the estimates come from a few timed iterations), rounded
# up, with its unit; seconds-long jobs (tables, figures, the report) 1000 MB and 10 min.
# tests/test_pipeline_resources.py checks them against paper_tables/rehearsal/full_run_estimates_jobs.csv.


def benchmark(experiment, job):
    """Snakemake's benchmark file of a job (wall seconds and peak memory): the report and the rehearsal's
    estimates read them."""
    return f"{BENCHMARKS}/{experiment}/{job}.tsv"


def timings(results):
    """The timing file beside each result file (wall seconds per hyper-iteration)."""
    return [str(timing_path(path)) for path in results]


def stem(name):
    """A param: the output path `name` without its suffix (commands write <stem>.{csv,md,tex,html})."""
    return lambda wildcards, output: str(Path(output[name]).with_suffix(""))


# Data: archives are shared by every scale and keyed by their content (data/raw/<group>/<file>,
# verified against its checksum); fixtures and prepared arrays are per scale.
DATA_DIR = config["data_dir"]
if DATA_DIR:
    _missing = missing_from_data_dir(SCALE, DATA_DIR, data_layout.DATA_ROOT)
    if _missing:
        stop(_missing)
# Where an archive comes from is not part of what it is (its checksum is), so neither the source nor
# the scale (named in error messages) is a param: the fetch command reads them from here, and taking
# the same file from elsewhere, or at another scale, reruns nothing.
FETCH_OPTIONS = f"--scale {SCALE} " + (
    f"--data-dir {shlex.quote(str(Path(DATA_DIR).resolve()))}"
    if DATA_DIR
    else f"--attempts {config['data']['download_attempts']}"
)


def prepared(name):
    """The prepared array file of dataset `name` at this scale."""
    return str(data_layout.prepared_path(SCALE, name))


DATA_FIXTURES = data_sources.archives_of(SCALE, "fixture")
DATA_RECIPES = data_sources.recipes(SCALE)
DATA_BENCHMARKS = [benchmark("data", f"prepare_{entry.name}") for entry in DATA_RECIPES] + (
    [benchmark("data", "fixtures")] if DATA_FIXTURES else []
)

# Each experiment's files at this scale, by the names its rule files read (HC_RUNS, TI_JOBS, OG_ENTRIES,
# ...): made from the config by its descriptor (src/truncback/experiments/<name>/descriptor.py), in the
# registry's order, each seeing the names of those before it.
EXPERIMENT_FILES = {}
for _experiment in EXPERIMENTS:
    EXPERIMENT_FILES[_experiment.name] = _experiment.files(
        Scale(
            config,
            CONFIG_LABELS,
            RESULTS,
            BENCHMARKS,
            known={k: v for f in EXPERIMENT_FILES.values() for k, v in f.items()},
        )
    )
    globals().update(EXPERIMENT_FILES[_experiment.name])

# Every benchmark file of the scale's DAG (each experiment's that its descriptor names): the report's run
# times and the rehearsal's estimates.
ALL_BENCHMARKS = DATA_BENCHMARKS + [
    path
    for experiment in EXPERIMENTS
    if experiment.benchmarks
    for path in EXPERIMENT_FILES[experiment.name][experiment.benchmarks]
]

# The rehearsal's estimate of the paper-scale run time: made at scale=rehearsal, shown by every report.
REHEARSAL_ESTIMATES = "paper_tables/rehearsal/full_run_estimates"
# How far the numbers moved between two machines (compare-runs): the report quotes it.
SPREAD_FILE = "config/cross_machine_spread.yaml"


def check_code_params(defined):
    """Every rule that runs a truncback command carries that command's code version as its `code` param
    (the archives, keyed by their checksum instead, excepted), and torch's version as its `torch` param
    exactly when the command computes with torch (COMPUTING): called once all rules are defined."""
    for entry in defined:
        command = re.match(r"python -m truncback ([\w-]+)", entry.shellcmd or "")
        if command and not entry.name.startswith("data_archive_"):
            name = command.group(1)
            if entry.params.get("code") != code(name):
                raise WorkflowError(
                    f"{entry.name} runs `python -m truncback {name}` without the param "
                    f"code=code({name!r}), so Snakemake would not rerun it when that code changes"
                )
            if name in COMPUTING and entry.params.get("torch") != TORCH:
                raise WorkflowError(
                    f"{entry.name} runs `python -m truncback {name}`, which computes with torch, without the "
                    "param torch=TORCH, so Snakemake would not rerun it when torch changes"
                )
            if name not in COMPUTING and "torch" in entry.params.keys():
                raise WorkflowError(
                    f"{entry.name} runs `python -m truncback {name}`, which does not compute with torch "
                    "(COMPUTING in rules/common.smk), yet has the param torch: a torch upgrade would rerun it for nothing"
                )


def requested_targets():
    """The targets on the command line of the `snakemake` running this workflow (none when another program
    loads it): Snakemake knows them only after reading the workflow."""
    if Path(sys.argv[0]).name != "snakemake":
        return []
    from snakemake.cli import get_argument_parser

    try:
        known, _ = get_argument_parser().parse_known_args(sys.argv[1:])
    except SystemExit:  # a command line Snakemake itself refuses, with its own message
        return []
    return list(known.targets or [])


def check_targets(defined):
    """Stops with a hint where a target is neither a rule nor made by one, instead of Snakemake's bare "No
    rule to produce" (the scale whose folder it lies in, or the nearest targets). Called once all rules
    are defined."""
    names = {entry.name for entry in defined}

    def can_make(path):
        return any(entry.is_producer(path) for entry in defined)

    for target in requested_targets():
        path = os.path.normpath(os.path.relpath(target) if os.path.isabs(target) else target)
        if target in names or can_make(path):
            continue
        fixed = [entry for entry in defined if not entry.has_wildcards()]
        known = {*FINAL_OUTPUTS, *(entry.name for entry in fixed), *(str(o) for e in fixed for o in e.output)}
        stop(target_hint(path, SCALE, data_sources.RECIPES, can_make, sorted(known)))


def announce_run_time(cores):
    """Before the first job of the paper's settings (full, offline): the rehearsal's estimate of the whole
    scale's time, where it has been made, and of the part a resumed run has left."""
    jobs = Path(f"{REHEARSAL_ESTIMATES}_jobs.csv")
    if SCALE in ("full", "offline") and jobs.is_file():
        names = [str(Path(path).relative_to(BENCHMARKS)) for path in ALL_BENCHMARKS]
        estimate = expected_run_time(jobs, names, cores, Path(BENCHMARKS))
        print(f"The whole {SCALE} scale: {estimate}", file=sys.stderr)


def rehearsal_estimates(wildcards):
    """The rehearsal's estimates: made by its rule at scale=rehearsal; elsewhere read where they exist
    (the report says when they do not)."""
    path = f"{REHEARSAL_ESTIMATES}.csv"
    return [path] if SCALE == "rehearsal" or Path(path).is_file() else []


def measured_spread(wildcards):
    """The measured cross-machine spread, where it has been measured (the report says when not)."""
    return [SPREAD_FILE] if Path(SPREAD_FILE).is_file() else []
