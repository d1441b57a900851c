"""Task interaction's explicit batch (``task_interaction.batched``): its step and hand-written
vector-Jacobian products equal autograd's of the members' own steps, member by member, within float64
rounding, and ``ProblemFamily.batched`` picks it (the vmap batch on request)."""

import dataclasses

import pytest
import torch

from truncback.experiments.task_interaction.batched import BatchedTaskStep
from truncback.hypergrad.batched import BatchedProblem, member, stack
from test_batched import FAMILY, close, member_problem

SEEDS = range(3)


def random_point(seed: int):
    """A state and hyperparameters away from 0 (every term of the step matters), non-negative C and rho."""
    generator = torch.Generator().manual_seed(seed)
    problem = member_problem(seed)
    V, d = problem.init(None)[0].shape

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    w = (normal(V, d), normal(V))
    lam = (torch.rand(V, V, generator=generator, dtype=torch.float64), torch.rand((), generator=generator).double())
    alpha = (normal(V, d), normal(V))
    return problem, w, lam, alpha


def batch():
    points = [random_point(seed) for seed in SEEDS]
    problems = [point[0] for point in points]
    batched = FAMILY.batched(problems)
    return points, batched, *(stack([point[i] for point in points]) for i in (1, 2, 3))


def test_the_family_batches_explicitly_unless_told_not_to():
    problems = [member_problem(seed) for seed in SEEDS]
    assert isinstance(FAMILY.batched(problems).step, BatchedTaskStep)
    assert isinstance(FAMILY.batched(problems, explicit=True).step, BatchedTaskStep)
    generic = FAMILY.batched(problems, explicit=False)
    assert isinstance(generic, BatchedProblem) and not isinstance(generic.step, BatchedTaskStep)


def test_each_member_of_a_step_is_its_own_step():
    points, batched, w, lam, _ = batch()
    graph_free = batched.step.without_graph(w, lam, 0)
    differentiable = batched.step(w, lam, 0)
    for b, (problem, w_b, lam_b, _) in enumerate(points):
        alone = problem.step(w_b, lam_b, 0)
        close(alone, member(graph_free, b))
        close(alone, member(differentiable, b))


def test_the_hand_written_products_are_autograd_s_of_each_member():
    points, batched, w, lam, alpha = batch()
    by_hand = batched.step.pullback(w, lam, 0, alpha)
    _, back = torch.func.vjp(lambda w, lam: batched.step(w, lam, 0), w, lam)
    close(back(alpha), by_hand)
    for b, (problem, w_b, lam_b, alpha_b) in enumerate(points):
        _, back = torch.func.vjp(lambda w, lam, step=problem.step: step(w, lam, 0), w_b, lam_b)
        close(back(alpha_b), member(by_hand, b))


def test_the_batch_s_objectives_are_the_members():
    points, batched, w, lam, _ = batch()
    values = batched.member_outer(w, lam)
    for b, (problem, w_b, lam_b, _) in enumerate(points):
        close(problem.outer(w_b, lam_b), values[b])
    close(batched.outer(w, lam), values.sum())
    close(batched.init(lam), stack([problem.init(lam_b) for problem, _, lam_b, _ in points]))


def test_the_explicit_and_the_vmap_batch_agree():
    points, batched, w, lam, alpha = batch()
    generic = FAMILY.batched([point[0] for point in points], explicit=False)
    close(batched.step.pullback(w, lam, 3, alpha), generic.step.pullback(w, lam, 3, alpha))
    close(batched.step.without_graph(w, lam, 3), generic.step.without_graph(w, lam, 3))
    close(batched.member_outer(w, lam), generic.member_outer(w, lam))


def test_a_family_without_an_explicit_batch_refuses_one():
    plain = dataclasses.replace(FAMILY, explicit=None)
    with pytest.raises(ValueError, match="no explicit batch"):
        plain.batched([plain.problem(member_problem(0).data)], explicit=True)
