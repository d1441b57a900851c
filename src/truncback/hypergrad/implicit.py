"""Approximate implicit differentiation (AID) at w_T, eq. (11), as in Grazzi et al. (2020).

Read the last step as a fixed-point map Phi(w, lam) = Xi_T(w, lam). At a fixed point,
d_lam f = grad_lam f + B v with (I - A) v = grad_w f, where A v and B v are the step's
vector-Jacobian products with respect to w and lam. ``aid`` solves the linear system with any solver
of :mod:`truncback.hypergrad.solvers` (or one of the caller's, same signature); ``aid_fp`` uses K
fixed-point (Neumann series) iterations, ``aid_cg`` K conjugate-gradient iterations. For a
gradient-descent step, I - A = gamma * Hessian of g, so eq. (11) is recovered; CG needs I - A
symmetric positive definite, which holds for gradient descent on a locally strongly convex g but not
e.g. with momentum (CG then stops with a ValueError).
"""

from functools import partial

from truncback.hypergrad import trees
from truncback.hypergrad.checks import check_depth, check_problem
from truncback.hypergrad.dynamics import initial_state, outer_gradients, run, step_products_at
from truncback.hypergrad.result import finish
from truncback.hypergrad.solvers import conjugate_gradient, fixed_point


def aid(problem, hparams, K: int, *, solve=conjugate_gradient, return_info: bool = False, alpha_norms: bool = True):
    """grad_lam f + B v with v = solve(v -> (I - A) v, grad_w f, K) at w_T (eq. 11); with
    ``return_info``, the iterate's norms unless ``alpha_norms`` is false."""
    check_problem(problem, hparams)
    check_depth("K", K, None)
    if problem.T < 1:
        raise ValueError("implicit differentiation needs at least one lower-level step (T >= 1)")
    last = problem.T - 1
    final_state = run(problem, hparams, initial_state(problem, hparams), 0, problem.T)
    loss, grad_state, grad_hparams = outer_gradients(problem, final_state, hparams)
    a_product, b_product = step_products_at(problem, final_state, hparams, last)
    norms: list | None = [] if return_info and alpha_norms else None
    v = solve(lambda x: trees.sub(x, a_product(x)), grad_state, K, norms)
    b_v = b_product(v)
    return finish(trees.add(grad_hparams, b_v), loss, final_state, 1, norms, return_info)


def aid_fp(problem, hparams, K: int, *, return_info: bool = False, alpha_norms: bool = True):
    """AID with K fixed-point iterations v <- A v + grad_w f from v = 0 (the order-K Taylor series of
    eq. 12, which is why it coincides with K-RMD when A and B are constant)."""
    return aid(problem, hparams, K, solve=fixed_point, return_info=return_info, alpha_norms=alpha_norms)


def aid_cg(problem, hparams, K: int, *, tol: float = 0.0, return_info: bool = False, alpha_norms: bool = True):
    """AID with at most K conjugate-gradient iterations on (I - A) v = grad_w f, stopping early once
    ||residual|| <= tol * ||grad_w f||."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol must be a non-negative number, got tol={tol!r}")
    solve = partial(conjugate_gradient, tol=tol)
    return aid(problem, hparams, K, solve=solve, return_info=return_info, alpha_norms=alpha_norms)
