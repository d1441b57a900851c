"""Approximate implicit differentiation (AID) at w_T, eq. (11), as in Grazzi et al. (2020).

Read the last step as a fixed-point map Phi(w, lam) = Xi_T(w, lam). At a fixed point,
d_lam f = grad_lam f + B v with (I - A) v = grad_w f, where A v and B v are the step's
vector-Jacobian products with respect to w and lam. ``aid_fp`` approximates v with K fixed-point
(Neumann series) iterations, ``aid_cg`` with K conjugate-gradient iterations. For a gradient-descent
step, I - A = gamma * Hessian of g, so eq. (11) is recovered; CG needs I - A symmetric positive
definite, which holds for gradient descent on a locally strongly convex g but not e.g. with momentum.
"""

from functools import partial

from torch.func import vjp

from truncback.hypergrad import trees
from truncback.hypergrad.checks import check_depth, check_problem
from truncback.hypergrad.dynamics import initial_state, outer_gradients, run
from truncback.hypergrad.result import finish


def aid_fp(problem, hparams, K: int, *, return_info: bool = False):
    """AID with K fixed-point iterations v <- A v + grad_w f from v = 0 (the order-K Taylor series of
    eq. 12, which is why it coincides with K-RMD when A and B are constant)."""
    return _implicit(problem, hparams, K, partial(_fixed_point, iterations=K), return_info)


def aid_cg(problem, hparams, K: int, *, tol: float = 0.0, return_info: bool = False):
    """AID with at most K conjugate-gradient iterations on (I - A) v = grad_w f, stopping early once
    ||residual|| <= tol * ||grad_w f||."""
    return _implicit(problem, hparams, K, partial(_conjugate_gradient, iterations=K, tol=tol), return_info)


def _implicit(problem, hparams, K, solve, return_info):
    check_problem(problem, hparams)
    check_depth("K", K, None)
    if problem.T < 1:
        raise ValueError("implicit differentiation needs at least one lower-level step (T >= 1)")
    last = problem.T - 1
    final_state = run(problem, hparams, initial_state(problem, hparams), 0, problem.T)
    loss, grad_state, grad_hparams = outer_gradients(problem, final_state, hparams)
    _, pullback_state = vjp(lambda w: problem.step(w, hparams, last), final_state)
    _, pullback_hparams = vjp(lambda lam: problem.step(final_state, lam, last), hparams)
    norms = []
    v = solve(lambda x: pullback_state(x)[0], grad_state, norms)
    (b_v,) = pullback_hparams(v)
    return finish(trees.add(grad_hparams, b_v), loss, final_state, 1, norms, return_info)


def _fixed_point(apply_a, rhs, norms, iterations):
    v = trees.zeros_like(rhs)
    for _ in range(iterations):
        v = trees.add(apply_a(v), rhs)
        norms.append(trees.norm(v))
    return v


def _conjugate_gradient(apply_a, rhs, norms, iterations, tol):
    """CG on (I - A) v = rhs from v = 0."""
    v = trees.zeros_like(rhs)
    residual = rhs
    direction = residual
    residual_sq = trees.dot(residual, residual)
    stop_sq = (tol ** 2) * residual_sq
    for _ in range(iterations):
        if residual_sq <= stop_sq or residual_sq == 0:
            break
        image = trees.sub(direction, apply_a(direction))
        step = residual_sq / trees.dot(direction, image)
        v = trees.axpy(step, direction, v)
        residual = trees.axpy(-step, image, residual)
        new_residual_sq = trees.dot(residual, residual)
        direction = trees.axpy(new_residual_sq / residual_sq, direction, residual)
        residual_sq = new_residual_sq
        norms.append(float(residual_sq.sqrt()))
    return v
