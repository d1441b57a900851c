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
    assert replace_products(graph_module.graph) == (replaced, 0)
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


def test_the_pass_counts_the_large_products_it_leaves(rng):
    """A batched product and an addmm with beta (forms the pass does not replace) of 2^24 multiply-adds
    are counted as kept, with their operators; a small batched one is not."""
    from truncback.hypergrad import onednn

    a, b, c = (torch.randn(*shape, generator=rng) for shape in ((2, 4096, 512), (2, 512, 8), (4096, 8)))

    def function(a, b, c):
        return torch.bmm(a, b), torch.addmm(c, a[0], b[0], beta=2.0), torch.bmm(a[:, :4, :8], b[:, :8, :2])

    graph_module = make_fx(function)(a, b, c)
    assert replace_products(graph_module.graph) == (0, 2)
    assert {"aten.bmm.default", "aten.addmm.default"} <= set(onednn.KEPT_TARGETS)


def large_product_step(rng, shift: float = 0.0, compile=True):
    """A compiled step whose loss has a float32 product of 4096 x 512 x 8 = 2^24 multiply-adds."""
    x = torch.randn(4096, 512, generator=rng)

    def inner(W, lam, x):
        return torch.mean((x @ W.T - shift) ** 2) + torch.sum(lam * W**2)

    return gradient_descent(inner, 0.1, compile=compile, data=(x,))


def test_a_pass_that_replaces_nothing_is_said(rng, fresh_fast_path, monkeypatch):
    """Forced: the pass no longer knows the product's form (as if inductor's graphs changed)."""
    from truncback.hypergrad import onednn

    monkeypatch.setattr(onednn, "REPLACED", ())
    step = large_product_step(rng, shift=0.25)
    W, lam = torch.zeros(8, 512), torch.ones(8, 512)
    with pytest.warns(
        fresh_fast_path.FastPathWarning,
        match=r"the oneDNN pass left 2 float32 CPU matrix product\(s\) .* \(aten\.addmm\.default, aten\.mm\.default\)",
    ):
        step.without_graph(W, lam, 0)
    strict = large_product_step(rng, shift=0.5, compile="strict")
    with pytest.raises(fresh_fast_path.FastPathError, match="left 2 float32 CPU matrix product.*compile='strict'"):
        strict.without_graph(W, lam, 0)  # the same shortfall (warned of before): an error under strict


def test_graphs_compiled_without_the_pass_are_said(rng, fresh_fast_path, monkeypatch):
    """Forced: inductor is not given the pass (as if its configuration key were ignored)."""
    from truncback.hypergrad import onednn

    monkeypatch.setattr(onednn, "compile_options", lambda matmul: {})
    step = large_product_step(rng, shift=0.75)
    with pytest.warns(fresh_fast_path.FastPathWarning, match="without running the oneDNN pass"):
        step.without_graph(torch.zeros(8, 512), torch.ones(8, 512), 0)


def test_a_compiled_step_that_dynamo_runs_eagerly_is_said(rng, fresh_fast_path, monkeypatch):
    """Forced: dynamo's recompile limit set to 1, then a second data shape for the same loss."""
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)

    def inner(w, lam, x):
        return torch.sum((w - lam * x) ** 2)

    small, large = (gradient_descent(inner, 0.1, compile=True, data=(torch.ones(n),)) for n in (3, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", fresh_fast_path.FastPathWarning)
        small.without_graph(torch.zeros(3), torch.ones(3), 0)  # compiled: nothing to say
    with pytest.warns(fresh_fast_path.FastPathWarning, match="ran the compiled step's update eagerly.*recompile limit"):
        value = large.without_graph(torch.zeros(5), torch.ones(5), 0)
    assert torch.allclose(value, torch.full((5,), 0.2))  # the eager step's value: w - 0.1 * 2 (w - lam x)


def test_strict_compilation_without_a_cpp_compiler_is_one_line_naming_the_way_out(
    fresh_fast_path, monkeypatch, tmp_path
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++, c++ or clang++
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(fresh_fast_path, "_CALLS", {"compiled_calls": 0})
    step = gradient_descent(lambda w, lam: torch.sum((w - lam) ** 2), 0.1, compile="strict")
    with pytest.raises(fresh_fast_path.FastPathError) as raised:
        step.without_graph(torch.zeros(3), torch.ones(3), 0)
    message = str(raised.value)
    assert "\n" not in message and "needs a C++ compiler" in message
    assert "False, True, 'strict'" in message and "compile: false" in message


@pytest.mark.parametrize("value", [1, "yes", None])
def test_a_compile_value_outside_its_choices_is_refused_at_construction(value):
    with pytest.raises(ValueError, match=f"compile={value!r}: expected one of False, True, 'strict'"):
        gradient_descent(lambda w, lam: torch.sum(w**2), 0.1, compile=value)


def test_a_torch_without_the_onednn_operator_is_said_once_not_hidden(fresh_fast_path, monkeypatch):
    """Forced here whatever this machine's torch has: the product falls back to torch's, with a warning."""
    from truncback.hypergrad import onednn

    fast_path = fresh_fast_path
    monkeypatch.setattr(onednn, "AVAILABLE", False)
    with pytest.warns(fast_path.FastPathWarning, match="lacks oneDNN's linear operator"):
        gradient_descent(lambda w, lam: torch.sum((w - lam) ** 2), 0.1, compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second compiled step: no second warning
        gradient_descent(lambda w, lam: torch.sum((w + lam) ** 2), 0.1, compile=True)
    assert onednn.compile_options("onednn") == {}
    with pytest.raises(fast_path.FastPathError, match="lacks oneDNN's linear operator"):
        gradient_descent(lambda w, lam: torch.sum((w * lam) ** 2), 0.1, compile="strict")
