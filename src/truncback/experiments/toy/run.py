"""Toy-problem experiments of sec. 4.1 (Figs. 1-4): raw result files only, no plotting.

  reference     three files: landscape.npz, f and f~ over a grid of lam (Figs. 1, 3, 4); bound.json,
                ||h_{T-K} - d_lam f|| for K = 0..T at one lam with the bound of eq. (10) (Fig. 1); and
                optimum.json, the minimiser of f~ by multi-start exact gradient descent (Fig. 3)
  trajectories  on f or f~: lam_{tau+1} = lam_tau - eta_tau h_{T-K}(lam_tau), eta_tau = eta_0 / sqrt(tau),
                one path per K with d_lam f along it (Figs. 3, 4; footnote 4 fixes eta_0), and
                h_{T-K}^T d_lam f / ||d_lam f||^2 for every K along the 1-RMD path (Fig. 2)

The truncated hypergradients come from the engine (``krmd``); the exact ones from the closed form of
:mod:`truncback.experiments.toy.problem`, which the bound result also compares with the engine's RMD.

``python -m truncback toy trajectories --objective f --settings '{...}' --output trajectories_f.json``
"""

import argparse
import json
from dataclasses import asdict

import numpy as np
import torch

from truncback.experiments.toy.problem import OBJECTIVES, ToyProblem, bilevel_problem
from truncback.experiments.toy.settings import ToySettings
from truncback.runtime.determinism import configure_torch, write_npz
from truncback.runtime.files import write_json
from truncback.runtime.progress import ProgressLog
from truncback.hypergrad import krmd, krmd_all_depths


def as_tensor(lam) -> torch.Tensor:
    return torch.tensor(np.asarray(lam, dtype=float), dtype=torch.float64)


def landscape(settings: ToySettings) -> dict:
    """f and f~ on a grid_points x grid_points grid over [-grid_extent, grid_extent]^2 (rows: lam_2)."""
    axis = np.linspace(-settings.grid_extent, settings.grid_extent, settings.grid_points)
    grid = np.stack(np.meshgrid(axis, axis, indexing="xy"), axis=-1)
    values = {objective: ToyProblem(settings.T, settings.gamma, objective).value(grid) for objective in OBJECTIVES}
    return {"axis": axis, "f": values["f"], "f_tilde": values["f_tilde"]}


def bound_study(settings: ToySettings) -> dict:
    """Fig. 1 right: ||h_{T-K} - d_lam f|| at lam = bound_point for every K = 0..T, from one engine
    pass, against the closed form and the bound of eq. (10)."""
    closed = ToyProblem(settings.T, settings.gamma, "f")
    lam = np.asarray(settings.bound_point, dtype=float)
    engine_path = torch.stack(krmd_all_depths(bilevel_problem(settings.T, settings.gamma, "f"), as_tensor(lam)))
    engine = engine_path.numpy()
    K = np.arange(settings.T + 1)
    exact = closed.exact(lam)
    closed_form = np.stack([closed.truncated(lam, k) for k in K])
    return {
        "experiment": "toy_bound",
        "settings": asdict(settings),
        "lam": lam.tolist(),
        "K": K.tolist(),
        "error": np.linalg.norm(engine - exact, axis=1).tolist(),
        "closed_form_error": np.linalg.norm(closed_form - exact, axis=1).tolist(),
        "bound": closed.bound(lam, K).tolist(),
        "engine_rmd": engine[settings.T].tolist(),
        "exact": exact.tolist(),
        "grad_w_norm": float(np.linalg.norm(closed.grad_w(lam))),
    }


def trajectory(settings: ToySettings, objective: str, K: int) -> dict:
    """Hyper-gradient descent with h_{T-K} and eta_tau = eta_0 / sqrt(tau), tau = 1..hyper_iterations,
    where eta_0 makes the first step have norm first_step_norm (footnote 4). Records lam_tau for
    tau = 1..hyper_iterations + 1 with d_lam f and the objective there."""
    problem = bilevel_problem(settings.T, settings.gamma, objective)
    closed = ToyProblem(settings.T, settings.gamma, objective)
    lam = as_tensor(settings.start)
    path, steps, outer_losses = [lam], [], []
    eta0 = None
    for tau in range(1, settings.hyper_iterations + 1):
        h, info = krmd(problem, lam, K=K, return_info=True)
        if eta0 is None:
            eta0 = settings.first_step_norm / float(torch.linalg.vector_norm(h))
        lam = lam - eta0 / tau**0.5 * h
        path.append(lam)
        steps.append(h)
        outer_losses.append(info.outer_loss)
    lams = torch.stack(path).numpy()
    exact = closed.exact(lams)
    return {
        "K": K,
        "eta0": eta0,
        "lam": lams.tolist(),
        "h": torch.stack(steps).numpy().tolist(),
        "exact": exact.tolist(),
        "exact_norm": np.linalg.norm(exact, axis=1).tolist(),
        "value": closed.value(lams).tolist(),
        "engine_outer_loss": outer_losses,
    }


def descent_ratios(settings: ToySettings, objective: str, points) -> list[dict]:
    """Fig. 2: h_{T-K}^T d_lam f / ||d_lam f||^2 for every K in K_values at each of ``points``,
    all depths from one engine pass per point."""
    problem = bilevel_problem(settings.T, settings.gamma, objective)
    closed = ToyProblem(settings.T, settings.gamma, objective)
    ratios: dict[int, list[float]] = {K: [] for K in settings.K_values}
    for lam in points:
        depths = krmd_all_depths(problem, as_tensor(lam))
        exact = closed.exact(lam)
        for K in settings.K_values:
            ratios[K].append(float(depths[K].numpy() @ exact / (exact @ exact)))
    return [{"K": K, "ratio": values} for K, values in ratios.items()]


def trajectories(settings: ToySettings, objective: str, log) -> dict:
    """One hyper-optimisation path per K (Figs. 3, 4) and the descent ratios along the first
    ratio_iterations points of the 1-RMD path (Fig. 2)."""
    runs = []
    for K in settings.K_values:
        run = trajectory(settings, objective, K)
        log(
            f"{objective} K={K}: eta0={run['eta0']:.4g}, ||d f|| {run['exact_norm'][0]:.3e} -> "
            f"{run['exact_norm'][-1]:.3e} after {settings.hyper_iterations} hyper-iterations"
        )
        runs.append(run)
    one_rmd_path = next(run["lam"] for run in runs if run["K"] == 1)
    ratios = descent_ratios(settings, objective, one_rmd_path[: settings.ratio_iterations])
    return {
        "experiment": "toy_trajectories",
        "objective": objective,
        "settings": asdict(settings),
        "runs": runs,
        "descent_ratio": ratios,
    }


def optimum(settings: ToySettings) -> dict:
    """Fig. 3's red X: the lowest of the points that gradient descent on the exact d_lam f~ reaches
    from an optimum_starts x optimum_starts grid of starts over the landscape."""
    closed = ToyProblem(settings.T, settings.gamma, "f_tilde")
    axis = np.linspace(-settings.grid_extent, settings.grid_extent, settings.optimum_starts)
    lam = np.stack(np.meshgrid(axis, axis, indexing="xy"), axis=-1).reshape(-1, 2)
    for _ in range(settings.optimum_iterations):
        lam = lam - settings.optimum_rate * closed.exact(lam)
    values = closed.value(lam)
    best = int(np.argmin(values))
    return {
        "experiment": "toy_optimum",
        "objective": "f_tilde",
        "settings": asdict(settings),
        "lam": lam[best].tolist(),
        "value": float(values[best]),
        "exact_norm": float(np.linalg.norm(closed.exact(lam[best]))),
        "starts": len(lam),
    }


def run_reference(args, settings, log) -> None:
    write_npz(args.landscape, **landscape(settings))
    bound = bound_study(settings)
    log(f"bound at lam={bound['lam']}: error at K=1 {bound['error'][1]:.3e} <= {bound['bound'][1]:.3e}")
    write_json(args.bound, bound)
    best = optimum(settings)
    log(f"optimum of f~ at {best['lam']}, value {best['value']:.6g}, ||d f~|| {best['exact_norm']:.2e}")
    write_json(args.optimum, best)


def run_trajectories(args, settings, log) -> None:
    write_json(args.output, trajectories(settings, args.objective, log))


def main(args) -> int:
    settings = ToySettings.from_dict(json.loads(args.settings))
    configure_torch(args.threads)
    with ProgressLog(args.log) as log:
        args.part_run(args, settings, log)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "toy",
        help="toy-problem experiments of sec. 4.1 (Figs. 1-4)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parts = parser.add_subparsers(dest="part", required=True, metavar="part")
    reference = parts.add_parser("reference", help="landscape, bound study and optimum of f~")
    reference.add_argument("--landscape", required=True, help="output .npz of f and f~ on the grid")
    reference.add_argument("--bound", required=True, help="output .json of the Fig. 1 bound study")
    reference.add_argument("--optimum", required=True, help="output .json of the optimum of f~")
    reference.set_defaults(part_run=run_reference)
    paths = parts.add_parser("trajectories", help="K-RMD paths on f or f~ and the descent ratios")
    paths.add_argument("--objective", required=True, choices=OBJECTIVES)
    paths.add_argument("--output", required=True, help="output .json")
    paths.set_defaults(part_run=run_trajectories)
    for part in (reference, paths):
        part.add_argument("--settings", required=True, help="JSON object of ToySettings fields (config's toy section)")
        part.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
        part.add_argument("--log", help="also write the progress lines to this file")
    parser.set_defaults(run=main)
