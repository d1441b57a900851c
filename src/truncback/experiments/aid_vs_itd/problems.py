"""The problems of the AID-vs-ITD comparison, in float64, each with its exact implicit hypergradient
computed without the engine's hypergradient methods.

Every lower level is gradient descent w_{t+1} = w_t - gamma grad_w g(w_t, lam) from w_0 = 0 on a
strongly convex g, with gamma = 1 / L for L the Hessian's largest eigenvalue (ridge: exact; the
others: 1.05 x the largest found by power iteration at w_0 and at w*), so the map contracts at the
rate q = 1 - mu / L, mu the smallest eigenvalue (ridge) or a lower bound of it (the others). The
reference is the implicit hypergradient at the lower-level solution w*(lam) (Grazzi et al., eq. 3):

    d_lam f = grad_lam f(w*, lam) - (d_lam grad_w g(w*, lam))^T H^{-1} grad_w f(w*, lam),  H = Hess_w g(w*, lam).

ridge            closed form: w* and H^{-1} by a dense solve
logistic and     w* by Newton's method with backtracking, H^{-1} grad_w f by conjugate gradient on
hypercleaning    Hessian-vector products, both to ``reference_tolerance``; the residuals reached are
                 recorded with the result
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.func import grad, jvp, vjp

from truncback.experiments.aid_vs_itd.settings import AidVsItdSettings
from truncback.experiments.hypercleaning.problem import cleaning_problem, features, make_cleaning_data
from truncback.hypergrad import BilevelProblem, gradient_descent
from truncback.hypergrad.problem import GradientDescentStep
from truncback.runtime.determinism import derive_seed

DTYPE = torch.float64


@dataclass
class Comparison:
    """A problem at one point lam: ``problem(t)`` runs t lower-level steps from w_0 = 0; ``exact`` is
    d_lam f at the lower-level solution ``w_star``."""

    name: str
    problem: Callable[[int], BilevelProblem]
    lam: torch.Tensor
    exact: torch.Tensor
    w_star: torch.Tensor
    lr: float
    rate_bound: float
    reference: dict


def _problem(inner, outer, init_shape, lr):
    def at(t: int) -> BilevelProblem:
        return BilevelProblem(
            init=lambda lam: torch.zeros(init_shape, dtype=DTYPE), step=gradient_descent(inner, lr), outer=outer, T=t
        )

    return at


def _regularisers(scale: float, count: int, generator) -> torch.Tensor:
    """lam_j = log(scale * s_j), s_j log-uniform in [0.5, 2] (seeded): distinct hyperparameters."""
    factor = 2.0 ** (2 * torch.rand(count, generator=generator, dtype=DTYPE) - 1)
    return torch.log(scale * factor)


def ridge(settings: AidVsItdSettings) -> Comparison:
    """g(w, lam) = ||X w - y||^2 / (2n) + sum_j exp(lam_j) w_j^2 / 2, f(w) = ||X' w - y'||^2 / (2n'):
    H = X^T X / n + diag(exp lam), w* = H^{-1} X^T y / n and d_lam f = -exp(lam) * w* * H^{-1} grad f(w*)."""
    generator = torch.Generator().manual_seed(derive_seed("aid_vs_itd/ridge", 0, settings.seed))
    d = settings.ridge_features
    scales = settings.ridge_spectrum ** torch.linspace(0, 1, d, dtype=DTYPE)
    w_true = torch.randn(d, generator=generator, dtype=DTYPE)

    def sample(n):
        x = torch.randn(n, d, generator=generator, dtype=DTYPE) * scales
        return x, x @ w_true + 0.5 * torch.randn(n, generator=generator, dtype=DTYPE)

    (x, y), (x_val, y_val) = sample(settings.ridge_train), sample(settings.ridge_val)
    lam = _regularisers(settings.ridge_regularization, d, generator)

    def inner(w, lam):
        return torch.sum((x @ w - y) ** 2) / (2 * len(y)) + torch.sum(torch.exp(lam) * w**2) / 2

    def outer(w, lam):
        return torch.sum((x_val @ w - y_val) ** 2) / (2 * len(y_val))

    hessian = x.T @ x / len(y) + torch.diag(torch.exp(lam))
    eigenvalues = torch.linalg.eigvalsh(hessian)
    w_star = torch.linalg.solve(hessian, x.T @ y / len(y))
    grad_f = x_val.T @ (x_val @ w_star - y_val) / len(y_val)
    exact = -torch.exp(lam) * w_star * torch.linalg.solve(hessian, grad_f)
    L, mu = float(eigenvalues[-1]), float(eigenvalues[0])
    return Comparison(
        "ridge",
        _problem(inner, outer, (d,), 1.0 / L),
        lam,
        exact,
        w_star,
        1.0 / L,
        1.0 - mu / L,
        {"how": "closed form (dense solve)", "condition_number": L / mu},
    )


def _conjugate_gradient(matvec, rhs, tolerance: float, max_iterations: int):
    """Plain CG on a symmetric positive definite operator until ||r|| <= tolerance ||rhs|| (written
    here, not the engine's solver, so the reference does not share code with AID-CG)."""
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rr = torch.dot(r.flatten(), r.flatten())
    stop = (tolerance * torch.linalg.vector_norm(rhs)) ** 2
    for _ in range(max_iterations):
        if rr <= stop:
            break
        Ap = matvec(p)
        step = rr / torch.dot(p.flatten(), Ap.flatten())
        x = x + step * p
        r = r - step * Ap
        rr_next = torch.dot(r.flatten(), r.flatten())
        p = r + (rr_next / rr) * p
        rr = rr_next
    return x


def largest_curvature(inner, w, lam, iterations: int = 100) -> float:
    """The largest eigenvalue of Hess_w g(w, lam), by power iteration from a seeded random start. Not
    from a symmetric start such as all ones: that can lie in an invariant subspace that misses the top
    eigenvector (multinomial cross-entropy's Hessian annihilates the direction moving every class's
    weights alike, leaving the regulariser's curvature), and then only rounding noise, which differs
    from one processor to the next, steers the iteration to the top."""
    grad_w = grad(inner)
    v = torch.randn(w.shape, generator=torch.Generator().manual_seed(0), dtype=w.dtype, device=w.device)
    v = v / torch.linalg.vector_norm(v)
    value = 0.0
    for _ in range(iterations):
        image = jvp(lambda u: grad_w(u, lam), (w,), (v,))[1]
        value = float(torch.linalg.vector_norm(image))
        v = image / value
    return value


def implicit_reference(inner, outer, w0, lam, tolerance: float) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """d_lam f at w*(lam): Newton's method with backtracking on g from w0 until ||grad_w g|| <=
    tolerance, then CG on H v = grad_w f to a relative residual <= tolerance; returns it, w* and the
    residuals reached."""
    grad_w = grad(inner)

    def hvp(w, v):
        return jvp(lambda u: grad_w(u, lam), (w,), (v,))[1]

    w = w0
    newton_steps = 0
    for newton_steps in range(1, 101):  # noqa: B007 (the count is returned)
        gradient = grad_w(w, lam)
        if float(torch.linalg.vector_norm(gradient)) <= tolerance:
            break
        direction = _conjugate_gradient(lambda v: hvp(w, v), gradient, 1e-3 * tolerance, 20 * w.numel())  # noqa: B023
        value, step = float(inner(w, lam)), 1.0
        while float(inner(w - step * direction, lam)) > value and step > 1e-8:
            step /= 2
        w = w - step * direction
    gradient_norm = float(torch.linalg.vector_norm(grad_w(w, lam)))
    if gradient_norm > tolerance:
        raise RuntimeError(
            f"the reference's Newton iterations stopped at ||grad_w g|| = {gradient_norm:.3g} > {tolerance:g}"
        )
    grad_f_w, grad_f_lam = grad(outer, argnums=(0, 1))(w, lam)
    v = _conjugate_gradient(lambda u: hvp(w, u), grad_f_w, tolerance, 20 * w.numel())
    residual = float(torch.linalg.vector_norm(hvp(w, v) - grad_f_w) / torch.linalg.vector_norm(grad_f_w))
    _, pullback = vjp(lambda lam_: grad_w(w, lam_), lam)  # type: ignore[misc]  # vjp's annotation: its has_aux form's 3 values
    exact = grad_f_lam - pullback(v)[0]
    return (
        exact,
        w,
        {
            "how": "Newton + conjugate gradient to the tolerance",
            "newton_steps": newton_steps,
            "grad_w_g_norm": gradient_norm,
            "relative_residual": residual,
        },
    )


def logistic(settings: AidVsItdSettings, images: np.ndarray, labels: np.ndarray) -> Comparison:
    """g(W, lam) = mean CE(W x_i, y_i) + sum_j exp(lam_j) ||W_{:, j}||^2 / 2, one lam_j per input pixel
    (and the bias), f(W) = mean validation CE; mu >= min exp(lam)."""
    generator = torch.Generator().manual_seed(derive_seed("aid_vs_itd/logistic", 0, settings.seed))
    order = torch.randperm(len(images), generator=generator)[: settings.mnist_train + settings.mnist_val].numpy()
    x_all = features(images[order], DTYPE)
    y_all = torch.from_numpy(labels[order].astype(np.int64))
    x, x_val = x_all[: settings.mnist_train], x_all[settings.mnist_train :]
    y, y_val = y_all[: settings.mnist_train], y_all[settings.mnist_train :]
    lam = _regularisers(settings.logistic_regularization, x.shape[1], generator)
    classes = 10
    cross_entropy = torch.nn.functional.cross_entropy

    def inner(W, lam):
        return cross_entropy(x @ W.T, y) + torch.sum(torch.exp(lam) * W**2) / 2

    def outer(W, lam):
        return cross_entropy(x_val @ W.T, y_val)

    w0 = torch.zeros(classes, x.shape[1], dtype=DTYPE)
    exact, w_star, reference = implicit_reference(inner, outer, w0, lam, settings.reference_tolerance)
    L, mu = _step_curvature(inner, w0, w_star, lam), float(torch.exp(lam).min())
    return Comparison(
        "logistic",
        _problem(inner, outer, w0.shape, 1.0 / L),
        lam,
        exact,
        w_star,
        1.0 / L,
        1.0 - mu / L,
        {**reference, "condition_bound": L / mu},
    )


def _step_curvature(inner, w0, w_star, lam) -> float:
    """L of gamma = 1 / L: 1.05 x the largest Hessian eigenvalue found at w_0 and at w*."""
    return 1.05 * max(largest_curvature(inner, w0, lam), largest_curvature(inner, w_star, lam))


def hypercleaning(settings: AidVsItdSettings, images: np.ndarray, labels: np.ndarray) -> Comparison:
    """The main paper's problem (sec. 4.2.1) at lam = 0: g(W, lam) = mean sigmoid(lam_i) CE_i +
    weight_decay ||W||^2, f = mean validation CE; mu >= 2 weight_decay."""
    data = make_cleaning_data(
        images,
        labels,
        settings.mnist_train,
        settings.mnist_val,
        1,
        settings.corrupted_fraction,
        derive_seed("aid_vs_itd/hypercleaning", 0, settings.seed),
        dtype=DTYPE,
    )
    template = cleaning_problem(data, 1, 1.0, settings.weight_decay)
    assert isinstance(template.step, GradientDescentStep)  # cleaning_problem's step is gradient_descent's
    inner, lam = template.step.inner_loss, torch.zeros(settings.mnist_train, dtype=DTYPE)
    w0 = template.init(lam)
    exact, w_star, reference = implicit_reference(inner, template.outer, w0, lam, settings.reference_tolerance)
    L, mu = _step_curvature(inner, w0, w_star, lam), 2 * settings.weight_decay

    def at(t: int) -> BilevelProblem:
        return cleaning_problem(data, t, 1.0 / L, settings.weight_decay)

    return Comparison(
        "hypercleaning", at, lam, exact, w_star, 1.0 / L, 1.0 - mu / L, {**reference, "condition_bound": L / mu}
    )
