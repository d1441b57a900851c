"""The compiled fast path of ``GradientDescentStep`` (``compile=True``): its update and its pullback
through ``torch.compile``, one compilation per inner-loss function shared by every step built on it,
float32 CPU matrix products by oneDNN where that pays (``onednn``). Imported only when a step asks
for compilation, so the eager engine needs neither dynamo nor the custom operator.
"""

import types
import warnings

import torch

from truncback.hypergrad import onednn
from truncback.hypergrad.problem import update_function

_COMPILED: dict = {}
_CALLS = {"compiled_calls": 0}
_WARNED: set = set()


def warn_once(message: str) -> None:
    """A RuntimeWarning with ``message``, once per process: the fast path did less than asked."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _with_own_code(function, tag: int):
    """A copy of ``function`` whose code object is its own. Dynamo keeps compiled programs, and its
    limit on them (``torch._dynamo.config.recompile_limit``, 8), per code object; the functions built
    here share one code object per kind, so without copies the ninth inner-loss function compiled in a
    process would silently run eagerly (and every later one)."""
    code = function.__code__.replace(co_name=f"{function.__code__.co_name}_{tag}")
    return types.FunctionType(code, function.__globals__, code.co_name, function.__defaults__, function.__closure__)


def _compiled_once(key, build, matmul: str):
    """torch.compile(build()) made at the first call with ``key`` and ``matmul`` and shared by every
    later one; ``matmul`` says how float32 CPU matrix products are computed (``problem.MATMULS``)."""
    key = (*key, matmul)
    if key not in _COMPILED:
        if matmul == "onednn" and not onednn.AVAILABLE:
            warn_once(
                "matmul='onednn' asked for, but this torch build lacks oneDNN's linear operator "
                "(torch.ops.mkldnn._linear_pointwise): compiled steps compute their products by torch's own kernel, "
                "slower on skinny products (docs/benchmarks.md)"
            )
        function = _with_own_code(build(), len(_COMPILED))
        _COMPILED[key] = _counted(torch.compile(function, dynamic=False, options=onednn.compile_options(matmul)))
    return _COMPILED[key]


def _counted(compiled):
    """``compiled``, each call counted (``record``)."""

    def call(*args):
        _CALLS["compiled_calls"] += 1
        return compiled(*args)

    return call


def compiled_update(inner_loss, matmul: str = "onednn"):
    """w - rate * grad_w inner_loss(w, lam, *data) compiled by torch.compile, one per inner-loss function
    and ``matmul``: steps that share the function and differ only in their data (tensors of the same
    shapes) share the compilation."""
    return _compiled_once(("update", inner_loss), lambda: update_function(inner_loss), matmul)


def compiled_pullback(inner_loss, rate_gradient: bool, matmul: str = "onednn"):
    """alpha -> (A^T alpha, B^T alpha[, d rate]) of the step w - rate * grad_w inner_loss(w, lam, *data)
    (eq. 5), its forward pass and the product compiled together by torch.compile, one per inner-loss
    function, ``rate_gradient`` (whether the product with respect to the rate is wanted too: it costs
    the forward gradient, which the other two products do not need) and ``matmul``."""

    def build():
        update = update_function(inner_loss)

        def pullback(w, lam, rate, alpha, *data):
            if rate_gradient:
                _, back = torch.func.vjp(lambda w, lam, rate: update(w, lam, rate, *data), w, lam, rate)
            else:
                _, back = torch.func.vjp(lambda w, lam: update(w, lam, rate, *data), w, lam)
            return back(alpha)

        return pullback

    return _compiled_once(("pullback", inner_loss, rate_gradient), build, matmul)


def _totals() -> dict:
    """The counts behind ``record`` as this process has them: ours, dynamo's (a private module of
    torch) and the oneDNN operator's, which also counts calls made outside the fast path."""
    from torch._dynamo.utils import counters

    return {
        "compiled_calls": _CALLS["compiled_calls"],
        "compiled_functions": len(_COMPILED),
        "graphs_compiled": counters["inductor"]["fxgraph_cache_miss"],
        "graphs_from_cache": counters["inductor"]["fxgraph_cache_hit"],
        "onednn_graphs_passed": onednn.COUNTS["graphs_passed"],
        "onednn_products_replaced": onednn.COUNTS["products_replaced"],
        "onednn_product_calls": onednn.COUNTS["product_calls"],
    }


_AT_IMPORT = _totals()


def record() -> dict:
    """What the fast path has done in this process since it was imported (counts that only grow; a
    run's share is the difference over it): calls of compiled functions, the functions compiled, the
    graphs inductor compiled and those it took from its cache, the products the oneDNN pass replaced in
    the graphs it saw (none in cached ones: it ran when they were first made) and the oneDNN products
    actually computed. Counted from the import on, so what ran before (a direct call of the operator, a
    torch.compile of something else) is not the fast path's."""
    return {key: value - _AT_IMPORT[key] for key, value in _totals().items()}
