"""What every hypergradient method returns on request, besides the hypergradient itself."""

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class HypergradInfo:
    """Diagnostics of one hypergradient computation.

    outer_loss    f(w_T, lam)
    final_state   w_T, detached
    states_held   the largest number of lower-level states the method kept at once
    alpha_norms   ||alpha_t|| of eq. (6), one per back-propagated step, from t = T backwards
                  (for AID: the norm of the linear-system iterate after each iteration; none for
                  ``unrolled``, whose backward pass goes through whole steps at once)
    """

    outer_loss: float
    final_state: Any
    states_held: int
    alpha_norms: list = field(default_factory=list)


def finish(hypergradient, outer_loss, final_state, states_held, alpha_norms, return_info):
    """The hypergradient alone, or (hypergradient, HypergradInfo) when ``return_info``.

    ``alpha_norms`` is a list of 0-d tensors (or None): they are brought to the host here, at once,
    rather than one synchronisation per step."""
    if not return_info:
        return hypergradient
    norms = torch.stack([n.double() for n in alpha_norms]).tolist() if alpha_norms else []
    return hypergradient, HypergradInfo(
        outer_loss=float(outer_loss), final_state=final_state, states_held=states_held, alpha_norms=norms
    )
