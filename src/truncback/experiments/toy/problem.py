"""The toy problem of sec. 4.1, as a bilevel problem for the engine and in closed form.

lam, w in R^2;  g(w, lam) = 1/2 (w - lam)^T G (w - lam), G = diag(1, 1/2);  w_hat* = w_T after T steps
of gradient descent on g with rate gamma from w_0 = (2, 2);  f(w, lam) = ||w||^2 + 10 ||sin w||^2 and
f~(w, lam) = f(w, lam) + 5 ||lam - (1, 0)||^2.

Gradient descent on a quadratic is linear, A_t = I - gamma G and B_t = gamma G (B_0 = 0, w_0 does not
depend on lam), so with A = I - gamma G and C = A^T:
  w_T = C w_0 + (I - C) lam                                  (sec. 4.1)
  d_lam f = grad_lam f + (I - C) grad_w f(w_T)               (eqs. 5-6)
  h_{T-K} = grad_lam f + (I - A^K) grad_w f(w_T)             (eq. 8: gamma G sum_{j<K} A^j = I - A^K)
The closed forms use numpy and broadcast over leading axes of lam; they check the engine and give
the exact hypergradient along every trajectory.
"""

from dataclasses import dataclass

import numpy as np
import torch

from truncback.hypergrad import BilevelProblem

G_DIAGONAL = np.array([1.0, 0.5])
W0 = np.array([2.0, 2.0])
SIN_WEIGHT = 10.0
DIRECT_WEIGHT = 5.0
DIRECT_CENTRE = np.array([1.0, 0.0])
OBJECTIVES = ("f", "f_tilde")


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective={objective!r} is unknown; choose one of {list(OBJECTIVES)}")
    return objective


@dataclass(frozen=True)
class ToyProblem:
    """Closed forms of the toy problem for T steps of rate gamma, on f or f~ (``objective``)."""

    T: int
    gamma: float
    objective: str = "f"

    def __post_init__(self):
        check_objective(self.objective)
        if not isinstance(self.T, int) or self.T < 1:
            raise ValueError(f"T must be a positive int, got T={self.T!r}")
        if not 0 < self.gamma <= 1 / G_DIAGONAL.max():
            raise ValueError(f"gamma must lie in (0, 1/beta] = (0, {1 / G_DIAGONAL.max()}], got {self.gamma}")

    @property
    def contraction(self) -> np.ndarray:
        """The diagonal of A = I - gamma G."""
        return 1.0 - self.gamma * G_DIAGONAL

    def final_state(self, lam) -> np.ndarray:
        """w_T = C w_0 + (I - C) lam."""
        C = self.contraction**self.T
        return C * W0 + (1.0 - C) * np.asarray(lam, dtype=float)

    def value(self, lam) -> np.ndarray:
        """f(w_T(lam), lam) (or f~)."""
        lam = np.asarray(lam, dtype=float)
        w = self.final_state(lam)
        value = np.sum(w * w, axis=-1) + SIN_WEIGHT * np.sum(np.sin(w) ** 2, axis=-1)
        if self.objective == "f_tilde":
            value = value + DIRECT_WEIGHT * np.sum((lam - DIRECT_CENTRE) ** 2, axis=-1)
        return value

    def grad_w(self, lam) -> np.ndarray:
        """grad_w f at w_T(lam): 2 w + 10 sin(2 w)."""
        w = self.final_state(lam)
        return 2.0 * w + SIN_WEIGHT * np.sin(2.0 * w)

    def grad_lam(self, lam) -> np.ndarray:
        """The direct term grad_lam f: 0 for f, 10 (lam - (1, 0)) for f~."""
        lam = np.asarray(lam, dtype=float)
        if self.objective == "f":
            return np.zeros_like(lam)
        return 2.0 * DIRECT_WEIGHT * (lam - DIRECT_CENTRE)

    def truncated(self, lam, K: int | np.integer) -> np.ndarray:
        """h_{T-K} = grad_lam f + (I - A^K) grad_w f(w_T) (eq. 8)."""
        if not 0 <= K <= self.T:
            raise ValueError(f"K={K} must lie in [0, T={self.T}]")
        return self.grad_lam(lam) + (1.0 - self.contraction**K) * self.grad_w(lam)

    def exact(self, lam) -> np.ndarray:
        """d_lam f = h_0 = grad_lam f + (I - C) grad_w f(w_T) (eqs. 5-6)."""
        return self.truncated(lam, self.T)

    def bound(self, lam, K) -> np.ndarray:
        """Eq. (10): (1 - gamma alpha)^K / (gamma alpha) ||grad_w f|| M_B, with alpha = 1/2 the
        strong convexity of g and M_B = max_t ||B_t|| = ||gamma G|| = gamma."""
        alpha = G_DIAGONAL.min()
        M_B = self.gamma * G_DIAGONAL.max()
        rate = 1.0 - self.gamma * alpha
        K = np.asarray(K, dtype=float)
        return rate**K / (self.gamma * alpha) * np.linalg.norm(self.grad_w(lam), axis=-1) * M_B


def bilevel_problem(T: int, gamma: float, objective: str) -> BilevelProblem:
    """The toy problem for the engine, in float64: w_0 = (2, 2) (independent of lam, so B_0 = 0),
    w_{t+1} = w_t - gamma grad_w g(w_t, lam) with grad_w g = G (w - lam), and the outer f or f~."""
    check_objective(objective)
    G = torch.tensor(G_DIAGONAL, dtype=torch.float64)
    w0 = torch.tensor(W0, dtype=torch.float64)
    centre = torch.tensor(DIRECT_CENTRE, dtype=torch.float64)

    def init(lam):
        return w0.clone()

    def step(w, lam, t):
        return w - gamma * G * (w - lam)

    def outer(w, lam):
        value = torch.sum(w * w) + SIN_WEIGHT * torch.sum(torch.sin(w) ** 2)
        if objective == "f_tilde":
            value = value + DIRECT_WEIGHT * torch.sum((lam - centre) ** 2)
        return value

    return BilevelProblem(init=init, step=step, outer=outer, T=T)


def inner_loss(w, lam) -> torch.Tensor:
    """g(w, lam) = 1/2 (w - lam)^T G (w - lam)."""
    G = torch.tensor(G_DIAGONAL, dtype=w.dtype)
    return 0.5 * torch.sum(G * (w - lam) ** 2)
