"""The building blocks every method shares: running the dynamics without a graph, and the
vector-Jacobian and Jacobian-vector products of one step (A_t, B_t of eq. 5).

This is the methods' one way to the step: none calls ``vjp`` or ``jvp`` on ``problem.step`` itself,
so a step's own faster forms (``without_graph``, ``pullback``, the compiled ``fast_pullback`` of
``GradientDescentStep``) serve every method that can use them."""

import torch
from torch.func import jvp, vjp

from truncback.hypergrad import trees
from truncback.hypergrad.checks import check_scalar
from truncback.hypergrad.problem import same_structure


@torch.no_grad()
def initial_state(problem, hparams):
    """w_0 = Xi_0(lam), without a graph."""
    return trees.detach(problem.init(hparams))


@torch.no_grad()
def advance(problem, state, hparams, t: int):
    """w_{t+1} = Xi_{t+1}(w_t, lam), without a graph (the step's ``without_graph`` twin where it has
    one, see ``GradientDescentStep``); the first step checks the state's shapes."""
    forward = getattr(problem.step, "without_graph", problem.step)
    new_state = trees.detach(forward(state, hparams, t))
    if t == 0:
        same_structure(state, new_state, "step(w, hparams, t) output (compared with init(hparams))")
    return new_state


def advance_with_graph(problem, state, hparams, t: int):
    """w_{t+1} = Xi_{t+1}(w_t, lam) with its graph kept for a later backward pass through the whole loop
    (the step's ``with_graph`` twin where it has one, see ``GradientDescentStep``)."""
    return getattr(problem.step, "with_graph", problem.step)(state, hparams, t)


def run(problem, hparams, state, start: int, stop: int):
    """The state after steps start, ..., stop - 1 from ``state`` = w_start."""
    for t in range(start, stop):
        state = advance(problem, state, hparams, t)
    return state


def outer_gradients(problem, final_state, hparams):
    """(f, grad_w f, grad_lam f) at (w_T, lam): the starting point alpha_T, h_T of eq. (6); f is a
    detached 0-d tensor (read on the host only when diagnostics are asked for)."""
    loss, pullback = vjp(problem.outer, final_state, hparams)
    check_scalar(loss)
    grad_state, grad_hparams = pullback(torch.ones_like(loss))
    return loss.detach(), grad_state, grad_hparams


def step_vjp(problem, state, hparams, t: int, alpha):
    """(A_{t+1} alpha, B_{t+1} alpha) of eq. (6) at w_t, the step's graph rebuilt for this product only
    (by the step's own ``pullback`` where it has one, see ``GradientDescentStep``)."""
    own = getattr(problem.step, "pullback", None)
    if own is not None:
        return own(state, hparams, t, alpha)
    _, pullback = vjp(lambda w, lam: problem.step(w, lam, t), state, hparams)  # type: ignore[misc]
    return pullback(alpha)


def _fast_pullback(problem):
    """The step's compiled pullback, (w, lam, t, alpha) -> (A^T alpha, B^T alpha), where it has one
    (``GradientDescentStep.fast_pullback``), else None."""
    return getattr(problem.step, "fast_pullback", None)


def step_products_at(problem, state, hparams, t: int):
    """(v -> A_{t+1} v, v -> B_{t+1} v) at w_t, for many products at one point (AID's solver, then its
    B v). Through the step's compiled pullback where it has one (each product one call of it);
    otherwise the step's graph with respect to w, and the one with respect to lam, are built once by
    ``torch.func.vjp`` and serve every product."""
    fast = _fast_pullback(problem)
    if fast is not None:
        return (lambda v: fast(state, hparams, t, v)[0]), (lambda v: fast(state, hparams, t, v)[1])
    _, pullback_state = vjp(lambda w: problem.step(w, hparams, t), state)  # type: ignore[misc]
    _, pullback_hparams = vjp(lambda lam: problem.step(state, lam, t), hparams)  # type: ignore[misc]
    return (lambda v: pullback_state(v)[0]), (lambda v: pullback_hparams(v)[0])


def advance_with_hparams_pullback(problem, state, hparams, t: int):
    """(w_{t+1}, v -> B_{t+1} v) at w_t: the next state with the product with respect to lam (FOM's one
    pass). On a compiled step, the compiled update (``advance``, no graph) and a call of the compiled
    pullback per product; otherwise one ``torch.func.vjp`` with respect to lam, whose forward pass gives
    the state (with its graph: detach it) and whose graph lives as long as the returned function."""
    fast = _fast_pullback(problem)
    if fast is not None:
        return advance(problem, state, hparams, t), (lambda v: fast(state, hparams, t, v)[1])
    next_state, pullback = vjp(lambda lam: problem.step(state, lam, t), hparams)  # type: ignore[misc]
    return next_state, (lambda v: pullback(v)[0])


def init_vjp(problem, hparams, alpha):
    """B_0 alpha with B_0 = d_lam Xi_0(lam) (eq. 5)."""
    _, pullback = vjp(problem.init, hparams)
    (b0_alpha,) = pullback(alpha)
    return b0_alpha


def step_jvp(problem, state, hparams, t: int, state_tangent, hparams_tangent):
    """A_{t+1}^T z + B_{t+1}^T e: the forward-mode product of eq. (7) along one direction."""
    return jvp(lambda w, lam: problem.step(w, lam, t), (state, hparams), (state_tangent, hparams_tangent))[1]


def init_jvp(problem, hparams, hparams_tangent):
    """B_0^T e (eq. 7)."""
    return jvp(problem.init, (hparams,), (hparams_tangent,))[1]
