"""Task interaction (sec. 4.2.2, after Franceschi et al. 2017, sec. 5.3): V linear models, one per
class, coupled by a non-negative symmetric matrix C of hyperparameters.

Lower level (the paper's g(w, {C, rho})), for the state w = (W, b) with rows w_v of W in R^{V x d}:

    g = l(W, b) + sum_{i,j} C_ij ||w_i - w_j||^2 + rho sum_v ||w_v||^2

with l the mean softmax cross-entropy of the multi-class linear logistic regression on the training
subset (the V models are the rows of one V-way softmax classifier; the biases b are not
regularised), minimised by T steps of gradient descent from w = 0. Upper level: the mean
cross-entropy on the validation subset.

The hyperparameters are (A, rho). C = (A + A^T)/2 with its diagonal set to 0, so the hypergradient
with respect to A is exactly symmetric with a zero diagonal; A starts symmetric (zero) and is clipped
at 0 after each step, as Franceschi et al. did with C, which keeps C = A symmetric and non-negative.
rho is clipped at 0 too.
"""

from dataclasses import dataclass

import numpy as np
import torch

from truncback.experiments.task_interaction.batched import explicit_batch
from truncback.hypergrad import BilevelProblem
from truncback.hypergrad.batched import ProblemFamily
from truncback.experiments.task_interaction.subsets import per_class_split


@dataclass
class TaskData:
    """Features (standardised, see ``make_task_data``) and labels of the three parts."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int


def make_task_data(
    train_features,
    train_labels,
    test_features,
    test_labels,
    train_per_class: int,
    val_per_class: int,
    seed: int,
    dtype=torch.float32,
    device="cpu",
    split: tuple | None = None,
) -> TaskData:
    """Small training and validation subsets drawn per class from the training split (``split``: the
    (train, val) rows ``per_class_split`` drew at ``seed``, when the caller has drawn them already);
    the whole test split is the test set. Every feature is standardised with the training subset's
    mean and std. The tensors are put on ``device``."""
    train, val = split if split is not None else per_class_split(train_labels, train_per_class, val_per_class, seed)
    x_train = torch.from_numpy(np.asarray(train_features[train], dtype=np.float64))
    mean, std = x_train.mean(dim=0), x_train.std(dim=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))

    def standardised(rows):
        return ((torch.from_numpy(np.asarray(rows, dtype=np.float64)) - mean) / std).to(device=device, dtype=dtype)

    def labels(values):
        return torch.from_numpy(np.asarray(values, dtype=np.int64)).to(device)

    classes = int(max(train_labels.max(), test_labels.max())) + 1
    return TaskData(
        x_train=standardised(train_features[train]),
        y_train=labels(train_labels[train]),
        x_val=standardised(train_features[val]),
        y_val=labels(train_labels[val]),
        x_test=standardised(test_features),
        y_test=labels(test_labels),
        classes=classes,
    )


def coupling(A: torch.Tensor) -> torch.Tensor:
    """C = (A + A^T)/2 with a zero diagonal."""
    off_diagonal = 1.0 - torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    return 0.5 * (A + A.T) * off_diagonal


def task_coupling_penalty(W: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """sum_{i,j} C_ij ||w_i - w_j||^2, from the Gram matrix (no V x V x d tensor)."""
    squared = torch.sum(W * W, dim=1)
    distances = squared[:, None] + squared[None, :] - 2.0 * (W @ W.T)
    return torch.sum(C * distances)


def logits(state, x: torch.Tensor) -> torch.Tensor:
    W, b = state
    return x @ W.T + b


def task_inner(state, hparams, x, y, x_val, y_val) -> torch.Tensor:
    """The lower objective g(w, {A, rho}) on the training subset (x, y) (module docstring)."""
    A, rho = hparams
    W = state[0]
    return (
        torch.nn.functional.cross_entropy(logits(state, x), y)
        + task_coupling_penalty(W, coupling(A))
        + rho * torch.sum(W * W)
    )


def task_outer(state, hparams, x, y, x_val, y_val) -> torch.Tensor:
    """The upper objective: the mean cross-entropy on the validation subset (x_val, y_val)."""
    return torch.nn.functional.cross_entropy(logits(state, x_val), y_val)


def task_family(
    classes: int, T: int, lr: float, compile: bool | str = False, batch_form: str = "auto"
) -> ProblemFamily:
    """The bilevel problems of sec. 4.2.2 with ``classes`` classes, one per trial's data (x_train,
    y_train, x_val, y_val): state (W, b) from 0, hyperparameters (A, rho); ``compile``: the steps
    through torch.compile. Its members batch (``hypergrad.batched``), with explicitly batched tensors
    and hand-written products (``task_interaction.batched``) in ``batch_form``."""

    def init(hparams, x, y, x_val, y_val):
        return (
            torch.zeros((classes, x.shape[1]), dtype=x.dtype, device=x.device),
            torch.zeros((classes,), dtype=x.dtype, device=x.device),
        )

    return ProblemFamily(
        init=init,
        inner_loss=task_inner,
        outer=task_outer,
        lr=lr,
        T=T,
        compile=compile,
        explicit=explicit_batch(classes, lr, batch_form),
    )


def task_data(data: TaskData) -> tuple:
    """The data a member of ``task_family`` is: (x_train, y_train, x_val, y_val)."""
    return (data.x_train, data.y_train, data.x_val, data.y_val)


def task_problem(data: TaskData, T: int, lr: float, compile: bool | str = False) -> BilevelProblem:
    """The bilevel problem of sec. 4.2.2 on ``data``: ``task_family``'s member at its data."""
    return task_family(data.classes, T, lr, compile).problem(task_data(data))


def initial_hparams(classes: int, C_init: float, rho_init: float, dtype, device="cpu") -> tuple:
    """(A, rho) with A = C_init off the diagonal and 0 on it, as leaf tensors that require grad."""
    A = C_init * (1.0 - torch.eye(classes, dtype=dtype, device=device))
    return A.requires_grad_(), torch.tensor(rho_init, dtype=dtype, device=device, requires_grad=True)


@torch.no_grad()
def project(hparams) -> None:
    """Clip every hyperparameter at 0 (Franceschi et al.'s projection after each Adam step)."""
    for tensor in hparams:
        tensor.clamp_(min=0.0)


def accuracy(state, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits(state, x).argmax(dim=1) == y).double().mean())
