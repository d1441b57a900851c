"""Forward-mode hypergradient (FMD, eq. 7): Z_0 = B_0, Z_{t+1} = Z_t A_{t+1} + B_{t+1},
d_lam f = Z_T grad_w f + grad_lam f.

Z_t holds one state tangent per hyperparameter coordinate; the coordinates are processed in chunks,
each chunk with ``torch.func.vmap`` over ``torch.func.jvp`` of the step, so memory is O(M * chunk).
"""

import torch
from torch.func import vmap
from torch.utils._pytree import tree_flatten, tree_unflatten

from truncback.hypergrad import trees
from truncback.hypergrad.checks import check_problem
from truncback.hypergrad.dynamics import advance, init_jvp, initial_state, outer_gradients, run, step_jvp
from truncback.hypergrad.result import finish

DEFAULT_TANGENT_BYTES = 1 << 30


def fmd(problem, hparams, *, chunk_size: int | None = None, return_info: bool = False):
    """The exact hypergradient by forward mode (eq. 7), ``chunk_size`` coordinates of lam at a time.

    By default a chunk is as large as fits in 1 GiB of tangents (all coordinates when that fits).
    """
    check_problem(problem, hparams)
    leaves, spec = tree_flatten(hparams)
    n_hparams = trees.numel(hparams)
    w0 = initial_state(problem, hparams)
    if chunk_size is None:
        bytes_per_direction = (trees.numel(w0) + n_hparams) * leaves[0].element_size()
        chunk_size = max(1, min(n_hparams, DEFAULT_TANGENT_BYTES // bytes_per_direction))
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got chunk_size={chunk_size!r}")
    final_state = run(problem, hparams, w0, 0, problem.T)
    loss, grad_state, grad_hparams = outer_gradients(problem, final_state, hparams)
    pieces = []
    for first in range(0, n_hparams, chunk_size):
        count = min(chunk_size, n_hparams - first)
        directions = tree_unflatten(_basis_directions(leaves, first, count), spec)
        tangents = _propagate(problem, hparams, w0, directions)
        pieces.append(vmap(lambda z: trees.dot(z, grad_state))(tangents))
    through_state = _unflatten_like(torch.cat(pieces), leaves, spec)
    return finish(trees.add(grad_hparams, through_state), loss, final_state, 1, [], return_info)


def _propagate(problem, hparams, w0, directions):
    """Z_T for a batch of hyperparameter directions (along the leading dimension)."""
    tangents = vmap(lambda e: init_jvp(problem, hparams, e))(directions)
    state = w0
    for t in range(problem.T):
        tangents = vmap(lambda z, e: step_jvp(problem, state, hparams, t, z, e))(tangents, directions)  # noqa: B023
        state = advance(problem, state, hparams, t)
    return tangents


def _basis_directions(leaves, first: int, count: int):
    """Unit vectors e_first, ..., e_{first+count-1} of the flattened lam, as one batched tensor per leaf."""
    directions, offset = [], 0
    rows = torch.arange(count, device=leaves[0].device)
    for leaf in leaves:
        block = torch.zeros((count, leaf.numel()), dtype=leaf.dtype, device=leaf.device)
        columns = rows + first - offset
        inside = (columns >= 0) & (columns < leaf.numel())
        block[rows[inside], columns[inside]] = 1
        directions.append(block.reshape((count, *leaf.shape)))
        offset += leaf.numel()
    return directions


def _unflatten_like(flat, leaves, spec):
    sizes = [leaf.numel() for leaf in leaves]
    parts = [part.reshape(leaf.shape).to(leaf.dtype) for part, leaf in zip(flat.split(sizes), leaves)]
    return tree_unflatten(parts, spec)
