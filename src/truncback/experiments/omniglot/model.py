"""The one-shot bilevel problem of sec. 4.3 on one task.

Network nn(x; w, lam): four blocks of a 3x3 convolution with stride 2 and padding 1 (28 -> 14 -> 7
-> 4 -> 2), batch normalisation with the batch's statistics and no affine part (or a bias instead,
without batch normalisation) and a ReLU, then the spatial mean and a linear k-way layer, as MAML's
Omniglot network (Finn et al. 2017) with strided convolutions as in Franceschi et al. 2018.

Hyperparameters lam = {lambda_l1, lambda_l2, c, rho, gamma} as a dict of tensors:
  "l1", "l2"     the first two convolution blocks, meta-learned and shared by all tasks (not adapted);
  "c"            the centre of the adapted layers (a dict like w), also the initial state w_0 = c;
  "theta_rho"    one unconstrained value per adapted parameter tensor w_j, with
                 rho_j = rho_min + exp(theta_rho_j) > rho_min >= 0;
  "theta_gamma"  the unconstrained step size, gamma = gamma_max * sigmoid(theta_gamma) in (0, gamma_max).
``Constraints`` holds gamma_max and rho_min (settings ``gamma_max``, ``rho_min``): gamma stays below the
stability bound 1/beta of Prop. 3.6 (beta measured, docs/measurements/omniglot_stability.md) and rho
above its floor whatever the hyper-optimiser does to theta. The inner state w = the last two
convolution blocks and the linear layer. The lower level is T steps of gradient descent on
  g_S(w, lam) = sum_{(x_i, y_i) in S} CE(nn(x_i; w, lam), y_i) + sum_j rho_j ||w_j - c_j||^2,
the upper level f(w_T, lam) = mean cross-entropy on Q. Since w_0 = c, B_0 = d w_0 / d lam != 0
and K-RMD with K < T leaves out the B_0 term by the definition of eq. (8).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_map

from truncback.hypergrad import BilevelProblem, dynamics, gradient_descent

SHARED_BLOCKS = ("l1", "l2")
ADAPTED_BLOCKS = ("l3", "l4")


def block(x, params: dict, batch_norm: bool):
    """3x3 convolution with stride 2, then batch normalisation (batch statistics) or a bias, then ReLU."""
    x = F.conv2d(x, params["weight"], params.get("bias"), stride=2, padding=1)
    if batch_norm:
        x = F.batch_norm(x, None, None, training=True)
    return F.relu(x)


def forward(x, w: dict, lam: dict, batch_norm: bool):
    """nn(x; w, lam): logits [n, ways] for images x [n, 1, 28, 28]."""
    for name in SHARED_BLOCKS:
        x = block(x, lam[name], batch_norm)
    for name in ADAPTED_BLOCKS:
        x = block(x, w[name], batch_norm)
    return x.mean(dim=(2, 3)) @ w["head"]["weight"].T + w["head"]["bias"]


def _conv(generator, filters, channels, batch_norm, dtype) -> dict:
    """He-normal weights (std sqrt(2 / fan_in)); a zero bias only when there is no batch norm."""
    fan_in = channels * 9
    params = {
        "weight": torch.randn(filters, channels, 3, 3, generator=generator, dtype=torch.float64)
        .mul(math.sqrt(2.0 / fan_in))
        .to(dtype)
    }
    if not batch_norm:
        params["bias"] = torch.zeros(filters, dtype=dtype)
    return params


@dataclass(frozen=True)
class Constraints:
    """The parametrisation of gamma and rho: gamma = gamma_max * sigmoid(theta_gamma) lies in
    (0, gamma_max) and rho_j = rho_min + exp(theta_rho_j) above rho_min, for every real theta."""

    gamma_max: float
    rho_min: float

    def __post_init__(self):
        if not (math.isfinite(self.gamma_max) and self.gamma_max > 0):
            raise ValueError(f"gamma_max={self.gamma_max} must be a positive number")
        if not (math.isfinite(self.rho_min) and self.rho_min >= 0):
            raise ValueError(f"rho_min={self.rho_min} must be a non-negative number")

    def gamma(self, lam):
        """gamma = gamma_max * sigmoid(theta_gamma)."""
        return self.gamma_max * torch.sigmoid(lam["theta_gamma"])

    def rho(self, lam):
        """rho_j = rho_min + exp(theta_rho_j), one per adapted tensor (the order of ``adapted_names``)."""
        return self.rho_min + torch.exp(lam["theta_rho"])

    def theta_gamma(self, gamma: float) -> float:
        """The theta_gamma of ``gamma``: logit(gamma / gamma_max); gamma must lie in (0, gamma_max)."""
        if not 0 < gamma < self.gamma_max:
            raise ValueError(f"gamma={gamma} must lie strictly between 0 and gamma_max={self.gamma_max}")
        ratio = gamma / self.gamma_max
        return math.log(ratio) - math.log1p(-ratio)

    def theta_rho(self, rho: float) -> float:
        """The theta_rho_j of ``rho``: log(rho - rho_min); rho must exceed rho_min."""
        if not rho > self.rho_min:
            raise ValueError(f"rho={rho} must exceed rho_min={self.rho_min}")
        return math.log(rho - self.rho_min)


def initial_hyperparameters(
    filters: int,
    ways: int,
    batch_norm: bool,
    init_rho: float,
    init_gamma: float,
    constraints: Constraints,
    seed: int,
    dtype=torch.float32,
) -> dict:
    """lam at the start of meta-training, drawn from a generator seeded by ``seed``: every rho_j =
    ``init_rho`` and gamma = ``init_gamma`` (inside ``constraints``)."""
    if filters < 1 or ways < 2:
        raise ValueError(f"filters={filters} must be >= 1 and ways={ways} >= 2")
    theta_rho, theta_gamma = constraints.theta_rho(init_rho), constraints.theta_gamma(init_gamma)
    generator = torch.Generator().manual_seed(seed)
    l1 = _conv(generator, filters, 1, batch_norm, dtype)
    l2 = _conv(generator, filters, filters, batch_norm, dtype)
    centre = {name: _conv(generator, filters, filters, batch_norm, dtype) for name in ADAPTED_BLOCKS}
    bound = 1.0 / math.sqrt(filters)
    centre["head"] = {
        "weight": (torch.rand(ways, filters, generator=generator, dtype=torch.float64) * 2 - 1).mul(bound).to(dtype),
        "bias": torch.zeros(ways, dtype=dtype),
    }
    count = len(adapted_names(centre))
    return {
        "l1": l1,
        "l2": l2,
        "c": centre,
        "theta_rho": torch.full((count,), theta_rho, dtype=dtype),
        "theta_gamma": torch.tensor(theta_gamma, dtype=dtype),
    }


def adapted_names(centre: dict) -> list[str]:
    """The adapted parameter tensors w_j in the order of rho_j: "l3.weight", ..., "head.bias"."""
    return [f"{layer}.{name}" for layer in centre for name in centre[layer]]


def regulariser(w: dict, lam: dict, rho_zero: bool, rho_min: float):
    """sum_j rho_j ||w_j - c_j||^2 with rho_j = rho_min + exp(theta_rho_j), or 0 (exactly, with no
    dependence on lam) when ``rho_zero``."""
    if rho_zero:
        return 0.0
    squares = torch.stack(
        [torch.sum((w[layer][name] - lam["c"][layer][name]) ** 2) for layer in lam["c"] for name in lam["c"][layer]]
    )
    return torch.sum((rho_min + torch.exp(lam["theta_rho"])) * squares)


def support_loss(w, lam, x_train, y_train, batch_norm: bool, rho_zero: bool, rho_min: float):
    """g_S(w, lam): the summed cross-entropy on the support set plus the regulariser. One function for
    every task (the task's examples are its arguments), so that a compiled step serves them all."""
    logits = forward(x_train, w, lam, batch_norm)
    return F.cross_entropy(logits, y_train, reduction="sum") + regulariser(w, lam, rho_zero, rho_min)


INITIAL_STATES = ("c", "fixed")
"""The lower level's initial state (setting ``w0``): w_0 = c, or a fixed w_0 that does not depend on lam."""


def fixed_w0(initial: dict, w0: str) -> dict | None:
    """The fixed initial state of the setting ``w0``: for "fixed", c's value in ``initial`` (lam at the
    start of meta-training), detached; for "c" None (w_0 = c)."""
    if w0 not in INITIAL_STATES:
        raise ValueError(f"w0={w0!r}; choose one of {INITIAL_STATES}")
    return tree_map(lambda c: c.detach().clone(), initial["c"]) if w0 == "fixed" else None


def one_shot_problem(
    task,
    T: int,
    batch_norm: bool,
    constraints: Constraints,
    rho_zero: bool = False,
    compile: bool | str = False,
    w0: dict | None = None,
) -> BilevelProblem:
    """The bilevel problem of sec. 4.3 on ``task``: w_0 = c (or ``w0``, a fixed state like w that does
    not depend on lam, so B_0 = 0), T gradient-descent steps of size gamma = constraints.gamma(lam) on
    g_S, f = mean cross-entropy on Q. ``rho_zero`` drops the regulariser (rho = 0, Fig. 7 plot 4);
    ``compile``: the forward steps through torch.compile, compiled once for all tasks of one shape."""

    def outer(w, lam):
        return F.cross_entropy(forward(task.x_query, w, lam, batch_norm), task.y_query)

    def step_size(lam, t):
        return constraints.gamma(lam)

    return BilevelProblem(
        init=lambda lam: tree_map(lambda c: c.clone(), lam["c"] if w0 is None else w0),
        step=gradient_descent(
            support_loss,
            step_size,
            compile,
            data=(task.x_train, task.y_train, batch_norm, rho_zero, constraints.rho_min),
        ),
        outer=outer,
        T=T,
    )


@torch.no_grad()
def evaluate(
    task, lam: dict, T: int, batch_norm: bool, constraints: Constraints, w0: dict | None = None
) -> tuple[float, float]:
    """(accuracy, loss) on Q of the network adapted to S by the T inner steps (from c, or ``w0``)."""
    problem = one_shot_problem(task, T, batch_norm, constraints, w0=w0)
    w = dynamics.run(problem, lam, dynamics.initial_state(problem, lam), 0, T)
    logits = forward(task.x_query, w, lam, batch_norm)
    accuracy = float((logits.argmax(dim=1) == task.y_query).double().mean())
    return accuracy, float(F.cross_entropy(logits, task.y_query))


def flat_hyperparameters(hparams: dict) -> dict:
    """lam as numpy arrays under dotted names ("l1.weight", "c.l3.weight", "theta_rho", ...)."""
    flat = {}

    def visit(prefix, value):
        if isinstance(value, dict):
            for key, item in value.items():
                visit(f"{prefix}.{key}" if prefix else key, item)
        else:
            flat[prefix] = value.detach().cpu().numpy()

    visit("", hparams)
    return flat


def nested_hyperparameters(flat: dict, like: dict, dtype=torch.float32) -> dict:
    """The inverse of ``flat_hyperparameters``: lam with the structure of ``like`` (a lam of the same
    network, e.g. ``OmniglotSettings.initial_hyperparameters``), its keys in ``like``'s order, every
    leaf the array of ``flat`` under its dotted name in the shape of ``like``'s leaf (``write_npz``
    stores a 0-d array as shape (1,)), as a tensor of ``dtype``. The order matters: theta_rho pairs
    with ``adapted_names(lam["c"])`` by position, and a saved file lists its arrays sorted
    (``write_npz``: "c.head..." before "c.l3..."). A ValueError names the arrays ``flat`` lacks or has
    beyond ``like``'s, or whose size differs."""
    names = set(flat_hyperparameters(like))
    missing, extra = sorted(names - set(flat)), sorted(set(flat) - names)
    if missing or extra:
        raise ValueError(
            f"saved hyperparameters do not fit the network: missing {missing or 'none'}, unexpected {extra or 'none'}"
        )

    def build(prefix: str, node):
        if isinstance(node, dict):
            return {key: build(f"{prefix}.{key}" if prefix else key, item) for key, item in node.items()}
        array = np.array(flat[prefix])
        if array.size != node.numel():
            raise ValueError(f"saved hyperparameter {prefix} has {array.size} values; the network's has {node.numel()}")
        return torch.from_numpy(array).to(dtype).reshape(node.shape)

    return build("", like)
