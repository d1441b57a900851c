"""First-order hypergradients: FOM, which drops the second-derivative products, and its unbiased
randomised correction UFOM (Likhosherstov et al., 2021).

FOM replaces every A_t = d_{w_t} Xi_{t+1} of eq. (5) by the identity (for gradient descent that
drops the Hessian of g): d_lam f ~ grad_lam f + sum_t B_t grad_w f. When lam is the initialisation
this is first-order MAML. It needs grad_w f(w_T) before the B_t products, so it runs the dynamics
twice and holds two states, whatever T is.
"""

import torch

from truncback.hypergrad import trees
from truncback.hypergrad.checks import check_probability, check_problem
from truncback.hypergrad.dynamics import (
    advance_with_hparams_pullback,
    init_vjp,
    initial_state,
    outer_gradients,
    run,
    step_vjp,
)
from truncback.hypergrad.result import finish


def fom(problem, hparams, *, return_info: bool = False):
    """grad_lam f + B_0 g + sum_{t=1}^T B_t g with g = grad_w f(w_T): eq. (5) with every A_t := I."""
    check_problem(problem, hparams)
    w0 = initial_state(problem, hparams)
    final_state = run(problem, hparams, w0, 0, problem.T)
    loss, grad_state, h = outer_gradients(problem, final_state, hparams)
    h = trees.add(h, init_vjp(problem, hparams, grad_state))
    state = w0
    for t in range(problem.T):
        next_state, b_product = advance_with_hparams_pullback(problem, state, hparams, t)
        h = trees.add(h, b_product(grad_state))
        state = trees.detach(next_state)
    return finish(h, loss, final_state, 2, [], return_info)


def ufom(
    problem,
    hparams,
    q: float,
    *,
    generator: torch.Generator | None = None,
    return_info: bool = False,
    alpha_norms: bool = True,
):
    """FOM + (xi / q) (exact - FOM), xi ~ Bernoulli(q): an unbiased estimate of d_lam f.

    The exact term is computed, with probability q, by a reverse pass that recomputes each w_t from
    w_0, so memory stays constant in T and the expected time is O(T + q T^2). With ``return_info``,
    that pass's alpha norms unless ``alpha_norms`` is false.
    """
    check_probability("q", q)
    first_order, info = fom(problem, hparams, return_info=True)
    if torch.rand((), generator=generator) >= q:
        return finish(first_order, info.outer_loss, info.final_state, 2, [], return_info)
    exact, norms = exact_constant_memory(problem, hparams, return_norms=return_info and alpha_norms)
    estimate = trees.axpy(1.0 / q, trees.sub(exact, first_order), first_order)
    return finish(estimate, info.outer_loss, info.final_state, 3, norms, return_info)


def exact_constant_memory(problem, hparams, return_norms: bool = False):
    """d_lam f by eq. (6), recomputing w_t from w_0 for every step: O(M) memory, O(T^2) steps.

    Returns the hypergradient and the alpha norms (0-d tensors; None unless ``return_norms``)."""
    check_problem(problem, hparams)
    w0 = initial_state(problem, hparams)
    final_state = run(problem, hparams, w0, 0, problem.T)
    _, alpha, h = outer_gradients(problem, final_state, hparams)
    alpha_norms = [trees.norm_tensor(alpha)] if return_norms else None
    for t in reversed(range(problem.T)):
        alpha, b_alpha = step_vjp(problem, run(problem, hparams, w0, 0, t), hparams, t, alpha)
        h = trees.add(h, b_alpha)
        if alpha_norms is not None:
            alpha_norms.append(trees.norm_tensor(alpha))
    return trees.add(h, init_vjp(problem, hparams, alpha)), alpha_norms
