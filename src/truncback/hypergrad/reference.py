"""The independent reference every method is checked against: plain autograd through the whole
unrolled loop, the graph of every step kept (what most users write by hand). It shares no code with
the methods (no no-graph forward, no per-step VJPs), so agreement with it is evidence, not identity."""

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten


def unrolled_autograd(problem, hparams):
    """d_lam f by ``torch.autograd.grad`` through w_0 = init(lam), the T steps and outer(w_T, lam)."""
    leaves, spec = tree_flatten(hparams)
    leaves = [leaf.detach().clone().requires_grad_() for leaf in leaves]
    lam = tree_unflatten(leaves, spec)
    state = problem.init(lam)
    for t in range(problem.T):
        state = problem.step(state, lam, t)
    grads = torch.autograd.grad(problem.outer(state, lam), leaves, allow_unused=True)
    return tree_unflatten([torch.zeros_like(leaf) if grad is None else grad for grad, leaf in zip(grads, leaves)], spec)
