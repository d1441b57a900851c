"""The gradient-descent step's graph-free twin, which every method's forward pass uses, gives the value
of the step itself (flat state with a fixed step; dict state whose step size is a hyperparameter), and
carries no graph."""

import pytest
import torch
from torch.utils._pytree import tree_leaves

from truncback.hypergrad.synthetic import conv_net_parts, hypercleaning_parts


@pytest.mark.parametrize(
    "make", [lambda: hypercleaning_parts(3, n_train=40, n_val=30, seed=1), lambda: conv_net_parts(3, batch=6, seed=1)]
)
def test_without_graph_equals_the_step(make):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        parts, lam = make()
        step = parts.problem().step
        state = parts.init(lam)
        for t in range(3):
            expected = step(state, lam, t)
            got = step.without_graph(state, lam, t)
            for a, b in zip(tree_leaves(expected), tree_leaves(got), strict=True):
                torch.testing.assert_close(b, a, rtol=1e-13, atol=1e-15)
                assert not b.requires_grad
            assert any(not torch.equal(a, b) for a, b in zip(tree_leaves(state), tree_leaves(got)))
            state = got
    finally:
        torch.set_default_dtype(previous)


@pytest.mark.parametrize(
    "make", [lambda: hypercleaning_parts(3, n_train=40, n_val=30, seed=1), lambda: conv_net_parts(3, batch=6, seed=1)]
)
def test_with_graph_equals_the_step_and_differentiates_like_it(make):
    """The graph-keeping twin (the unrolled method's forward pass): same value, and the same gradient
    of a function of its output with respect to lam as the torch.func step's."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        parts, lam = make()
        step = parts.problem().step
        state = step.without_graph(parts.init(lam), lam, 0)
        lam_leaves = [leaf.detach().requires_grad_() for leaf in tree_leaves(lam)]
        lam_tracked = torch.utils._pytree.tree_unflatten(lam_leaves, torch.utils._pytree.tree_structure(lam))
        grads = []
        for forward in (step, step.with_graph):
            with torch.enable_grad():
                out = forward(state, lam_tracked, 1)
                total = sum(torch.sum(leaf**2) for leaf in tree_leaves(out))
                grads.append(torch.autograd.grad(total, lam_leaves, allow_unused=True))
            for a, b in zip(tree_leaves(step(state, lam, 1)), tree_leaves(out), strict=True):
                torch.testing.assert_close(b, a, rtol=1e-13, atol=1e-15)
        for a, b in zip(*grads, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(b, a, rtol=1e-11, atol=1e-14)
    finally:
        torch.set_default_dtype(previous)


def test_heavy_ball_without_graph_equals_its_step(rng):
    from hypergrad_problems import weighted_logistic_problem

    problem, lam = weighted_logistic_problem(rng)
    state = problem.init(lam)
    for t in range(3):
        expected, got = problem.step(state, lam, t), problem.step.without_graph(state, lam, t)
        for a, b in zip(tree_leaves(expected), tree_leaves(got), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-13, atol=1e-15)
            assert not b.requires_grad
        state = got
