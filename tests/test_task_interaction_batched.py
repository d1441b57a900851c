"""Task interaction's explicit batch (``task_interaction.batched``), in both its forms: its step and
hand-written vector-Jacobian products equal autograd's of the members' own steps, member by member,
within float64 rounding (the kernel form's state Q and cotangents mapped to the members' by W = Q x and
alpha_Q = alpha_W x^T), and ``ProblemFamily.batched`` picks it (the vmap batch on request)."""

import dataclasses

import pytest
import torch

from truncback.experiments.task_interaction.batched import BatchedTaskStep, KernelTaskStep, chosen_form, step_cost
from truncback.hypergrad.batched import BatchedProblem, member, stack
from test_batched import CLASSES, DIM, FAMILY, FAMILIES, close, member_problem

SEEDS = range(3)


def random_point(seed: int, family):
    """A member's problem, state, hyperparameters (away from 0, so that every term of the step matters;
    C and rho non-negative) and a cotangent of its own state (W, b), and the batch's state and cotangent
    for them: the same where ``family`` batches in the weights form; in the kernel form a random Q
    (the member's W is Q x) and the cotangent U x^T of the member's U."""
    generator = torch.Generator().manual_seed(seed)
    problem = member_problem(seed, family)
    x = problem.data[0]
    kernel = family is FAMILIES["kernel"]

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    w = (normal(CLASSES, x.shape[0] if kernel else x.shape[1]), normal(CLASSES))
    lam = (
        torch.rand(CLASSES, CLASSES, generator=generator, dtype=torch.float64),
        torch.rand((), generator=generator).double(),
    )
    alpha_member = (normal(CLASSES, x.shape[1]), normal(CLASSES))
    alpha = (alpha_member[0] @ x.T, alpha_member[1]) if kernel else alpha_member
    return problem, w, lam, alpha, alpha_member


def batch(family):
    points = [random_point(seed, family) for seed in SEEDS]
    batched = family.batched([point[0] for point in points])
    return points, batched, *(stack([point[i] for point in points]) for i in (1, 2, 3))


def in_batch_coordinates(batched, cotangent, x):
    """A member's cotangent of (W, b) as the batch's: U x^T in the kernel form."""
    U, u = cotangent
    return (U @ x.T if isinstance(batched.step, KernelTaskStep) else U, u)


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


@pytest.mark.parametrize("form", sorted(FAMILIES))
def test_the_hand_written_products_are_autograd_s_of_each_member(form):
    """Against autograd of the batch's own step, and of each member's step at its own (W, b) with its
    own cotangent (in the kernel form, the batch's products are the member's times x^T)."""
    points, batched, w, lam, alpha = batch(FAMILIES[form])
    by_hand = batched.step.pullback(w, lam, 0, alpha)
    _, back = torch.func.vjp(lambda w, lam: batched.step(w, lam, 0), w, lam)
    close(back(alpha), by_hand)
    for b, (problem, _, lam_b, _, alpha_member) in enumerate(points):
        _, back = torch.func.vjp(lambda w, lam, step=problem.step: step(w, lam, 0), member_state(batched, w, b), lam_b)
        state_bar, lam_bar = back(alpha_member)
        close((in_batch_coordinates(batched, state_bar, problem.data[0]), lam_bar), member(by_hand, b))


@pytest.mark.parametrize("form", sorted(FAMILIES))
def test_the_batch_s_objectives_are_the_members(form):
    points, batched, w, lam, _ = batch(FAMILIES[form])
    values = batched.member_outer(w, lam)
    for b, (problem, _, lam_b, _, _) in enumerate(points):
        close(problem.outer(member_state(batched, w, b), lam_b), values[b])
    close(batched.outer(w, lam), values.sum())
    initial = batched.init(lam)
    close(batched.member_states(initial), stack([problem.init(lam_b) for problem, _, lam_b, _, _ in points]))


def test_the_explicit_and_the_vmap_batch_agree():
    points, batched, w, lam, alpha = batch(FAMILY)
    generic = FAMILY.batched([point[0] for point in points], explicit=False)
    close(batched.step.pullback(w, lam, 3, alpha), generic.step.pullback(w, lam, 3, alpha))
    close(batched.step.without_graph(w, lam, 3), generic.step.without_graph(w, lam, 3))
    close(batched.member_outer(w, lam), generic.member_outer(w, lam))


def test_a_family_without_an_explicit_batch_refuses_one():
    plain = dataclasses.replace(FAMILY, explicit=None)
    with pytest.raises(ValueError, match="no explicit batch"):
        plain.batched([plain.problem(member_problem(0).data)], explicit=True)
