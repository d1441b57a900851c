"""Bilevel problems with exact references, shared by the engine's tests."""

import torch

from truncback.hypergrad import BilevelProblem, gradient_descent, heavy_ball

TOY_G = (1.0, 0.5)
TOY_GAMMA = 0.1
TOY_T = 100
TOY_W0 = (2.0, 2.0)


def toy_problem(dtype=torch.float64, T=TOY_T, compile=False):
    """Sec. 4.1: g = 1/2 (w - lam)^T G (w - lam), T gradient steps of size gamma from w0 = (2, 2),
    f = ||w||^2 + 10 ||sin w||^2 (``compile``: the forward passes through torch.compile)."""
    G = torch.tensor(TOY_G, dtype=dtype)
    w0 = torch.tensor(TOY_W0, dtype=dtype)
    return BilevelProblem(
        init=lambda lam: w0.clone(),
        step=gradient_descent(lambda w, lam: 0.5 * torch.sum(G * (w - lam) ** 2), TOY_GAMMA, compile=compile),
        outer=lambda w, lam: torch.sum(w**2) + 10 * torch.sum(torch.sin(w) ** 2),
        T=T,
    )


def toy_exact(lam, T=TOY_T):
    """Closed form: w_T = C w0 + (I - C) lam with C = (I - gamma G)^T, so d_lam f = (I - C) grad_w f."""
    G = torch.tensor(TOY_G, dtype=lam.dtype)
    C = (1 - TOY_GAMMA * G) ** T
    w_T = C * torch.tensor(TOY_W0, dtype=lam.dtype) + (1 - C) * lam
    grad_w = 2 * w_T + 20 * torch.sin(w_T) * torch.cos(w_T)
    return (1 - C) * grad_w, grad_w


def weighted_logistic_problem(rng, T=15, n_train=12, n_val=9, dim=4):
    """A non-quadratic lower level: logistic regression with per-example weights sigmoid(lam_i), a
    heavy-ball state (w, v), a step size exp(log_lr) / 4 and the initial weights w_0 in lam.
    Outer: validation logistic loss plus a direct term in lam (so grad_lam f != 0)."""

    def randn(*shape):
        return torch.randn(*shape, generator=rng, dtype=torch.float64)

    x_train, x_val = randn(n_train, dim), randn(n_val, dim)
    y_train = (torch.rand(n_train, generator=rng) < 0.5).double()
    y_val = (torch.rand(n_val, generator=rng) < 0.5).double()

    def logistic(w, x, y):
        return torch.nn.functional.binary_cross_entropy_with_logits(x @ w, y, reduction="none")

    def inner(w, lam):
        weights, _, _ = lam
        return torch.mean(torch.sigmoid(weights) * logistic(w, x_train, y_train)) + 0.05 * torch.sum(w**2)

    def outer(state, lam):
        w, _ = state
        return torch.mean(logistic(w, x_val, y_val)) + 0.01 * torch.sum(lam[0] ** 2)

    problem = BilevelProblem(
        init=lambda lam: (lam[2] * 1.0, torch.zeros_like(lam[2])),
        step=heavy_ball(inner, lr=lambda lam, t: torch.exp(lam[1]) / 4, momentum=0.5),
        outer=outer,
        T=T,
    )
    hparams = (randn(n_train), 0.3 * randn(()), randn(dim))
    return problem, hparams
