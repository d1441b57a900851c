"""Task interaction's explicit batch (``task_interaction.batched``), in both its forms: its step and
hand-written vector-Jacobian products equal autograd's of the members' own steps, member by member,
within float64 rounding (the kernel form's state Q and cotangents mapped to the members' by W = Q x and
alpha_Q = alpha_W x^T; the logits the batch's state carries folded into its weights' cotangent), its
lower objectives are the members' g, and ``ProblemFamily.batched`` picks it (the vmap batch on
request)."""

import dataclasses

import pytest
import torch
from torch.utils._pytree import tree_leaves

from truncback.experiments.task_interaction.batched import BatchedTaskStep, KernelTaskStep, chosen_form, step_cost
from truncback.experiments.task_interaction.problem import task_inner
from truncback.hypergrad.batched import BatchedProblem, member, stack
from test_batched import CLASSES, DIM, FAMILY, FAMILIES, RELATIVE, close, member_problem

SEEDS = range(3)


def random_point(seed: int, family):
    """A member's problem, state, hyperparameters (away from 0, so that every term of the step matters;
    C and rho non-negative) and a cotangent of its own state (W, b), and the batch's state and cotangent
    for them: the same where ``family`` batches in the weights form; in the kernel form a random Q
    (the member's W is Q x) and the cotangent U x^T of the member's U. The batch's state carries the
    logits of its (W, b), written out here; its cotangent has a random logits part (``member_cotangent``
    drops it)."""
    generator = torch.Generator().manual_seed(seed)
    problem = member_problem(seed, family)
    x = problem.data[0]
    kernel = family is FAMILIES["kernel"]

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    S, b = normal(CLASSES, x.shape[0] if kernel else x.shape[1]), normal(CLASSES)
    W = S @ x if kernel else S
    w = (S, b, W @ x.T + b[:, None])
    lam = (
        torch.rand(CLASSES, CLASSES, generator=generator, dtype=torch.float64),
        torch.rand((), generator=generator).double(),
    )
    alpha_member = (normal(CLASSES, x.shape[1]), normal(CLASSES))
    alpha = (alpha_member[0] @ x.T if kernel else alpha_member[0], alpha_member[1], normal(CLASSES, x.shape[0]))
    return problem, w, lam, alpha, alpha_member


def batch(family):
    points = [random_point(seed, family) for seed in SEEDS]
    batched = family.batched([point[0] for point in points])
    return points, batched, *(stack([point[i] for point in points]) for i in (1, 2, 3))


def in_batch_coordinates(batched, cotangent, x):
    """A member's cotangent of (W, b) as the batch's: U x^T in the kernel form."""
    U, u = cotangent
    return (U @ x.T if isinstance(batched.step, KernelTaskStep) else U, u)


def member_cotangent(alpha):
    """The batch's cotangent without its logits part: one of the member's own state (W, b)."""
    U, u, Omega = alpha
    return (U, u, torch.zeros_like(Omega))


def folded(batched, state_bar, x):
    """A cotangent of the batch's state (S, b, Z^T) as one of (S, b) alone, Z^T being S x^T + b (the
    kernel form: S x x^T + b): (U + Omega x or Omega x x^T, u + Omega 1)."""
    U, u, Omega = state_bar
    kernel = isinstance(batched.step, KernelTaskStep)
    return (U + (Omega @ x @ x.T if kernel else Omega @ x), u + Omega.sum(-1))


def member_state(batched, w, b):
    """Member b's own (W, b) at the batch's state ``w``."""
    return member(batched.member_states(w), b)


def test_the_family_batches_explicitly_unless_told_not_to():
    problems = [member_problem(seed) for seed in SEEDS]
    assert isinstance(FAMILY.batched(problems).step, BatchedTaskStep)
    assert isinstance(FAMILY.batched(problems, explicit=True).step, BatchedTaskStep)
    generic = FAMILY.batched(problems, explicit=False)
    assert isinstance(generic, BatchedProblem) and not isinstance(generic.step, BatchedTaskStep)
    kernel = FAMILIES["kernel"].batched([member_problem(seed, FAMILIES["kernel"]) for seed in SEEDS])
    assert isinstance(kernel.step, KernelTaskStep)


def test_auto_picks_the_form_with_fewer_multiply_adds():
    """The kernel form where there are fewer training examples than features, as in the paper's
    CIFAR-100 and CIFAR-10 subsets; the weights form where there are many more."""
    assert chosen_form("auto", 100, 300, 512) == chosen_form("auto", 10, 500, 512) == "kernel"
    assert chosen_form("auto", CLASSES, 20, DIM) == "weights"
    assert step_cost("weights", 100, 300, 512) > 2.5 * step_cost("kernel", 100, 300, 512)
    with pytest.raises(ValueError, match="unknown form 'dual'"):
        chosen_form("dual", 10, 5, 5)


@pytest.mark.parametrize("form", sorted(FAMILIES))
def test_each_member_of_a_step_is_its_own_step(form):
    points, batched, w, lam, _ = batch(FAMILIES[form])
    graph_free = batched.step.without_graph(w, lam, 0)
    differentiable = batched.step(w, lam, 0)
    for b, (problem, _, lam_b, _, _) in enumerate(points):
        alone = problem.step(member_state(batched, w, b), lam_b, 0)
        close(alone, member_state(batched, graph_free, b))
        close(alone, member_state(batched, differentiable, b))
        W, biases = alone
        close(graph_free[2][b], W @ problem.data[0].T + biases[:, None])  # the logits of the new state


@pytest.mark.parametrize("form", sorted(FAMILIES))
def test_the_hand_written_products_are_autograd_s_of_each_member(form):
    """Against autograd of the batch's own step, and of each member's step at its own (W, b) with its
    own cotangent (in the kernel form, the batch's products are the member's times x^T)."""
    points, batched, w, lam, alpha = batch(FAMILIES[form])
    _, back = torch.func.vjp(lambda w, lam: batched.step(w, lam, 0), w, lam)
    for autograd, hand in zip(tree_leaves(back(alpha)), tree_leaves(batched.step.pullback(w, lam, 0, alpha))):
        # by norm: the logits' cotangent -lr dR has entries of 1e-16 where a softmax probability is
        # that small, and they differ in their leading digits
        assert torch.linalg.vector_norm(autograd - hand) <= RELATIVE * torch.linalg.vector_norm(autograd)
    by_hand = batched.step.pullback(w, lam, 0, member_cotangent(alpha))
    for b, (problem, _, lam_b, _, alpha_member) in enumerate(points):
        _, back = torch.func.vjp(lambda w, lam, step=problem.step: step(w, lam, 0), member_state(batched, w, b), lam_b)
        state_bar, lam_bar = back(alpha_member)
        x = problem.data[0]
        state_by_hand, lam_by_hand = member(by_hand, b)
        close(in_batch_coordinates(batched, state_bar, x), folded(batched, state_by_hand, x))
        close(lam_bar, lam_by_hand)


@pytest.mark.parametrize("form", sorted(FAMILIES))
def test_the_batch_s_objectives_are_the_members(form):
    points, batched, w, lam, _ = batch(FAMILIES[form])
    values = batched.member_outer(w, lam)
    lower = batched.member_inner(w, lam)
    for b, (problem, _, lam_b, _, _) in enumerate(points):
        close(problem.outer(member_state(batched, w, b), lam_b), values[b])
        close(task_inner(member_state(batched, w, b), lam_b, *problem.data), lower[b])
    close(batched.outer(w, lam), values.sum())
    initial = batched.init(lam)
    close(batched.member_states(initial), stack([problem.init(lam_b) for problem, _, lam_b, _, _ in points]))


def test_the_explicit_and_the_vmap_batch_agree():
    points, batched, w, lam, alpha = batch(FAMILY)
    generic = FAMILY.batched([point[0] for point in points], explicit=False)
    plain, x = w[:2], torch.stack([point[0].data[0] for point in points])
    state_bar, lam_bar = batched.step.pullback(w, lam, 3, member_cotangent(alpha))
    close((folded(batched, state_bar, x), lam_bar), generic.step.pullback(plain, lam, 3, alpha[:2]))
    close(batched.step.without_graph(w, lam, 3)[:2], generic.step.without_graph(plain, lam, 3))
    close(batched.member_outer(w, lam), generic.member_outer(plain, lam))
    close(batched.member_inner(w, lam), generic.member_inner(plain, lam))


def test_a_family_without_an_explicit_batch_refuses_one():
    plain = dataclasses.replace(FAMILY, explicit=None)
    with pytest.raises(ValueError, match="no explicit batch"):
        plain.batched([plain.problem(member_problem(0).data)], explicit=True)
