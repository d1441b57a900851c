"""Every method reaches the lower-level step through ``hypergrad.dynamics``: AID's and FOM's products
go through the compiled pullback when the step is compiled (``GradientDescentStep.fast_pullback``)
and give the eager step's hypergradient."""

import pytest
import torch
from torch.utils._pytree import tree_leaves

from truncback.hypergrad import BilevelProblem, aid_cg, aid_fp, fom, gradient_descent

T, K = 6, 5


def relative_error(estimate, reference) -> float:
    est = torch.cat([x.flatten() for x in tree_leaves(estimate)])
    ref = torch.cat([x.flatten() for x in tree_leaves(reference)])
    return float((est - ref).norm() / ref.norm())


@pytest.fixture
def counted_pullbacks(monkeypatch):
    """The number of calls of compiled pullbacks made since the fixture was set up (a list of one)."""
    from truncback.hypergrad import fast_path

    calls = [0]
    original = fast_path.compiled_pullback

    def counting(*args, **kwargs):
        pullback = original(*args, **kwargs)

        def call(*inputs):
            calls[0] += 1
            return pullback(*inputs)

        return call

    monkeypatch.setattr(fast_path, "compiled_pullback", counting)
    return calls


@pytest.mark.parametrize("rate", ["number", "hyperparameter"])
def test_aid_and_fom_on_a_compiled_step_use_its_pullback_and_equal_the_eager_step(rng, counted_pullbacks, rate):
    """float64, weighted logistic regression (SPD I - A, so CG applies); the step size a number or a
    function of lam (then the compiled pullback's rate product is pulled back to lam)."""

    def randn(*shape):
        return torch.randn(*shape, generator=rng, dtype=torch.float64)

    x, y, x_val, y_val = randn(20, 4), (randn(20) > 0).double(), randn(15, 4), (randn(15) > 0).double()
    logistic = torch.nn.functional.binary_cross_entropy_with_logits

    def inner(w, lam):
        return torch.mean(torch.sigmoid(lam["weights"]) * logistic(x @ w, y, reduction="none")) + 0.05 * w @ w

    lr = 0.5 if rate == "number" else (lambda lam, t: 0.5 * torch.exp(lam["log_lr"]))

    def bilevel(compile):
        return BilevelProblem(
            lambda lam: torch.zeros(4, dtype=torch.float64),
            gradient_descent(inner, lr, compile),
            lambda w, lam: logistic(x_val @ w, y_val) + 0.01 * lam["weights"] @ lam["weights"],
            T=T,
        )

    lam = {"weights": randn(20), "log_lr": torch.tensor(0.1, dtype=torch.float64)}
    eager, compiled = bilevel(False), bilevel(True)
    methods = {
        "aid_cg": lambda p: aid_cg(p, lam, K),
        "aid_fp": lambda p: aid_fp(p, lam, K),
        "fom": lambda p: fom(p, lam),
    }
    expected_calls = {"aid_cg": K + 1, "aid_fp": K + 1, "fom": T}  # one per product (AID: K of A, one B v)
    for name, method in methods.items():
        reference = method(eager)
        before = counted_pullbacks[0]
        assert relative_error(method(compiled), reference) < 1e-12, name
        assert counted_pullbacks[0] - before == expected_calls[name], f"{name} did not go through the compiled pullback"
    counted_pullbacks[0] = 0
    for method in methods.values():
        method(eager)
    assert counted_pullbacks[0] == 0, "an eager step ran a compiled pullback"
