"""The study's run time, estimated before it starts from the rehearsal's measurements of the same
methods at the paper's sizes (``paper_tables/rehearsal/full_run_estimates_jobs.csv``), which the
offline scale keeps (5,000 training examples and T = 100; 64 filters and T = 50).

Per run, the rehearsal's formula (``truncback.rehearsal.estimates``) with the run's own counts::

    estimate = overhead + (I - 1) * s/iteration + E * s/exact + V * s/task

with I its hyper-iterations, E its exact comparisons, V the tasks its evaluations score, and
overhead, s/iteration, s/exact and s/task the rehearsal's row of the same method (hypercleaning's
``<label>_seed0``, Omniglot's ``<label>``; the data-scaling runs are Omniglot runs). A variant costs what
its method costs: the choices change no size.
"""

import sys
from pathlib import Path

import pandas as pd

from truncback.experiments.hypercleaning.settings import HypercleaningSettings
from truncback.experiments.omniglot.run import tasks_evaluated_at
from truncback.experiments.omniglot.settings import OmniglotSettings
from truncback.experiments.sensitivity.settings import StudyRun
from truncback.runtime.harness import exact_comparisons


def run_counts(run: StudyRun) -> dict:
    """The hyper-iterations, exact comparisons and evaluated tasks of ``run``."""
    if run.part == "hypercleaning":
        settings = HypercleaningSettings.from_dict(run.settings)
        iterations = settings.hyper_iterations
        return {"iterations": iterations, "exact": exact_comparisons(iterations, settings.exact_every), "tasks": 0}
    assert run.run is not None
    omniglot = OmniglotSettings.from_dict(run.settings)
    iterations = run.run.iterations
    return {
        "iterations": iterations,
        "exact": exact_comparisons(iterations, omniglot.exact_every),
        "tasks": sum(tasks_evaluated_at(done, omniglot, run.run) for done in range(iterations + 1)),
    }


def rehearsal_job(run: StudyRun) -> tuple[str, str]:
    """(experiment, job) of the rehearsal's row that measured ``run``'s method."""
    if run.part == "hypercleaning":
        return "hypercleaning", f"{run.label}_seed0"
    return "omniglot", run.label


def run_seconds(jobs: pd.DataFrame, run: StudyRun) -> float | None:
    """The estimated seconds of ``run`` from the rehearsal's per-job rows ``jobs``; None where the
    rehearsal did not run its method."""
    experiment, job = rehearsal_job(run)
    rows = jobs[(jobs["experiment"] == experiment) & (jobs["job"] == job)]
    if rows.empty:
        return None
    row, counts = rows.iloc[0], run_counts(run)
    return float(
        row["overhead s"]
        + (counts["iterations"] - 1) * row["s/iteration"]
        + counts["exact"] * row["s/exact"]
        + counts["tasks"] * row["s/task"]
    )


def _hours(seconds: list[float], cores: int) -> str:
    """Job-hours, and the least wall time with ``cores`` jobs at once (shared evenly, or the longest job)."""
    wall = max(sum(seconds) / cores, max(seconds)) / 3600
    return f"{sum(seconds) / 3600:.1f} job-hours, at least {wall:.1f} h on {cores} core(s) at one thread per job"


def study_time(jobs_file, runs: list[StudyRun], ran: list[bool], cores: int) -> str:
    """One line: the estimated time of the study's ``runs`` (``ran``: which have run already, their
    benchmark file written) by the rehearsal's ``jobs_file``, and of the part left."""
    jobs = pd.read_csv(jobs_file)
    estimates = [run_seconds(jobs, run) for run in runs]
    known = [(seconds, done) for seconds, done in zip(estimates, ran) if seconds is not None]
    if not known:
        return f"The sensitivity study: no estimate (the rehearsal ({jobs_file}) ran none of its methods)"
    line = f"The sensitivity study: {len(runs)} run(s), " + _hours([seconds for seconds, _ in known], cores)
    line += f", from the rehearsal's measurements of the same methods at the paper's sizes ({Path(jobs_file)})"
    left = [seconds for seconds, done in known if not done]
    if len(left) < len(known):
        line += f"; not yet run: {len(left)} run(s)" + (f", {_hours(left, cores)}" if left else "")
    unknown = estimates.count(None)
    if unknown:
        line += f"; {unknown} run(s) of methods the rehearsal did not run are not counted"
    return line


def announce_study(scale: str, runs: list[StudyRun], planned: bool, cores: int, jobs_file, benchmarks) -> None:
    """Before the study's first job (``planned``: the DAG runs one), at the scales whose sizes the rehearsal
    measured (full, offline), where its estimates exist: the study's time on stderr, and the part left
    (runs without a benchmark file under ``benchmarks``, benchmarks/<scale>/sensitivity)."""
    if planned and scale in ("full", "offline") and Path(jobs_file).is_file():
        ran = [(Path(benchmarks) / f"{run.benchmark}.tsv").is_file() for run in runs]
        print(study_time(jobs_file, runs, ran, cores), file=sys.stderr)
