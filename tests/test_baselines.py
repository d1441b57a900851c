"""The hand-written baselines the benchmark times our methods against must compute the same thing:
in float64, plain-autograd truncated back-propagation equals K-RMD (and full RMD at K = T) and the
unrolled baseline equals the unrolled-autograd reference, on both benchmark problems (a flat state
with a fixed step; a dict state whose step size is a hyperparameter)."""

import itertools
import math

import pytest
import torch
from torch.utils._pytree import tree_leaves

from truncback.experiments.complexity import baselines
from truncback.experiments.complexity.baselines import compare, floor_pair, implicit, pairs, truncated, unrolled
from truncback.hypergrad.synthetic import conv_net_parts, hypercleaning_parts
from truncback.experiments.complexity.baselines_table import baselines_table, read_results
from truncback.hypergrad import hypergradient
from truncback.hypergrad.onednn import AVAILABLE as ONEDNN
from truncback.hypergrad.onednn import onednn_mm
from truncback.hypergrad.reference import unrolled_autograd
from truncback.io.tables import is_wall_clock
from truncback.runtime.code_version import StaleResultError, running_module
from truncback.runtime.files import write_csv


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def small(problem):
    if problem == "hypercleaning":
        parts, lam = hypercleaning_parts(6, n_train=40, n_val=30, seed=1)
        return parts, lam + 0.3 * torch.randn(lam.shape, generator=torch.Generator().manual_seed(2))
    return conv_net_parts(5, batch=6, seed=1)


def close(ours, theirs):
    for a, b in zip(tree_leaves(ours), tree_leaves(theirs), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("problem", ["hypercleaning", "convnet"])
def test_the_autograd_baselines_compute_k_rmd_and_full_rmd(problem, float64):
    parts, lam = small(problem)
    bilevel = parts.problem()
    reference = unrolled_autograd(bilevel, lam)
    assert any(leaf.abs().max() > 1e-8 for leaf in tree_leaves(reference))
    close(unrolled(parts, lam), reference)
    close(truncated(parts, lam, parts.T), reference)
    for K in (1, 3):
        close(truncated(parts, lam, K), hypergradient(bilevel, lam, {"name": "krmd", "K": K}))
    close(implicit(parts, lam, 4, "fp"), hypergradient(bilevel, lam, {"name": "aid_fp", "K": 4}))
    if problem == "hypercleaning":  # on the conv net, I - A is not positive definite: our CG refuses it
        close(implicit(parts, lam, 4, "cg"), hypergradient(bilevel, lam, {"name": "aid_cg", "K": 4}))


def test_compare_gives_a_ratio_for_every_target_pair_and_the_table_beside_table_1_shows_them(tmp_path, monkeypatch):
    """Times from a fake clock (each call runs, then reads 1, 2, 3, ... s): after the warm-up round
    (n calls), candidate i of n reads 2n + i + 1 s in the middle of three rounds, its median."""
    clock = itertools.count(1)

    def fake_timed(function):
        function()
        return next(clock)

    monkeypatch.setattr(baselines, "_timed", fake_timed)
    median, peak, ratios = compare("hypercleaning", 4, repeats=3, n_train=50)
    n = len(median)
    assert list(median.values()) == [2 * n + i + 1 for i in range(n)]
    for row in ratios:
        assert row["ratio"] == median[row["ours"]] / median[row["baseline"]]
        assert (row["ours_peak_mib"], row["baseline_peak_mib"]) == (peak[row["ours"]], peak[row["baseline"]])
    path = tmp_path / "baselines.csv"
    with running_module(baselines.__name__):  # as `bench-baselines` writes it
        write_csv(path, ratios[0], ratios)
    table, caption = baselines_table(read_results(path))
    assert list(zip(table["Ours"], table["Baseline"])) == [(r["ours"], r["baseline"]) for r in ratios]
    assert list(table.columns) == [
        "Ours",
        "Baseline",
        "T",
        "Time ours (s)",
        "Time baseline (s)",
        "Time ratio",
        "Peak MiB ours",
        "Peak MiB baseline",
    ]
    assert [is_wall_clock(column) for column in table.columns] == [False] * 3 + [True] * 3 + [False] * 2
    assert "hypercleaning problem" in caption
    assert {(r["ours"], r["baseline"]) for r in ratios} == {
        ("krmd-K1", "autograd truncated K=1"),
        ("rmd", "autograd unrolled"),
        ("unrolled", "autograd unrolled"),
        ("checkpointed", "autograd unrolled"),
        ("krmd-K1", "floor K=1"),
        ("aid_cg-K10", "autograd aid_cg K=10"),
        ("aid_fp-K10", "autograd aid_fp K=10"),
        *([("krmd-K1", "floor K=1 oneDNN")] if ONEDNN else []),
    }
    assert all(math.isfinite(value) for value in peak.values())  # every candidate's memory measured


def test_the_table_refuses_a_csv_that_bench_baselines_did_not_write(tmp_path):
    path = tmp_path / "measurements.csv"
    row = {"problem": "hypercleaning", "method": "rmd", "T": 4, "seconds": 0.1}
    write_csv(path, row, [row])  # outside a command: no code version
    with pytest.raises(StaleResultError, match=r"measurements.csv records no code version"):
        read_results(path)
    with running_module("truncback.experiments.complexity.benchmark"):  # bench-methods' columns
        write_csv(path, row, [row])
    with pytest.raises(ValueError, match=r"measurements.csv lacks column\(s\) \['ours', 'baseline'"):
        read_results(path)


def test_our_compiled_methods_are_compared_with_the_same_baselines():
    names = [
        "krmd-K1 compiled",
        "krmd-K1",
        "krmd-K1 compiled-torch-matmul",
        "autograd truncated K=1",
        "rmd compiled",
        "autograd unrolled",
        "aid_cg-K10 compiled",
        "autograd aid_cg K=10",
        "floor K=1",
        "floor K=1 oneDNN",
    ]
    assert sorted(pairs(names)) == sorted(
        [
            ("krmd-K1 compiled", "autograd truncated K=1"),
            ("krmd-K1", "autograd truncated K=1"),
            ("krmd-K1 compiled-torch-matmul", "autograd truncated K=1"),
            ("krmd-K1 compiled", "floor K=1"),
            ("krmd-K1", "floor K=1"),
            ("krmd-K1 compiled-torch-matmul", "floor K=1"),
            ("krmd-K1 compiled", "floor K=1 oneDNN"),
            ("krmd-K1", "floor K=1 oneDNN"),
            ("krmd-K1 compiled-torch-matmul", "floor K=1 oneDNN"),
            ("rmd compiled", "autograd unrolled"),
            ("aid_cg-K10 compiled", "autograd aid_cg K=10"),
        ]
    )


@pytest.mark.skipif(not ONEDNN, reason="this torch build has no oneDNN linear operator")
def test_both_floors_time_the_same_two_products():
    """The hypercleaning floor by torch's products and by oneDNN's: the same logits and gradient to
    float32 rounding (so the two floors time the same work)."""
    torch_pair, onednn_pair = floor_pair(300, 40, 5)(), floor_pair(300, 40, 5, product=onednn_mm)()
    for a, b in zip(torch_pair, onednn_pair, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_the_hypercleaning_sized_benchmark_descends_stably():
    """Its step size is below 2 / (the largest eigenvalue of the inner Hessian at w_0, by power
    iteration on Hessian-vector products), so no method's reverse pass overflows and the benchmark does
    not time arithmetic on NaN."""
    parts, lam = hypercleaning_parts(1)
    w0 = parts.init(lam)
    gradient = torch.func.grad(lambda w: parts.inner(w, lam))
    v = torch.randn(w0.shape, generator=torch.Generator().manual_seed(0))
    for _ in range(60):
        image = torch.func.jvp(gradient, (w0,), (v,))[1]
        eigenvalue, v = float(torch.sum(image * v) / torch.sum(v * v)), image / image.norm()
    assert eigenvalue > 1, "the power iteration did not find the curvature"
    assert parts.lr * eigenvalue < 2


def test_the_conv_floor_computes_the_backward_products_of_the_step():
    """Its products are the real ones: on its own inputs, they equal autograd's gradient of
    sum(g * logits) through the two convolutions and the head without activations (the elementwise
    work the floor leaves out)."""
    from truncback.experiments.complexity.baselines import conv_floor_step

    gen = torch.Generator().manual_seed(0)  # the floor's inputs, drawn in its order
    x = torch.rand(3, 1, 28, 28, generator=gen)
    c1, c2 = torch.rand(8, 1, 3, 3, generator=gen), torch.rand(8, 8, 3, 3, generator=gen)
    fc, g = torch.rand(5, 392, generator=gen), torch.rand(3, 5, generator=gen)
    weights = [w.requires_grad_() for w in (fc, c2, c1)]
    h = torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, c1, stride=2, padding=1), c2, stride=2, padding=1)
    expected = torch.autograd.grad(torch.sum(g * (h.flatten(1) @ fc.T)), weights)
    for ours, theirs in zip(conv_floor_step(batch=3)(), expected, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
