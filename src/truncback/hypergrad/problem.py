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

from truncback.hypergrad.update import descend, update_function

Tree = Any

MATMULS = ("onednn", "torch")
"""How the compiled fast path computes float32 matrix products on the CPU: ``onednn`` (oneDNN's
product, ``truncback.hypergrad.onednn``) or ``torch`` (torch's own ``aten.mm``)."""


COMPILES = (False, True, "strict")
"""Whether a step runs through the compiled fast path: no, yes (a part of it that does not happen is
warned of), or ``"strict"`` (that is an error)."""


def check_matmul(matmul: str) -> None:
    """Raises ValueError naming ``matmul`` unless it is one of ``MATMULS``."""
    if matmul not in MATMULS:
        raise ValueError(f"matmul={matmul!r}: expected one of {', '.join(MATMULS)}")


def check_compile(compile) -> None:
    """Raises ValueError naming ``compile`` unless it is one of ``COMPILES`` (1 and 0 are not)."""
    if not (compile is True or compile is False or compile == "strict"):
        raise ValueError(f"compile={compile!r}: expected one of {', '.join(map(repr, COMPILES))}")


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


def _rate(value, lam, t):
    return value(lam, t) if callable(value) else value


def _plain_gradient(loss, w, lam):
    """grad_w loss(w, lam), shaped like w, by plain ``torch.autograd.grad`` on detached copies of w and
    lam: no graph is kept."""
    leaves, spec = tree_flatten(w)
    lam = tree_map(torch.Tensor.detach, lam)
    with torch.enable_grad():
        leaves = [leaf.detach().requires_grad_() for leaf in leaves]
        return tree_unflatten(list(torch.autograd.grad(loss(tree_unflatten(leaves, spec), lam), leaves)), spec)


def _tracked(leaves):
    """The state's leaves as inputs autograd can differentiate with respect to: those already in a graph
    as they are, the others (a w_0 that does not depend on lam) as detached leaves requiring grad."""
    return [leaf if leaf.requires_grad else leaf.detach().requires_grad_() for leaf in leaves]


class GradientDescentStep:
    """The step Xi_{t+1}(w, lam) = w - lr * grad_w g(w, lam) (sec. 2.2) as a callable built on
    ``torch.func.grad``, so that vjp and jvp go through it, with two twins of the same value by plain
    ``torch.autograd.grad``, cheaper where they apply: ``without_graph`` on detached inputs, which the
    methods' forward passes use (``dynamics.advance``), and ``with_graph``, which keeps the step's
    graph for a later backward pass through the whole loop (``unrolled``).

    g is ``inner_loss(w, lam, *data)``: ``data`` (default none) are further arguments, such as a task's
    examples, so that problems which differ only in them can share one inner-loss function.

    ``pullback`` gives the step's vector-Jacobian products (A^T alpha, B^T alpha) of eq. (5), which the
    reverse passes use (``dynamics.step_vjp``).

    With ``compile=True`` both twins and ``pullback`` run through ``torch.compile`` (one fused kernel
    program instead of the eager operations; the pullback's forward pass computes only what the
    product needs, and ``with_graph`` saves only what its backward pass needs): it pays once it has run
    long enough to win back its compilation (seconds to tens of seconds on a CPU), so it is off by
    default. The step size enters as a tensor and lam's values are not baked in, so neither a schedule
    nor new hyperparameters recompile it; steps with the same inner-loss function share the compilation
    (new data of the same shapes does not recompile); a new shape or dtype does. ``matmul`` says how the
    compiled programs compute float32 matrix products on the CPU: ``"onednn"`` (default; oneDNN's
    product, faster than torch's own on skinny shapes, see ``onednn``) or ``"torch"``. Where a part of
    the fast path does not happen (``fast_path``), ``compile=True`` warns once; ``compile="strict"``
    raises ``fast_path.FastPathError``."""

    def __init__(
        self,
        inner_loss: Callable[..., torch.Tensor],
        lr,
        compile: bool | str = False,
        data: tuple = (),
        matmul: str = "onednn",
    ):
        self.inner_loss, self.lr, self.data, self.matmul = inner_loss, lr, tuple(data), matmul
        self.update = update_function(inner_loss)
        check_matmul(matmul)  # a bad choice fails here, not at the first compiled call
        check_compile(compile)
        self.strict = compile == "strict"
        self.compiled = None
        if compile:  # torch.compile, dynamo and oneDNN are imported only when asked for
            from truncback.hypergrad import fast_path

            self.compiled = fast_path.compiled_update(inner_loss, matmul, self.strict)

    def _loss(self, w, lam):
        return self.inner_loss(w, lam, *self.data)

    def lower_objective(self, w, lam) -> float:
        """g(w, lam), the lower-level objective this step descends, at the state ``w`` (no graph)."""
        with torch.no_grad():
            return float(self._loss(tree_map(torch.Tensor.detach, w), tree_map(torch.Tensor.detach, lam)))

    def _rate_tensor(self, lam, t, w):
        """The step size at (lam, t) as a tensor of the state's dtype and device."""
        like = tree_flatten(w)[0][0]
        return torch.as_tensor(_rate(self.lr, lam, t), dtype=like.dtype, device=like.device)

    def __call__(self, w, lam, t):
        return self.update(w, lam, _rate(self.lr, lam, t), *self.data)

    def without_graph(self, w, lam, t):
        w, lam = tree_map(torch.Tensor.detach, w), tree_map(torch.Tensor.detach, lam)
        if self.compiled is not None:
            with torch.no_grad():
                return self.compiled(w, lam, self._rate_tensor(lam, t, w), *self.data)
        grad = _plain_gradient(self._loss, w, lam)
        with torch.no_grad():
            return descend(w, grad, _rate(self.lr, lam, t))

    def pullback(self, w, lam, t, alpha):
        """(A_{t+1}^T alpha, B_{t+1}^T alpha) at (w, lam) (eq. 5): by ``torch.func.vjp`` of the step, or
        compiled with ``compile=True``. There, a step size that is a function of lam is differentiated
        outside the compiled program (its product with respect to the rate is pulled back to lam)."""
        if self.compiled is None:
            _, back = torch.func.vjp(lambda w, lam: self(w, lam, t), w, lam)
            return back(alpha)
        from truncback.hypergrad.fast_path import compiled_pullback

        if not callable(self.lr):
            pullback = compiled_pullback(self.inner_loss, False, self.matmul, self.strict)
            return pullback(w, lam, self._rate_tensor(lam, t, w), alpha, *self.data)
        rate, rate_back = torch.func.vjp(lambda lam: self._rate_tensor(lam, t, w), lam)
        pullback = compiled_pullback(self.inner_loss, True, self.matmul, self.strict)
        a_alpha, b_alpha, rate_bar = pullback(w, lam, rate, alpha, *self.data)
        return a_alpha, tree_map(torch.add, b_alpha, rate_back(rate_bar)[0])

    @property
    def fast_pullback(self):
        """``pullback`` where it runs compiled (``compile=True``), else None. The methods that take many
        products at one point (AID) or the next state with each product (FOM) use it only then
        (``dynamics.step_products_at``, ``dynamics.advance_with_hparams_pullback``): eagerly, one
        ``torch.func.vjp`` whose graph serves all of them is cheaper than a graph per product."""
        return self.pullback if self.compiled is not None else None

    def with_graph(self, w, lam, t):
        leaves, spec = tree_flatten(w)
        with torch.enable_grad():
            leaves = _tracked(leaves)
            if self.compiled is not None:
                return self.compiled(tree_unflatten(leaves, spec), lam, self._rate_tensor(lam, t, leaves), *self.data)
            grads = torch.autograd.grad(self._loss(tree_unflatten(leaves, spec), lam), leaves, create_graph=True)
            return descend(tree_unflatten(leaves, spec), tree_unflatten(list(grads), spec), _rate(self.lr, lam, t))


def gradient_descent(
    inner_loss: Callable[..., torch.Tensor], lr, compile: bool | str = False, data: tuple = (), matmul: str = "onednn"
) -> Callable:
    """The step Xi_{t+1}(w, lam) = w - lr * grad_w g(w, lam) (sec. 2.2), g(w, lam) = inner_loss(w, lam, *data).

    ``lr`` is a number, or a function ``lr(lam, t)`` when the step size is a hyperparameter or a schedule.
    ``compile``: run the step's graph-free and graph-keeping forms and its vector-Jacobian products
    through ``torch.compile`` (``GradientDescentStep``), their float32 CPU matrix products by oneDNN
    (``matmul="onednn"``, the default) or by torch's own product (``matmul="torch"``); ``"strict"``
    compiles them too, and makes any part of the fast path that does not happen an error instead of a
    warning.
    """
    return GradientDescentStep(inner_loss, lr, compile, data, matmul)


class HeavyBallStep:
    """Gradient descent with momentum on the state (w, v): v' = mu v + grad_w g(w, lam), w' = w - lr v',
    on ``torch.func.grad``, with the graph-free twin ``without_graph`` as ``GradientDescentStep``'s."""

    def __init__(self, inner_loss: Callable[[Tree, Tree], torch.Tensor], lr, momentum):
        self.inner_loss, self.lr, self.momentum = inner_loss, lr, momentum
        self.grad_w = torch.func.grad(inner_loss)

    def _combine(self, state, grad, lam, t):
        w, v = state
        rate, mu = _rate(self.lr, lam, t), _rate(self.momentum, lam, t)
        v_next = tree_map(lambda vi, gi: mu * vi + gi, v, grad)
        return (tree_map(lambda wi, vi: wi - rate * vi, w, v_next), v_next)

    def __call__(self, state, lam, t):
        return self._combine(state, self.grad_w(state[0], lam), lam, t)

    def lower_objective(self, state, lam) -> float:
        """g(w, lam), the lower-level objective, at the weights w of the state (w, v) (no graph)."""
        with torch.no_grad():
            return float(self.inner_loss(tree_map(torch.Tensor.detach, state[0]), tree_map(torch.Tensor.detach, lam)))

    def without_graph(self, state, lam, t):
        state, lam = tree_map(torch.Tensor.detach, state), tree_map(torch.Tensor.detach, lam)
        grad = _plain_gradient(self.inner_loss, state[0], lam)
        with torch.no_grad():
            return self._combine(state, grad, lam, t)


def heavy_ball(inner_loss: Callable[[Tree, Tree], torch.Tensor], lr, momentum) -> Callable:
    """Gradient descent with momentum on the state (w, v): v' = mu v + grad_w g(w, lam), w' = w - lr v'.

    ``lr`` and ``momentum`` are numbers or functions of (lam, t).
    """
    return HeavyBallStep(inner_loss, lr, momentum)


def _one_line(spec) -> str:
    return " ".join(str(spec).split())


def same_structure(reference: Tree, candidate: Tree, name: str) -> None:
    """Raise a ValueError naming ``name`` when ``candidate`` differs from ``reference`` in structure or shapes."""
    ref_leaves, ref_spec = tree_flatten(reference)
    cand_leaves, cand_spec = tree_flatten(candidate)
    if ref_spec != cand_spec:
        raise ValueError(
            f"{name}: structure {_one_line(cand_spec)} does not match the expected {_one_line(ref_spec)}; the "
            "lower-level state keeps one structure: return the same nesting of tuples, lists and dicts, with the "
            "same keys"
        )
    for i, (r, c) in enumerate(zip(ref_leaves, cand_leaves)):
        if not isinstance(c, torch.Tensor):
            raise ValueError(f"{name}: leaf {i} is a {type(c).__name__}, expected a tensor")
        if r.shape != c.shape:
            raise ValueError(
                f"{name}: leaf {i} has shape {tuple(c.shape)}, expected {tuple(r.shape)}; the state's shapes stay "
                "fixed across steps (a loss or output that reshapes or concatenates the state?)"
            )
