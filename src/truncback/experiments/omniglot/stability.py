"""Is the lower level stable? Measurements behind the bounds of gamma and rho (docs/assumptions.md).

Gradient descent w_{t+1} = w_t - gamma grad_w g(w_t, lam) has the Jacobian A_{t+1} = I - gamma H_t,
H_t = grad_ww g(w_t, lam). Prop. 3.6 (and Prop. 3.1) assume gamma < 1/beta, beta the largest
|eigenvalue| of H (g beta-smooth); with gamma beta > 2 in some direction, |1 - gamma lambda| > 1 and
the product A_T ... A_1 of the reverse pass (eq. 6) can grow exponentially in T even while g falls.
For each variant of the settings this measures, on fixed meta-training tasks:

  curvature    the lowest and highest eigenvalues of H at w_0 and beta = the largest |eigenvalue| at
               w_0 and along the path w_0, w_{T/4}, ..., w_T (the curvature grows as gradient descent
               runs), by Lanczos with Hessian-vector products (``extreme_eigenvalues``), and gamma beta;
  inner loss   g_S(w_T) / g_S(w_0): does the lower level descend?
  growth       ||d f / d w_0|| / ||grad_{w_T} f|| = ||A_1^T ... A_T^T grad f|| / ||grad f||: is the map
               w_0 -> w_T expansive along the direction the hypergradient uses?
  hypergradient  ||d_lam f||, the exact (full-RMD) hypergradient;

at the initial lam and, after ``iterations`` hyper-iterations of full-RMD meta-training (the
settings' Adam and clipping), at the final lam, with the exact hypergradient's norms over the run.
Hypercleaning's lower level (sec. 4.2.1) is measured the same way at lam = 0 and lam = 40, and against
its global bound beta <= max eig(X^T X / n) / 2 + 2 weight_decay (the mean loss; without the 1/n for
the sum): softmax cross-entropy's Hessian in the logits is at most I/2 and sigmoid(lam_i) < 1.

``python -m truncback.experiments.omniglot.stability --background bg.npz --evaluation ev.npz --settings '{...}'
--mnist mnist.npz --hypercleaning-settings '{...}' --output docs/measurements/omniglot_stability.md``
"""

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from truncback.experiments.hypercleaning.run import cleaning_setup
from truncback.experiments.hypercleaning.settings import HypercleaningSettings
from truncback.experiments.omniglot.model import one_shot_problem
from truncback.experiments.omniglot.run import load_omniglot, run_omniglot, samplers
from truncback.experiments.omniglot.settings import (
    GAMMA_MAX,
    GAMMA_MAX_SHORT_HORIZON,
    RHO_MIN,
    SHORT_HORIZON,
    OmniglotRun,
    OmniglotSettings,
)
from truncback.experiments.omniglot.tasks import Task
from truncback.hypergrad import krmd, trees
from truncback.hypergrad.dynamics import advance, initial_state
from truncback.runtime.atomic import atomic_path
from truncback.runtime.determinism import configure_torch, derive_seed
from truncback.runtime.files import load_arrays

UNBOUNDED = {"gamma_max": 1e9, "rho_min": 0.0}
"""Near the start, gamma = 1e9 sigmoid(theta) moves as the unbounded exp(theta) did (d gamma / d theta =
gamma (1 - gamma / gamma_max)), and rho = exp(theta): the parametrisation before the bounds."""

VARIANTS: list[dict[str, Any]] = [
    {"name": "gamma 0.1, rho 1, no bounds (before)", "settings": {**UNBOUNDED, "init_gamma": 0.1}},
    {"name": "gamma 0.02, rho 1, no bounds", "settings": {**UNBOUNDED, "init_gamma": 0.02}},
    {
        "name": "mean instead of sum over S: gamma 0.1, rho 1 (= sum with gamma 0.02, rho 5)",
        "settings": {**UNBOUNDED, "init_gamma": 0.02, "init_rho": 5.0},
        "train": False,
    },
    {
        "name": "no batch norm (a bias instead), gamma 0.1, rho 1",
        "settings": {**UNBOUNDED, "batch_norm": False, "init_gamma": 0.1},
        "train": False,
    },
    {
        "name": "gamma 0.016 = 1/beta at w_0 (the curvature at the start alone), rho 1",
        "settings": {**UNBOUNDED, "init_gamma": 0.016},
        "train": False,
    },
    {"name": "gamma 0.008, rho 1", "settings": {**UNBOUNDED, "init_gamma": 0.008}, "train": False},
    {
        "name": "gamma = 0.99 gamma_max, rho 1",
        "settings": {"init_gamma": 0.99 * GAMMA_MAX},
        "train": False,
    },
    {"name": "the defaults: gamma = gamma_max / 2, rho 1", "settings": {}},
    {
        "name": "the defaults with quick's network and learning rate (32 filters, 0.01)",
        "settings": {"filters": 32, "hyper_lr": 0.01},
    },
    {
        "name": "the bounds' corner: gamma = 0.99 gamma_max, every rho = rho_min + 0.001",
        "settings": {"init_gamma": 0.99 * GAMMA_MAX, "init_rho": RHO_MIN + 0.001},
        "train": False,
    },
    {
        "name": "quick's network (32 filters) at the corner",
        "settings": {"filters": 32, "init_gamma": 0.99 * GAMMA_MAX, "init_rho": RHO_MIN + 0.001},
        "train": False,
    },
]
"""The variants measured by default: each ``settings`` overrides the command's ``--settings``; those
with ``"train": false`` are measured at the initial lam only."""

SHORT_HORIZON_VARIANTS: list[dict[str, Any]] = [
    {"name": "gamma 0.1, no bounds", "settings": {**UNBOUNDED, "init_gamma": 0.1}, "train": False},
    {"name": "gamma 0.016 = 1/beta at w_0", "settings": {**UNBOUNDED, "init_gamma": 0.016}, "train": False},
    {
        "name": "gamma = 0.99 gamma_max (short horizon)",
        "settings": {"gamma_max": GAMMA_MAX_SHORT_HORIZON, "init_gamma": 0.99 * GAMMA_MAX_SHORT_HORIZON},
        "train": False,
    },
    {"name": "the short horizon's defaults: gamma = gamma_max / 2", "settings": SHORT_HORIZON},
    {"name": "T = 50's bound (gamma_max 0.006, gamma 0.003)", "settings": {}},
    {
        "name": "the short horizon's defaults with quick's network and learning rate",
        "settings": {**SHORT_HORIZON, "filters": 32, "hyper_lr": 0.01},
    },
]
"""The variants of the short horizon (base settings with T = 1): ``--variants short-horizon``."""

VARIANT_SETS = {"default": VARIANTS, "short-horizon": SHORT_HORIZON_VARIANTS}


def extreme_eigenvalues(loss, w, steps: int = 20, seed: int = 0) -> tuple[float, float]:
    """(lowest, highest) eigenvalue of the Hessian of ``loss`` at ``w`` (a tensor or a tree of them):
    the extreme Ritz values of ``steps`` Lanczos iterations with full reorthogonalisation, from a
    seeded random start; each iteration is one Hessian-vector product (forward-over-reverse). Ritz
    values lie inside the spectrum, so they bound it from within; the extremes converge first."""
    leaves, spec = tree_flatten(w)
    shapes, sizes = [leaf.shape for leaf in leaves], [leaf.numel() for leaf in leaves]
    point = torch.cat([leaf.detach().reshape(-1) for leaf in leaves])

    def flat_loss(x):
        return loss(tree_unflatten([part.reshape(shape) for part, shape in zip(torch.split(x, sizes), shapes)], spec))

    gradient = torch.func.grad(flat_loss)
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(point.numel(), generator=generator, dtype=torch.float64).to(point)
    basis, diagonal, off_diagonal = [start / start.norm()], [], []
    for step in range(min(steps, point.numel())):
        product = torch.func.jvp(gradient, (point,), (basis[-1],))[1]
        diagonal.append(float(product @ basis[-1]))
        stacked = torch.stack(basis)
        for _ in range(2):  # twice is enough (Kahan): the basis stays orthonormal to rounding
            product = product - stacked.T @ (stacked @ product)
        length = float(product.norm())
        if step == steps - 1 or length <= 1e-12 * max(1.0, max(abs(d) for d in diagonal)):
            break
        off_diagonal.append(length)
        basis.append(product / length)
    tridiagonal = torch.diag(torch.tensor(diagonal, dtype=torch.float64))
    if len(diagonal) > 1:
        band = torch.tensor(off_diagonal[: len(diagonal) - 1], dtype=torch.float64)
        tridiagonal += torch.diag(band, 1) + torch.diag(band, -1)
    ritz = torch.linalg.eigvalsh(tridiagonal)
    return float(ritz[0]), float(ritz[-1])


PATH_POINTS = 4
"""The curvature is measured at w_t for t = 0, T/4, T/2, 3T/4, T (rounded down)."""


def lower_level(problem, lam, step_size: float, steps: int = 20) -> dict:
    """The measurements of the module docstring on one gradient-descent ``problem`` at ``lam`` (its
    step built by ``gradient_descent``, whose inner loss and data it reads): the extreme eigenvalues
    of grad_ww g at w_0 and the largest |eigenvalue| beta over the path w_0, w_{T/4}, ..., w_T."""
    step = problem.step

    def inner(w):
        return step.inner_loss(w, lam, *step.data)

    exact, info = krmd(problem, lam, problem.T, return_info=True)
    points = sorted({problem.T * k // PATH_POINTS for k in range(PATH_POINTS + 1)})
    state, spectra = initial_state(problem, lam), {}
    for t in range(problem.T + 1):
        if t in points:
            spectra[t] = extreme_eigenvalues(inner, state, steps)
        if t < problem.T:
            state = advance(problem, state, lam, t)
    beta_0 = max(abs(value) for value in spectra[0])
    beta_path = max(abs(value) for spectrum in spectra.values() for value in spectrum)
    with torch.no_grad():
        loss_ratio = float(inner(info.final_state)) / float(inner(initial_state(problem, lam)))
    return {
        "lowest_0": spectra[0][0],
        "highest_0": spectra[0][1],
        "gamma_beta_0": step_size * beta_0,
        "beta_path": beta_path,
        "gamma_beta_path": step_size * beta_path,
        "loss_ratio": loss_ratio,
        "growth": info.alpha_norms[-1] / info.alpha_norms[0],
        "hypergradient_norm": trees.norm(exact),
    }


def _float64(task: Task) -> Task:
    return Task(task.x_train.double(), task.y_train, task.x_query.double(), task.y_query)


def omniglot_tasks(background, evaluation, settings: OmniglotSettings, count: int, seed: int = 0) -> list:
    """The first ``count`` tasks of the validation stream (fixed meta-training tasks), in float64."""
    train_sampler, _ = samplers(background, evaluation, settings, derive_seed("omniglot", 0, seed))
    return [_float64(task) for task in train_sampler.tasks("validation", count)]


def omniglot_at(lam, tasks, settings: OmniglotSettings, steps: int = 20) -> list[dict]:
    """``lower_level`` on every task at ``lam`` (float64)."""
    constraints = settings.constraints()
    gamma = float(constraints.gamma(lam))
    return [
        lower_level(one_shot_problem(task, settings.T, settings.batch_norm, constraints), lam, gamma, steps)
        for task in tasks
    ]


def summary(rows: list[dict]) -> dict:
    """Each measurement's median and maximum over tasks (lowest eigenvalues: the minimum)."""
    result = {}
    for key in rows[0]:
        values = np.array([row[key] for row in rows])
        result[key] = {
            "median": float(np.median(values)),
            "extreme": float(values.min() if "lowest" in key else values.max()),
        }
    return result


def meta_training(background, evaluation, settings: OmniglotSettings, iterations: int, seed: int = 0) -> tuple:
    """``iterations`` hyper-iterations of full RMD (so every recorded norm is the exact one) with the
    settings' optimiser and clipping, evaluating only at the ends on two tasks; returns
    (exact norms per iteration, steps clipped, final lam)."""
    quiet = dataclasses.replace(
        settings,
        eval_every=iterations,
        curve_tasks=2,
        validation_tasks=2,
        test_tasks=2,
        exact_every=iterations,
        checkpoint_every=iterations,
        log_every=iterations,
    )
    result, _, final = run_omniglot(
        background,
        evaluation,
        quiet,
        OmniglotRun({"name": "rmd"}, iterations, (iterations,)),
        seed,
        log=lambda line: None,
    )
    return result.run.train["hypergradient_norm"], result.run.clipped_steps, final


def measure_variant(background, evaluation, base: dict, variant: dict, tasks: int, iterations: int, steps: int) -> dict:
    """The static measurements at the initial lam and, when ``iterations`` > 0, the meta-training
    norms and the static measurements at its final lam."""
    settings = OmniglotSettings.from_dict({**base, **variant["settings"]})
    constraints = settings.constraints()
    fixed = omniglot_tasks(background, evaluation, settings, tasks)
    start = settings.initial_hyperparameters(derive_seed("omniglot", 0, 0), torch.float64)
    entry = {
        "name": variant["name"],
        "gamma": settings.init_gamma,
        "rho": settings.init_rho,
        "initial": summary(omniglot_at(start, fixed, settings, steps)),
    }
    if iterations and variant.get("train", True):
        norms, clipped, final = meta_training(background, evaluation, settings, iterations)
        final = tree_map(lambda leaf: leaf.detach().double(), final)
        first_large = next((i for i, norm in enumerate(norms) if norm > 100 * norms[0]), None)
        entry["training"] = {
            "iterations": iterations,
            "first": norms[0],
            "median": float(np.median(norms)),
            "largest": float(max(norms)),
            "first_above_100x": first_large,
            "clipped": clipped,
            "gamma": float(constraints.gamma(final)),
            "rho_min": float(constraints.rho(final).min()),
        }
        entry["final"] = summary(omniglot_at(final, fixed, settings, steps))
    return entry


def hypercleaning_measurement(images, labels, settings: HypercleaningSettings, steps: int = 20, seed: int = 0) -> dict:
    """Hypercleaning's lower level at lam = 0 (sigmoid = 1/2, the start) and at lam = 40 (every weight
    1 to rounding: the largest curvature over lam at a given W), float64 with eager steps; with the
    global bound. The problem is the run's (``hypercleaning.run.cleaning_setup``): the same split,
    corruption and lower level."""
    measured = dataclasses.replace(settings, dtype="float64", compile=False)
    data, problem, start = cleaning_setup(images, labels, measured, seed)
    second_moment = data.x_train.T @ data.x_train / (len(data.x_train) if settings.inner_loss == "mean" else 1)
    bound = float(torch.linalg.eigvalsh(second_moment)[-1]) / 2 + 2 * settings.weight_decay
    at = {
        name: lower_level(problem, torch.full_like(start, value), settings.lr, steps)
        for name, value in (("lam = 0 (the start)", 0.0), ("lam = 40 (all weights 1)", 40.0))
    }
    return {
        "gamma": settings.lr,
        "inner_loss": settings.inner_loss,
        "weight_decay": settings.weight_decay,
        "T": settings.T,
        "global_beta": bound,
        "at": at,
    }


def _g(value: float) -> str:
    return f"{value:.3g}"


def _pair(entry: dict) -> str:
    """'median [extreme]'."""
    return f"{_g(entry['median'])} [{_g(entry['extreme'])}]"


STATIC_HEADER = (
    "| Variant | gamma | rho | eig. at w_0: lowest, highest | gamma beta at w_0 | beta on the path | "
    "gamma beta on the path | g(w_T)/g(w_0) | growth ‖df/dw_0‖/‖df/dw_T‖ | ‖d_λ f‖ |\n"
    "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def static_row(name: str, gamma: str, rho: str, measured: dict) -> str:
    return (
        f"| {name} | {gamma} | {rho} | {_g(measured['lowest_0']['extreme'])}, {_g(measured['highest_0']['extreme'])} | "
        f"{_pair(measured['gamma_beta_0'])} | {_pair(measured['beta_path'])} | {_pair(measured['gamma_beta_path'])} | "
        f"{_pair(measured['loss_ratio'])} | {_pair(measured['growth'])} | {_pair(measured['hypergradient_norm'])} |"
    )


def report(command: str, base: dict, tasks: int, steps: int, variants: list, cleaning: dict | None) -> str:
    """The measurements as a markdown page."""
    settings = OmniglotSettings.from_dict(base)
    lines = [
        "# Stability of the lower level: measurements",
        "",
        f"Written by `{command}`; the reasons and the choices are in [assumptions.md](../assumptions.md).",
        "",
        f"One-shot Omniglot: {settings.ways}-way, {settings.filters} filters, T = {settings.T}, batch norm "
        f"{settings.batch_norm}, {tasks} fixed meta-training tasks (the validation stream), float64. Eigenvalues "
        f"of the Hessian of g_S by {steps} Lanczos iterations (at w_0: the lowest and highest over the tasks); "
        "beta = max |eigenvalue|, on the path: the largest over w_t, t = 0, T/4, T/2, 3T/4, T; each other cell "
        "is the median over the tasks [the maximum]. growth = "
        "‖d f/d w_0‖ / ‖∇_{w_T} f‖, the reverse pass's amplification (> 1: the map w_0 -> w_T expands along "
        "the direction the hypergradient uses); ‖d_λ f‖ the exact hypergradient (full RMD).",
        "",
        "## At the initial λ",
        "",
        STATIC_HEADER,
    ]
    for entry in variants:
        lines.append(static_row(entry["name"], _g(entry["gamma"]), _g(entry["rho"]), entry["initial"]))
    trained = [entry for entry in variants if "training" in entry]
    if trained:
        lines += [
            "",
            f"## Meta-training with full RMD ({settings.hyper_optimizer}, learning rate {settings.hyper_lr}, "
            f"clipping at {settings.clip_norm})",
            "",
            "Every hyper-iteration's hypergradient is the exact one. 'first > 100x': the first hyper-iteration whose "
            "norm exceeds 100 times the first one's (- if none).",
            "",
            "| Variant | iterations | ‖d_λ f‖ first | median | largest | first > 100x | steps clipped | gamma at the end | "
            "smallest rho at the end |",
            "|:--|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for entry in trained:
            run = entry["training"]
            first = "-" if run["first_above_100x"] is None else str(run["first_above_100x"])
            lines.append(
                f"| {entry['name']} | {run['iterations']} | {_g(run['first'])} | {_g(run['median'])} | "
                f"{_g(run['largest'])} | {first} | {run['clipped']} | {_g(run['gamma'])} | {_g(run['rho_min'])} |"
            )
        lines += ["", "### At the λ meta-training ended at", "", STATIC_HEADER]
        for entry in trained:
            run = entry["training"]
            lines.append(static_row(entry["name"], _g(run["gamma"]), f"≥ {_g(run['rho_min'])}", entry["final"]))
    if cleaning is not None:
        lines += [
            "",
            "## Hypercleaning",
            "",
            f"g(W, λ) = {'(1/n) ' if cleaning['inner_loss'] == 'mean' else ''}Σ σ(λ_i) CE(W x_i, y_i) + "
            f"{cleaning['weight_decay']} ‖W‖² (inner_loss {cleaning['inner_loss']}), W_0 = 0, T = {cleaning['T']}, "
            f"gamma = {cleaning['gamma']}. Global bound, for every W and λ: beta ≤ max eig(XᵀX"
            f"{'/n' if cleaning['inner_loss'] == 'mean' else ''})/2 + "
            f"2·{cleaning['weight_decay']} = {_g(cleaning['global_beta'])}, so gamma beta ≤ "
            f"{_g(cleaning['gamma'] * cleaning['global_beta'])}.",
            "",
            STATIC_HEADER.replace("| Variant | gamma | rho |", "| λ | gamma | |"),
        ]
        for name, measured in cleaning["at"].items():
            lines.append(static_row(name, _g(cleaning["gamma"]), "", summary([measured])))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    configure_torch(args.threads)
    base = json.loads(args.settings)
    variants = VARIANT_SETS.get(args.variants or "default") or json.loads(args.variants)
    background, evaluation = load_omniglot(args.background, args.evaluation)
    measured = []
    for variant in variants:
        measured.append(measure_variant(background, evaluation, base, variant, args.tasks, args.iterations, args.steps))
        print(f"measured: {variant['name']}", file=sys.stderr, flush=True)
    cleaning = None
    if args.mnist:
        arrays = load_arrays(args.mnist, ("images", "labels"))
        hyper = HypercleaningSettings.from_dict(json.loads(args.hypercleaning_settings))
        cleaning = hypercleaning_measurement(arrays["images"], arrays["labels"], hyper, args.steps)
    with atomic_path(args.output) as path:
        path.write_text(report(command_line(args), base, args.tasks, args.steps, measured, cleaning))
    return 0


def command_line(args) -> str:
    """The command that remakes the page (the data files by name only: they lie elsewhere on each machine)."""
    words = ["python", "-m", "truncback.experiments.omniglot.stability", "--background", Path(args.background).name]
    words += ["--evaluation", Path(args.evaluation).name, "--settings", args.settings]
    if args.variants:
        words += ["--variants", args.variants]
    words += ["--tasks", str(args.tasks), "--iterations", str(args.iterations), "--steps", str(args.steps)]
    if args.mnist:
        words += ["--mnist", Path(args.mnist).name, "--hypercleaning-settings", args.hypercleaning_settings]
    return shlex.join(words + ["--output", args.output])


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m truncback.experiments.omniglot.stability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--background", required=True, help="prepared Omniglot .npz (meta-training side)")
    parser.add_argument("--evaluation", required=True, help="prepared Omniglot .npz (meta-test side)")
    parser.add_argument("--settings", default="{}", help="JSON object of OmniglotSettings fields (the base)")
    parser.add_argument(
        "--variants",
        help=f"a named set ({', '.join(VARIANT_SETS)}; default: default) or a JSON list of {{name, settings}} "
        "overriding the base",
    )
    parser.add_argument("--tasks", type=int, default=8, help="fixed tasks measured")
    parser.add_argument(
        "--iterations", type=int, default=0, help="hyper-iterations of full-RMD meta-training (0: none)"
    )
    parser.add_argument("--steps", type=int, default=20, help="Lanczos iterations per eigenvalue estimate")
    parser.add_argument("--mnist", help="prepared MNIST .npz: also measure hypercleaning's lower level")
    parser.add_argument("--hypercleaning-settings", default="{}", help="JSON object of HypercleaningSettings fields")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--output", required=True, help="markdown file")
    return parser


if __name__ == "__main__":
    sys.exit(main())
