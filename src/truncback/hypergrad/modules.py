"""A bilevel problem over an ``nn.Module``'s parameters, without changing the module.

The lower-level state w is a dict (parameter name -> tensor) and the module is applied to it through
``torch.func.functional_call``: nothing is monkey-patched, no parameter is copied into the module, and
the module is left as it was. The losses see the model at w as ``net`` (``net(x)`` is the model's
output at w, ``net.params`` is w itself, for penalties on the weights), so the user never flattens
parameters by hand.
"""

import functools
from typing import Any, Callable

import torch

from truncback.hypergrad.problem import BilevelProblem, gradient_descent

LOW_PRECISION = (torch.float16, torch.bfloat16)


class ModuleAt:
    """``model`` with the parameters ``params`` (a dict name -> tensor): ``net(*inputs)`` is
    ``torch.func.functional_call(model, params, inputs)``."""

    def __init__(self, model: torch.nn.Module, params: dict):
        self.model, self.params = model, params

    def __call__(self, *inputs):
        return torch.func.functional_call(self.model, self.params, inputs)


def check_module(model: torch.nn.Module) -> dict:
    """The module's parameters, detached copies by name; a ValueError naming the problem and the fix for
    a module the methods cannot differentiate through faithfully (buffers, parameters on two devices,
    half precision, no parameters)."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        raise ValueError(
            f"the model has buffers ({', '.join(buffers[:4])}{', ...' if len(buffers) > 4 else ''}): a step that "
            "updates them (batch norm's running statistics) changes state the methods cannot replay, since "
            "they run steps more than once; use batch statistics only (e.g. nn.BatchNorm2d(..., "
            "track_running_stats=False)) or keep such tensors as inputs"
        )
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    if not params:
        raise ValueError("the model has no parameters: nothing for the lower level to optimise")
    devices = sorted({str(p.device) for p in params.values()})
    if len(devices) > 1:
        where = ", ".join(f"{name} on {p.device}" for name, p in list(params.items())[:4])
        raise ValueError(
            f"the model's parameters are on {len(devices)} devices ({', '.join(devices)}: {where}); move the "
            "model to one device (model.to(device)) and the data and hyperparameters with it"
        )
    low = [name for name, p in params.items() if p.dtype in LOW_PRECISION]
    if low:
        raise ValueError(
            f"the model has {params[low[0]].dtype} parameters ({', '.join(low[:4])}): reverse-mode "
            "hypergradients accumulate T products in the state's precision, which half precision cannot "
            "carry; use model.float() (or model.double() to check against a reference)"
        )
    return params


@functools.lru_cache(maxsize=64)
def _inner(model: torch.nn.Module, inner_loss: Callable[..., torch.Tensor]):
    """(w, lam, *data) -> inner_loss(model at w, lam, *data): one function per model and loss, so that
    problems differing only in their data share the compiled step (``compile``)."""

    def inner(w, lam, *data):
        return inner_loss(ModuleAt(model, w), lam, *data)

    return inner


def module_problem(
    model: torch.nn.Module,
    inner_loss: Callable[..., torch.Tensor],
    outer_loss: Callable[..., torch.Tensor],
    *,
    lr,
    T: int,
    data: tuple = (),
    init: str | Callable[[Any], dict] = "model",
    compile: bool | str = False,
) -> BilevelProblem:
    """The bilevel problem of T gradient-descent steps on ``model``'s parameters (sec. 2.2):
    w_{t+1} = w_t - lr * grad_w inner_loss(net_t, lam, *data), upper objective outer_loss(net_T, lam),
    where ``net_t`` is the model at w_t (:class:`ModuleAt`).

    ``init`` gives w_0: ``"model"`` (default) the module's current parameters, fixed (w_0 does not
    depend on lam); ``"hparams"`` lam itself, a dict like the module's parameters (learning an
    initialisation, MAML-style); or a function ``init(lam) -> dict``. ``lr`` and ``compile`` are
    :func:`gradient_descent`'s (``lr`` may be a function ``lr(lam, t)``); ``data`` are passed to
    ``inner_loss`` after lam, so that problems which differ only in their data share one compiled step.
    """
    start = check_module(model)
    if init == "model":
        initial = lambda lam: start  # noqa: E731
    elif init == "hparams":
        initial = lambda lam: lam  # noqa: E731
    elif callable(init):
        initial = init
    else:
        raise ValueError(f"init={init!r}: expected 'model', 'hparams' or a function of lam")

    return BilevelProblem(
        init=initial,
        step=gradient_descent(_inner(model, inner_loss), lr, compile=compile, data=data),
        outer=lambda w, lam: outer_loss(ModuleAt(model, w), lam),
        T=T,
    )
