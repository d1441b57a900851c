"""How a bilevel problem is stated: lower-level dynamics (eq. 4) and an upper objective.

The lower level is an iterative algorithm, w_0 = Xi_0(lam), w_{t+1} = Xi_{t+1}(w_t, lam), w_hat* = w_T,
and the upper level is f(w_T, lam). States and hyperparameters are tensors or (nested) tuples, lists
or dicts of tensors, so weights and momentum, or an ``nn.Module``'s parameter dict used with
``torch.func.functional_call``, can be the state, and the hyperparameters can mix regularisers, an
initialisation and a step size.
"""

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

Tree = Any


@dataclass(frozen=True)
class BilevelProblem:
    """A bilevel problem whose lower level runs ``T`` steps.

    init(lam) -> w_0                  the initial map Xi_0 (eq. 4); may ignore lam (then B_0 = 0)
    step(w_t, lam, t) -> w_{t+1}      the transition Xi_{t+1}, t = 0, ..., T-1
    outer(w_T, lam) -> scalar tensor  the upper objective f

    ``init``, ``step`` and ``outer`` must be pure, deterministic functions of their arguments: no
    random draws, no state kept between calls, no in-place change of their inputs. The methods call
    them more than once at the same arguments (K-RMD runs each kept step again to rebuild its graph,
    checkpointing recomputes whole segments, UFOM reruns the dynamics) and rely on getting the same
    value each time. Draw a task's randomness (a minibatch, dropout masks) before building the problem.
    """

    init: Callable[[Tree], Tree]
    step: Callable[[Tree, Tree, int], Tree]
    outer: Callable[[Tree, Tree], torch.Tensor]
    T: int

    def __post_init__(self):
        if not isinstance(self.T, int) or isinstance(self.T, bool) or self.T < 0:
            raise ValueError(f"T must be a non-negative int, got T={self.T!r}")


class GradientDescentStep:
    """The step Xi_{t+1}(w, lam) = w - lr * grad_w g(w, lam) (sec. 2.2) as a callable built on
    ``torch.func.grad``, so that vjp and jvp go through it, with a graph-free twin,
    ``without_graph``: the same value by ``torch.autograd.grad`` on detached inputs, which the
    methods' forward passes use (``dynamics.advance``) because it is cheaper where no derivative of
    the step is taken."""

    def __init__(self, inner_loss: Callable[[Tree, Tree], torch.Tensor], lr):
        self.inner_loss, self.lr = inner_loss, lr
        self.grad_w = torch.func.grad(inner_loss)

    def rate(self, lam, t):
        return self.lr(lam, t) if callable(self.lr) else self.lr

    def __call__(self, w, lam, t):
        rate = self.rate(lam, t)
        return tree_map(lambda wi, gi: wi - rate * gi, w, self.grad_w(w, lam))

    def without_graph(self, w, lam, t):
        leaves, spec = tree_flatten(w)
        lam = tree_map(torch.Tensor.detach, lam)
        with torch.enable_grad():
            leaves = [leaf.detach().requires_grad_() for leaf in leaves]
            grads = torch.autograd.grad(self.inner_loss(tree_unflatten(leaves, spec), lam), leaves)
        with torch.no_grad():
            rate = self.rate(lam, t)
            return tree_unflatten([leaf.detach() - rate * grad for leaf, grad in zip(leaves, grads)], spec)


def gradient_descent(inner_loss: Callable[[Tree, Tree], torch.Tensor], lr) -> Callable:
    """The step Xi_{t+1}(w, lam) = w - lr * grad_w g(w, lam) (sec. 2.2).

    ``lr`` is a number, or a function ``lr(lam, t)`` when the step size is a hyperparameter or a schedule.
    """
    return GradientDescentStep(inner_loss, lr)


def heavy_ball(inner_loss: Callable[[Tree, Tree], torch.Tensor], lr, momentum) -> Callable:
    """Gradient descent with momentum on the state (w, v): v' = mu v + grad_w g(w, lam), w' = w - lr v'.

    ``lr`` and ``momentum`` are numbers or functions of (lam, t).
    """
    grad_w = torch.func.grad(inner_loss)

    def step(state, lam, t):
        w, v = state
        rate = lr(lam, t) if callable(lr) else lr
        mu = momentum(lam, t) if callable(momentum) else momentum
        v_next = tree_map(lambda vi, gi: mu * vi + gi, v, grad_w(w, lam))
        w_next = tree_map(lambda wi, vi: wi - rate * vi, w, v_next)
        return (w_next, v_next)

    return step


def same_structure(reference: Tree, candidate: Tree, name: str) -> None:
    """Raise a ValueError naming ``name`` when ``candidate`` differs from ``reference`` in structure or shapes."""
    ref_leaves, ref_spec = tree_flatten(reference)
    cand_leaves, cand_spec = tree_flatten(candidate)
    if ref_spec != cand_spec:
        raise ValueError(f"{name}: structure {cand_spec} does not match the expected {ref_spec}")
    for i, (r, c) in enumerate(zip(ref_leaves, cand_leaves)):
        if not isinstance(c, torch.Tensor):
            raise ValueError(f"{name}: leaf {i} is a {type(c).__name__}, expected a tensor")
        if r.shape != c.shape:
            raise ValueError(f"{name}: leaf {i} has shape {tuple(c.shape)}, expected {tuple(r.shape)}")
