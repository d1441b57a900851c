"""Independent bilevel problems of one family computed as one: a leading member axis on the state and
the hyperparameters.

A family is gradient descent with step size ``lr`` for ``T`` steps on g(w, lam, *data) from
w_0 = init(lam, *data), and the upper objective f(w, lam, *data); member b is the family at its own
data d_b (:meth:`ProblemFamily.problem`). B members of the same shapes stack into one problem
(:meth:`ProblemFamily.batched`) whose state is w = (w_1, ..., w_B), whose hyperparameters are
lam = (lam_1, ..., lam_B), stacked leaf by leaf along a new first axis, and whose objectives are

    G(w, lam) = sum_b g(w_b, lam_b, *d_b),    F(w, lam) = sum_b f(w_b, lam_b, *d_b),

each term computed by ``torch.func.vmap`` over the members, or, where the family has an ``explicit``
hook, by that hook's explicitly batched tensors and hand-written products (``ProblemFamily``), which
spare every call vmap's overhead. Member b's terms depend on w_b and lam_b
only, so grad_w G stacks the members' grad_{w_b} g: a gradient-descent step on G is every member's
step at once, the Jacobians A_t, B_t of eq. (5) are block-diagonal, and row b of the hypergradient
d_lam F by any method that treats the rows of its vectors apart is member b's d_lam_b f_b by that
method. Those are ``MEMBERWISE``; conjugate gradients (AID-CG) share step sizes across the rows and
UFOM one random draw, so they are not.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import torch
from torch.utils._pytree import tree_map

from truncback.hypergrad.methods import resolve
from truncback.hypergrad.problem import BilevelProblem, gradient_descent

MEMBERWISE = ("rmd", "krmd", "checkpointed", "unrolled", "fom", "aid_fp")
"""The methods whose hypergradient of a batched problem is, row by row, each member's."""


def check_memberwise(spec) -> dict:
    """The resolved ``spec``; a ValueError naming it unless it is one of ``MEMBERWISE``."""
    spec = resolve(spec)
    if spec["name"] not in MEMBERWISE:
        raise ValueError(
            f"method {spec['name']!r} does not compute batched members apart (its vectors' rows share step "
            f"sizes or random draws); batch one of {', '.join(MEMBERWISE)}, or run it one problem at a time"
        )
    return spec


def stack(trees: list):
    """The trees (the same structure and shapes) stacked leaf by leaf along a new first axis."""
    return tree_map(lambda *leaves: torch.stack(leaves), *trees)


def member(tree, b: int):
    """Member ``b`` of a stacked tree: row ``b`` of every leaf."""
    return tree_map(lambda leaf: leaf[b], tree)


def _summed(function: Callable) -> Callable:
    """(w, lam, *data) -> sum_b function(w_b, lam_b, *d_b), by vmap over the first axis."""
    members = torch.func.vmap(function)

    def total(w, lam, *data):
        return members(w, lam, *data).sum()

    return total


class ExplicitBatch(NamedTuple):
    """A batch written by hand (``ProblemFamily.explicit``): ``init(lam)``, ``step(w, lam, t)`` and
    ``outer(w, lam)`` as a ``BilevelProblem``'s on stacked trees (the step best with the
    ``without_graph`` and ``pullback`` of ``GradientDescentStep``), ``member_outer(w, lam)`` the
    members' f values, shape (B,), ``member_states(w)`` the members' states, stacked, from the
    batch's state where the batch steps other coordinates of the same lower level (None: the batch's
    state is theirs), and ``member_inner(w, lam)`` the members' g values, shape (B,) (None: the
    family's inner loss, by vmap, on ``member_states(w)``)."""

    init: Callable
    step: Callable
    outer: Callable
    member_outer: Callable
    member_states: Callable | None = None
    member_inner: Callable | None = None


@dataclass(frozen=True)
class ProblemFamily:
    """Bilevel problems that differ only in their data: gradient descent with step size ``lr`` (a
    number) for ``T`` steps on ``inner_loss(w, lam, *data)`` from ``init(lam, *data)``, and the upper
    objective ``outer(w, lam, *data)``. ``compile`` and ``matmul`` are the steps' (``gradient_descent``):
    every member's step shares one compilation, every batch of B members another.

    ``explicit`` (optional): the batch written by hand, a function of the members' stacked data
    returning an ``ExplicitBatch``. ``batched`` uses it unless told not to; it runs eagerly
    (``compile`` is for the members' own steps and the generic batch)."""

    init: Callable
    inner_loss: Callable
    outer: Callable
    lr: float
    T: int
    compile: bool | str = False
    matmul: str = "onednn"
    explicit: Callable | None = field(default=None, compare=False)
    batched_inner: Callable = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "batched_inner", _summed(self.inner_loss))

    def problem(self, data: tuple) -> "MemberProblem":
        """The member at ``data``: a plain bilevel problem (any method runs on it)."""
        data = tuple(data)
        return MemberProblem(
            init=lambda lam: self.init(lam, *data),
            step=gradient_descent(self.inner_loss, self.lr, self.compile, data, self.matmul),
            outer=lambda w, lam: self.outer(w, lam, *data),
            T=self.T,
            family=self,
            data=data,
        )

    def batched(self, members: list, explicit: bool | None = None) -> "BatchedProblem":
        """The members (``MemberProblem``s of this family, data of the same shapes) as one problem on
        stacked states and hyperparameters (module docstring): by the family's ``explicit`` hook where
        it has one and ``explicit`` is not False (True: the hook, a ValueError without one), else by
        vmap."""
        if explicit and self.explicit is None:
            raise ValueError("this family has no explicit batch (ProblemFamily.explicit)")
        if not members:
            raise ValueError("a batch needs at least one member")
        strangers = [i for i, problem in enumerate(members) if getattr(problem, "family", None) is not self]
        if strangers:
            raise ValueError(f"members {strangers} are not problems of this family (made by its problem())")
        shapes = {tuple(tuple(leaf.shape) for leaf in problem.data) for problem in members}
        if len(shapes) > 1:
            raise ValueError(f"the members' data differ in shape ({sorted(shapes)}); a batch needs one shape")
        data = stack([problem.data for problem in members])
        if self.explicit is not None and explicit is not False:
            hand = self.explicit(data)
            return BatchedProblem(
                init=hand.init,
                step=hand.step,
                outer=hand.outer,
                T=self.T,
                family=self,
                data=data,
                members=len(members),
                member_outer_values=hand.member_outer,
                member_state_values=hand.member_states,
                member_inner_values=hand.member_inner,
            )
        vmapped_init, summed_outer, vmapped_outer = (
            torch.func.vmap(self.init),
            _summed(self.outer),
            torch.func.vmap(self.outer),
        )
        return BatchedProblem(
            init=lambda lam: vmapped_init(lam, *data),
            step=gradient_descent(self.batched_inner, self.lr, self.compile, data, self.matmul),
            outer=lambda w, lam: summed_outer(w, lam, *data),
            T=self.T,
            family=self,
            data=data,
            members=len(members),
            member_outer_values=lambda w, lam: vmapped_outer(w, lam, *data),
        )


@dataclass(frozen=True)
class MemberProblem(BilevelProblem):
    """One member of ``family``, at ``data``."""

    family: Any = None
    data: tuple = ()


@dataclass(frozen=True)
class BatchedProblem(BilevelProblem):
    """``members`` problems of ``family`` stacked (``data``: theirs, stacked): see the module docstring.
    ``member_outer_values(w, lam)``: the members' f values (``member_outer``);
    ``member_state_values(w)``: the members' states (``member_states``);
    ``member_inner_values(w, lam)``: the members' g values (``member_inner``)."""

    family: Any = None
    data: tuple = ()
    members: int = 0
    member_outer_values: Callable | None = None
    member_state_values: Callable | None = None
    member_inner_values: Callable | None = None

    @torch.no_grad()
    def member_states(self, w):
        """The members' states, stacked, at the batch's state ``w`` (``w`` itself unless the batch
        steps other coordinates: ``ExplicitBatch.member_states``)."""
        return w if self.member_state_values is None else self.member_state_values(w)

    @torch.no_grad()
    def member_outer(self, w, lam) -> torch.Tensor:
        """(f(w_b, lam_b, *d_b))_b, one value per member."""
        if self.member_outer_values is None:
            return torch.func.vmap(self.family.outer)(w, lam, *self.data)
        return self.member_outer_values(w, lam)

    @torch.no_grad()
    def member_inner(self, w, lam) -> torch.Tensor:
        """(g(w_b, lam_b, *d_b))_b, one value per member: the lower objective each member descends."""
        if self.member_inner_values is not None:
            return self.member_inner_values(w, lam)
        return torch.func.vmap(self.family.inner_loss)(self.member_states(w), lam, *self.data)

    @torch.no_grad()
    def member_lower_objectives(self, lam, final_state) -> list:
        """Each member's (g(w_0, lam_b), g(w_T, lam_b)), its lower level having ended at the batch's
        ``final_state`` (``runtime.health.lower_objectives``, batched)."""
        starts = self.member_inner(self.init(lam), lam).tolist()
        return list(zip(starts, self.member_inner(final_state, lam).tolist()))
