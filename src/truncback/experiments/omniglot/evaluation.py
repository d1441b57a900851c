"""Evaluation during one-shot meta-training (Table 4, Fig. 7 plots 1-2): the network adapted by the
lower level to S of fixed tasks, scored on their Q. Meta-test accuracy is measured on tasks of the
meta-test characters; the validation error is the upper-level loss f on Q of fixed tasks of the
meta-training characters (the paper's "validation error" is the upper objective, sec. 4.2.2)."""

import math

import numpy as np

from truncback.experiments.omniglot.batched import TASKS_PER_BATCH, evaluate_tasks
from truncback.experiments.omniglot.model import Constraints

Z_95 = 1.959963984540054


def evaluation_tasks(train_sampler, test_sampler, test_tasks: int, validation_tasks: int) -> dict:
    """The fixed task sets, the same at every evaluation and for every method."""
    return {
        "test": test_sampler.tasks("test", test_tasks),
        "validation": train_sampler.tasks("validation", validation_tasks),
    }


def empty_curves() -> dict:
    return {"iteration": [], "test_accuracy": [], "test_loss": [], "validation_loss": [], "validation_error": []}


def accuracy_summary(accuracies) -> dict:
    """Mean accuracy (%) over tasks with the half-width of its normal 95% interval (1.96 standard
    errors of the mean over tasks)."""
    values = 100 * np.asarray(accuracies, dtype=float)
    if len(values) < 2:
        raise ValueError(f"a 95% interval needs at least 2 tasks, got {len(values)}")
    return {
        "accuracy": float(values.mean()),
        "ci95": float(Z_95 * values.std(ddof=1) / math.sqrt(len(values))),
        "tasks": len(values),
    }


def evaluate_point(
    hparams,
    tasks: dict,
    T: int,
    batch_norm: bool,
    constraints: Constraints,
    curve_tasks: int,
    iteration: int,
    curves: dict,
    milestones: list,
    milestone: bool,
    w0: dict | None = None,
) -> str:
    """Appends to ``curves`` the accuracy on the first ``curve_tasks`` test tasks and the validation
    loss and error after ``iteration`` hyper-iterations; at a milestone, also the accuracy over all
    test tasks to ``milestones``. The tasks' inner loops run ``TASKS_PER_BATCH`` at a time (``batched``),
    from c or the fixed ``w0``. Returns a progress line."""
    test = evaluate_tasks(
        tasks["test"][: None if milestone else curve_tasks], hparams, T, batch_norm, constraints, TASKS_PER_BATCH, w0
    )
    validation = evaluate_tasks(tasks["validation"], hparams, T, batch_norm, constraints, TASKS_PER_BATCH, w0)
    curves["iteration"].append(iteration)
    curves["test_accuracy"].append(100 * float(np.mean([accuracy for accuracy, _ in test[:curve_tasks]])))
    curves["test_loss"].append(float(np.mean([loss for _, loss in test[:curve_tasks]])))
    curves["validation_loss"].append(float(np.mean([loss for _, loss in validation])))
    curves["validation_error"].append(100 * (1 - float(np.mean([accuracy for accuracy, _ in validation]))))
    line = (
        f"  eval @ {iteration:6d}: test acc {curves['test_accuracy'][-1]:6.2f}%  val loss "
        f"{curves['validation_loss'][-1]:.4f}  val error {curves['validation_error'][-1]:.2f}%"
    )
    if milestone:
        summary = accuracy_summary([accuracy for accuracy, _ in test])
        milestones.append(
            {"iteration": iteration, **summary, "task_accuracies": [100 * accuracy for accuracy, _ in test]}
        )
        line += f"  | {summary['tasks']} tasks: {summary['accuracy']:.2f} ± {summary['ci95']:.2f}%"
    return line
