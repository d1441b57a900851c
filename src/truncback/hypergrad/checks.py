"""Argument checks shared by the methods: each failure is a ValueError naming the argument."""

import torch
from torch.utils._pytree import tree_leaves

from truncback.hypergrad.problem import BilevelProblem


def check_problem(problem, hparams) -> None:
    if not isinstance(problem, BilevelProblem):
        raise ValueError(f"problem must be a BilevelProblem, got {type(problem).__name__}")
    leaves = tree_leaves(hparams)
    if not leaves:
        raise ValueError("hparams must hold at least one tensor")
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, torch.Tensor) or not leaf.is_floating_point():
            raise ValueError(
                f"hparams: leaf {i} must be a floating-point tensor, got {type(leaf).__name__}"
                + (f" of dtype {leaf.dtype}" if isinstance(leaf, torch.Tensor) else "")
            )


def check_depth(name: str, value, T: int | None) -> int:
    """A truncation depth or iteration count: an int with 0 <= value <= T (T=None: no upper limit)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {name}={value}")
    if T is not None and value > T:
        raise ValueError(f"{name}={value} is larger than the number of lower-level steps T={T}")
    return value


def check_probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be a probability in (0, 1], got {name}={value!r}")
    return float(value)


def check_scalar(loss, name: str = "outer") -> None:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"{name} must return a scalar tensor, got {shape}")
