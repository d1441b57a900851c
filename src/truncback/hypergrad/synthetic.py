"""Synthetic bilevel problems of realistic sizes for benchmarks and tests, each given as its parts
(inner loss, step size, initialisation, outer loss) and as the BilevelProblem built from them:
hypercleaning-sized (W in R^{10x785}, one weight per training example, 5000 of them) and a small
convolutional net whose initialisation and step size are the hyperparameters."""

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from truncback.hypergrad import BilevelProblem, gradient_descent


@dataclass(frozen=True)
class GradientDescentParts:
    """A benchmark problem as its parts: w_0 = init(lam), T steps w - lr(lam, t) grad_w inner(w, lam)
    (``lr`` a number or a function), outer(w_T, lam); the hand-written baselines use the parts, the
    library the BilevelProblem built from them."""

    inner: Callable[..., torch.Tensor]
    lr: Any  # a number, or a function (lam, t) -> step size
    init: Callable[[Any], Any]
    outer: Callable[[Any, Any], torch.Tensor]
    T: int

    def problem(self, compile: bool = False, matmul: str = "onednn") -> BilevelProblem:
        return BilevelProblem(
            init=self.init,
            step=gradient_descent(self.inner, self.lr, compile, matmul=matmul),
            outer=self.outer,
            T=self.T,
        )


def hypercleaning_parts(T: int, n_train: int = 5000, n_val: int = 5000, seed: int = 0):
    """Random data of MNIST's shapes; g = mean_i sigmoid(lam_i) CE_i(W) + 1e-3 ||W||^2, lr 0.1.
    Returns (parts, lam).

    The step size keeps gradient descent stable on these inputs (uniform in [0, 1]: the Hessian's
    largest eigenvalue at w_0 is about 10, so lr 1 would make the reverse passes overflow to NaN by
    T = 400, and the benchmark would time arithmetic on NaN)."""
    gen = torch.Generator().manual_seed(seed)
    x_train, x_val = torch.rand(n_train, 785, generator=gen), torch.rand(n_val, 785, generator=gen)
    y_train = torch.randint(0, 10, (n_train,), generator=gen)
    y_val = torch.randint(0, 10, (n_val,), generator=gen)
    cross_entropy = torch.nn.functional.cross_entropy

    def inner(W, lam):
        losses = cross_entropy(x_train @ W.T, y_train, reduction="none")
        return torch.mean(torch.sigmoid(lam) * losses) + 1e-3 * torch.sum(W**2)

    parts = GradientDescentParts(
        inner=inner,
        lr=0.1,
        init=lambda lam: torch.zeros(10, 785),
        outer=lambda W, lam: cross_entropy(x_val @ W.T, y_val),
        T=T,
    )
    return parts, torch.zeros(n_train)


def conv_net_parts(T: int, batch: int = 25, seed: int = 0):
    """Two stride-2 3x3 conv layers (8 channels) and a linear 5-way head on 28x28 inputs.
    Hyperparameters: the initialisation (MAML-like) and the log step size. Returns (parts, lam)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"c1": (8, 1, 3, 3), "c2": (8, 8, 3, 3), "fc": (5, 8 * 7 * 7)}
    init = {k: 0.3 * torch.randn(s, generator=gen) for k, s in shapes.items()}
    x, x_val = torch.rand(batch, 1, 28, 28, generator=gen), torch.rand(batch, 1, 28, 28, generator=gen)
    y, y_val = torch.randint(0, 5, (batch,), generator=gen), torch.randint(0, 5, (batch,), generator=gen)

    def net(w, inputs):
        h = torch.relu(torch.nn.functional.conv2d(inputs, w["c1"], stride=2, padding=1))
        h = torch.relu(torch.nn.functional.conv2d(h, w["c2"], stride=2, padding=1))
        return h.flatten(1) @ w["fc"].T

    def inner(w, lam):
        return torch.nn.functional.cross_entropy(net(w, x), y)

    parts = GradientDescentParts(
        inner=inner,
        lr=lambda lam, t: torch.exp(lam[1]),
        init=lambda lam: dict(lam[0]),
        outer=lambda w, lam: torch.nn.functional.cross_entropy(net(w, x_val), y_val),
        T=T,
    )
    return parts, (init, torch.tensor(math.log(0.1)))


def hypercleaning_sized(T: int, n_train: int = 5000, n_val: int = 5000, seed: int = 0):
    """The hypercleaning-sized BilevelProblem and its lam (see ``hypercleaning_parts``)."""
    parts, lam = hypercleaning_parts(T, n_train, n_val, seed)
    return parts.problem(), lam


def small_conv_net(T: int, batch: int = 25, seed: int = 0):
    """The small conv net's BilevelProblem and its lam (see ``conv_net_parts``)."""
    parts, lam = conv_net_parts(T, batch, seed)
    return parts.problem(), lam


PROBLEMS: dict[str, Callable[..., tuple[BilevelProblem, Any]]] = {
    "hypercleaning": hypercleaning_sized,
    "convnet": small_conv_net,
}
PARTS: dict[str, Callable[..., tuple[GradientDescentParts, Any]]] = {
    "hypercleaning": hypercleaning_parts,
    "convnet": conv_net_parts,
}
