"""One task-interaction run (sec. 4.2.2): for one dataset, one trial (a random draw of the small
training and validation subsets) and one hypergradient method, hyper-optimise (C, rho) through the
shared harness, tracking the exact hypergradient d_lam f (full RMD, eq. 6).

Stopping rule (Table 3's "Avg. Iter."): early stopping on the upper-level (validation) loss
f(lam_t): a run stops once f has not fallen below its best value minus ``min_delta`` for
``patience`` consecutive hyper-iterations, or after ``max_hyper_iterations``; the iterations it ran
are reported, and the test accuracy is that of w_T at the hyperparameters with the best f.

``python -m truncback task-interaction --train f_train.npz --test f_test.npz --dataset cifar10 --method krmd-K5 --trial 0 --output r.json``
"""

import argparse
import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from truncback.experiments.task_interaction.problem import (
    accuracy,
    initial_hparams,
    make_task_data,
    project,
    task_data,
    task_family,
)
from truncback.experiments.task_interaction.subsets import per_class_split, trial_seed
from truncback.experiments.task_interaction.settings import TaskInteractionSettings
from truncback.hypergrad import dynamics, resolve
from truncback.runtime.command import add_run_arguments, run_command
from truncback.runtime.determinism import derive_seed
from truncback.runtime.files import load_npz
from truncback.runtime.harness import LoopSettings, Objective, RunRecord, hyper_optimise

FEATURE_KEYS = ("features", "labels", "computed", "extractor", "pretrained", "settings")


def load_features(path) -> dict:
    """The arrays of a features file (``FEATURE_KEYS``, written by the ``features`` command), and its
    ``path``."""
    return {**load_npz(path, FEATURE_KEYS), "path": str(path)}


def check_drawn_computed(train: dict, rows: np.ndarray, dataset: str, trial: int) -> None:
    """A ValueError naming the features file if trial ``trial`` draws a row whose features were not
    computed (the file was made for fewer trials or other subset sizes: ``features --drawn``), unless
    the file computed only its first ``max_images`` rows on purpose (the rehearsal's timing)."""
    missing = rows[~train["computed"][rows]]
    if len(missing) and json.loads(str(train["settings"].item())).get("max_images") is None:
        raise ValueError(
            f"{train['path']}: trial {trial} of {dataset} draws {len(missing)} row(s) whose features were not "
            f"computed (e.g. row {int(missing[0])}); remake the file with `features --drawn` covering this trial "
            "and these subset sizes"
        )


@dataclass
class TaskInteractionResult:
    """The raw result of one (dataset, trial, method) run (read by Table 3 and Fig. 6)."""

    LAYOUT: ClassVar[str] = "truncback.task_interaction/3"

    method: dict
    label: str
    display: str
    dataset: str
    trial: int
    settings: dict
    features: dict
    sizes: dict
    baseline: dict
    run: RunRecord
    iterations: int
    best_iteration: int
    final: dict
    hparams: dict


def final_metrics(data, problem, hparams) -> dict:
    """Accuracies (%) and validation loss of w_T(lam)."""
    state = dynamics.run(problem, hparams, dynamics.initial_state(problem, hparams), 0, problem.T)
    return {
        "test_acc": 100 * accuracy(state, data.x_test, data.y_test),
        "val_acc": 100 * accuracy(state, data.x_val, data.y_val),
        "train_acc": 100 * accuracy(state, data.x_train, data.y_train),
        "val_loss": float(problem.outer(state, hparams)),
    }


class EarlyStopped(Objective):
    """One fixed problem; (C, rho) clipped at 0 after each step; stops when the validation loss has not
    improved by ``min_delta`` for ``patience`` hyper-iterations, remembering the best lam."""

    def __init__(self, problem, settings: TaskInteractionSettings, device):
        self.problem, self.settings, self.device = problem, settings, device
        self.best: dict[str, Any] | None = None  # {loss, iteration, hparams} of the best hyper-iteration
        self.waited = 0

    def problems(self, iteration: int) -> list:
        return [self.problem]

    def project(self, hparams) -> None:
        project(hparams)

    def should_stop(self, iteration: int, outer_loss: float, lam) -> bool:
        if self.best is None or outer_loss < self.best["loss"] - self.settings.min_delta:
            self.best, self.waited = {"loss": outer_loss, "iteration": iteration, "hparams": lam}, 0
        else:
            self.waited += 1
        return self.waited >= self.settings.patience or iteration == self.settings.max_hyper_iterations - 1

    def state_dict(self) -> dict:
        return {"best": self.best, "waited": self.waited}

    def load_state_dict(self, state: dict) -> None:
        best = state["best"]
        best["hparams"] = tuple(t.to(self.device) for t in best["hparams"])
        self.best, self.waited = best, state["waited"]


@dataclass
class Trial:
    """One trial's data (its subsets drawn and standardised), its bilevel problem, the starting
    (A, rho), the test metrics there and the run's title."""

    data: Any
    problem: Any
    start: tuple
    baseline: dict
    title: str


def prepare_trial(train, test, dataset: str, settings: TaskInteractionSettings, trial: int, device, family=None):
    """Trial ``trial`` of ``dataset`` on ``device``: its subsets (the same draw for every method), its
    problem (a member of ``family``, ``problem.task_family``, when given; else of its own family), its
    start and the metrics there. ``train`` and ``test`` are feature files' arrays."""
    seed = trial_seed(dataset, trial)
    split = per_class_split(train["labels"], settings.train_per_class, settings.val_per_class, seed)
    check_drawn_computed(train, np.concatenate(split), dataset, trial)
    data = make_task_data(
        train["features"],
        train["labels"],
        test["features"],
        test["labels"],
        settings.train_per_class,
        settings.val_per_class,
        seed,
        dtype=getattr(torch, settings.dtype),
        device=device,
        split=split,
    )
    family = family or task_family(data.classes, settings.T, settings.lr, settings.compile)
    problem = family.problem(task_data(data))
    start = initial_hparams(data.classes, settings.C_init, settings.rho_init, data.x_train.dtype, device)
    baseline = final_metrics(data, problem, tuple(t.detach() for t in start))
    title = (
        f"task interaction {dataset} trial {trial}: {len(data.y_train)} train / {len(data.y_val)} val / "
        f"{len(data.y_test)} test, {data.classes} classes, {data.x_train.shape[1]} features "
        f"({train['extractor'].item()}); initial-lam test acc {baseline['test_acc']:.2f};"
    )
    return Trial(data, problem, start, baseline, title)


def trial_result(
    prepared: Trial,
    objective: EarlyStopped,
    run,
    train,
    dataset: str,
    settings: TaskInteractionSettings,
    trial: int,
    log,
) -> TaskInteractionResult:
    """The result of ``run`` (a ``HyperRun``) on trial ``trial``: the metrics at its best (A, rho)."""
    best = objective.best
    assert best is not None  # set at the first hyper-iteration's should_stop
    data = prepared.data
    final = final_metrics(data, prepared.problem, best["hparams"])
    log(
        f"  trial {trial}: stopped after {run.record.iterations_run} hyper-iterations (best at {best['iteration']}): "
        f"test acc {final['test_acc']:.2f}, val loss {final['val_loss']:.4f}"
    )
    A, rho = best["hparams"]
    return TaskInteractionResult(
        method=run.method,
        label=run.label,
        display=run.display,
        dataset=dataset,
        trial=trial,
        settings=asdict(settings),
        features={
            "extractor": str(train["extractor"].item()),
            "pretrained": bool(train["pretrained"].item()),
            "dim": int(data.x_train.shape[1]),
        },
        sizes={"train": len(data.y_train), "val": len(data.y_val), "test": len(data.y_test), "classes": data.classes},
        baseline=prepared.baseline,
        run=run.record,
        iterations=run.record.iterations_run,
        best_iteration=best["iteration"],
        final=final,
        hparams={"rho": float(rho), "C_mean": float(A.mean()), "C_max": float(A.max())},
    )


def run_task_interaction(
    train,
    test,
    dataset: str,
    settings: TaskInteractionSettings,
    method,
    trial: int,
    log,
    device="cpu",
    checkpoint=None,
    stop_after=None,
    exact: bool = True,
):
    """One method on the subsets of trial ``trial`` (the same draw for every method), on ``device``.
    ``train`` and ``test`` are feature files' arrays (features, labels, extractor, pretrained); with
    ``exact`` false, no comparison with the exact hypergradient (its record stays empty).
    Returns (result, timing)."""
    method = resolve(method, settings.T)
    prepared = prepare_trial(train, test, dataset, settings, trial, device)
    objective = EarlyStopped(prepared.problem, settings, device)
    run = hyper_optimise(
        objective,
        prepared.start,
        method,
        trial_loop(settings, exact),
        log=log,
        title=prepared.title,
        generator_seed=derive_seed(f"task_interaction/{dataset}/method", 0, trial),
        checkpoint=checkpoint,
        stop_after=stop_after,
        fingerprint={"settings": asdict(settings), "dataset": dataset, "trial": trial},
    )
    return trial_result(prepared, objective, run, train, dataset, settings, trial, log), run.timing


def trial_loop(settings: TaskInteractionSettings, exact: bool) -> LoopSettings:
    """The harness's loop for a trial: the settings', without exact comparisons unless ``exact``."""
    return settings.loop() if exact else dataclasses.replace(settings.loop(), exact_every=None)


def main(args) -> int:
    settings = TaskInteractionSettings.from_dict(json.loads(args.settings))
    method = resolve(args.method, settings.T)

    def run(device, log, checkpoint):
        train, test = load_features(args.train), load_features(args.test)
        result, timing = run_task_interaction(
            train,
            test,
            args.dataset,
            settings,
            method,
            args.trial,
            log,
            device,
            checkpoint,
            args.stop_after,
            exact=not args.no_exact,
        )
        return result, timing, None

    return run_command(args, run, inputs=[args.train, args.test])


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "task-interaction",
        help="one task-interaction run (Table 3, Fig. 6)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train", required=True, help="features .npz of the training split (from `features`)")
    parser.add_argument("--test", required=True, help="features .npz of the test split")
    parser.add_argument("--dataset", required=True, help="dataset name, for the seed and the result (e.g. cifar10)")
    parser.add_argument("--settings", default="{}", help="JSON object of TaskInteractionSettings fields")
    parser.add_argument("--trial", type=int, default=0, help="trial index (the subsets are derived from it)")
    parser.add_argument(
        "--no-exact",
        action="store_true",
        help="skip the comparisons with the exact hypergradient (the trials Fig. 6 does not draw)",
    )
    add_run_arguments(parser)
    parser.set_defaults(run=main)
