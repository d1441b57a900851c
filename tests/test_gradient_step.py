"""The gradient-descent step's graph-free twin, which every method's forward pass uses, gives the value
of the step itself (flat state with a fixed step; dict state whose step size is a hyperparameter), and
carries no graph."""

import pytest
import torch
from torch.utils._pytree import tree_leaves

from truncback.benchmark import conv_net_parts, hypercleaning_parts


@pytest.mark.parametrize("make", [lambda: hypercleaning_parts(3, n_train=40, n_val=30, seed=1),
                                  lambda: conv_net_parts(3, batch=6, seed=1)])
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
