"""Fig. 7 plot 4: the relative error ||h_{T-K} - d_lam f|| / ||d_lam f|| of the K-RMD hypergradient
(eq. 8) against the reverse depth K on a few meta-test tasks, with the regulariser (rho > 0) and
without it (rho = 0), and the geometric rate fitted to it (Prop. 3.1 predicts a geometric decay when
the lower-level problem is locally strongly convex, which the regulariser makes likely).

``python -m truncback omniglot-depth --background bg.npz --evaluation ev.npz --settings '{...}'
--hparams rmd.npz --output depth.json``
"""

import argparse
import json
import math
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch.utils._pytree import tree_map

from truncback.experiments.omniglot.model import (
    Constraints,
    fixed_w0,
    nested_hyperparameters,
    one_shot_problem,
)
from truncback.experiments.omniglot.run import learnt_values, load_omniglot, samplers
from truncback.experiments.omniglot.settings import OmniglotSettings
from truncback.experiments.omniglot.tasks import Task
from truncback.runtime.determinism import configure_torch, derive_seed
from truncback.runtime.device import add_compute_arguments, select_device
from truncback.runtime.files import load_npz, write_json
from truncback.runtime.progress import ProgressLog
from truncback.hypergrad import krmd_all_depths, trees

VARIANTS = {"rho_positive": False, "rho_zero": True}

IN_EFFECT = 0.1
"""The regulariser is in effect at a lambda where it alone contracts the lower level by at least this
factor (a decade) over the horizon: |1 - 2 gamma rho_min|^T <= 0.1, with 2 rho_j the Hessian of
rho_j ||w_j - c_j||^2 (the strong convexity Prop. 3.1 rests on)."""

POINTS = ("learned", "regularised", "initial")
"""The lambdas the study runs at: the full-RMD run's learnt one, the same with every rho_j raised to put
the regulariser in effect (``with_regulariser_in_effect``), and the initial one."""


def rho_in_effect(gamma: float, T: int) -> float:
    """The rho at which the regulariser alone contracts T steps of size gamma by ``IN_EFFECT``:
    (1 - 2 gamma rho)^T = IN_EFFECT."""
    return (1 - IN_EFFECT ** (1 / T)) / (2 * gamma)


def with_regulariser_in_effect(hparams: dict, constraints: Constraints, T: int) -> tuple[dict, float]:
    """``hparams`` with every rho_j below ``rho_in_effect`` at their gamma raised to it (gamma, c and the
    rest unchanged), and that rho. Where a learnt rho gamma is near 0 the regularised model is in effect
    unregularised, and comparing it with rho = 0 says little about Prop. 3.1; this lambda keeps what was
    learnt and makes the regulariser act, so that the comparison means something."""
    floor = rho_in_effect(float(constraints.gamma(hparams)), T)
    rho = torch.clamp(constraints.rho(hparams), min=floor)
    return {**hparams, "theta_rho": torch.log(rho - constraints.rho_min)}, floor


def relative_errors(problem, hparams, exclude=()) -> list[float]:
    """Entry K = ||h_{T-K} - d_lam f|| / ||d_lam f|| for K = 0, ..., T (the last one is 0: K = T is
    full RMD), from one full reverse pass; the norms leave out the hyperparameters in ``exclude``."""
    path = [{key: value for key, value in h.items() if key not in exclude} for h in krmd_all_depths(problem, hparams)]
    exact = path[-1]
    norm = trees.norm(exact)
    if norm == 0:
        raise ValueError("the exact hypergradient is zero; relative errors are undefined")
    return [trees.norm(trees.sub(h, exact)) / norm for h in path]


def geometric_fit(errors) -> dict:
    """Least-squares fit of log e_K = a + K log(rate) over K = 0, ..., T - 1 (e_T = 0 is left out),
    with the coefficient of determination r2 of the fit in log space."""
    fitted = np.asarray(errors[:-1], dtype=float)
    if len(fitted) < 2 or not np.all((fitted > 0) & np.isfinite(fitted)):
        raise ValueError(f"a geometric fit needs at least two positive errors, got {errors[:-1]}")
    depths, logs = np.arange(len(fitted), dtype=float), np.log(fitted)
    slope, intercept = np.polyfit(depths, logs, 1)
    residual = logs - (intercept + slope * depths)
    spread = np.sum((logs - logs.mean()) ** 2)
    r2 = 1.0 - float(np.sum(residual**2) / spread) if spread > 0 else 1.0
    return {
        "rate": math.exp(slope),
        "log_rate": float(slope),
        "intercept": float(intercept),
        "r2": r2,
        "depths": [0, len(errors) - 2],
    }


def _as(task: Task, dtype) -> Task:
    return Task(task.x_train.to(dtype), task.y_train, task.x_query.to(dtype), task.y_query)


def depth_study(hparams, tasks, T: int, batch_norm: bool, constraints: Constraints, w0: dict | None = None) -> dict:
    """For each variant (rho as in ``hparams``; rho = 0): the relative errors on every task, their
    mean over tasks and the geometric fit of the mean, over all hyperparameters and over those other
    than c (``*_without_c``); the inner loops start at c, or at the fixed ``w0``.

    Why both: w_0 = c, so d f / d c has a term B_0 alpha_0 that K-RMD leaves out for every K < T
    (eq. 8). With rho = 0 that term is all of d f / d c (c enters the lower level only through
    w_0), so the error over all hyperparameters cannot fall below c's share whatever the depth: a
    trivial plateau, not the absence of contraction that Prop. 3.1 is about. The errors without c
    measure the decay the paper discusses."""
    study = {}
    for variant, rho_zero in VARIANTS.items():
        entry = {}
        for suffix, exclude in (("", ()), ("_without_c", ("c",))):
            per_task = [
                relative_errors(
                    one_shot_problem(task, T, batch_norm, constraints, rho_zero=rho_zero, w0=w0), hparams, exclude
                )
                for task in tasks
            ]
            mean = np.mean(np.asarray(per_task), axis=0).tolist()
            entry.update({f"per_task{suffix}": per_task, f"mean{suffix}": mean, f"fit{suffix}": geometric_fit(mean)})
        study[variant] = entry
    return study


def run_depth(background, evaluation, settings: OmniglotSettings, learned: dict, seed: int, log, device="cpu") -> dict:
    """The depth study at the learned hyperparameters (of the full-RMD run: ``learned``, its arrays by
    name as the run saved them, rebuilt in the network's order by ``nested_hyperparameters``), at the
    same with the regulariser put in effect (``with_regulariser_in_effect``; ``rho_in_effect`` records the
    rho it raised them to) and at the initial ones (``POINTS``), in float64 so that the errors are not
    limited by single precision."""
    dtype = torch.float64
    task_seed = derive_seed("omniglot", 0, seed)
    _, test_sampler = samplers(background, evaluation, settings, task_seed, device)
    tasks = [_as(task, dtype) for task in test_sampler.tasks("depth", settings.depth_tasks)]
    initial = tree_map(lambda leaf: leaf.to(device), settings.initial_hyperparameters(task_seed, dtype))
    result: dict[str, Any] = {
        "experiment": "omniglot_depth",
        "seed": seed,
        "settings": asdict(settings),
        "T": settings.T,
        "tasks": settings.depth_tasks,
    }
    learned = tree_map(lambda leaf: leaf.to(device), nested_hyperparameters(learned, like=initial, dtype=dtype))
    constraints = settings.constraints()
    regularised, result["rho_in_effect"] = with_regulariser_in_effect(learned, constraints, settings.T)
    for name, hparams in zip(POINTS, (learned, regularised, initial)):
        result[name] = depth_study(
            hparams, tasks, settings.T, settings.batch_norm, constraints, fixed_w0(initial, settings.w0)
        )
        values = learnt_values(hparams, constraints)
        result[name]["rho"] = list(values["rho"].values())
        result[name]["gamma"] = values["gamma"]
        fits = {variant: result[name][variant]["fit"] for variant in VARIANTS}
        log(
            f"{name} lam: fitted rate {fits['rho_positive']['rate']:.4f} (r2 {fits['rho_positive']['r2']:.3f}) "
            f"with rho > 0, {fits['rho_zero']['rate']:.4f} (r2 {fits['rho_zero']['r2']:.3f}) with rho = 0; without c: "
            f"{result[name]['rho_positive']['fit_without_c']['rate']:.4f} and "
            f"{result[name]['rho_zero']['fit_without_c']['rate']:.4f}"
        )
    return result


def main(args) -> int:
    settings = OmniglotSettings.from_dict(json.loads(args.settings))
    configure_torch(args.threads)
    device = select_device(args.device)
    background, evaluation = load_omniglot(args.background, args.evaluation)
    with ProgressLog(args.log) as log:
        result = run_depth(background, evaluation, settings, load_npz(args.hparams), args.seed, log, device)
    result["learned_from"] = args.learned_from
    write_json(args.output, result)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "omniglot-depth",
        help="relative K-RMD error against depth (Fig. 7 plot 4)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--background", required=True, help="prepared Omniglot .npz (meta-training side)")
    parser.add_argument("--evaluation", required=True, help="prepared Omniglot .npz (meta-test side)")
    parser.add_argument("--settings", default="{}", help="JSON object of OmniglotSettings fields")
    parser.add_argument("--hparams", required=True, help="learned hyperparameters (.npz of the full-RMD run)")
    parser.add_argument(
        "--learned-from",
        help="the label of the Omniglot run that learnt --hparams, recorded for the report (which judges no claim "
        "at an UNSTABLE run's lambda)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed index (tasks and initial lam are derived from it)")
    add_compute_arguments(parser)
    parser.add_argument("--output", required=True, help="result JSON")
    parser.add_argument("--log", help="also write the progress lines to this file")
    parser.set_defaults(run=main)
