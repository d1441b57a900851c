"""Reverse-mode hypergradients: full RMD (eq. 6), K-step truncated RMD (eq. 8), checkpointed RMD, and
unrolled RMD.

The first three run the dynamics forward without a graph, keep some of the states, and rebuild each
step's graph only for its vector-Jacobian product on the way back, so the memory they hold is the
states they keep (Table 1) and nothing else. ``unrolled`` keeps every step's graph from the forward
pass instead and back-propagates once: no step runs twice, for O(T) graphs of memory.
"""

import math
from collections import deque

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from truncback.hypergrad import trees
from truncback.hypergrad.checks import check_depth, check_problem, check_scalar
from truncback.hypergrad.dynamics import advance, advance_with_graph, init_vjp, initial_state, outer_gradients, step_vjp
from truncback.hypergrad.result import finish


def back_propagate(problem, hparams, states, first_step: int, alpha, h, alpha_norms):
    """Eq. (6) through steps first_step + len(states) - 1, ..., first_step; ``states`` holds their
    inputs w_t in order and is emptied from the end. Returns the new (alpha, h). ``alpha_norms``: a
    list to append ||alpha_t|| to (as 0-d tensors, no host synchronisation), or None."""
    for t in reversed(range(first_step, first_step + len(states))):
        alpha, b_alpha = step_vjp(problem, states.pop(), hparams, t, alpha)
        h = trees.add(h, b_alpha)
        if alpha_norms is not None:
            alpha_norms.append(trees.norm_tensor(alpha))
    return alpha, h


def initial_norms(alpha, wanted: bool):
    """[||alpha_T||] when the alpha norms are asked for, else None (nothing is computed)."""
    return [trees.norm_tensor(alpha)] if wanted else None


def krmd(problem, hparams, K: int, *, return_info: bool = False, alpha_norms: bool = True):
    """h_{T-K} of eq. (8): back-propagation through the last K steps only. With ``return_info``, its
    info holds ||alpha_t|| of every back-propagated step unless ``alpha_norms`` is false (a norm a
    step: a few percent of full RMD's time on small problems, which a caller that reads no norm
    need not pay).

    The first T - K steps run without a graph and a window of the last K + 1 states (a deque with
    that maximum length) is all that is kept, so memory is O(K M) whatever T is. K = 0 gives
    grad_lam f; K = T back-propagates into the initial map as well (its B_0 term) and equals ``rmd``.
    """
    check_problem(problem, hparams)
    check_depth("K", K, problem.T)
    state = initial_state(problem, hparams)
    window = deque([state], maxlen=K + 1)
    for t in range(problem.T):
        state = advance(problem, state, hparams, t)
        window.append(state)
    states_held = len(window)
    final_state = window.pop()
    loss, alpha, h = outer_gradients(problem, final_state, hparams)
    norms = initial_norms(alpha, return_info and alpha_norms)
    alpha, h = back_propagate(problem, hparams, list(window), problem.T - K, alpha, h, norms)
    if K == problem.T:
        h = trees.add(h, init_vjp(problem, hparams, alpha))
    return finish(h, loss, final_state, states_held, norms, return_info)


def krmd_all_depths(problem, hparams):
    """[h_T, h_{T-1}, ..., h_0 + B_0 alpha_0]: ``krmd(problem, hparams, K)`` for every K = 0, ..., T
    from one full reverse pass (O(M T) memory), for studying the bias of eq. (8) against depth."""
    check_problem(problem, hparams)
    states = [initial_state(problem, hparams)]
    for t in range(problem.T):
        states.append(advance(problem, states[-1], hparams, t))
    _, alpha, h = outer_gradients(problem, states.pop(), hparams)
    path = [h]
    for t in reversed(range(problem.T)):
        alpha, h = back_propagate(problem, hparams, [states.pop()], t, alpha, h, None)
        path.append(h)
    path[-1] = trees.add(h, init_vjp(problem, hparams, alpha))
    return path


def rmd(problem, hparams, *, return_info: bool = False, alpha_norms: bool = True):
    """The exact hypergradient d_lam f by full reverse mode (eq. 6), including B_0 (O(M T) memory);
    ``alpha_norms`` as for ``krmd``."""
    return krmd(problem, hparams, problem.T, return_info=return_info, alpha_norms=alpha_norms)


def checkpointed(problem, hparams, *, every: int | None = None, return_info: bool = False, alpha_norms: bool = True):
    """The exact hypergradient with O(M sqrt T) memory (Table 1, checkpointing every sqrt T steps).

    The forward pass keeps every ``every``-th state (default ceil(sqrt T)); the reverse pass rebuilds
    one segment at a time from its checkpoint, so each step runs twice. ``alpha_norms`` as for ``krmd``.
    """
    check_problem(problem, hparams)
    T = problem.T
    if every is None:
        every = max(1, math.ceil(math.sqrt(T)))
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ValueError(f"every must be a positive int, got every={every!r}")
    state = initial_state(problem, hparams)
    checkpoints = []
    for t in range(T):
        if t % every == 0:
            checkpoints.append(state)
        state = advance(problem, state, hparams, t)
    final_state = state
    loss, alpha, h = outer_gradients(problem, final_state, hparams)
    norms = initial_norms(alpha, return_info and alpha_norms)
    states_held = len(checkpoints) + 1
    for start in reversed(range(0, T, every)):
        segment = [checkpoints.pop()]
        for t in range(start, min(start + every, T) - 1):
            segment.append(advance(problem, segment[-1], hparams, t))
        states_held = max(states_held, len(checkpoints) + len(segment) + 1)
        alpha, h = back_propagate(problem, hparams, segment, start, alpha, h, norms)
    h = trees.add(h, init_vjp(problem, hparams, alpha))
    return finish(h, loss, final_state, states_held, norms, return_info)


def unrolled(problem, hparams, *, return_info: bool = False):
    """The exact d_lam f (eq. 6) by one backward pass through the graph of all T steps, kept from the
    forward pass (the step's ``with_graph`` twin where it has one): what hand-written autograd does.
    No step runs twice, so it takes less time than ``rmd``, which holds T + 1 states only but runs
    every step again on the way back; it holds every step's graph (for gradient descent, the
    activations of grad_w g: several states' worth per step). Its backward pass goes through whole
    steps at once, so it reports no alpha_t norms."""
    check_problem(problem, hparams)
    leaves, spec = tree_flatten(hparams)
    leaves = [leaf.detach().requires_grad_() for leaf in leaves]
    lam = tree_unflatten(leaves, spec)
    with torch.enable_grad():
        state = problem.init(lam)
        for t in range(problem.T):
            state = advance_with_graph(problem, state, lam, t)
        loss = problem.outer(state, lam)
        check_scalar(loss)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    h = tree_unflatten([torch.zeros_like(leaf) if grad is None else grad for grad, leaf in zip(grads, leaves)], spec)
    return finish(h, loss.detach(), trees.detach(state), problem.T + 1, [], return_info)
