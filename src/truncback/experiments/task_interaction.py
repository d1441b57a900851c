"""Task-interaction experiment (sec. 4.2.2, Table 3, Fig. 6): for one dataset and one trial (a random
draw of the small training and validation subsets), hyper-optimise (C, rho) with Adam on K-RMD
hypergradients (eq. 8) for every K, tracking the exact hypergradient d_lam f (full RMD, eq. 6).

Stopping rule (Table 3's "Avg. Iter."): early stopping on the upper-level (validation) loss
f(lam_t): a run stops once f has not fallen below its best value minus ``min_delta`` for
``patience`` consecutive hyper-iterations, or after ``max_hyper_iterations``; the iterations it ran
are reported, and the test accuracy is that of w_T at the hyperparameters with the best f.

``python -m truncback task-interaction --train f_train.npz --test f_test.npz --dataset cifar10 --K 1 5 25 100 --trial 0 --output r.json``
"""

import argparse
import json
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from truncback.determinism import configure_torch, derive_seed
from truncback.experiments.runs import ProgressLog, add_compute_arguments, load_arrays, select_device, write_json
from truncback.experiments.task_interaction_problem import (accuracy, initial_hparams, make_task_data, project,
                                                            task_problem)
from truncback.hypergrad import dynamics, krmd, rmd, trees
from truncback.measure import peak_memory_mib, timed
from truncback.settings import Settings


@dataclass(frozen=True)
class TaskInteractionSettings(Settings):
    """Sizes and optimiser settings of one dataset; the README's Assumptions explain the choices."""

    section: ClassVar[str] = "task_interaction"

    train_per_class: int = 50
    val_per_class: int = 50
    T: int = 100
    lr: float = 0.1
    C_init: float = 0.001
    rho_init: float = 0.001
    hyper_lr: float = 0.001
    max_hyper_iterations: int = 10000
    patience: int = 500
    min_delta: float = 1e-4
    exact_every: int = 10
    dtype: str = "float32"
    log_every: int = 100


def final_metrics(data, problem, hparams) -> dict:
    """Accuracies (%) and validation loss of w_T(lam)."""
    state = dynamics.run(problem, hparams, dynamics.initial_state(problem, hparams), 0, problem.T)
    return {"test_acc": 100 * accuracy(state, data.x_test, data.y_test),
            "val_acc": 100 * accuracy(state, data.x_val, data.y_val),
            "train_acc": 100 * accuracy(state, data.x_train, data.y_train),
            "val_loss": float(problem.outer(state, hparams))}


def exact_comparison(h, exact) -> dict:
    """||d f||, cosine(h, d f) and ||h - d f|| / ||d f|| for the tuple hypergradients."""
    norm = trees.norm(exact)
    return {"grad_norm": norm,
            "cosine": float(trees.dot(h, exact)) / max(norm * trees.norm(h), 1e-300),
            "relative_error": trees.norm(trees.sub(h, exact)) / max(norm, 1e-300)}


def run_method(data, settings: TaskInteractionSettings, K: int, log) -> dict:
    """One hyper-optimisation with K-RMD (K = T is full RMD) under the early-stopping rule."""
    dtype = getattr(torch, settings.dtype)
    problem = task_problem(data, settings.T, settings.lr)
    hparams = initial_hparams(data.classes, settings.C_init, settings.rho_init, dtype, data.x_train.device)
    optimizer = torch.optim.Adam(hparams, lr=settings.hyper_lr)
    krmd(task_problem(data, 1, settings.lr), trees.detach(hparams), 1)  # first-call set-up kept out of the peak
    curve = {"iteration": [], "outer_loss": []}
    exact = {"iteration": [], "grad_norm": [], "cosine": [], "relative_error": []}
    seconds, best, waited = [], None, 0
    for iteration in range(settings.max_hyper_iterations):
        lam = trees.detach(hparams)
        if iteration == 0:  # profiled once for its memory; the profiler's overhead is kept out of the timing
            (h, info), peak_mib = peak_memory_mib(krmd, problem, lam, K, return_info=True)
        else:
            (h, info), elapsed = timed(krmd, problem, lam, K, return_info=True)
            seconds.append(elapsed)
        curve["iteration"].append(iteration)
        curve["outer_loss"].append(info.outer_loss)
        if best is None or info.outer_loss < best["loss"] - settings.min_delta:
            best, waited = {"loss": info.outer_loss, "iteration": iteration,
                            "hparams": tuple(t.clone() for t in lam)}, 0
        else:
            waited += 1
        stop = waited >= settings.patience or iteration == settings.max_hyper_iterations - 1
        if iteration % settings.exact_every == 0 or stop:
            exact["iteration"].append(iteration)
            for key, value in exact_comparison(h, rmd(problem, lam)).items():
                exact[key].append(value)
        if iteration % settings.log_every == 0:
            log(f"  K={K} iter {iteration:5d}  val loss {info.outer_loss:.4f}  best {best['loss']:.4f}  "
                f"{sum(seconds) / max(len(seconds), 1):.3f} s/iter")
        if stop:
            break
        optimizer.zero_grad()
        for tensor, gradient in zip(hparams, h):
            tensor.grad = gradient
        optimizer.step()
        project(hparams)
    final = final_metrics(data, problem, best["hparams"])
    log(f"  K={K} stopped after {iteration + 1} hyper-iterations (best at {best['iteration']}): "
        f"test acc {final['test_acc']:.2f}, val loss {final['val_loss']:.4f}")
    A, rho = best["hparams"]
    return {"K": K, "iterations": iteration + 1, "best_iteration": best["iteration"],
            "curve": curve, "exact": exact, "final": final,
            "hparams": {"rho": float(rho), "C_mean": float(A.mean()), "C_max": float(A.max())},
            "measured": {"seconds_per_iteration": sum(seconds) / max(len(seconds), 1),
                         "hypergradient_peak_mib": peak_mib, "states_held": info.states_held,
                         "state_mib": info.states_held * state_bytes(problem, lam) / 2 ** 20}}


def state_bytes(problem, hparams) -> int:
    state = dynamics.initial_state(problem, hparams)
    return sum(t.numel() * t.element_size() for t in state)


def run_trial(train, test, dataset: str, settings: TaskInteractionSettings, K_values, trial: int, log,
              device="cpu") -> dict:
    """Every K on the subsets of trial ``trial`` (the same draw for every K), on ``device``. ``train``
    and ``test`` are feature files' arrays (features, labels, extractor, pretrained)."""
    bad = [K for K in K_values if not 1 <= K <= settings.T]
    if bad:
        raise ValueError(f"K values {bad} must lie in [1, T={settings.T}]")
    dtype = getattr(torch, settings.dtype)
    data = make_task_data(train["features"], train["labels"], test["features"], test["labels"],
                          settings.train_per_class, settings.val_per_class,
                          derive_seed(f"task_interaction/{dataset}", 0, trial), dtype=dtype, device=device)
    problem = task_problem(data, settings.T, settings.lr)
    baseline = final_metrics(data, problem,
                             initial_hparams(data.classes, settings.C_init, settings.rho_init, dtype, device))
    log(f"task interaction {dataset} trial {trial}: {len(data.y_train)} train / {len(data.y_val)} val / "
        f"{len(data.y_test)} test, {data.classes} classes, {data.x_train.shape[1]} features "
        f"({train['extractor'].item()}); initial-lam test acc {baseline['test_acc']:.2f}")
    return {"experiment": "task_interaction", "dataset": dataset, "trial": trial, "settings": asdict(settings),
            "features": {"extractor": str(train["extractor"].item()), "pretrained": bool(train["pretrained"].item()),
                         "dim": int(data.x_train.shape[1])},
            "sizes": {"train": len(data.y_train), "val": len(data.y_val), "test": len(data.y_test),
                      "classes": data.classes},
            "baseline": baseline,
            "methods": [run_method(data, settings, K, log) for K in K_values]}


FEATURE_KEYS = ("features", "labels", "extractor", "pretrained")


def main(args) -> int:
    settings = TaskInteractionSettings.from_dict(json.loads(args.settings))
    configure_torch(args.threads)
    device = select_device(args.device)
    train, test = load_arrays(args.train, FEATURE_KEYS), load_arrays(args.test, FEATURE_KEYS)
    with ProgressLog(args.log) as log:
        result = run_trial(train, test, args.dataset, settings, args.K, args.trial, log, device)
    write_json(args.output, result)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("task-interaction", help="one task-interaction trial (Table 3, Fig. 6)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="features .npz of the training split (from `features`)")
    parser.add_argument("--test", required=True, help="features .npz of the test split")
    parser.add_argument("--dataset", required=True, help="dataset name, for the seed and the result (e.g. cifar10)")
    parser.add_argument("--settings", default="{}", help="JSON object of TaskInteractionSettings fields")
    parser.add_argument("--K", type=int, nargs="+", required=True, help="truncation depths (K = T: full RMD)")
    parser.add_argument("--trial", type=int, default=0, help="trial index (the subsets are derived from it)")
    add_compute_arguments(parser)
    parser.add_argument("--output", required=True, help="result JSON")
    parser.add_argument("--log", help="also write the progress lines to this file")
    parser.set_defaults(run=main)
