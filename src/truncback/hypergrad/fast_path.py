"""The compiled fast path of ``GradientDescentStep`` (``compile=True``): its update and its pullback
through ``torch.compile``, one compilation per inner-loss function shared by every step built on it,
float32 CPU matrix products by oneDNN where that pays (``onednn``). Imported only when a step asks
for compilation, so the eager engine needs neither dynamo nor the custom operator.

Never silently less: where a part of it does not happen - this torch lacks the oneDNN operator,
inductor compiles a graph without running the oneDNN pass, the pass leaves a product it should take,
dynamo runs a compiled step eagerly (its recompile limit hit, a graph break) - a
:class:`FastPathWarning` says what, once per process; with ``compile="strict"`` it is a
:class:`FastPathError` instead (the paper scale's setting).
"""

import collections
import contextlib
import os
import shutil
import types
import warnings

import torch

from truncback.hypergrad import onednn
from truncback.hypergrad.update import update_function

_COMPILED: dict = {}
_STRICTLY: dict = {}
_CALLS = {"compiled_calls": 0}
_WARNED: set = set()


_STRICT = {"on": False}
STRICT_HINT = (
    "compile='strict' makes this an error: compile=True lets the run go on with a warning, compile=False runs "
    "the steps eagerly (the experiments' setting compile: true or false)"
)


class FastPathWarning(RuntimeWarning):
    """The compiled fast path did less than asked: the result is the same, the time is not."""


class FastPathError(ValueError):
    """The fast path cannot run as asked: ``compile="strict"`` and a part of it did not happen, or no
    C++ compiler for torch.compile on the CPU. The message names the way out."""


def warn_once(message: str) -> None:
    """A FastPathWarning with ``message``, once per process; under ``compile="strict"`` a FastPathError."""
    if _STRICT["on"]:
        raise FastPathError(f"{message} ({STRICT_HINT})")
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, FastPathWarning, stacklevel=3)


@contextlib.contextmanager
def _strict(enabled: bool):
    """Within: the fast path's shortfalls raise (``warn_once``) when ``enabled``."""
    previous = _STRICT["on"]
    _STRICT["on"] = previous or enabled
    try:
        yield
    finally:
        _STRICT["on"] = previous


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile would use for CPU code ($CXX, else g++, c++ or clang++ on PATH)."""
    given = os.environ.get("CXX")
    if given:
        return shutil.which(given)
    return next(filter(None, map(shutil.which, ("g++", "c++", "clang++"))), None)


def check_cpp_compiler(args) -> None:
    """Raises FastPathError, naming the way out, when a compiled step gets a CPU tensor and no C++
    compiler is at hand: inductor would fail with pages of trace at its first compilation."""
    on_cpu = any(
        isinstance(arg, torch.Tensor) and arg.device.type == "cpu" for arg in torch.utils._pytree.tree_leaves(args)
    )
    if on_cpu and cpp_compiler() is None:
        raise FastPathError(
            "compile (True or 'strict'; the choices: False, True, 'strict') on the CPU needs a C++ compiler for "
            "torch.compile: none found ($CXX unset or not found; no g++, c++ or clang++ on PATH); install one, "
            "or turn compilation off: compile=False (the experiments' setting compile: false)"
        )


def _with_own_code(function, tag: int):
    """A copy of ``function`` whose code object is its own. Dynamo keeps compiled programs, and its
    limit on them (``torch._dynamo.config.recompile_limit``, 8), per code object; the functions built
    here share one code object per kind, so without copies the ninth inner-loss function compiled in a
    process would silently run eagerly (and every later one)."""
    code = function.__code__.replace(co_name=f"{function.__code__.co_name}_{tag}")
    return types.FunctionType(code, function.__globals__, code.co_name, function.__defaults__, function.__closure__)


def _compiled_once(key, build, matmul: str, strict: bool = False):
    """torch.compile(build()) made at the first call with ``key`` and ``matmul`` and shared by every
    later one; ``matmul`` says how float32 CPU matrix products are computed (``problem.MATMULS``).
    With ``strict``, what the fast path does less than asked raises instead of warning."""
    with _strict(strict):
        if matmul == "onednn" and not onednn.AVAILABLE:
            warn_once(
                "matmul='onednn' asked for, but this torch build lacks oneDNN's linear operator "
                "(torch.ops.mkldnn._linear_pointwise): compiled steps compute their products by torch's own kernel, "
                "slower on skinny products (docs/benchmarks.md)"
            )
    key = (*key, matmul)
    if key not in _COMPILED:
        function = _with_own_code(build(), len(_COMPILED))
        compiled = torch.compile(function, dynamic=False, options=onednn.compile_options(matmul))
        _COMPILED[key] = _counted(compiled, "step's " + key[0], matmul)
    if not strict:
        return _COMPILED[key]
    if key not in _STRICTLY:
        _STRICTLY[key] = _strictly(_COMPILED[key])
    return _STRICTLY[key]


def _strictly(function):
    """``function``, its fast path's shortfalls raised (``compile="strict"``)."""

    def call(*args):
        with _strict(True):
            return function(*args)

    return call


def _counted(compiled, what: str, matmul: str):
    """``compiled``, each call counted (``record``) and followed by the checks that nothing was quietly
    done less (``_check``); the first call first checks that a C++ compiler is there."""

    def call(*args):
        if not _CALLS["compiled_calls"]:
            check_cpp_compiler(args)
        _CALLS["compiled_calls"] += 1
        before = _totals()
        result = compiled(*args)
        _check(what, matmul, before, _totals())
        return result

    return call


def _check(what: str, matmul: str, before: dict, after: dict) -> None:
    """Warns (``FastPathWarning``) of what one compiled call ``what`` did less than asked, from the
    counts before and after it."""
    done = {key: after[key] - before[key] for key in after if key not in NOT_COUNTS}
    if done["frames_run_eagerly"]:
        reasons = "; ".join(sorted(after["eager_reasons"] - before["eager_reasons"])) or "no reason recorded"
        warn_once(
            f"torch.compile ran the compiled {what} eagerly (dynamo declined it: {reasons[:300]}): the "
            "values are the same, the time is the eager engine's"
        )
    if done["graph_breaks"]:
        warn_once(
            f"torch.compile split the compiled {what} at {done['graph_breaks']} graph break(s): the parts "
            "between them run eagerly"
        )
    if matmul == "onednn" and onednn.AVAILABLE:
        if done["graphs_captured"] and not done["onednn_graphs_passed"] and not done["graphs_from_cache"]:
            warn_once(
                f"inductor compiled {done['graphs_captured']} graph(s) of the {what} without running the oneDNN "
                "pass (its config key post_grad_custom_post_pass ignored?): torch's own products"
            )
        if done["onednn_products_kept"]:
            warn_once(
                f"the oneDNN pass left {done['onednn_products_kept']} float32 CPU matrix product(s) of at least "
                f"{onednn.MIN_MULTIPLY_ADDS} multiply-adds in the {what} to torch's kernel "
                f"({', '.join(sorted(after['kept_targets'] - before['kept_targets']))}): a form of product it does "
                "not know"
            )


def compiled_update(inner_loss, matmul: str = "onednn", strict: bool = False):
    """w - rate * grad_w inner_loss(w, lam, *data) compiled by torch.compile, one per inner-loss function
    and ``matmul``: steps that share the function and differ only in their data (tensors of the same
    shapes) share the compilation. ``strict``: shortfalls raise FastPathError."""
    return _compiled_once(("update", inner_loss), lambda: update_function(inner_loss), matmul, strict)


def compiled_pullback(inner_loss, rate_gradient: bool, matmul: str = "onednn", strict: bool = False):
    """alpha -> (A^T alpha, B^T alpha[, d rate]) of the step w - rate * grad_w inner_loss(w, lam, *data)
    (eq. 5), its forward pass and the product compiled together by torch.compile, one per inner-loss
    function, ``rate_gradient`` (whether the product with respect to the rate is wanted too: it costs
    the forward gradient, which the other two products do not need) and ``matmul``; ``strict`` as for
    ``compiled_update``."""

    def build():
        update = update_function(inner_loss)

        def pullback(w, lam, rate, alpha, *data):
            if rate_gradient:
                _, back = torch.func.vjp(lambda w, lam, rate: update(w, lam, rate, *data), w, lam, rate)
            else:
                _, back = torch.func.vjp(lambda w, lam: update(w, lam, rate, *data), w, lam)
            return back(alpha)

        return pullback

    return _compiled_once(("pullback", inner_loss, rate_gradient), build, matmul, strict)


def _totals() -> dict:
    """The counts behind ``record`` as this process has them: ours, dynamo's (a private module of
    torch) and the oneDNN operator's, which also counts calls made outside the fast path; with the set
    of dynamo's reasons for running a frame eagerly and the operators of the products the pass left
    (for the warnings, not the record)."""
    from torch._dynamo.utils import counters

    return {
        "compiled_calls": _CALLS["compiled_calls"],
        "compiled_functions": len(_COMPILED),
        "graphs_captured": counters["stats"]["unique_graphs"],
        "graphs_compiled": counters["inductor"]["fxgraph_cache_miss"] + counters["inductor"]["fxgraph_cache_bypass"],
        "graphs_from_cache": counters["inductor"]["fxgraph_cache_hit"] + counters["aot_autograd"]["autograd_cache_hit"],
        "frames_run_eagerly": counters["frames"]["total"] - counters["frames"]["ok"],
        "graph_breaks": sum(counters["graph_break"].values()),
        "onednn_graphs_passed": onednn.COUNTS["graphs_passed"],
        "onednn_products_replaced": onednn.COUNTS["products_replaced"],
        "onednn_products_kept": onednn.COUNTS["products_kept"],
        "onednn_product_calls": onednn.COUNTS["product_calls"],
        "eager_reasons": frozenset(reason.split("\n")[0] for reason in counters["unimplemented"]),
        "kept_targets": collections.Counter(onednn.KEPT_TARGETS),
    }


NOT_COUNTS = ("eager_reasons", "kept_targets")
_AT_IMPORT = _totals()


def record() -> dict:
    """What the fast path has done in this process since it was imported (counts that only grow; a
    run's share is the difference over it): calls of compiled functions, the functions compiled, the
    graphs dynamo captured (a recompilation adds one), those inductor compiled and those it took from
    its cache, the frames dynamo ran eagerly instead (its recompile limit hit, an error) and its graph
    breaks, the products the oneDNN pass replaced and those of its size it left to torch in the graphs
    it saw (none in cached ones: it ran when they were first made) and the oneDNN products actually
    computed. Counted from the import on, so what ran before (a direct call of the operator, a
    torch.compile of something else) is not the fast path's."""
    return {key: value - _AT_IMPORT[key] for key, value in _totals().items() if key not in NOT_COUNTS}
