"""What a user would write by hand instead of this library, timed against it (``make bench``).

On a benchmark problem given by its parts (gradient descent w_{t+1} = w_t - lr grad_w g(w_t, lam)):

- ``unrolled``: the T steps with ``torch.autograd.grad(..., create_graph=True)``, then one backward
  pass to lam through the whole graph (every step's activations kept);
- ``truncated``: the textbook recompute algorithm for K-RMD (eq. 8): the forward steps by
  ``torch.autograd.grad`` without a graph, the last K states kept, then each kept step re-run with a
  graph and pulled back (K = T adds the initialisation's term B_0, as full RMD does);
- ``implicit``: AID (eq. 11) in plain autograd: the forward steps without a graph, then the last
  step's graph built once at w_T and kept for the K vector-Jacobian products of the linear solver
  (conjugate gradient or fixed-point iterations, written on lists of tensors) and the final B v;
- ``floor``: the time of the step's products alone, (T + 2K) times: T forward steps and, for each of
  the K reversed steps, its forward and its vector-Jacobian product. On hypercleaning, the two matrix
  products (the logits X W^T and the gradient P^T X), by torch's own product (``floor K=1``) and by
  oneDNN's (``floor K=1 oneDNN``, the kernel the compiled fast path uses: the lower of the two is
  the floor); on the conv net, the two convolutions and the head's product, then the backward
  products the gradient needs (the head's two, the second convolution's input and weight gradients,
  the first's weight gradient). No implementation using these kernels goes below it.

``compare`` times our methods and these alternately in one process (the median of ``repeats``
rounds after a warm-up round) and gives the ratios of issue "engine speed".

``python -m truncback bench-baselines [--problems hypercleaning convnet] [--T 50 100 200 400] [--repeats 5]``
"""

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from truncback.experiments.complexity.baselines_table import COLUMNS as CSV_FIELDS
from truncback.hypergrad import hypergradient
from truncback.hypergrad.onednn import AVAILABLE as ONEDNN_AVAILABLE
from truncback.hypergrad.onednn import onednn_mm
from truncback.runtime.files import write_csv
from truncback.runtime.measure import peak_memory_mib

OUR_SPECS: tuple[dict[str, Any], ...] = (
    {"name": "krmd", "K": 1},
    {"name": "krmd", "K": 5},
    {"name": "krmd", "K": 25},
    {"name": "rmd"},
    {"name": "unrolled"},
    {"name": "checkpointed"},
    {"name": "aid_cg", "K": 10},
    {"name": "aid_fp", "K": 10},
    {"name": "fom"},  # no hand-written baseline: printed (and with --compiled, on the fast path) only
)


def _rate(parts, lam, t):
    return parts.lr(lam, t) if callable(parts.lr) else parts.lr


def _step(parts, leaves, spec, lam, t, create_graph):
    """One gradient-descent step on the flat state ``leaves`` with torch.autograd.grad."""
    grads = torch.autograd.grad(parts.inner(tree_unflatten(leaves, spec), lam), leaves, create_graph=create_graph)
    rate = _rate(parts, lam, t)
    return [w - rate * g for w, g in zip(leaves, grads)]


def _leaf_copies(hparams):
    leaves, spec = tree_flatten(hparams)
    return [leaf.detach().clone().requires_grad_() for leaf in leaves], spec


def unrolled(parts, hparams):
    """d_lam f through the unrolled loop with plain autograd (flat list of gradients, one per leaf of lam)."""
    lam_leaves, lam_spec = _leaf_copies(hparams)
    lam = tree_unflatten(lam_leaves, lam_spec)
    state, spec = tree_flatten(parts.init(lam))
    state = [leaf if leaf.requires_grad else leaf.detach().requires_grad_() for leaf in state]
    for t in range(parts.T):
        state = _step(parts, state, spec, lam, t, create_graph=True)
    grads = torch.autograd.grad(parts.outer(tree_unflatten(state, spec), lam), lam_leaves, allow_unused=True)
    return [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, lam_leaves)]


def _forward_without_graph(parts, hparams, keep: int = 0):
    """The T forward steps by torch.autograd.grad without a graph. Returns (lam's leaves requiring
    grad, lam, the inputs w_{T-keep}, ..., w_{T-1} of the last ``keep`` steps, w_T's leaves requiring
    grad, the state's tree spec)."""
    lam_leaves, lam_spec = _leaf_copies(hparams)
    lam = tree_unflatten(lam_leaves, lam_spec)
    fixed_lam = tree_unflatten([leaf.detach() for leaf in lam_leaves], lam_spec)
    state, spec = tree_flatten(parts.init(fixed_lam))
    state = [leaf.detach() for leaf in state]
    kept = []
    for t in range(parts.T):
        if t >= parts.T - keep:
            kept.append(state)
        with torch.enable_grad():
            leaves = [w.detach().clone().requires_grad_() for w in state]
            state = [w.detach() for w in _step(parts, leaves, spec, fixed_lam, t, create_graph=False)]
    return lam_leaves, lam, kept, [w.requires_grad_() for w in state], spec


def _outer_gradients(parts, final, spec, lam, lam_leaves):
    """(grad_w f, grad_lam f) at w_T as lists of leaves, zeros where f does not depend on a leaf."""
    grads = torch.autograd.grad(parts.outer(tree_unflatten(final, spec), lam), final + lam_leaves, allow_unused=True)
    return (
        [torch.zeros_like(w) if g is None else g for g, w in zip(grads[: len(final)], final)],
        [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads[len(final) :], lam_leaves)],
    )


def truncated(parts, hparams, K: int):
    """K-RMD (eq. 8) as the textbook recompute algorithm in plain autograd; K = T is full RMD."""
    lam_leaves, lam, kept, final, spec = _forward_without_graph(parts, hparams, keep=K)
    alpha, h = _outer_gradients(parts, final, spec, lam, lam_leaves)
    for t in reversed(range(parts.T - K, parts.T)):
        leaves = [w.detach().requires_grad_() for w in kept[t - (parts.T - K)]]
        new = _step(parts, leaves, spec, lam, t, create_graph=True)
        grads = torch.autograd.grad(new, leaves + lam_leaves, grad_outputs=alpha, allow_unused=True)
        alpha = [torch.zeros_like(w) if g is None else g for g, w in zip(grads[: len(leaves)], leaves)]
        h = [hi if g is None else hi + g for hi, g in zip(h, grads[len(leaves) :])]
    if K == parts.T:
        initial, _ = tree_flatten(parts.init(lam))
        if any(leaf.requires_grad for leaf in initial):
            grads = torch.autograd.grad(initial, lam_leaves, grad_outputs=alpha, allow_unused=True)
            h = [hi if g is None else hi + g for hi, g in zip(h, grads)]
    return h


def _dot(a, b):
    return sum(torch.sum(x * y) for x, y in zip(a, b))


def implicit(parts, hparams, K: int, solver: str):
    """AID (eq. 11) in plain autograd: v ~ (I - A)^{-1} grad_w f at w_T by K iterations of ``solver``
    ("cg": conjugate gradient, "fp": v <- A v + grad_w f), then grad_lam f + B v."""
    lam_leaves, lam, _, final, spec = _forward_without_graph(parts, hparams)
    rhs, h = _outer_gradients(parts, final, spec, lam, lam_leaves)
    leaves = [w.detach().requires_grad_() for w in final]
    new = _step(parts, leaves, spec, lam, parts.T - 1, create_graph=True)

    def pull_back(v):
        return torch.autograd.grad(new, leaves, grad_outputs=v, retain_graph=True)

    v = [torch.zeros_like(r) for r in rhs]
    if solver == "fp":
        for _ in range(K):
            v = [r + a for r, a in zip(rhs, pull_back(v))]
    else:
        residual = direction = rhs
        residual_sq = _dot(residual, residual)
        for _ in range(K):
            image = [d - a for d, a in zip(direction, pull_back(direction))]
            step = residual_sq / _dot(direction, image)
            v = [vi + step * d for vi, d in zip(v, direction)]
            residual = [r - step * i for r, i in zip(residual, image)]
            new_sq = _dot(residual, residual)
            direction = [r + (new_sq / residual_sq) * d for r, d in zip(residual, direction)]
            residual_sq = new_sq
    grads = torch.autograd.grad(new, lam_leaves, grad_outputs=v, allow_unused=True)
    return [hi if g is None else hi + g for hi, g in zip(h, grads)]


def floor_pair(n_train: int = 5000, features: int = 785, classes: int = 10, product=torch.mm):
    """A function timing nothing but the hypercleaning step's two products (logits, gradient), each
    ``product(a, b)`` (torch's own, or ``onednn.onednn_mm``)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n_train, features, generator=gen)
    W = torch.rand(classes, features, generator=gen)
    P = torch.rand(n_train, classes, generator=gen)

    def pair():
        return product(x, W.T), product(P.T, x)

    return pair


def conv_floor_step(batch: int = 25):
    """A function timing nothing but the small conv net's products in one gradient step (its shapes:
    ``benchmark.conv_net_parts``): conv(x, c1), conv(h1, c2), h2 fc^T forward; fc's and h2's gradients,
    conv 2's input and weight gradients and conv 1's weight gradient backward (no activation, loss or
    update)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=gen)
    c1, c2 = torch.rand(8, 1, 3, 3, generator=gen), torch.rand(8, 8, 3, 3, generator=gen)
    fc, g_logits = torch.rand(5, 392, generator=gen), torch.rand(batch, 5, generator=gen)
    convolution_backward = torch.ops.aten.convolution_backward

    def backward(grad, inputs, weight, mask):
        return convolution_backward(grad, inputs, weight, None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1, mask)

    def step():
        h1 = torch.nn.functional.conv2d(x, c1, stride=2, padding=1)
        h2 = torch.nn.functional.conv2d(h1, c2, stride=2, padding=1)
        flat = h2.flatten(1)
        flat @ fc.T
        g_fc, g_flat = g_logits.T @ flat, g_logits @ fc
        g_h1, g_c2, _ = backward(g_flat.view_as(h2), h1, c2, [True, True, False])
        _, g_c1, _ = backward(g_h1, x, c1, [False, True, False])
        return g_fc, g_c2, g_c1

    return step


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


COMPILED = " compiled"
"""Suffix of our methods run on the compiled fast path (``gradient_descent(..., compile=True)``, its
float32 products by oneDNN)."""
TORCH_MATMUL = " compiled-torch-matmul"
"""Suffix of 1-RMD on the fast path with torch's own products (``matmul="torch"``): beside the
default's time, it shows what the choice of product kernel contributes."""


def candidates(problem: str, T: int, n_train: int | None, compiled: bool = False) -> dict:
    """{name: function of nothing} for one problem and horizon: our methods (``OUR_SPECS``, K <= T),
    also on the compiled fast path when ``compiled`` (names ending in COMPILED, and 1-RMD with
    TORCH_MATMUL), the autograd baselines and the floor of 1-RMD."""
    from truncback.hypergrad.synthetic import PARTS

    sizes = {"n_train": n_train, "n_val": n_train} if n_train and problem == "hypercleaning" else {}
    parts, lam = PARTS[problem](T, **sizes)
    problems = {"": parts.problem()}
    if compiled:
        problems |= {COMPILED: parts.problem(compile=True), TORCH_MATMUL: parts.problem(compile=True, matmul="torch")}
    entries: dict[str, Callable[..., Any]] = {}
    for spec in OUR_SPECS:
        K = spec.get("K")
        if spec["name"] == "krmd" and spec["K"] > T:  # every krmd spec has its K
            continue
        for suffix, bilevel in problems.items():
            name = spec["name"] + (f"-K{K}" if K else "") + suffix
            if suffix == TORCH_MATMUL and name != "krmd-K1" + TORCH_MATMUL:
                continue
            entries[name] = lambda spec=spec, bilevel=bilevel: hypergradient(bilevel, lam, spec)
        if spec["name"] == "krmd":
            entries[f"autograd truncated K={K}"] = lambda K=K: truncated(parts, lam, K)
        if spec["name"] in ("aid_cg", "aid_fp"):
            solver = spec["name"].removeprefix("aid_")
            entries[f"autograd {spec['name']} K={K}"] = lambda K=K, solver=solver: implicit(parts, lam, K, solver)
    entries["autograd unrolled"] = lambda: unrolled(parts, lam)
    if problem == "hypercleaning":
        floors = {
            "floor K=1": floor_pair(n_train or 5000),
            **({"floor K=1 oneDNN": floor_pair(n_train or 5000, product=onednn_mm)} if ONEDNN_AVAILABLE else {}),
        }
    else:
        floors = {"floor K=1": conv_floor_step()}
    for name, products in floors.items():
        entries[name] = lambda products=products: [products() for _ in range(T + 2)]
    return entries


def pairs(names) -> list[tuple[str, str]]:
    """(ours, baseline) pairs whose ratio the issue's targets speak of, among ``names`` (our methods
    with and without the compiled fast path against the same baseline)."""
    wanted = []
    for name in names:
        method = name.split()[0]
        if method.startswith("krmd-K"):
            wanted.append((name, f"autograd truncated K={method.removeprefix('krmd-K')}"))
        if method.startswith("aid_"):
            wanted.append((name, f"autograd {method.replace('-K', ' K=')}"))
        if method in ("rmd", "unrolled", "checkpointed"):
            wanted.append((name, "autograd unrolled"))
        if method == "krmd-K1":
            wanted += [(name, "floor K=1"), (name, "floor K=1 oneDNN")]
    return [(ours, baseline) for ours, baseline in wanted if ours in names and baseline in names]


def compare(
    problem: str, T: int, repeats: int, n_train: int | None = None, memory: bool = True, compiled: bool = False
) -> tuple[dict, dict, list[dict]]:
    """({candidate: median seconds}, {candidate: peak MiB}, ratio rows) for one problem and horizon:
    one warm-up round (which compiles the fast path: its time is printed), one round measuring
    each candidate's peak memory (when ``memory``), then every candidate timed once per round, the
    rounds alternating."""
    entries = candidates(problem, T, n_train, compiled)
    for name, function in list(entries.items()):  # the warm-up round; a method the problem refuses is left out
        try:
            elapsed = _timed(function)
        except ValueError as error:
            print(f"  {name}: left out ({error})", flush=True)
            del entries[name]
            continue
        if COMPILED in name:
            print(
                f"  {name}: first call {elapsed:.1f} s (the first compiled method's includes the compilation)",
                flush=True,
            )
    peak = {name: peak_memory_mib(function)[1] if memory else math.nan for name, function in entries.items()}
    seconds: dict[str, list[float]] = {name: [] for name in entries}
    for _ in range(repeats):
        for name, function in entries.items():
            seconds[name].append(_timed(function))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    ratios = [
        {
            "problem": problem,
            "T": T,
            "ours": ours,
            "baseline": baseline,
            "ours_seconds": median[ours],
            "baseline_seconds": median[baseline],
            "ratio": median[ours] / median[baseline],
            "ours_peak_mib": peak[ours],
            "baseline_peak_mib": peak[baseline],
        }
        for ours, baseline in pairs(list(entries))
    ]
    return median, peak, ratios


def main(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for problem in args.problems:
        for T in args.T:
            median, peak, ratios = compare(problem, T, args.repeats, args.n_train, compiled=args.compiled)
            print(
                f"{problem}, T = {T}: median seconds of {args.repeats} alternating rounds, peak MiB of one call",
                flush=True,
            )
            for name, value in median.items():
                print(f"  {name:<28}{value:>10.4f} s{peak[name]:>10.1f} MiB", flush=True)
            for row in ratios:
                print(
                    f"  {row['ours']:<14} / {row['baseline']:<26} = {row['ratio']:.2f}x time, "
                    f"{row['ours_peak_mib'] / row['baseline_peak_mib']:.2f}x memory",
                    flush=True,
                )
            rows += ratios
    output = Path(args.output)
    write_csv(output, CSV_FIELDS, rows)
    print(f"wrote {output}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench-baselines",
        help="our methods against hand-written autograd and the matmul floor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", default="benchmarks/baselines.csv", help="CSV file to write")
    parser.add_argument(
        "--problems", nargs="+", choices=("hypercleaning", "convnet"), default=["hypercleaning", "convnet"]
    )
    parser.add_argument("--T", nargs="+", type=int, default=[50, 100, 200, 400], help="horizons")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (after one warm-up round)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--n-train", type=int, help="examples of the hypercleaning-sized problem (default 5000)")
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="also time our methods on the compiled fast path (gradient_descent(..., compile=True))",
    )
    parser.set_defaults(run=main)
