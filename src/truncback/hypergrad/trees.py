"""Arithmetic on trees of tensors (a tensor, or nested tuples/lists/dicts of tensors)."""

import math

import torch
from torch.utils._pytree import tree_leaves, tree_map


def add(a, b):
    return tree_map(torch.add, a, b)


def sub(a, b):
    return tree_map(torch.sub, a, b)


def scale(c, a):
    return tree_map(lambda x: c * x, a)


def axpy(c, x, y):
    """c * x + y, leaf by leaf."""
    return tree_map(lambda xi, yi: yi + c * xi, x, y)


def dot(a, b) -> torch.Tensor:
    return torch.stack([torch.sum(x * y) for x, y in zip(tree_leaves(a), tree_leaves(b))]).sum()


def norm_tensor(a) -> torch.Tensor:
    """||a|| as a 0-d float64 tensor on a's device (no host synchronisation, no copy of the leaves)."""
    return torch.sqrt(sum(torch.linalg.vector_norm(x).double() ** 2 for x in tree_leaves(a)))


def norm(a) -> float:
    return math.sqrt(sum(float(torch.sum(x * x)) for x in tree_leaves(a)))


def zeros_like(a):
    return tree_map(torch.zeros_like, a)


def detach(a):
    """The leaves cut from any graph; a leaf that carries none is returned as it is (same object)."""
    return tree_map(lambda x: x.detach() if x.requires_grad else x, a)


def numel(a) -> int:
    return sum(x.numel() for x in tree_leaves(a))
