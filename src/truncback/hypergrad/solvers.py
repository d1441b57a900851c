"""Linear solvers for implicit differentiation, pluggable as in jaxopt: ``solve(matvec, rhs,
iterations, norms=None)`` returns an approximate solution v of ``matvec(v) = rhs`` (trees of tensors)
after at most ``iterations`` iterations from v = 0, appending each iterate's residual or iterate norm
(a 0-d tensor) to ``norms`` when a list is given. In AID, ``matvec(v) = (I - A) v`` (eq. 11).

Any function with that signature can be passed to :func:`truncback.hypergrad.aid` as ``solve``.
"""

import torch

from truncback.hypergrad import trees


def fixed_point(matvec, rhs, iterations: int, norms: list | None = None):
    """Richardson iteration v <- v + (rhs - matvec(v)) from v = 0. With matvec = I - A this is
    v <- A v + rhs, the Neumann series of (I - A)^{-1} rhs truncated after ``iterations`` terms."""
    v = trees.zeros_like(rhs)
    for _ in range(iterations):
        v = trees.add(v, trees.sub(rhs, matvec(v)))
        if norms is not None:
            norms.append(trees.norm_tensor(v))
    return v


def conjugate_gradient(matvec, rhs, iterations: int, norms: list | None = None, tol: float = 0.0):
    """Conjugate gradient from v = 0 for a symmetric positive definite ``matvec``; stops early once
    ||residual|| <= tol * ||rhs|| (tol = 0: never early, and no host synchronisation per iteration).

    Once ||residual|| is at rounding level (machine epsilon x ||rhs||) the iterate stays where it is:
    further iterations would only work on rounding noise, whose directions can underflow to zero.

    Raises a ValueError when a search direction meets non-positive curvature (d^T matvec(d) <= 0):
    the operator is not positive definite (e.g. I - A of a momentum step, or g not locally convex),
    and CG's answer would be meaningless.
    """
    v = trees.zeros_like(rhs)
    residual = direction = rhs
    residual_sq = trees.dot(residual, residual)
    stop_sq = (tol**2) * residual_sq
    rounding_sq = torch.finfo(residual_sq.dtype).eps ** 2 * residual_sq
    curvature_failed = torch.zeros((), dtype=torch.bool, device=residual_sq.device)
    for _ in range(iterations):
        if tol > 0 and bool(residual_sq <= stop_sq):
            break
        image = matvec(direction)
        curvature = trees.dot(direction, image)
        active = residual_sq > rounding_sq
        curvature_failed = curvature_failed | (active & (curvature <= 0))
        step = torch.where(active & (curvature > 0), residual_sq / curvature, torch.zeros_like(curvature))
        v = trees.axpy(step, direction, v)
        residual = trees.axpy(-step, image, residual)
        new_residual_sq = trees.dot(residual, residual)
        ratio = torch.where(
            active,
            new_residual_sq / torch.where(active, residual_sq, torch.ones_like(residual_sq)),
            torch.zeros_like(residual_sq),
        )
        direction = trees.axpy(ratio, direction, residual)
        residual_sq = new_residual_sq
        if norms is not None:
            norms.append(residual_sq.sqrt())
    if bool(curvature_failed):
        raise ValueError(
            "conjugate gradient met non-positive curvature: I - A is not positive definite "
            "(a momentum step, or a lower-level objective that is not locally convex); "
            "use aid_fp or krmd instead"
        )
    return v


SOLVERS = {"fixed_point": fixed_point, "conjugate_gradient": conjugate_gradient}
