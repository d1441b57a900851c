"""FOM vs UFOM on the companion paper's problem family (Likhosherstov et al. 2021): raw result files
only, no plotting.

  paths      per seed, SGD on lam with the engine's FOM and UFOM(q) estimates on one task drawn per
             iteration: lam_{tau+1} = lam_tau - eta0 / sqrt(tau) h_tau, with ||grad F||, ||lam - lam*|| and
             ||lam - lam_FOM|| along each path from the closed form, and FOM's floor ||grad F(lam_FOM)||
  estimator  at one seeded lam and one task: (a) unbiasedness, ``draws`` UFOM(q) estimates per q against
             the closed-form d_lam f_i; (b) time-variance, their variance and lower-level step evaluations
             per estimate against the expectation; (c) memory, the states FOM, UFOM and full RMD hold and
             their step evaluations for every T of memory_T

Wall-clock seconds go to ``<stem>.timing.json`` beside each result, never into it: the results are the
same bytes on every run.

``python -m truncback fom-ufom paths --settings '{...}' --output paths.json``
"""

import argparse
import dataclasses
import json
from dataclasses import asdict

import numpy as np
import torch

from truncback.experiments.fom_ufom.problem import TaskFamily, bilevel_problem
from truncback.experiments.fom_ufom.settings import FomUfomSettings
from truncback.hypergrad import display_name, hypergradient, label
from truncback.runtime.determinism import configure_torch, derive_seed
from truncback.runtime.files import timing_path, write_json
from truncback.runtime.measure import timed
from truncback.runtime.progress import ProgressLog


class CountedStep:
    """A lower-level step that counts its evaluations, with its graph (vjp) or without (forward)."""

    def __init__(self, step):
        self.step, self.count = step, 0

    def __call__(self, w, lam, t):
        self.count += 1
        return self.step(w, lam, t)

    def without_graph(self, w, lam, t):
        self.count += 1
        return self.step.without_graph(w, lam, t)


def counted(problem):
    """``problem`` with its step wrapped in a :class:`CountedStep` (read it as ``problem.step.count``)."""
    return dataclasses.replace(problem, step=CountedStep(problem.step))


def expected_step_evaluations(T: int, q: float) -> float:
    """Step evaluations of one UFOM(q) estimate in expectation, from first_order.py: FOM runs the T steps
    without a graph, then again with a graph for each B_t product (2T); with probability q the exact
    correction runs T steps, then for t = T-1, ..., 0 recomputes w_t from w_0 (t steps) and takes the
    vjp of step t (1 step): T + sum_{t<T} (t + 1) = T + T (T + 1) / 2. So 2T + q (T + T (T + 1) / 2)."""
    return 2 * T + q * (T + T * (T + 1) / 2)


def task_family(settings: FomUfomSettings, T: int | None = None) -> TaskFamily:
    """The settings' tasks, with T lower-level steps (default: settings.T)."""
    return TaskFamily.draw(
        settings.d,
        settings.curvatures,
        settings.validation_offsets,
        settings.tasks_per_type,
        settings.target_spread,
        settings.alpha,
        T or settings.T,
        settings.task_seed,
    )


def family_summary(family: TaskFamily) -> dict:
    """The tasks and the closed-form points every figure and table compares with."""
    stationary, fom_point = family.stationary_point(), family.fom_fixed_point()
    return {
        "curvature": family.curvature.tolist(),
        "inner_target": family.inner_target.tolist(),
        "validation_target": family.validation_target.tolist(),
        "contraction": family.contraction.tolist(),
        "stationary_point": stationary.tolist(),
        "fom_fixed_point": fom_point.tolist(),
        "fom_floor": family.fom_floor(),
        "value_stationary": float(family.value(stationary)),
        "value_fom_fixed_point": float(family.value(fom_point)),
    }


def seeded_lam(settings: FomUfomSettings, name: str, seed: int) -> torch.Tensor:
    """lam ~ N(0, start_scale^2 I) from the seed derived from (name, seed)."""
    generator = torch.Generator().manual_seed(derive_seed(name, 0, seed))
    return settings.start_scale * torch.randn(settings.d, generator=generator, dtype=torch.float64)


def sgd_path(settings: FomUfomSettings, family: TaskFamily, spec: dict, seed: int) -> tuple[dict, float]:
    """lam_{tau+1} = lam_tau - eta0 / sqrt(tau) h(lam_tau; i_tau), tau = 1..iterations, i_tau uniform over the
    tasks. The start and the task sequence depend on the seed only (every method sees the same ones);
    UFOM's coins have a generator of their own. Returns the path's record and its seconds per iteration."""
    problems = [bilevel_problem(family, task) for task in range(family.tasks)]
    tasks = torch.Generator().manual_seed(derive_seed("fom_ufom/tasks", 0, seed))
    coins = torch.Generator().manual_seed(derive_seed("fom_ufom/coins", 0, seed))

    def descend(lam):
        path = [lam]
        for tau in range(1, settings.iterations + 1):
            task = int(torch.randint(family.tasks, (), generator=tasks))
            h = hypergradient(problems[task], lam, spec, generator=coins)
            lam = lam - settings.eta0 / tau**0.5 * h
            path.append(lam)
        return torch.stack(path).numpy()

    lams, seconds = timed(descend, seeded_lam(settings, "fom_ufom/start", seed))
    record = {
        "label": label(spec),
        "display": display_name(spec),
        "spec": spec,
        "seed": seed,
        "start": lams[0].tolist(),
        "final_lam": lams[-1].tolist(),
        "exact_norm": family.gradient_norm(lams).tolist(),
        "distance_stationary": np.linalg.norm(lams - family.stationary_point(), axis=1).tolist(),
        "distance_fom_fixed_point": np.linalg.norm(lams - family.fom_fixed_point(), axis=1).tolist(),
    }
    return record, seconds / settings.iterations


def path_specs(settings: FomUfomSettings) -> list[dict]:
    return [{"name": "fom"}] + [{"name": "ufom", "q": q} for q in settings.path_q]


def paths(settings: FomUfomSettings, log) -> tuple[dict, dict]:
    """Every (method, seed) path; returns the result and the timing (seconds per iteration per label)."""
    family = task_family(settings)
    summary = family_summary(family)
    log(f"FOM floor ||grad F(lam_FOM)|| = {summary['fom_floor']:.4g}, F(lam*) = {summary['value_stationary']:.4g}")
    runs: list[dict] = []
    seconds: dict[str, list[float]] = {}
    for spec in path_specs(settings):
        for seed in range(settings.seeds):
            run, per_iteration = sgd_path(settings, family, spec, seed)
            log(
                f"{run['label']} seed {seed}: ||grad F|| {run['exact_norm'][0]:.3e} -> {run['exact_norm'][-1]:.3e}, "
                f"||lam - lam*|| = {run['distance_stationary'][-1]:.3e}"
            )
            runs.append(run)
            seconds.setdefault(run["label"], []).append(per_iteration)
    result = {"experiment": "fom_ufom_paths", "settings": asdict(settings), "family": summary, "runs": runs}
    return result, {"seconds_per_iteration": seconds}


def estimator_task(settings: FomUfomSettings) -> int:
    """The first task of type estimator_type."""
    return settings.estimator_type * settings.tasks_per_type


def ufom_draws(problem, lam: torch.Tensor, q: float, draws: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``draws`` UFOM(q) estimates at lam ([draws, d]), the step evaluations of each and the seconds per
    estimate. The coins come from one seed for every q, so the draws of two q values are coupled."""
    generator = torch.Generator().manual_seed(derive_seed("fom_ufom/estimator", 0, 0))
    problem = counted(problem)

    def draw_all():
        estimates, steps = [], []
        for _ in range(draws):
            before = problem.step.count
            estimates.append(hypergradient(problem, lam, "ufom", q=q, generator=generator).numpy())
            steps.append(problem.step.count - before)
        return np.array(estimates), np.array(steps)

    (estimates, steps), seconds = timed(draw_all)
    return estimates, steps, seconds / draws


def standardised_bias(mean, exact, standard_error, q: float) -> float | None:
    """max_k |mean_k - exact_k| / SE_k; None for q = 1, where every draw is the exact term and the SE is
    rounding noise."""
    if q == 1:
        return None
    return float(np.max(np.abs(mean - exact) / standard_error))


def estimator_statistics(estimates, steps, exact, fom, T: int, q: float) -> dict:
    """Mean, standard error, bias in standard errors and variance (trace of the covariance) of the draws,
    with the theoretical variance (1 - q) / q ||d_lam f_i - FOM_i||^2 of FOM + (xi / q)(exact - FOM),
    and the step evaluations per estimate (mean, its standard error, the expectation)."""
    mean = estimates.mean(axis=0)
    standard_error = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    return {
        "q": q,
        "mean": mean.tolist(),
        "standard_error": standard_error.tolist(),
        "max_abs_bias": float(np.max(np.abs(mean - exact))),
        "max_standardised_bias": standardised_bias(mean, exact, standard_error, q),
        "variance": float(np.trace(np.atleast_2d(np.cov(estimates, rowvar=False)))),
        "variance_theory": (1 - q) / q * float(np.sum((exact - fom) ** 2)),
        "steps_mean": float(steps.mean()),
        "steps_standard_error": float(steps.std(ddof=1) / np.sqrt(len(steps))),
        "steps_expected": expected_step_evaluations(T, q),
        "corrections": int(np.sum(steps > expected_step_evaluations(T, 0.0))),
    }


def unbiasedness(settings: FomUfomSettings, log) -> tuple[dict, dict]:
    """(a) and (b): every q of estimator_q at one seeded lam on one task; returns the result part and the
    seconds per estimate per q."""
    family, task = task_family(settings), estimator_task(settings)
    lam = seeded_lam(settings, "fom_ufom/estimator_lam", 0)
    exact, fom = family.task_gradients(lam.numpy())[task], family.fom_estimates(lam.numpy())[task]
    studies, seconds = [], {}
    for q in settings.estimator_q:
        estimates, steps, seconds[str(q)] = ufom_draws(bilevel_problem(family, task), lam, q, settings.draws)
        study = estimator_statistics(estimates, steps, exact, fom, settings.T, q)
        log(
            f"q={q}: max |mean - exact| / SE = {study['max_standardised_bias']}, variance {study['variance']:.4g} "
            f"(theory {study['variance_theory']:.4g}), steps {study['steps_mean']:.1f} "
            f"(expected {study['steps_expected']:.1f})"
        )
        studies.append(study)
    return {"task": task, "lam": lam.tolist(), "exact": exact.tolist(), "fom": fom.tolist(), "by_q": studies}, seconds


MEMORY_SPECS = {"fom": {"name": "fom"}, "ufom_exact_branch": {"name": "ufom", "q": 1.0}, "rmd": {"name": "rmd"}}
"""(c)'s methods: UFOM with q = 1 always takes the exact correction, the branch that holds the most."""


def memory(settings: FomUfomSettings, log) -> dict:
    """(c): states held and step evaluations of one estimate of FOM, UFOM's exact branch and full RMD on
    the estimator task for every T of memory_T, with UFOM(q)'s expected step evaluations per q."""
    task, lam = estimator_task(settings), seeded_lam(settings, "fom_ufom/estimator_lam", 0)
    states: dict[str, list[int]] = {name: [] for name in MEMORY_SPECS}
    steps: dict[str, list[int]] = {name: [] for name in MEMORY_SPECS}
    for T in settings.memory_T:
        for name, spec in MEMORY_SPECS.items():
            problem = counted(bilevel_problem(task_family(settings, T), task))
            _, info = hypergradient(problem, lam, spec, return_info=True)
            states[name].append(info.states_held)
            steps[name].append(problem.step.count)
        log(f"T={T}: states held " + ", ".join(f"{name} {states[name][-1]}" for name in MEMORY_SPECS))
    expected = {str(q): [expected_step_evaluations(T, q) for T in settings.memory_T] for q in settings.estimator_q}
    return {
        "T": list(settings.memory_T),
        "states_held": states,
        "step_evaluations": steps,
        "expected_ufom_steps": expected,
    }


def estimator(settings: FomUfomSettings, log) -> tuple[dict, dict]:
    unbiased, seconds = unbiasedness(settings, log)
    result = {
        "experiment": "fom_ufom_estimator",
        "settings": asdict(settings),
        "family": family_summary(task_family(settings)),
        "unbiasedness": unbiased,
        "memory": memory(settings, log),
    }
    return result, {"seconds_per_estimate": seconds}


PARTS = {"paths": paths, "estimator": estimator}


def main(args) -> int:
    settings = FomUfomSettings.from_dict(json.loads(args.settings))
    configure_torch(args.threads)
    with ProgressLog(args.log) as log:
        result, timing = PARTS[args.part](settings, log)
    write_json(args.output, result)
    write_json(timing_path(args.output), timing)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fom-ufom",
        help="FOM vs UFOM on the companion paper's problem family",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parts = parser.add_subparsers(dest="part", required=True, metavar="part")
    helps = {
        "paths": "FOM and UFOM SGD paths with ||grad F|| along them",
        "estimator": "UFOM's bias, variance and step evaluations per q; states held against T",
    }
    for name, help_text in helps.items():
        part = parts.add_parser(name, help=help_text)
        part.add_argument(
            "--settings", required=True, help="JSON object of FomUfomSettings fields (config's fom_ufom section)"
        )
        part.add_argument("--output", required=True, help="output .json (seconds go to <stem>.timing.json)")
        part.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
        part.add_argument("--log", help="also write the progress lines to this file")
    parser.set_defaults(run=main)
