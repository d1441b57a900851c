"""The compiled fast path's float32 CPU matrix products through oneDNN (truncback.hypergrad.onednn):
the operator against float64 products in every memory layout it meets, the graph pass replacing
exactly the float32 CPU products, and every method on the fast path against float64 references."""

import subprocess
import sys
import warnings

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils._pytree import tree_leaves

from truncback.hypergrad import gradient_descent, hypergradient
from truncback.hypergrad.onednn import AVAILABLE, MIN_MULTIPLY_ADDS, onednn_mm, replace_products
from truncback.hypergrad.reference import unrolled_autograd

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="this torch build has no oneDNN linear operator")


def layouts(rng):
    """(name, a, b) pairs of float32 matrices in the layouts compiled steps pass: contiguous,
    transposed views, strided slices, a broadcast (stride 0) operand, an empty dimension."""

    def randn(*shape):
        return torch.randn(*shape, generator=rng)

    x, w, g = randn(300, 70), randn(10, 70), randn(300, 10)
    return [
        ("x w^T", x, w.T),
        ("g^T x", g.T, x),
        ("x^T g", x.T, g),
        ("w x^T", w, x.T),
        ("strided", randn(600, 140)[::2, ::2], randn(140, 20)[::2]),
        ("broadcast", x, randn(70, 1).expand(70, 5)),
        ("empty", randn(0, 70), w.T),
        ("one row", randn(1, 70), w.T),
    ]


def test_onednn_product_is_the_product_to_float32_rounding(rng):
    """Each entry within the classical bound of a float32 dot product of length k,
    |fl(a b) - a b| <= k u (|a| |b|) with u = 2^-24, against the product in float64; a second call
    gives the same bits."""
    for name, a, b in layouts(rng):
        exact = a.double() @ b.double()
        product = onednn_mm(a, b)
        assert product.shape == exact.shape and product.dtype == torch.float32, name
        bound = a.shape[1] * 2.0**-24 * (a.double().abs() @ b.double().abs())
        assert bool(((product.double() - exact).abs() <= bound).all()), name
        assert torch.equal(onednn_mm(a, b), product), name  # the same bits when called again


def products_of(graph) -> list[str]:
    return sorted(str(node.target) for node in graph.nodes if node.op == "call_function" and "mm" in str(node.target))


@pytest.mark.parametrize("dtype, replaced", [(torch.float32, 2), (torch.float64, 0)])
def test_the_pass_replaces_large_float32_products_only(rng, dtype, replaced):
    """Two products of 4096 x 512 x 8 multiply-adds (MIN_MULTIPLY_ADDS) are replaced in float32, not in
    float64; a small one (50 x 8 x 3) keeps torch's kernel in either."""
    x, w, c = (torch.randn(*shape, generator=rng, dtype=dtype) for shape in ((4096, 512), (8, 512), (8, 512)))
    small, v = x[:50, :8], w[:3, :8]
    assert 4096 * 512 * 8 >= MIN_MULTIPLY_ADDS > 50 * 8 * 3

    def function(x, w, c, small, v):
        return torch.addmm(c, (x @ w.T).T, x), small @ v.T

    graph_module = make_fx(function)(x, w, c, small, v)
    before = products_of(graph_module.graph)
    assert before == ["aten.addmm.default", "aten.mm.default", "aten.mm.default"]
    assert replace_products(graph_module.graph) == replaced
    graph_module.recompile()
    if replaced:
        assert products_of(graph_module.graph) == ["aten.mm.default"] + ["truncback.onednn_mm.default"] * 2
    else:
        assert products_of(graph_module.graph) == before
    for value, exact in zip(graph_module(x, w, c, small, v), function(*(t.double() for t in (x, w, c, small, v)))):
        error = float((value.double() - exact).abs().max() / exact.abs().max())
        assert error < (1e-6 if dtype == torch.float32 else 1e-14)


def relative_error(estimate, reference) -> float:
    est = torch.cat([leaf.double().flatten() for leaf in tree_leaves(estimate)])
    ref = torch.cat([leaf.double().flatten() for leaf in tree_leaves(reference)])
    return float((est - ref).norm() / ref.norm())


def hypercleaning_like(dtype, compile, rng_seed=2, n_train=2200, n_val=100, T=15):
    """Hypercleaning's step (weighted softmax regression, W 10 x 785) on random data of the same
    values in either dtype: g = mean_i sigmoid(lam_i) CE_i(W) + 1e-3 ||W||^2, f = CE on held-out data."""
    from truncback.hypergrad import BilevelProblem, gradient_descent

    gen = torch.Generator().manual_seed(rng_seed)
    x, x_val = torch.rand(n_train, 785, generator=gen).to(dtype), torch.rand(n_val, 785, generator=gen).to(dtype)
    y, y_val = torch.randint(0, 10, (n_train,), generator=gen), torch.randint(0, 10, (n_val,), generator=gen)
    lam = (0.5 * torch.randn(n_train, generator=gen)).to(dtype)
    cross_entropy = torch.nn.functional.cross_entropy

    def inner(W, lam, x, y):
        return torch.mean(torch.sigmoid(lam) * cross_entropy(x @ W.T, y, reduction="none")) + 1e-3 * torch.sum(W**2)

    problem = BilevelProblem(
        lambda lam: torch.zeros(10, 785, dtype=dtype),
        gradient_descent(inner, 0.1, compile, data=(x, y)),
        lambda W, lam: cross_entropy(x_val @ W.T, y_val),
        T=T,
    )
    return problem, lam


def test_every_method_on_the_fast_path_matches_float64_references_and_runs_onednn_products():
    """Hypercleaning's step, shrunken, in float32 on the fast path (oneDNN products, the default):
    the exact methods against unrolled autograd in float64, K-RMD and AID against the same method on
    the eager path in float64 (same data); the profile of one call shows oneDNN's products in the
    steps and torch's only in the outer objective (not compiled)."""
    specs = [
        {"name": "rmd"},
        {"name": "unrolled"},
        {"name": "checkpointed"},
        {"name": "krmd", "K": 15},
        {"name": "krmd", "K": 1},
        {"name": "krmd", "K": 5},
        {"name": "aid_fp", "K": 10},
    ]
    plain64, lam64 = hypercleaning_like(torch.float64, compile=False)
    exact64 = unrolled_autograd(plain64, lam64)
    fast, lam32 = hypercleaning_like(torch.float32, compile=True)
    assert fast.step.matmul == "onednn" and 2200 * 785 * 10 >= MIN_MULTIPLY_ADDS  # the step's products qualify
    for spec in specs:
        exact = spec["name"] != "aid_fp" and spec.get("K", fast.T) == fast.T
        reference = exact64 if exact else hypergradient(plain64, lam64, spec)
        assert relative_error(hypergradient(fast, lam32, spec), reference) < 1e-5, spec
    from truncback.hypergrad import fast_path

    before = fast_path.record()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        hypergradient(fast, lam32, {"name": "krmd", "K": 1})
    after = fast_path.record()
    calls = {event.key: event.count for event in profile.key_averages()}
    assert calls.get("truncback::onednn_mm", 0) >= 2 * fast.T  # two products in each step
    # the run's record counts the products the profiler saw oneDNN compute
    assert after["onednn_product_calls"] - before["onednn_product_calls"] == calls["truncback::onednn_mm"]
    assert after["compiled_calls"] - before["compiled_calls"] >= fast.T
    assert calls.get("aten::mm", 0) + calls.get("aten::addmm", 0) <= 2  # the eager outer loss and its gradient


def test_a_step_size_that_is_a_hyperparameter_on_the_fast_path():
    """The conv net (its step size exp(lam[1]), a hyperparameter) in float32 on the fast path: the
    compiled pullback with the rate's product against the eager path, and oneDNN's products there."""
    from truncback.hypergrad.synthetic import conv_net_parts

    parts, lam = conv_net_parts(4, batch=6, seed=3)
    for spec in ({"name": "rmd"}, {"name": "krmd", "K": 2}):
        eager = hypergradient(parts.problem(), lam, spec)
        assert relative_error(hypergradient(parts.problem(compile=True), lam, spec), eager) < 1e-5, spec


def test_an_unknown_matmul_choice_is_refused_at_construction():
    from truncback.hypergrad import gradient_descent

    with pytest.raises(ValueError, match="matmul='mkl': expected one of onednn, torch"):
        gradient_descent(lambda w, lam: torch.sum(w**2), 0.1, compile=True, matmul="mkl")


def test_the_eager_engine_imports_no_part_of_the_fast_path():
    """The maths core (problem, methods) stands apart from the speed tricks: those load on compile=True."""
    code = (
        "import sys, torch\n"
        "from truncback.hypergrad import BilevelProblem, gradient_descent, hypergradient\n"
        "step = gradient_descent(lambda w, lam: torch.sum((w - lam) ** 2), 0.1)\n"
        "problem = BilevelProblem(init=lambda lam: torch.zeros(3), step=step, outer=lambda w, lam: w.sum(), T=4)\n"
        "hypergradient(problem, torch.ones(3), {'name': 'krmd', 'K': 2})\n"
        "print(sorted(m for m in ('truncback.hypergrad.fast_path', 'truncback.hypergrad.onednn') if m in sys.modules))\n"
        "gradient_descent(lambda w, lam: torch.sum((w - lam) ** 2), 0.1, compile=True)\n"
        "print(sorted(m for m in ('truncback.hypergrad.fast_path', 'truncback.hypergrad.onednn') if m in sys.modules))\n"
    )
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert lines == ["[]", "['truncback.hypergrad.fast_path', 'truncback.hypergrad.onednn']"]


def test_a_torch_without_the_onednn_operator_is_said_once_not_hidden(monkeypatch):
    """Forced here whatever this machine's torch has: the product falls back to torch's, with a warning."""
    from truncback.hypergrad import fast_path, onednn

    monkeypatch.setattr(onednn, "AVAILABLE", False)
    monkeypatch.setattr(fast_path, "_COMPILED", {})
    monkeypatch.setattr(fast_path, "_WARNED", set())
    with pytest.warns(RuntimeWarning, match="lacks oneDNN's linear operator"):
        gradient_descent(lambda w, lam: torch.sum((w - lam) ** 2), 0.1, compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second compiled step: no second warning
        gradient_descent(lambda w, lam: torch.sum((w + lam) ** 2), 0.1, compile=True)
    assert onednn.compile_options("onednn") == {}
