"""Batched members (``hypergrad.batched``, ``runtime.batched``): each member's hypergradient, and each
member's whole hyper-optimisation, is its run alone up to float64 rounding, including a member that
stops early and a batch interrupted and resumed from its checkpoint."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.utils._pytree import tree_leaves

from truncback.experiments.task_interaction.problem import initial_hparams, make_task_data, task_data, task_family
from truncback.experiments.task_interaction.run import EarlyStopped
from truncback.experiments.task_interaction.settings import TaskInteractionSettings
from truncback.hypergrad import hypergradient
from truncback.hypergrad.batched import MEMBERWISE, member, stack
from truncback.runtime.batched import hyper_optimise_batched
from truncback.runtime.harness import RunInterrupted, hyper_optimise

CLASSES, DIM, T = 4, 8, 10
RELATIVE = 1e-10


def member_data(seed: int):
    """A small task-interaction problem's data in float64: its own random features for each seed."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(CLASSES), 12)
    features = rng.normal(size=(len(labels), DIM)) + labels[:, None] * 0.3
    return make_task_data(features, labels, features[::3], labels[::3], 5, 5, seed, dtype=torch.float64)


FAMILY = task_family(CLASSES, T, 0.2)
"""At these sizes (20 training examples, 8 features) the explicit batch is in the weights form."""
FAMILIES = {"weights": FAMILY, "kernel": task_family(CLASSES, T, 0.2, batch_form="kernel")}


def member_problem(seed: int, family=FAMILY):
    return family.problem(task_data(member_data(seed)))


def start(seed: int):
    A, rho = initial_hparams(CLASSES, 0.01 * (seed + 1), 0.02, torch.float64)
    return A.detach(), rho.detach()


def close(a, b, path="") -> None:
    """a and b equal: numbers within RELATIVE of each other, everything else exactly."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.allclose(a, b, rtol=RELATIVE, atol=0), (path, (a - b).abs().max())
    elif isinstance(a, float) and not isinstance(b, bool):
        assert math.isclose(a, b, rel_tol=RELATIVE, abs_tol=1e-300), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize(
    "spec",
    [{"name": name} for name in ("rmd", "checkpointed", "unrolled", "fom")]
    + [{"name": "krmd", "K": 3}, {"name": "aid_fp", "K": 4}],
)
@pytest.mark.parametrize(
    "form, explicit", [("weights", True), ("kernel", True), ("weights", False)], ids=["explicit", "kernel", "vmap"]
)
def test_each_row_of_a_batched_hypergradient_is_its_members(spec, form, explicit):
    """By the family's explicitly batched tensors (task_interaction.batched) in either form, and by
    vmap."""
    assert spec["name"] in MEMBERWISE
    family = FAMILIES[form]
    problems = [member_problem(seed, family) for seed in range(3)]
    lams = [start(seed) for seed in range(3)]
    batched_problem = family.batched(problems, explicit)
    batched, info = hypergradient(batched_problem, stack(lams), spec, return_info=True)
    for b, (problem, lam) in enumerate(zip(problems, lams)):
        alone, alone_info = hypergradient(problem, lam, spec, return_info=True)
        close(alone, member(batched, b))
        close(alone_info.final_state, member(batched_problem.member_states(info.final_state), b))


def test_methods_that_mix_the_members_are_refused():
    problems = [member_problem(seed) for seed in range(2)]
    settings = TaskInteractionSettings(T=T, max_hyper_iterations=2)
    for spec in ({"name": "aid_cg", "K": 3}, {"name": "ufom", "q": 0.5}):
        with pytest.raises(ValueError, match="does not compute batched members apart"):
            hyper_optimise_batched(
                [EarlyStopped(problem, settings, "cpu") for problem in problems],
                [start(0), start(1)],
                spec,
                [settings.loop()] * 2,
                log=lambda line: None,
            )


# member 0 stops early (its patience is short and it must improve by a lot); members 0 and 1 compare
# with the exact hypergradient every 3 hyper-iterations, member 2 never
SETTINGS = [
    TaskInteractionSettings(T=T, lr=0.2, hyper_lr=0.05, max_hyper_iterations=14, patience=2, min_delta=0.05),
    TaskInteractionSettings(T=T, lr=0.2, hyper_lr=0.05, max_hyper_iterations=14, patience=14),
    TaskInteractionSettings(T=T, lr=0.2, hyper_lr=0.05, max_hyper_iterations=14, patience=14),
]
LOOPS = [
    dataclasses.replace(settings.loop(), exact_every=3 if b < 2 else None, checkpoint_every=4, log_every=5)
    for b, settings in enumerate(SETTINGS)
]


def objectives(family=FAMILY):
    return [EarlyStopped(member_problem(seed, family), SETTINGS[seed], "cpu") for seed in range(3)]


def batched_runs(spec, family=FAMILY, **options):
    members = objectives(family)
    runs = hyper_optimise_batched(
        members, [start(seed) for seed in range(3)], spec, LOOPS, log=lambda line: None, **options
    )
    return runs, members


@pytest.mark.parametrize("form", sorted(FAMILIES))
@pytest.mark.parametrize("spec", [{"name": "krmd", "K": 2}, {"name": "rmd"}])
def test_each_member_of_a_batched_run_is_its_run_alone(spec, form):
    """Including the exact comparisons, which the batch makes for the members comparing at that
    hyper-iteration only (here two members, then one once the other has stopped)."""
    runs, members = batched_runs(spec, FAMILIES[form])
    assert runs[0].record.iterations_run < LOOPS[0].iterations  # stopped early, frozen in the batch
    assert runs[1].record.iterations_run == LOOPS[1].iterations
    assert runs[2].record.exact["iteration"] == [] and runs[0].record.exact["iteration"]
    for seed, (run, objective) in enumerate(zip(runs, members)):
        alone_objective = objectives()[seed]
        alone = hyper_optimise(alone_objective, start(seed), spec, LOOPS[seed], log=lambda line: None)
        record, alone_record = dataclasses.asdict(run.record), dataclasses.asdict(alone.record)
        for held in (record, alone_record):
            held.pop("hypergradient_peak_mib")  # the batch's share of its peak, not the run's own
            # the size of the state the batch holds (with its logits; Q, V x n, in the kernel form)
            held.pop("state_mib")
        close(record, alone_record)
        close(run.hparams, alone.hparams)
        assert objective.best["iteration"] == alone_objective.best["iteration"]
        close(objective.best["hparams"], alone_objective.best["hparams"])
        assert (run.label, run.display, run.exact_method) == (alone.label, alone.display, alone.exact_method)


def test_a_stopped_member_is_no_longer_computed(monkeypatch):
    """The batch of each hyper-iteration stacks the running members only: once member 0 has stopped,
    the hypergradients are of the two others (counted by the members of each batched call)."""
    from truncback.runtime import batched

    sizes: list[int] = []
    original = batched.batched_hypergradient

    def counting(problem, lam, spec):
        sizes.append(tree_leaves(lam)[0].shape[0])
        return original(problem, lam, spec)

    monkeypatch.setattr(batched, "batched_hypergradient", counting)
    runs, _ = batched_runs({"name": "krmd", "K": 2})
    stopped = runs[0].record.iterations_run
    assert 0 < stopped < LOOPS[0].iterations
    assert sizes == [3] * stopped + [2] * (LOOPS[1].iterations - stopped)


def test_a_batched_run_resumes_from_its_checkpoint(tmp_path):
    """Interrupted after 8 hyper-iterations (member 0 stopped by then) and rerun, the batch ends with
    the records and hyperparameters of an uninterrupted batch, bit for bit."""
    spec, checkpoint = {"name": "krmd", "K": 2}, tmp_path / "batch.ckpt"
    whole, _ = batched_runs(spec)
    with pytest.raises(RunInterrupted):
        batched_runs(spec, checkpoint=checkpoint, stop_after=8)
    assert checkpoint.is_file()
    lines: list[str] = []
    members = objectives()
    resumed = hyper_optimise_batched(
        members, [start(seed) for seed in range(3)], spec, LOOPS, log=lines.append, checkpoint=checkpoint
    )
    assert any("resuming after 8" in line for line in lines)
    assert whole[0].record.iterations_run <= 8  # the checkpoint held a stopped member
    for run, again in zip(whole, resumed):
        record, again_record = dataclasses.asdict(run.record), dataclasses.asdict(again.record)
        # the profiler's peak is a measurement, like the timings: the profiler's events may order
        # allocations at the same nanosecond differently from one run to the next
        assert record.pop("hypergradient_peak_mib") > 0 and again_record.pop("hypergradient_peak_mib") > 0
        assert record == again_record
        assert all(torch.equal(a, b) for a, b in zip(run.hparams, again.hparams))
    assert members[0].best["iteration"] == whole[0].record.iterations_run - 1 - SETTINGS[0].patience


def test_the_harnesses_compute_no_alpha_norm(monkeypatch):
    """No record reads ||alpha_t||, so neither harness asks the engine for them (a norm a reverse step
    is a few percent of full RMD's time at task interaction's sizes): ``norm_tensor``, which computes
    them, is never called in a whole run, batched or alone, exact comparisons included."""

    def refuse(tree):
        raise AssertionError("an alpha norm was computed")

    monkeypatch.setattr("truncback.hypergrad.trees.norm_tensor", refuse)
    spec = {"name": "rmd"}
    batched_runs(spec)
    hyper_optimise(objectives()[1], start(1), spec, LOOPS[1], log=lambda line: None)
