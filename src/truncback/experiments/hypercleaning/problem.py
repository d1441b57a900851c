"""Data hypercleaning (sec. 4.2.1): a linear classifier trained on examples whose loss weights
sigmoid(lam_i) are hyperparameters, tuned to minimise the loss on a clean validation set."""

from dataclasses import dataclass

import numpy as np
import torch

from truncback.hypergrad import BilevelProblem, gradient_descent


@dataclass
class CleaningData:
    """Features carry a constant 1 last (the bias folded into W in R^{classes x (pixels + 1)})."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    y_train_clean: torch.Tensor
    corrupted: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int


def features(images: np.ndarray, dtype) -> torch.Tensor:
    """uint8 images [n, h, w] -> [n, h*w + 1] in [0, 1] with a trailing 1."""
    flat = torch.from_numpy(images.reshape(len(images), -1).astype(np.float64) / 255.0)
    return torch.cat([flat, torch.ones(len(images), 1, dtype=flat.dtype)], dim=1).to(dtype)


def make_cleaning_data(
    images, labels, n_train, n_val, n_test, corrupted_fraction, seed, dtype=torch.float32, classes=10, device="cpu"
) -> CleaningData:
    """Draws disjoint train/validation/test examples at random and changes the labels of
    ``corrupted_fraction`` of the training examples to a different class drawn uniformly; the
    tensors are put on ``device`` (the draw itself is the same everywhere)."""
    if n_train + n_val + n_test > len(images):
        raise ValueError(
            f"n_train + n_val + n_test = {n_train + n_val + n_test} exceeds the {len(images)} examples available"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    train, val, test = np.split(order[: n_train + n_val + n_test], [n_train, n_train + n_val])
    y_clean = labels[train].astype(np.int64)
    corrupted = np.zeros(n_train, dtype=bool)
    corrupted[rng.permutation(n_train)[: int(round(corrupted_fraction * n_train))]] = True
    shift = rng.integers(1, classes, size=n_train)
    y_noisy = np.where(corrupted, (y_clean + shift) % classes, y_clean)

    def put(tensor):
        return tensor.to(device)

    return CleaningData(
        x_train=put(features(images[train], dtype)),
        y_train=put(torch.from_numpy(y_noisy)),
        y_train_clean=put(torch.from_numpy(y_clean)),
        corrupted=put(torch.from_numpy(corrupted)),
        x_val=put(features(images[val], dtype)),
        y_val=put(torch.from_numpy(labels[val].astype(np.int64))),
        x_test=put(features(images[test], dtype)),
        y_test=put(torch.from_numpy(labels[test].astype(np.int64))),
        classes=classes,
    )


INNER_LOSSES = {"mean": torch.mean, "sum": torch.sum}
"""How g reduces the weighted training losses sigmoid(lam_i) CE_i: their mean (ours) or their sum (the paper's)."""


def cleaning_problem(
    data: CleaningData, T: int, lr: float, weight_decay: float, compile: bool | str = False, inner_loss: str = "mean"
) -> BilevelProblem:
    """g(W, lam) = (1/n) sum_i sigmoid(lam_i) CE(W x_i, y_i) + weight_decay ||W||_F^2 (the paper's
    sum divided by n, see docs/assumptions.md), or with ``inner_loss="sum"`` the paper's sum without
    the 1/n; T steps of gradient descent of size ``lr`` from W = 0; f(W) = mean validation
    cross-entropy; ``compile``: the forward steps through torch.compile."""
    if inner_loss not in INNER_LOSSES:
        raise ValueError(f"inner_loss={inner_loss!r}; choose one of {sorted(INNER_LOSSES)}")
    cross_entropy = torch.nn.functional.cross_entropy
    x, y = data.x_train, data.y_train
    reduce = INNER_LOSSES[inner_loss]

    def inner(W, lam):
        losses = cross_entropy(x @ W.T, y, reduction="none")
        return reduce(torch.sigmoid(lam) * losses) + weight_decay * torch.sum(W**2)

    shape = (data.classes, x.shape[1])
    return BilevelProblem(
        init=lambda lam: torch.zeros(shape, dtype=x.dtype, device=x.device),
        step=gradient_descent(inner, lr, compile),
        outer=lambda W, lam: cross_entropy(data.x_val @ W.T, data.y_val),
        T=T,
    )


def accuracy(W, x, y) -> float:
    return float(((x @ W.T).argmax(dim=1) == y).double().mean())


def corrupted_f1(hparams: torch.Tensor, corrupted: torch.Tensor, threshold: float) -> float:
    """F1 of flagging example i as corrupted when lam_i < threshold (sigmoid(lam_i) < sigmoid(threshold))."""
    flagged = hparams < threshold
    true_positive = float((flagged & corrupted).sum())
    if true_positive == 0:
        return 0.0
    precision = true_positive / float(flagged.sum())
    recall = true_positive / float(corrupted.sum())
    return 2 * precision * recall / (precision + recall)
