"""Omniglot's evaluation with its tasks batched: the inner loops of ``batch`` tasks (each its own
lower-level problem at the same lam) run as one computation, ``torch.func.vmap`` over the tasks.

For each task b of a batch, from w_0^b = c (or a fixed ``w0``),

    w_{t+1}^b = w_t^b - gamma(lam) grad_w g_{S_b}(w_t^b, lam),   t = 0, ..., T - 1,

then the accuracy and the mean cross-entropy of nn(.; w_T^b, lam) on Q_b: what ``model.evaluate`` gives
for the task alone, up to floating-point rounding. The tasks of a batch have one shape (k-way, the same
support and query sizes).
"""

import torch
import torch.nn.functional as F
from torch.func import grad, vmap
from torch.utils._pytree import tree_map

from truncback.experiments.omniglot.model import Constraints, forward, support_loss

TASKS_PER_BATCH = 10
"""Tasks per batch of the evaluations during meta-training (``evaluation.evaluate_point``): the per-task
time falls little beyond it (``python -m truncback bench-batched``), while memory grows with it."""


@torch.no_grad()
def evaluate_tasks(
    tasks: list, lam: dict, T: int, batch_norm: bool, constraints: Constraints, batch: int, w0: dict | None = None
) -> list:
    """[(accuracy, loss) on Q_b of the network adapted to S_b by the T inner steps] for each task,
    ``batch`` tasks at a time (module docstring)."""
    if batch < 1:
        raise ValueError(f"batch must be a positive number of tasks, got batch={batch!r}")
    lam = tree_map(torch.Tensor.detach, lam)
    gamma = constraints.gamma(lam)
    gradient = vmap(grad(support_loss), in_dims=(0, None, 0, 0, None, None, None))
    logits_of = vmap(forward, in_dims=(0, 0, None, None))
    scores = []
    for first in range(0, len(tasks), batch):
        chunk = tasks[first : first + batch]
        x, y, x_query, y_query = (
            torch.stack([getattr(task, name) for task in chunk])
            for name in ("x_train", "y_train", "x_query", "y_query")
        )
        w = tree_map(lambda c: torch.stack([c] * len(x)), lam["c"] if w0 is None else w0)  # noqa: B023 (called here)
        for _ in range(T):
            step = gradient(w, lam, x, y, batch_norm, False, constraints.rho_min)
            w = tree_map(lambda wi, gi: wi - gamma * gi, w, step)
        logits = logits_of(x_query, w, lam, batch_norm)
        for b in range(len(chunk)):
            accuracy = float((logits[b].argmax(dim=1) == y_query[b]).double().mean())
            scores.append((accuracy, float(F.cross_entropy(logits[b], y_query[b]))))
    return scores
