"""AID against ITD on one problem (Grazzi et al., 2020): for every t of ``iterations`` and every method,
the hypergradient after t lower-level steps from w_0 = 0 (AID-FP and AID-CG with k = t solver
iterations), and again with the lower level started at its solution w* (so that only the reverse or
solver iterations approximate), and its relative error ||h - d_lam f|| / ||d_lam f|| against the
exact implicit hypergradient of :mod:`truncback.experiments.aid_vs_itd.problems`. Raw results only;
wall-clock seconds per call go to the timing file beside the result.

``python -m truncback aid-vs-itd --problem logistic --data mnist_test.npz --settings '{...}' --output logistic.json``
"""

import argparse
import dataclasses
import json
from dataclasses import asdict

import torch

from truncback.experiments.aid_vs_itd import problems
from truncback.experiments.aid_vs_itd.settings import PROBLEMS, SOLVER_ITERATIONS, AidVsItdSettings, spec_at
from truncback.hypergrad import METHODS, display_name, hypergradient, label
from truncback.runtime.determinism import configure_torch
from truncback.runtime.files import load_arrays, timing_path, write_json
from truncback.runtime.measure import timed
from truncback.runtime.progress import ProgressLog


def comparison(name: str, settings: AidVsItdSettings, data_path=None) -> problems.Comparison:
    if name == "ridge":
        return problems.ridge(settings)
    if data_path is None:
        raise ValueError(f"problem {name!r} needs --data (a prepared MNIST .npz)")
    arrays = load_arrays(data_path, ("images", "labels"))
    return getattr(problems, name)(settings, arrays["images"], arrays["labels"])


START_SETTINGS = ("cold", "warm")
"""cold: t lower-level steps from w_0 = 0 and k = t solver iterations (Grazzi et al.'s comparison);
warm: the lower level started at its solution w* (one step, t = 1 for AID; ITD reverses t steps that
stay at w*), so only the k reverse or solver iterations approximate: the linear solvers' own rates."""


def display(spec: dict, t: int) -> str:
    """The legend's name: AID's solver iterations shown as k = t when the config gives no K."""
    if spec["name"] in SOLVER_ITERATIONS and "K" not in spec:
        return METHODS[spec["name"]].display.format(K="t")
    return display_name(spec_at(spec, t), None)


def problem_at(case: problems.Comparison, t: int, start: str):
    problem = case.problem(t)
    return problem if start == "cold" else dataclasses.replace(problem, init=lambda lam: case.w_star)


def compare(case: problems.Comparison, settings: AidVsItdSettings, log) -> tuple[dict, dict]:
    """(result, timing): every method's relative error at every t, from w_0 = 0 (k = t) and from w*
    (warm), with the seconds of each call."""
    exact_norm = torch.linalg.vector_norm(case.exact)
    curves: dict[str, list[dict]] = {start: [] for start in START_SETTINGS}
    seconds: dict[str, dict[str, list[float]]] = {start: {} for start in START_SETTINGS}
    last = settings.iterations[-1]
    for start in START_SETTINGS:
        for spec in settings.methods:
            errors, times = [], []
            for t in settings.iterations:
                h, elapsed = timed(hypergradient, problem_at(case, t, start), case.lam, spec_at(spec, t))
                errors.append(float(torch.linalg.vector_norm(h - case.exact) / exact_norm))
                times.append(elapsed)
            name = label(spec_at(spec, last))
            curves[start].append({"spec": spec, "label": name, "display": display(spec, last), "error": errors})
            seconds[start][name] = times
            log(
                f"{case.name} {start} {name}: relative error {errors[0]:.3e} at t={settings.iterations[0]} -> "
                f"{errors[-1]:.3e} at t={last} ({sum(times):.1f} s)"
            )
    result = {
        "experiment": "aid_vs_itd",
        "problem": case.name,
        "settings": asdict(settings),
        "iterations": list(settings.iterations),
        "lr": case.lr,
        "rate_bound": case.rate_bound,
        "hyperparameters": case.lam.numel(),
        "exact_norm": float(exact_norm),
        "reference": case.reference,
        "methods": curves,
    }
    return result, {"seconds": seconds}


def main(args) -> int:
    settings = AidVsItdSettings.from_dict(json.loads(args.settings))
    configure_torch(args.threads)
    with ProgressLog(args.log) as log:
        case = comparison(args.problem, settings, args.data)
        log(
            f"{case.name}: {case.lam.numel()} hyperparameters, gamma = {case.lr:.4g}, contraction rate <= "
            f"{case.rate_bound:.5f}, ||d_lam f|| = {float(torch.linalg.vector_norm(case.exact)):.4g}; reference: "
            f"{case.reference}"
        )
        result, timing = compare(case, settings, log)
    write_json(timing_path(args.output), timing)
    write_json(args.output, result)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "aid-vs-itd",
        help="AID-FP, AID-CG and ITD against the exact implicit hypergradient on one problem (Grazzi et al. 2020)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--problem", required=True, choices=PROBLEMS)
    parser.add_argument("--data", help="prepared MNIST .npz (images, labels); needed by logistic and hypercleaning")
    parser.add_argument("--settings", default="{}", help="JSON object of AidVsItdSettings fields")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (results depend on it)")
    parser.add_argument("--output", required=True, help="result JSON (seconds go to <stem>.timing.json)")
    parser.add_argument("--log", help="also write the progress lines to this file")
    parser.set_defaults(run=main)
