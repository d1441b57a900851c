"""B independent hyper-optimisations of one problem family run as one batched computation.

Member b is what :func:`truncback.runtime.harness.hyper_optimise` would run for its objective, its
starting hyperparameters and its loop settings: its own lambda, optimiser state, early stopping, exact
comparisons, record and health. Hyper-iteration i computes every member's hypergradient at once on the
members' problems stacked (``hypergrad.batched``: row b of d_lam F is member b's d_lam_b f_b), and
then, member by member, the steps 3-7 of the harness (the record, the lower level's health, early
stopping, the step, the evaluation). A member that stops is frozen, not dropped: its lambda stays
where it stopped and its results are kept, but nothing more is computed, recorded or stepped for it.
Each hyper-iteration stacks the members still running only, so a job whose members stop early costs
the sum of its members' iterations, not its longest member's times their number. The run ends when
every member has stopped or run its iterations.

Each member's numbers are those of its run alone up to floating-point rounding (the batched products
sum in another order), which the tests bound in float64. Its timing is its share of the batch's: the
seconds of each batched call (the hypergradient, the exact comparison) are divided among the members
it served that were still running, so the members' seconds add up to the job's. The exact
hypergradient is computed for the members that compare at that hyper-iteration only, batched apart. The first batched
hypergradient is profiled for peak memory, each member recording an equal share of it.

One checkpoint holds every member (the harness's contents for each, and whether it stopped), so a
rerun after an interruption resumes the whole batch from the last checkpoint.
"""

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._pytree import tree_leaves, tree_map

from truncback.hypergrad import hypergradient, is_exact, trees
from truncback.hypergrad.batched import BatchedProblem, check_memberwise, member, stack
from truncback.hypergrad.methods import display_name, label
from truncback.runtime.checkpoint import load_checkpoint, save_checkpoint
from truncback.runtime.harness import (
    EXACT_SPEC,
    HYPER_OPTIMIZERS,
    HyperRun,
    LoopSettings,
    Objective,
    RunInterrupted,
    RunRecord,
    Timing,
    compares_exactly,
    judge_health,
    leaf_copies,
    record_exact,
    record_iteration,
    record_lower_pairs,
    remaining,
    take_step,
    timed_evaluation,
)
from truncback.runtime.measure import peak_memory_mib, states_mib, timed


@dataclass
class Member:
    """One member of a batch: its objective, loop settings and title, its hyperparameters (leaves that
    require grad) and optimiser, what it recorded, and whether it has stopped."""

    objective: Objective
    loop: LoopSettings
    title: str
    hparams: Any
    optimizer: Any
    record: RunRecord = field(default_factory=RunRecord)
    timing: Timing = field(default_factory=Timing)
    stopped: bool = False

    def state_dict(self) -> dict:
        return {
            "hparams": tree_map(torch.detach, self.hparams),
            "optimizer": self.optimizer.state_dict(),
            "record": dataclasses.asdict(self.record),
            "timing": dataclasses.asdict(self.timing),
            "objective": self.objective.state_dict(),
            "stopped": self.stopped,
        }

    def load_state_dict(self, saved: dict) -> None:
        device = tree_leaves(self.hparams)[0].device
        for leaf, value in zip(tree_leaves(self.hparams), tree_leaves(saved["hparams"])):
            with torch.no_grad():
                leaf.copy_(value.to(device))
        self.optimizer.load_state_dict(saved["optimizer"])
        self.record, self.timing = RunRecord(**saved["record"]), Timing(**saved["timing"])
        self.objective.load_state_dict(saved["objective"])
        self.stopped = saved["stopped"]


def check_loops(loops: list) -> LoopSettings:
    """The loop settings the batch shares (the first member's); a ValueError unless the members' differ
    in ``exact_every`` at most (each member compares with the exact hypergradient on its own schedule)."""
    shared = [dataclasses.replace(loop, exact_every=None) for loop in loops]
    if any(loop != shared[0] for loop in shared):
        raise ValueError("the members of a batch share their loop settings but exact_every; got " + repr(loops))
    return loops[0]


class Batch:
    """The members' problems of one hyper-iteration stacked, reused while the members' objectives
    return the same problem objects (a fixed problem per member is stacked once)."""

    def __init__(self) -> None:
        self.problems: list = []
        self.batched: BatchedProblem | None = None

    def __call__(self, problems: list) -> BatchedProblem:
        if (
            self.batched is not None
            and len(problems) == len(self.problems)
            and all(new is old for new, old in zip(problems, self.problems))
        ):
            return self.batched
        batched: BatchedProblem = problems[0].family.batched(problems)
        self.problems, self.batched = problems, batched
        return batched


def member_problems(objectives: list, iteration: int) -> list:
    """Each objective's one problem of hyper-iteration ``iteration``; a ValueError for an objective
    with several (a meta-batch, whose mean a batch does not form)."""
    problems = []
    for b, objective in enumerate(objectives):
        drawn = objective.problems(iteration)
        if len(drawn) != 1:
            raise ValueError(f"member {b}: a batched member has one problem per hyper-iteration, got {len(drawn)}")
        problems.append(drawn[0])
    return problems


def batched_hypergradient(problem: BatchedProblem, lam, spec):
    """(stacked hypergradient, each member's f(w_T, lam), HypergradInfo without alpha norms, which would
    be the whole batch's) of ``problem`` at ``lam``."""
    h, info = hypergradient(problem, lam, spec, return_info=True, alpha_norms=False)
    return h, problem.member_outer(info.final_state, lam).tolist(), info


def exact_rows(batch: Batch, problems: list, lams: list, comparing: list) -> dict:
    """The exact d_lam f of the members ``comparing`` (indices into ``problems`` and ``lams``), by row:
    computed on a batch of those members only (most hyper-iterations compare one member or none, and
    the exact hypergradient is full RMD, the dearest method)."""
    exact = hypergradient(batch([problems[b] for b in comparing]), stack([lams[b] for b in comparing]), EXACT_SPEC)
    return {b: member(exact, i) for i, b in enumerate(comparing)}


def hyper_optimise_batched(
    objectives: list,
    hparams: list,
    spec,
    loops: list,
    *,
    log,
    checkpoint=None,
    fingerprint: dict | None = None,
    stop_after: int | None = None,
    titles: list | None = None,
) -> list:
    """Runs ``objectives`` (one problem of one ``hypergrad.batched.ProblemFamily`` per hyper-iteration
    each), from ``hparams`` (one tree per member, not modified) with the memberwise method ``spec`` and
    ``loops`` (one per member, differing in exact_every at most), as the module docstring says.
    ``checkpoint``, ``fingerprint`` and ``stop_after`` as for ``hyper_optimise``; ``titles`` name the
    members in the log. Returns one ``HyperRun`` per member."""
    spec = check_memberwise(spec)
    if not objectives or not len(objectives) == len(hparams) == len(loops):
        raise ValueError(
            f"a batch needs as many starting hparams and loops as objectives (at least one), got "
            f"{len(objectives)}, {len(hparams)}, {len(loops)}"
        )
    loop = check_loops(loops)
    titles = titles or [f"member {b}" for b in range(len(objectives))]
    batch, comparison_batch = Batch(), Batch()
    T = batch(member_problems(objectives, 0)).T
    name, shown, exact_method = label(spec), display_name(spec, T), is_exact(spec, T)
    members = []
    for objective, start_hparams, member_loop, title in zip(objectives, hparams, loops, titles):
        copies = leaf_copies(start_hparams)
        optimizer = HYPER_OPTIMIZERS[loop.hyper_optimizer](tree_leaves(copies), lr=loop.hyper_lr)
        members.append(Member(objective, member_loop, title, copies, optimizer))
    fingerprint = {
        **(fingerprint or {}),
        "method": dict(spec),
        "loops": [dataclasses.asdict(member_loop) for member_loop in loops],
        "members": len(members),
    }
    saved = load_checkpoint(checkpoint, fingerprint, log) if checkpoint else None
    start = 0
    if saved is not None:
        for one, state in zip(members, saved["members"]):
            one.load_state_dict(state)
        start = saved["done"]
    log(
        f"{len(members)} runs batched: method {name} ({shown}), {loop.iterations} hyper-iterations"
        + (f", resuming after {start}" if start else "")
    )
    for one in members:
        log(f"  {one.title}" + (" (stopped)" if one.stopped else ""))
    startup = time.perf_counter()
    first = batch(member_problems(objectives, 0))
    hypergradient(
        dataclasses.replace(first, T=min(T, 1)),
        stack([tree_map(torch.detach, one.hparams) for one in members]),
        {"name": "krmd", "K": min(T, 1)},
    )
    startup_seconds = time.perf_counter() - startup
    log(
        f"start-up call {startup_seconds:.1f} s (one-off: torch.func's first call and, on the compiled fast path, the compilation)"
    )
    for one in members:
        one.timing.startup_seconds = startup_seconds / len(members)
        if start == 0:
            timed_evaluation(one.objective, 0, one.hparams, log, one.timing)
    loop_start = time.perf_counter()
    for iteration in range(start, loop.iterations):
        active = [one for one in members if not one.stopped]
        if not active:
            break
        iteration_start, excluded = time.perf_counter(), 0.0
        profiled = active[0].record.hypergradient_peak_mib is None
        lams = [tree_map(lambda leaf: leaf.detach().clone(), one.hparams) for one in active]
        problems = member_problems([one.objective for one in active], iteration)
        problem, lam = batch(problems), stack(lams)
        if profiled:
            (h, losses, info), peak = peak_memory_mib(batched_hypergradient, problem, lam, spec)
            for one in active:
                one.record.hypergradient_peak_mib = peak / len(active)
        else:
            cpu_start = time.process_time()
            (h, losses, info), seconds = timed(batched_hypergradient, problem, lam, spec)
            cpu_seconds = time.process_time() - cpu_start
            for one in active:
                one.timing.seconds += seconds / len(active)
                one.timing.cpu_seconds += cpu_seconds / len(active)
                one.timing.timed_iterations += 1
        rows, comparing, stopping = {}, [], set()
        lower = problem.member_lower_objectives(lam, info.final_state)
        for b, one in enumerate(active):
            rows[b] = h_b = member(h, b)
            record = one.record
            record.states_held = info.states_held
            record.state_mib = states_mib(info.states_held, member(info.final_state, b))
            norm = trees.norm(h_b)
            if not math.isfinite(norm):
                raise FloatingPointError(
                    f"{one.title}: {name}: non-finite hypergradient at hyper-iteration {iteration} (outer loss "
                    f"{losses[b]}); the lower level diverged - lower its step size or the hyper-learning rate"
                )
            record_iteration(record, one.objective, one.loop, iteration, lams[b], losses[b], norm)
            record_lower_pairs(record, [lower[b]])
            if one.objective.should_stop(iteration, losses[b], lams[b]):
                stopping.add(b)
            last = b in stopping or iteration == loop.iterations - 1
            if compares_exactly(iteration, last, one.loop.exact_every):
                comparing.append(b)
        if comparing:
            exact_start = time.perf_counter()
            exact = (
                {b: rows[b] for b in comparing}
                if exact_method
                else exact_rows(comparison_batch, problems, lams, comparing)
            )
            for b in comparing:
                record_exact(active[b].record, iteration, rows[b], exact[b])
            exact_seconds = time.perf_counter() - exact_start
            excluded += exact_seconds
            for b in comparing:
                active[b].timing.exact_seconds += exact_seconds / len(comparing)
                active[b].timing.exact_comparisons += 1
        done = iteration + 1
        for b, h_b in rows.items():
            one = active[b]
            one.record.iterations_run = done
            if b in stopping:
                one.stopped = True
                continue
            norm = one.record.train["hypergradient_norm"][-1]
            take_step(one.objective, one.optimizer, one.hparams, h_b, norm, loop.clip_norm, one.record)
            if done % loop.log_every == 0 or done == loop.iterations:
                seconds = one.timing.per_iteration()["seconds_per_iteration"]
                log(
                    f"  {one.title} iter {done:6d}/{loop.iterations}  f {losses[b]:.4f}  |h| {norm:.3e}"
                    + (f"  {seconds:.3f} s/iter" if seconds else "")
                    + remaining(time.perf_counter() - loop_start, done - start, loop.iterations - done)
                )
            evaluated = one.timing.evaluation_seconds
            timed_evaluation(one.objective, done, one.hparams, log, one.timing)
            excluded += one.timing.evaluation_seconds - evaluated
        running = [one for one in members if not one.stopped]
        if (
            checkpoint
            and running
            and loop.checkpoint_every
            and done % loop.checkpoint_every == 0
            and done < loop.iterations
        ):
            save_checkpoint(checkpoint, fingerprint, {"done": done, "members": [one.state_dict() for one in members]})
        if not profiled:
            share = (time.perf_counter() - iteration_start - excluded) / len(active)
            for one in active:
                one.timing.iteration_seconds += share
        if running and stop_after is not None and done == stop_after and done < loop.iterations:
            raise RunInterrupted(f"stopped after {done} hyper-iterations (--stop-after)")
    runs = []
    for one in members:
        judge_health(one.record, log, one.title + ":")
        runs.append(
            HyperRun(
                method=dict(spec),
                label=name,
                display=shown,
                exact_method=exact_method,
                record=one.record,
                timing=one.timing,
                hparams=tree_map(torch.detach, one.hparams),
            )
        )
    return runs
