"""The companion paper's family where FOM-based SGD misses every stationary point (Likhosherstov et al.
2021, "Debiasing a first-order heuristic"): meta-learning an initialisation lam in R^d over n tasks of
different inner curvatures, as bilevel problems for the engine and in closed form.

Task i has a diagonal curvature a_i, an inner target c_i and a validation target c'_i:
  w_0 = lam,  w_{t+1} = w_t - alpha grad g_i(w_t),  g_i(w) = 1/2 (w - c_i)^T diag(a_i) (w - c_i)  (t < T)
  f_i(w_T) = 1/2 ||w_T - c'_i||^2,  F(lam) = 1/n sum_i f_i(w_T,i(lam))
Gradient descent on a quadratic is linear (A_t = I - alpha diag(a_i), B_0 = I, B_t = 0 for t >= 1), so
with M_i = diag((1 - alpha a_i)^T):
  w_T,i = c_i + M_i (lam - c_i)
  d_lam f_i = M_i (w_T,i - c'_i)          (eq. 6: B_0 A_1 ... A_T grad_w f_i)
  FOM_i     = w_T,i - c'_i                (every A_t := I)
Both are affine in lam, so F's stationary point lam* (mean_i d_lam f_i = 0; F is convex, so it is the
minimum) and FOM's fixed point lam_FOM (mean_i FOM_i = 0) are closed forms, coordinate by coordinate:
  lam*    = mean_i M_i (c'_i - (I - M_i) c_i) / mean_i M_i^2
  lam_FOM = mean_i     (c'_i - (I - M_i) c_i) / mean_i M_i
FOM-based SGD settles around lam_FOM, where ||grad F(lam_FOM)|| > 0 whenever the tasks' M_i differ:
FOM weighs a task whose inner loop forgets lam (M_i ~ 0, a steep task) as much as one that keeps it.
The closed forms use float64 numpy, independent of the engine, and broadcast over leading axes of lam.
"""

from dataclasses import dataclass

import numpy as np
import torch

from truncback.hypergrad import BilevelProblem, gradient_descent


@dataclass(frozen=True)
class TaskFamily:
    """n tasks in R^d: ``curvature``, ``inner_target`` and ``validation_target`` are [n, d] arrays (a_i,
    c_i, c'_i); T steps of rate ``alpha``."""

    curvature: np.ndarray
    inner_target: np.ndarray
    validation_target: np.ndarray
    alpha: float
    T: int

    def __post_init__(self):
        if not isinstance(self.T, int) or self.T < 1:
            raise ValueError(f"T must be a positive int, got T={self.T!r}")
        rate = self.alpha * self.curvature
        if not np.all((rate > 0) & (rate < 2)):
            raise ValueError(
                f"alpha * curvature must lie in (0, 2) (gradient descent converges), got "
                f"{sorted(set(rate.ravel().tolist()))}"
            )

    @classmethod
    def draw(
        cls, d: int, curvatures, offsets, tasks_per_type: int, spread: float, alpha: float, T: int, seed: int
    ) -> "TaskFamily":
        """tasks_per_type tasks of each type k: a_i = curvatures[k] in every coordinate, c_i ~ N(0, spread^2 I)
        (numpy, seeded) and c'_i = c_i + offsets[k] in every coordinate."""
        types = np.repeat(np.arange(len(curvatures)), tasks_per_type)
        inner_target = spread * np.random.default_rng(seed).standard_normal((len(types), d))
        ones = np.ones(d)
        return cls(
            curvature=np.asarray(curvatures, dtype=float)[types, None] * ones,
            inner_target=inner_target,
            validation_target=inner_target + np.asarray(offsets, dtype=float)[types, None] * ones,
            alpha=float(alpha),
            T=T,
        )

    @property
    def tasks(self) -> int:
        return len(self.curvature)

    @property
    def contraction(self) -> np.ndarray:
        """The diagonals of M_i = (I - alpha diag(a_i))^T, [n, d]."""
        return (1.0 - self.alpha * self.curvature) ** self.T

    def final_state(self, lam) -> np.ndarray:
        """w_T,i = c_i + M_i (lam - c_i) for every task: [..., n, d]."""
        lam = np.asarray(lam, dtype=float)[..., None, :]
        return self.inner_target + self.contraction * (lam - self.inner_target)

    def fom_estimates(self, lam) -> np.ndarray:
        """FOM_i = w_T,i - c'_i, [..., n, d]."""
        return self.final_state(lam) - self.validation_target

    def task_gradients(self, lam) -> np.ndarray:
        """d_lam f_i = M_i (w_T,i - c'_i), [..., n, d]."""
        return self.contraction * self.fom_estimates(lam)

    def value(self, lam) -> np.ndarray:
        """F(lam) = mean_i 1/2 ||w_T,i - c'_i||^2."""
        return 0.5 * np.mean(np.sum(self.fom_estimates(lam) ** 2, axis=-1), axis=-1)

    def gradient(self, lam) -> np.ndarray:
        """grad F(lam) = mean_i M_i (w_T,i - c'_i)."""
        return np.mean(self.task_gradients(lam), axis=-2)

    def gradient_norm(self, lam) -> np.ndarray:
        return np.linalg.norm(self.gradient(lam), axis=-1)

    def _weighted_solution(self, weights) -> np.ndarray:
        """The lam solving mean_i W_i (w_T,i - c'_i) = 0 for diagonal weights W_i ([n, d])."""
        M = self.contraction
        residual = self.validation_target - (1.0 - M) * self.inner_target
        return np.mean(weights * residual, axis=0) / np.mean(weights * M, axis=0)

    def stationary_point(self) -> np.ndarray:
        """lam* = mean_i M_i (c'_i - (I - M_i) c_i) / mean_i M_i^2."""
        return self._weighted_solution(self.contraction)

    def fom_fixed_point(self) -> np.ndarray:
        """lam_FOM = mean_i (c'_i - (I - M_i) c_i) / mean_i M_i."""
        return self._weighted_solution(np.ones_like(self.contraction))

    def fom_floor(self) -> float:
        """||grad F(lam_FOM)||: the gradient norm FOM-based SGD settles at."""
        return float(self.gradient_norm(self.fom_fixed_point()))


def bilevel_problem(family: TaskFamily, task: int) -> BilevelProblem:
    """Task ``task`` for the engine, in float64: init(lam) = lam (B_0 = I), the step
    ``gradient_descent(g_i, alpha)`` and f_i(w_T) = 1/2 ||w_T - c'_i||^2 (no direct dependence on lam)."""
    curvature, inner_target, validation_target = (
        torch.tensor(array[task], dtype=torch.float64)
        for array in (family.curvature, family.inner_target, family.validation_target)
    )

    def inner_loss(w, lam):
        return 0.5 * torch.sum(curvature * (w - inner_target) ** 2)

    def init(lam):
        return lam

    def outer(w, lam):
        return 0.5 * torch.sum((w - validation_target) ** 2)

    return BilevelProblem(init=init, step=gradient_descent(inner_loss, family.alpha), outer=outer, T=family.T)
