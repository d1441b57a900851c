"""The gradient-descent update w - rate * grad_w g(w, lam, *data), shared by the eager step
(``problem.GradientDescentStep``) and the compiled fast path (``fast_path``), which both import it from
here: neither imports the other for it."""

import torch
from torch.utils._pytree import tree_map


def descend(w, grad, rate):
    """w - rate * grad, leaf by leaf."""
    return tree_map(lambda wi, gi: wi - rate * gi, w, grad)


def update_function(inner_loss):
    """(w, lam, rate, *data) -> w - rate * grad_w inner_loss(w, lam, *data): the step, with its step size
    and data as arguments."""
    grad_w = torch.func.grad(inner_loss)

    def update(w, lam, rate, *data):
        return descend(w, grad_w(w, lam, *data), rate)

    return update
