"""The paper-scale run time, estimated from the rehearsal's measurements on the machine that ran it.

For a hyper-optimisation job (hypercleaning, task interaction, Omniglot meta-training), from its
timing file and its Snakemake benchmark file (the job's wall seconds)::

    estimate = overhead + (I - 1) * t_iteration + E * t_exact + V * t_task

summed over the runs of the job (task interaction batches a (dataset, method)'s trials in one job, each
trial's timing its share of the batch's: ``runtime.batched``), with I the paper scale's hyper-iterations (task interaction: its maximum, early stopping may end it
sooner), E its number of exact (full-RMD) comparisons, V the tasks its evaluations score (Omniglot's
curves and milestones), t_iteration the rehearsal's wall seconds per timed hyper-iteration (drawing
the problems, the hypergradient, the step), t_exact the seconds per exact comparison, t_task the
seconds per evaluated task, and overhead what the rehearsal job spent outside those (start-up, data,
the profiled first hyper-iteration, the final evaluation). The features job scales its ResNet
seconds by all images over the images it computed. Every other job (data preparation, the toy,
Table 1, the depth study) ran at the paper's size in the rehearsal: its estimate is its measured time.
The download replaces the synthetic archives and is not estimated (it depends on the network).

``python -m truncback rehearsal-estimates --full-config '{...}' --results results/rehearsal --runs RESULT.json... --features FEATURES.timing.json... --benchmark-root benchmarks/rehearsal --benchmarks JOB.tsv... --output paper_tables/rehearsal/full_run_estimates``
"""

import argparse
import json
import math
import re
from pathlib import Path

import pandas as pd

from truncback.experiments.hypercleaning.run import HypercleaningResult
from truncback.experiments.hypercleaning.settings import HypercleaningSettings
from truncback.experiments.omniglot.run import OmniglotResult, tasks_evaluated_at
from truncback.experiments.omniglot.settings import OmniglotRun, OmniglotSettings, every_run
from truncback.experiments.task_interaction.run import TaskInteractionResult
from truncback.experiments.task_interaction.settings import TaskInteractionSettings
from truncback.runtime.files import read_json, read_result, timing_path
from truncback.runtime.harness import exact_comparisons
from truncback.runtime.measure import hardware
from truncback.io.tables import write_table

RUN_EXPERIMENTS = ("hypercleaning", "task_interaction", "omniglot")


def benchmark_of(result: Path, results: Path, benchmarks: Path) -> Path:
    """The benchmark file of the job that wrote ``result``: the rules name it after the result's path
    under its experiment folder, joined by "_" (hypercleaning/rmd_seed0.json -> hypercleaning/rmd_seed0.tsv);
    for task interaction with batch_trials, whose job runs every trial of a (dataset, method), without the
    trial (task_interaction/cifar10/trial0_rmd.json -> task_interaction/cifar10_rmd.tsv), where that file
    exists and the per-trial one does not."""
    experiment, *rest = result.relative_to(results).with_suffix("").parts
    own = benchmarks / experiment / ("_".join(rest) + ".tsv")
    if experiment == "task_interaction" and not own.is_file():
        batched = benchmarks / experiment / ("_".join([*rest[:-1], re.sub(r"^trial\d+_", "", rest[-1])]) + ".tsv")
        if batched.is_file():
            return batched
    return own


def read_benchmark(path: Path) -> dict:
    """Wall seconds and largest resident memory (MB) of a Snakemake benchmark file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"benchmark file {path} does not exist: run the rehearsal's jobs through Snakemake "
            "(each rule writes one)"
        )
    row = pd.read_csv(path, sep="\t").iloc[0]
    return {"seconds": float(row["s"]), "max_rss_mb": float(row["max_rss"])}


def full_counts(experiment: str, result, full: dict) -> dict:
    """The paper scale's hyper-iterations, exact comparisons and evaluated tasks of ``result``'s job,
    from the paper-scale config sections ``full``; a job the config lacks is named."""
    if experiment == "hypercleaning":
        settings = HypercleaningSettings.from_dict(full["hypercleaning"]["settings"])
        iterations, exact_every, tasks = settings.hyper_iterations, settings.exact_every, 0
    elif experiment == "task_interaction":
        section = full["task_interaction"]
        settings = TaskInteractionSettings.from_dict({**section["settings"], **section["subsets"][result.dataset]})
        exact_every = settings.exact_every if result.trial < section["exact_trials"] else None
        iterations, tasks = settings.max_hyper_iterations, 0
    else:
        settings = OmniglotSettings.from_dict(full["omniglot"]["settings"])
        runs = {run.name(settings): run for run in map(OmniglotRun.from_dict, every_run(full["omniglot"]))}
        if result.label not in runs:
            raise ValueError(
                f"Omniglot run {result.label!r} of the rehearsal is not a run of the paper-scale config "
                f"(its runs: {sorted(runs)})"
            )
        run = runs[result.label]
        iterations, exact_every = run.iterations, settings.exact_every
        tasks = sum(tasks_evaluated_at(done, settings, run) for done in range(iterations + 1))
    return {"iterations": iterations, "exact": exact_comparisons(iterations, exact_every), "tasks": tasks}


def run_measures(experiment: str, result_path: Path, result_type, full: dict) -> dict:
    """One run's rehearsal measurements (per timed hyper-iteration, exact comparison and evaluated task,
    and the seconds of those parts), its paper-scale counts and its estimate but the job's overhead."""
    result = read_result(result_path, result_type)
    timing = read_json(timing_path(result_path))
    if not timing["timed_iterations"]:
        raise ValueError(
            f"{timing_path(result_path)}: no timed hyper-iteration; the rehearsal needs at least 2 "
            "(rehearsal.iterations)"
        )
    t_iteration = timing["iteration_seconds"] / timing["timed_iterations"]
    t_exact = timing["exact_seconds"] / timing["exact_comparisons"] if timing["exact_comparisons"] else 0.0
    t_task = timing["evaluation_seconds"] / timing["evaluated_tasks"] if timing["evaluated_tasks"] else 0.0
    counts = full_counts(experiment, result, full)
    return {
        "peak": result.run.hypergradient_peak_mib,
        "s/hypergradient": timing["seconds_per_iteration"],
        "s/iteration": t_iteration,
        "exact seconds": counts["exact"] * t_exact,
        "task seconds": counts["tasks"] * t_task,
        "counts": counts,
        "measured": timing["iteration_seconds"] + timing["exact_seconds"] + timing["evaluation_seconds"],
        "estimate": (counts["iterations"] - 1) * t_iteration + counts["exact"] * t_exact + counts["tasks"] * t_task,
    }


def job_estimate(experiment: str, result_paths: list, result_type, full: dict, results: Path, benchmarks: Path) -> dict:
    """One row: a job's rehearsal measurements, its paper-scale counts and the estimate (formula above)
    of its runs ``result_paths`` (several where the job batched them; the per-unit seconds and the
    counts are then the runs' sums, the iterations their largest)."""
    benchmark = benchmark_of(result_paths[0], results, benchmarks)
    job = read_benchmark(benchmark)
    runs = [run_measures(experiment, path, result_type, full) for path in result_paths]
    overhead = max(0.0, job["seconds"] - sum(run["measured"] for run in runs))
    exact = sum(run["counts"]["exact"] for run in runs)
    tasks = sum(run["counts"]["tasks"] for run in runs)
    single = len(runs) == 1
    name = (
        result_paths[0].relative_to(results / experiment) if single else benchmark.relative_to(benchmarks / experiment)
    )
    return {
        "experiment": experiment,
        "job": str(name.with_suffix("")),
        "benchmark": str(benchmark.relative_to(benchmarks)),
        "rehearsal s": job["seconds"],
        "max RSS MB": job["max_rss_mb"],
        "hypergradient peak MiB": sum(run["peak"] for run in runs),
        "s/hypergradient": sum(run["s/hypergradient"] for run in runs),
        "s/iteration": sum(run["s/iteration"] for run in runs),
        "iterations": max(run["counts"]["iterations"] for run in runs),
        "s/exact": sum(run["exact seconds"] for run in runs) / exact if exact else 0.0,
        "exact comparisons": exact,
        "s/task": sum(run["task seconds"] for run in runs) / tasks if tasks else 0.0,
        "evaluated tasks": tasks,
        "overhead s": overhead,
        "estimate s": overhead + sum(run["estimate"] for run in runs),
        "note": "" if single else f"{len(runs)} runs batched: per-unit seconds and counts summed over them",
    }


def features_benchmark(timing_file: Path, benchmarks: Path) -> Path:
    """The benchmark file of the features job that wrote ``timing_file`` (features/<dataset>.timing.json)."""
    return benchmarks / "task_interaction" / f"features_{timing_file.name.removesuffix('.timing.json')}.tsv"


def features_estimate(timing_file: Path, benchmarks: Path) -> dict:
    """The features job: its ResNet seconds scaled from the images computed to the images the full run
    computes (the training images its trials draw, every test image)."""
    timing = read_json(timing_file)
    benchmark = features_benchmark(timing_file, benchmarks)
    job = read_benchmark(benchmark)
    scale = timing["images_needed"] / max(timing["images_computed"], 1)
    estimate = job["seconds"] + timing["extract_seconds"] * (scale - 1)
    return {
        "experiment": "task_interaction",
        "job": benchmark.stem,
        "benchmark": str(benchmark.relative_to(benchmarks)),
        "rehearsal s": job["seconds"],
        "max RSS MB": job["max_rss_mb"],
        "overhead s": job["seconds"] - timing["extract_seconds"],
        "estimate s": estimate,
        "note": f"ResNet on {timing['images_computed']} of the {timing['images_needed']} images the runs read "
        f"(of {timing['images']}), scaled to those",
    }


def measured_rows(benchmarks, accounted: set, root: Path) -> list[dict]:
    """Every other benchmark file (under ``root``): a job that ran at the paper's size; the fixtures
    become the download."""
    rows = []
    for path in sorted(benchmarks):
        if path in accounted:
            continue
        job = read_benchmark(path)
        if path.parent.name == "data" and path.stem == "fixtures":
            rows.append(
                {
                    "experiment": "data",
                    "job": "download",
                    "benchmark": str(path.relative_to(root)),
                    "rehearsal s": job["seconds"],
                    "max RSS MB": job["max_rss_mb"],
                    "estimate s": math.nan,
                    "note": "not estimated: the rehearsal writes synthetic archives instead (network-bound)",
                }
            )
        else:
            rows.append(
                {
                    "experiment": path.parent.name,
                    "job": path.stem,
                    "benchmark": str(path.relative_to(root)),
                    "rehearsal s": job["seconds"],
                    "max RSS MB": job["max_rss_mb"],
                    "estimate s": job["seconds"],
                    "note": "ran at the paper's size in the rehearsal: measured",
                }
            )
    return rows


COUNTS = ("iterations", "exact comparisons", "evaluated tasks")
RESULT_TYPES = {
    "hypercleaning": HypercleaningResult,
    "task_interaction": TaskInteractionResult,
    "omniglot": OmniglotResult,
}


def estimate_rows(full: dict, runs, features, benchmarks, results: Path, benchmark_root: Path) -> pd.DataFrame:
    """One row per job of the rehearsal: the hyper-optimisations' result files ``runs`` and the
    features jobs' timing files ``features`` (under ``results``, results/<scale>), and every job's
    benchmark file ``benchmarks`` (under ``benchmark_root``); a run without its benchmark file is named."""
    benchmarks = {Path(path) for path in benchmarks}
    rows, accounted = [], set()

    def account(path: Path, benchmark: Path) -> None:
        if benchmark not in benchmarks:
            raise ValueError(f"{path}: its job's benchmark file {benchmark} is not among the benchmark files given")
        accounted.add(benchmark)

    jobs: dict[Path, list[Path]] = {}
    for path in sorted(map(Path, runs)):
        experiment = path.relative_to(results).parts[0]
        if experiment not in RESULT_TYPES:
            raise ValueError(f"{path} is not the result of a hyper-optimisation ({', '.join(RESULT_TYPES)})")
        benchmark = benchmark_of(path, results, benchmark_root)
        account(path, benchmark)
        jobs.setdefault(benchmark, []).append(path)
    for paths in jobs.values():
        experiment = paths[0].relative_to(results).parts[0]
        rows.append(job_estimate(experiment, paths, RESULT_TYPES[experiment], full, results, benchmark_root))
    for path in sorted(map(Path, features)):
        account(path, features_benchmark(path, benchmark_root))
        rows.append(features_estimate(path, benchmark_root))
    rows += measured_rows(benchmarks, accounted, benchmark_root)
    if not rows:
        raise ValueError(f"no rehearsal job given (results under {results}): run the rehearsal first")
    frame = pd.DataFrame(rows)
    for column in COUNTS:  # whole numbers, blank where a job has none
        frame[column] = frame[column].map(lambda value: "" if pd.isna(value) else str(int(value)))
    return frame.fillna({"note": ""})


def least_wall_hours(jobs: pd.DataFrame, parallel_jobs: int) -> float:
    """A lower bound of the wall time of ``jobs`` with ``parallel_jobs`` at once: their estimated
    seconds shared evenly, or the longest job if that is longer."""
    return max(jobs["estimate s"].sum() / parallel_jobs, jobs["estimate s"].max()) / 3600


def summary(jobs: pd.DataFrame, parallel_jobs: int) -> pd.DataFrame:
    """Per experiment: jobs, rehearsal seconds, estimated CPU-job hours and the longest job; the last row
    the whole pipeline, with its wall time when ``parallel_jobs`` jobs run at once."""
    rows = []
    for experiment, group in jobs.groupby("experiment", sort=False):
        rows.append(
            {
                "Experiment": experiment,
                "Jobs": len(group),
                "Rehearsal (s)": group["rehearsal s"].sum(),
                "Estimate (job-hours)": group["estimate s"].sum() / 3600,
                "Longest job (h)": group["estimate s"].max() / 3600,
            }
        )
    total = jobs["estimate s"].sum()
    rows.append(
        {
            "Experiment": f"all (wall with {parallel_jobs} jobs at once: at least "
            f"{least_wall_hours(jobs, parallel_jobs):.1f} h)",
            "Jobs": len(jobs),
            "Rehearsal (s)": jobs["rehearsal s"].sum(),
            "Estimate (job-hours)": total / 3600,
            "Longest job (h)": jobs["estimate s"].max() / 3600,
        }
    )
    return pd.DataFrame(rows)


def expected_run_time(jobs_file, benchmarks, cores: int, benchmark_root: Path | None = None) -> str:
    """One line: the rehearsal's estimate (``jobs_file``, its per-job CSV) of the jobs whose benchmark files
    are ``benchmarks`` (names under benchmarks/<scale>/, e.g. ``omniglot/rmd.tsv``) at the paper's
    settings, in job-hours and as a lower bound of the wall time on ``cores`` cores. Given
    ``benchmark_root`` (benchmarks/<scale>/), a resumed run also gets the part of it not yet run: the jobs
    without a benchmark file there (a lower bound: a finished job whose code changed runs again)."""
    jobs = pd.read_csv(jobs_file)
    jobs = jobs[jobs["benchmark"].isin(set(benchmarks))]
    line = (
        f"Expected run time of {len(jobs)} job(s) of {', '.join(sorted(set(jobs['experiment'])))}, as the "
        f"rehearsal estimated them on its machine ({jobs_file}): {jobs['estimate s'].sum() / 3600:.1f} job-hours, "
        f"at least {least_wall_hours(jobs, cores):.1f} h on {cores} core(s) at one thread per job"
    )
    if benchmark_root is None:
        return line
    left = jobs[[not (Path(benchmark_root) / name).is_file() for name in jobs["benchmark"]]]
    if len(left) == len(jobs):
        return line
    if left.empty:
        return line + "; every one of them has run (its benchmark file exists)"
    return (
        line + f"; not yet run (no benchmark file in {benchmark_root}): {len(left)} job(s), "
        f"{left['estimate s'].sum() / 3600:.1f} job-hours, at least {least_wall_hours(left, cores):.1f} h"
    )


def main(args) -> int:
    full = json.loads(args.full_config)
    jobs = estimate_rows(full, args.runs, args.features, args.benchmarks, Path(args.results), Path(args.benchmark_root))
    parallel = max(1, args.cores // args.threads)
    machine = f"{hardware()}; {args.threads} torch thread(s) per job"
    write_table(
        jobs,
        f"{args.output}_jobs",
        f"Full-scale run time per job, estimated from the rehearsal on {machine} (wall clock): "
        "overhead + (iterations - 1) x s/iteration + exact comparisons x s/exact + evaluated tasks x s/task; "
        "task interaction's iterations are its maximum (early stopping may end it sooner).",
    )
    write_table(
        summary(jobs, parallel),
        args.output,
        f"Full-scale run time per experiment, estimated from the rehearsal on {machine} (wall clock); "
        f"per-job rows and the formula: {Path(args.output).name}_jobs.md.",
    )
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rehearsal-estimates",
        help="the full run's time estimated from the rehearsal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--full-config", required=True, help="JSON of the paper-scale config (its experiment sections)")
    parser.add_argument("--results", required=True, help="the rehearsal's results folder (results/rehearsal)")
    parser.add_argument("--runs", nargs="*", default=[], help="the hyper-optimisations' result files (under --results)")
    parser.add_argument("--features", nargs="*", default=[], help="the features jobs' timing files (under --results)")
    parser.add_argument("--benchmark-root", required=True, help="its Snakemake benchmark folder (benchmarks/rehearsal)")
    parser.add_argument(
        "--benchmarks", nargs="+", required=True, help="every job's benchmark file (under --benchmark-root)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job (the config's threads)")
    parser.add_argument("--cores", type=int, default=1, help="cores of the machine the full run would use")
    parser.add_argument("--output", required=True, help="output stem: <stem>.{csv,md,tex,html} and <stem>_jobs.*")
    parser.set_defaults(run=main)
