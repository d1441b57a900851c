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
from truncback.experiments.omniglot.settings import OmniglotRun, every_run
from truncback.experiments.sensitivity.settings import study_runs
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
# features, the measurements and benchmarks. Their rules carry torch's version as the param `torch` (and
# those computing on the device DEVICE as the param `device`), so a torch upgrade reruns them, and the
# tables, figures and report reading their outputs, and no data job; check_code_params enforces it.
COMPUTING = {
    "bench-methods",
    "bench-baselines",
    "toy",
    "aid-vs-itd",
    "fom-ufom",
    "hypercleaning",
    "omniglot",
    "omniglot-depth",
    "features",
    "task-interaction",
    "task-interaction-trials",
}
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

# Toy problem (sec. 4.1)
TOY = config["toy"]
TOY_RESULTS = f"{RESULTS}/toy"
TOY_REFERENCE = {name: f"{TOY_RESULTS}/{name}" for name in ("landscape.npz", "bound.json", "optimum.json")}
TOY_OBJECTIVES = ["f", "f_tilde"]
TOY_TRAJECTORIES = [f"{TOY_RESULTS}/trajectories_{objective}.json" for objective in TOY_OBJECTIVES]
TOY_BENCHMARKS = [benchmark("toy", "reference")] + [
    benchmark("toy", f"trajectories_{objective}") for objective in TOY_OBJECTIVES
]

# Data hypercleaning (sec. 4.2.1): one run per (method, seed), named by the method's label.
HYPERCLEANING = config["hypercleaning"]
HC_RESULTS = f"{RESULTS}/hypercleaning"
HC_DATA = prepared(HYPERCLEANING["dataset"])
HC_SPECS = dict(zip(CONFIG_LABELS["hypercleaning"], HYPERCLEANING["methods"]))
HC_JOBS = [f"{method}_seed{seed}" for method in HC_SPECS for seed in HYPERCLEANING["seeds"]]
HC_RUNS = [f"{HC_RESULTS}/{job}.json" for job in HC_JOBS]
HC_BENCHMARKS = [benchmark("hypercleaning", job) for job in HC_JOBS]

# Task interaction (sec. 4.2.2): features once per dataset, one run per (dataset, trial, method), one job each,
# or with batch_trials the trials of a (dataset, method) batched in one job (its benchmark file).
TASK_INTERACTION = config["task_interaction"]
TI_RESULTS = f"{RESULTS}/task_interaction"
TI_DATASETS = TASK_INTERACTION["datasets"]
TI_SPECS = dict(zip(CONFIG_LABELS["task_interaction"], TASK_INTERACTION["methods"]))
TI_TRIALS = list(range(TASK_INTERACTION["trials"]))
TI_JOBS = [(dataset, f"trial{trial}_{method}") for dataset in TI_DATASETS for trial in TI_TRIALS for method in TI_SPECS]
TI_RUNS = [f"{TI_RESULTS}/{dataset}/{job}.json" for dataset, job in TI_JOBS]
TI_FEATURE_TIMINGS = [f"{TI_RESULTS}/features/{dataset}.timing.json" for dataset in TI_DATASETS]
TI_BATCHED = TASK_INTERACTION["batch_trials"]  # one job per (dataset, method), else one per (dataset, trial, method)
TI_BENCHMARKS = (
    [
        benchmark("task_interaction", f"{dataset}_{method}")
        for dataset in TI_DATASETS
        for method in TI_SPECS
        if TI_BATCHED
    ]
    + [benchmark("task_interaction", f"{dataset}_{job}") for dataset, job in TI_JOBS if not TI_BATCHED]
    + [benchmark("task_interaction", f"features_{dataset}") for dataset in TI_DATASETS]
)
_TI_WEIGHTS = data_sources.archive("resnet18_weights")
TI_WEIGHTS = (  # torchvision's file at full scale, its seeded stand-in in the rehearsal
    [str(data_layout.source_path(SCALE, data_sources.extra_archive_origin(SCALE, _TI_WEIGHTS.key), _TI_WEIGHTS))]
    if TASK_INTERACTION["features"]["extractor"] == "resnet18"
    else []
)

# One-shot Omniglot (sec. 4.3): Table 4's runs and the FOM-vs-UFOM companion's, by label.
OMNIGLOT = config["omniglot"]
OG_RESULTS = f"{RESULTS}/omniglot"
OG_DATA = {part: prepared(f"omniglot_{part}") for part in ("background", "evaluation")}
OG_ENTRIES = dict(zip(CONFIG_LABELS["omniglot"], map(OmniglotRun.from_dict, every_run(OMNIGLOT))))
OG_ALL_RUNS = [f"{OG_RESULTS}/{name}.json" for name in OG_ENTRIES]
OG_RUNS = [f"{OG_RESULTS}/{name}.json" for name in OG_ENTRIES if name not in CONFIG_LABELS["omniglot_companion"]]
OG_DEPTH = f"{OG_RESULTS}/depth.json"
OG_BENCHMARKS = [benchmark("omniglot", name) for name in OG_ENTRIES] + [benchmark("omniglot", "depth")]

# Table 1 (complexity)
COMPLEXITY = config["complexity"]
CX_RESULTS = f"{RESULTS}/complexity"
CX_MEASUREMENTS = f"{CX_RESULTS}/measurements.csv"
CX_BENCHMARKS = [benchmark("complexity", job) for job in ("measure", "baselines")]

# Companion: AID vs ITD (Grazzi et al. 2020)
AID_VS_ITD = config["aid_vs_itd"]
AID_RESULTS = f"{RESULTS}/aid_vs_itd"
AID_PROBLEMS = ["ridge", "logistic", "hypercleaning"]
AID_RUNS = [f"{AID_RESULTS}/{problem}.json" for problem in AID_PROBLEMS]
AID_BENCHMARKS = [benchmark("aid_vs_itd", problem) for problem in AID_PROBLEMS]

# Companion: FOM vs UFOM (Likhosherstov et al. 2021), with its Omniglot runs beside 1-RMD and full RMD
FOM_UFOM = config["fom_ufom"]
FU_RESULTS = f"{RESULTS}/fom_ufom"
FU_PARTS = ["paths", "estimator"]
FU_RUNS = [f"{FU_RESULTS}/{part}.json" for part in FU_PARTS]
FU_OMNIGLOT = [
    f"{OG_RESULTS}/{name}.json"
    for name in OG_ENTRIES
    if name in ("krmd-K1", "rmd") or name in CONFIG_LABELS["omniglot_companion"]
]
FU_BENCHMARKS = [benchmark("fom_ufom", part) for part in FU_PARTS]

# The sensitivity study (rules/sensitivity.smk): its runs by job, <part>/<variant>/<label>_seed<seed>, under
# results/<scale>/sensitivity/. Made on request, not by rule all, so its benchmark files are not the scale's.
SENSITIVITY = config["sensitivity"]
SE_RESULTS = f"{RESULTS}/sensitivity"
SE_RUNS = {run.job: run for run in study_runs(config)}
SE_SUMMARY = f"{SE_RESULTS}/summary.json"

# Every benchmark file of the scale's DAG: the report's run times and the rehearsal's estimates.
ALL_BENCHMARKS = (
    DATA_BENCHMARKS
    + TOY_BENCHMARKS
    + HC_BENCHMARKS
    + TI_BENCHMARKS
    + OG_BENCHMARKS
    + CX_BENCHMARKS
    + AID_BENCHMARKS
    + FU_BENCHMARKS
)

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


def sensitivity_summary(wildcards):
    """The sensitivity study's summary, where the study has run at this scale (the report says NOT RUN
    otherwise); once it exists the report depends on it, so a change to the study's code reruns it."""
    return [SE_SUMMARY] if Path(SE_SUMMARY).is_file() else []


def measured_spread(wildcards):
    """The measured cross-machine spread, where it has been measured (the report says when not)."""
    return [SPREAD_FILE] if Path(SPREAD_FILE).is_file() else []
