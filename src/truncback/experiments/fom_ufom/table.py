"""The FOM vs UFOM tables from the raw results of ``python -m truncback fom-ufom``, one per part:

  paths      per method and seed: ||grad F|| at the end of the SGD path and averaged over its tail, the
             distances to lam* and lam_FOM, and seconds per hyper-iteration
  estimator  per q: UFOM's largest bias in standard errors, its variance (measured and theoretical), its
             step evaluations per estimate (measured and expected) and seconds per estimate
  memory     per T: states held and step evaluations of FOM, UFOM's exact branch and full RMD

Seconds come from the timing file beside the result (``<stem>.timing.json``); they are the only
entries that differ between two runs. The captions avoid LaTeX's special characters (^, _, %):
``write_table`` does not escape a caption.

``python -m truncback table-fom-ufom paths --results paths.json --output companion_fom_ufom_paths``
"""

import argparse

import numpy as np
import pandas as pd

from truncback.runtime.files import read_json, timing_path
from truncback.io.tables import write_table

PATHS_CAPTION = (
    "FOM vs UFOM (Likhosherstov et al. 2021) on {tasks} quadratic tasks in {d} dimensions with inner "
    "curvatures {curvatures} (T = {T}, alpha = {alpha}): SGD on the initialisation lam, one task per "
    "iteration, step size eta0 / sqrt(tau) with eta0 = {eta0}, {iterations} iterations. ||grad F|| is "
    "exact (closed form); the tail mean averages it over the last fraction {tail:g} of the path. FOM's "
    "floor, ||grad F|| at its fixed point lam FOM, is {floor:.4g}; lam FOM lies {gap:.4g} from the "
    "stationary point lam*. Sec/iter is wall-clock and varies from run to run."
)
ESTIMATOR_CAPTION = (
    "UFOM(q) = FOM + (xi / q)(exact - FOM) with xi a Bernoulli(q) coin, on task {task} at one lam, "
    "{draws} draws per q (T = {T}). Bias: mean - exact per coordinate; max abs. bias: its largest "
    "magnitude; max bias / SE: that over the standard error of the mean (none at q = 1, where every "
    "draw is exact). Variance: trace of the covariance of the draws; theory: (1 - q)/q times the "
    "squared norm of exact - FOM. Steps: lower-level step evaluations per estimate, mean over the "
    "draws; expected: 2T + q (T + T(T+1)/2). Time per estimate is wall-clock and varies from run "
    "to run."
)
MEMORY_CAPTION = (
    "States held at once and step evaluations of one hypergradient on task {task} against T: FOM and "
    "UFOM hold a constant number of states, full RMD T + 1; UFOM's exact branch (taken with "
    "probability q) costs T + T(T+1)/2 steps beyond FOM's 2T."
)
MEMORY_NAMES = {"fom": "FOM", "ufom_exact_branch": "UFOM exact branch", "rmd": "Full RMD"}


def tail_mean(values, fraction: float) -> float:
    """The mean of the last ceil(fraction * (len - 1)) values (at least one), the start left out."""
    count = max(1, int(np.ceil(fraction * (len(values) - 1))))
    return float(np.mean(values[-count:]))


def paths_table(paths: dict, timing: dict) -> tuple[pd.DataFrame, str]:
    """One row per (method, seed), methods in the order of the runs (seed s is the s-th entry of its
    label's timings)."""
    settings, family = paths["settings"], paths["family"]
    rows = []
    for run in paths["runs"]:
        rows.append(
            {
                "Method": run["display"],
                "Seed": run["seed"],
                "Final ‖∇F‖": run["exact_norm"][-1],
                "Tail mean ‖∇F‖": tail_mean(run["exact_norm"], settings["tail_fraction"]),
                "Final ‖∇F‖ / FOM floor": run["exact_norm"][-1] / family["fom_floor"],
                "Final ‖λ − λ*‖": run["distance_stationary"][-1],
                "Final ‖λ − λ_FOM‖": run["distance_fom_fixed_point"][-1],
                "Sec/iter": f"{timing['seconds_per_iteration'][run['label']][run['seed']]:.4f}",
            }
        )
    gap = np.linalg.norm(np.subtract(family["fom_fixed_point"], family["stationary_point"]))
    caption = PATHS_CAPTION.format(
        tasks=len(family["curvature"]),
        d=settings["d"],
        curvatures=", ".join(f"{a:g}" for a in settings["curvatures"]),
        T=settings["T"],
        alpha=settings["alpha"],
        eta0=settings["eta0"],
        iterations=settings["iterations"],
        tail=settings["tail_fraction"],
        floor=family["fom_floor"],
        gap=gap,
    )
    return pd.DataFrame(rows), caption


def shown(value) -> str:
    """A number with 4 significant digits, "-" for None."""
    return "-" if value is None else f"{value:.4g}"


def estimator_table(estimator: dict, timing: dict) -> tuple[pd.DataFrame, str]:
    """One row per q of the unbiasedness and time-variance study."""
    unbiased, settings = estimator["unbiasedness"], estimator["settings"]
    rows = [
        {
            "q": f"{study['q']:g}",
            "Max bias / SE": shown(study["max_standardised_bias"]),
            "Max abs. bias": study["max_abs_bias"],
            "Variance": study["variance"],
            "Variance (theory)": study["variance_theory"],
            "Exact corrections": study["corrections"],
            "Steps/estimate": study["steps_mean"],
            "Steps/estimate (expected)": study["steps_expected"],
            "Time per estimate (s)": f"{timing['seconds_per_estimate'][str(study['q'])]:.4f}",
        }
        for study in unbiased["by_q"]
    ]
    caption = ESTIMATOR_CAPTION.format(task=unbiased["task"] + 1, draws=settings["draws"], T=settings["T"])
    return pd.DataFrame(rows), caption


def memory_table(estimator: dict, timing: dict) -> tuple[pd.DataFrame, str]:
    """One row per T of the memory study."""
    memory = estimator["memory"]
    rows = []
    for index, T in enumerate(memory["T"]):
        row = {"T": T}
        row.update({f"States held: {name}": memory["states_held"][key][index] for key, name in MEMORY_NAMES.items()})
        row.update({f"Steps: {name}": memory["step_evaluations"][key][index] for key, name in MEMORY_NAMES.items()})
        rows.append(row)
    return pd.DataFrame(rows), MEMORY_CAPTION.format(task=estimator["unbiasedness"]["task"] + 1)


TABLES = {"paths": paths_table, "estimator": estimator_table, "memory": memory_table}


def main(args) -> int:
    frame, caption = TABLES[args.part](read_json(args.results), read_json(timing_path(args.results)))
    write_table(frame, args.output, caption)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "table-fom-ufom",
        help="the FOM vs UFOM tables from their raw results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "part",
        choices=sorted(TABLES),
        help="paths: from `fom-ufom paths`; estimator and memory: from `fom-ufom estimator`",
    )
    parser.add_argument("--results", required=True, help="result .json (its <stem>.timing.json beside it)")
    parser.add_argument("--output", required=True, help="output path without suffix (.csv/.md/.tex/.html are written)")
    parser.set_defaults(run=main)
