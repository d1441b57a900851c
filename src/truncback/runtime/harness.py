"""The hyper-optimisation harness: the loop that hypercleaning, task interaction and Omniglot share.

Hyper-iteration i (i = 0, 1, ...):

1. lam_i, a copy of the hyperparameters; the experiment's ``problems(i)`` (one bilevel problem, or
   the tasks of a meta-batch);
2. h_i, the mean over those problems of the hypergradient by the method spec (eq. 6, 8, 11 or FOM),
   its outer loss f and the states the method held; the first hyper-iteration is profiled for peak
   memory, the others are timed (wall and CPU seconds);
3. a non-finite h_i stops the run with an error naming the hyper-iteration;
4. every ``exact_every`` hyper-iterations (and at the last) the exact d_lam f (full RMD; h_i itself
   for an exact method) gives ||d_lam f||, cos(h_i, d_lam f) and ||h_i - d_lam f|| / ||d_lam f||;
5. the lower level's health: g(w_0, lam_i) and g(w_T, lam_i) of each problem (did the inner loop
   descend or blow up), the factor by which clipping scales h_i, and every ``log_every`` the values
   the experiment tracks (``tracked``: learnt step sizes, regularisers);
6. unless the experiment's ``should_stop`` says so (early stopping, before the step), one step of
   the hyper-optimiser (Adam or SGD, from ``HYPER_OPTIMIZERS``) along h_i, scaled down to
   ``clip_norm`` when longer, then the experiment's ``project`` (e.g. clipping at 0);
7. the experiment's ``evaluate`` (curves, milestones), a progress line every ``log_every``, and every
   ``checkpoint_every`` hyper-iterations an atomic checkpoint.

At the end the record gets the run's health (``runtime.health``): STABLE, or UNSTABLE with its reasons,
and the figures behind it; the log's last line says it.

A rerun after an interruption (even SIGKILL) resumes from the last checkpoint and ends with the same
bytes as an uninterrupted run: the checkpoint holds lam, the optimiser's state, the record, the
experiment's own state and the random generator's state (UFOM draws from it), and the experiment
draws its tasks from generators seeded by the hyper-iteration, never from a global stream.
"""

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._pytree import tree_leaves, tree_map

from truncback.hypergrad import hypergradient, is_exact, trees
from truncback.hypergrad.methods import display_name, label
from truncback.runtime.checkpoint import load_checkpoint, save_checkpoint
from truncback.runtime.health import describe, diverged, lower_objectives, run_health
from truncback.runtime.measure import peak_memory_mib, states_mib, timed

HYPER_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
EXACT_SPEC = {"name": "rmd"}


@dataclass(frozen=True)
class LoopSettings:
    """How the harness runs: ``iterations`` hyper-iterations of ``hyper_optimizer`` with ``hyper_lr``;
    hypergradients longer than ``clip_norm`` scaled down to it (None: never); the exact gradient
    every ``exact_every`` hyper-iterations (None: never); a progress line every ``log_every``; a
    checkpoint every ``checkpoint_every`` (None: never)."""

    iterations: int
    hyper_lr: float
    hyper_optimizer: str = "adam"
    clip_norm: float | None = None
    exact_every: int | None = None
    log_every: int = 10
    checkpoint_every: int | None = None

    def __post_init__(self):
        if self.hyper_optimizer not in HYPER_OPTIMIZERS:
            raise ValueError(f"hyper_optimizer={self.hyper_optimizer!r}; choose one of {sorted(HYPER_OPTIMIZERS)}")
        for name in ("iterations", "log_every", "exact_every", "checkpoint_every"):
            value = getattr(self, name)
            optional = name in ("exact_every", "checkpoint_every")
            if not (optional and value is None) and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int{' or None' if optional else ''}, got {name}={value!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None (no clipping), got clip_norm={self.clip_norm!r}")


class Objective:
    """What an experiment gives the harness. ``problems`` is required; the rest default to nothing."""

    def problems(self, iteration: int) -> list:
        """The bilevel problems of hyper-iteration ``iteration`` (the hypergradient is their mean);
        deterministic in ``iteration``, so a resumed run draws the same ones."""
        raise NotImplementedError

    def project(self, hparams) -> None:
        """Called after each optimiser step on the (leaf) hyperparameters, in place."""

    def should_stop(self, iteration: int, outer_loss: float, lam) -> bool:
        """Whether to stop at this hyper-iteration, before its step (early stopping)."""
        return False

    def evaluate(self, done: int, hparams, log) -> int:
        """Called with the hyperparameters after ``done`` steps (also done = 0, before the first);
        returns the number of tasks it evaluated (for the run-time estimate; 0: none)."""
        return 0

    def tracked(self, hparams) -> dict:
        """Named numbers of the hyperparameters to record over the run (learnt step sizes, regularisers)."""
        return {}

    def state_dict(self) -> dict:
        """The experiment's own state that a checkpoint must keep (tensors, numbers, lists, dicts)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restores what ``state_dict`` returned."""


@dataclass
class RunRecord:
    """What a hyper-optimisation recorded; every field is deterministic (the same bytes on a rerun).

    train: per hyper-iteration the outer loss f(w_T, lam), ||h||, the factor clipping scales h by (1:
    none) and the mean over its problems of the lower objective at the start and the end, g(w_0, lam)
    and g(w_T, lam) (empty where the step does not expose g); exact: every exact_every hyper-iterations
    ||d_lam f||, ||h||, cos(h, d_lam f) and ||h - d_lam f|| / ||d_lam f||; tracked: every log_every
    hyper-iterations the experiment's tracked values; the peak MiB of the first hypergradient's
    tensors; the lower-level states the method held and their MiB; how many steps were clipped; how
    many problems' lower levels diverged (g(w_T) > g(w_0) or not finite); at the end, the run's health
    (``runtime.health.run_health``)."""

    iterations_run: int = 0
    train: dict = field(
        default_factory=lambda: {
            "iteration": [],
            "outer_loss": [],
            "hypergradient_norm": [],
            "clip_scale": [],
            "lower_start": [],
            "lower_end": [],
        }
    )
    exact: dict = field(
        default_factory=lambda: {
            "iteration": [],
            "grad_norm": [],
            "estimate_norm": [],
            "cosine": [],
            "relative_error": [],
        }
    )
    tracked: dict = field(default_factory=lambda: {"iteration": []})
    hypergradient_peak_mib: float | None = None
    states_held: int = 0
    state_mib: float = 0.0
    clipped_steps: int = 0
    lower_divergences: int = 0
    health: dict = field(default_factory=dict)


@dataclass
class Timing:
    """Wall-clock seconds of a run, the one part of it that differs between two runs (so it is written
    to a file of its own): the timed hypergradients (all but the profiled first one; wall and CPU),
    the whole of those hyper-iterations but their exact comparisons and evaluations (drawing the
    problems, the step, the checkpoints), the exact comparisons and the evaluations with the number
    of tasks these evaluated, and the one-off start-up call of the last process that ran the loop
    (torch.func's first call and, on the compiled fast path, the compilation). The full-run estimates
    of the rehearsal multiply these by the paper's counts (docs/reproducing.md)."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    timed_iterations: int = 0
    iteration_seconds: float = 0.0
    exact_seconds: float = 0.0
    exact_comparisons: int = 0
    evaluation_seconds: float = 0.0
    evaluated_tasks: int = 0
    startup_seconds: float = 0.0

    def per_iteration(self) -> dict:
        count = self.timed_iterations
        return {
            "seconds_per_iteration": self.seconds / count if count else None,
            "cpu_seconds_per_iteration": self.cpu_seconds / count if count else None,
            "timed_iterations": count,
            "iteration_seconds": self.iteration_seconds,
            "exact_seconds": self.exact_seconds,
            "exact_comparisons": self.exact_comparisons,
            "evaluation_seconds": self.evaluation_seconds,
            "evaluated_tasks": self.evaluated_tasks,
            "startup_seconds": self.startup_seconds,
        }


@dataclass
class HyperRun:
    """The outcome of :func:`hyper_optimise`: the method, what was recorded, the timing and the final
    hyperparameters (detached)."""

    method: dict
    label: str
    display: str
    exact_method: bool
    record: RunRecord
    timing: Timing
    hparams: Any  # the hyperparameter tree


class RunInterrupted(Exception):
    """Raised after ``stop_after`` hyper-iterations (as a kill would, for testing resumption)."""


def clip_scale(norm: float, clip_norm: float | None) -> float:
    """The factor by which clipping at ``clip_norm`` (None: never) scales a hypergradient of ``norm``."""
    return clip_norm / norm if clip_norm is not None and norm > clip_norm else 1.0


def clipped(h, clip_norm, norm: float | None = None):
    """h scaled down to norm ``clip_norm`` when it is longer (None: h unchanged); ``norm`` is ||h|| when
    the caller has it already."""
    scale = clip_scale(trees.norm(h) if norm is None else norm, clip_norm)
    return trees.scale(scale, h) if scale != 1.0 else h


def mean_hypergradient(problems, lam, spec, generator):
    """(mean over ``problems`` of the hypergradients by ``spec``, mean outer loss, states held, each w_T)."""
    total, losses, states_held, final_states = None, [], 0, []
    for problem in problems:
        h, info = hypergradient(problem, lam, spec, return_info=True, alpha_norms=False, generator=generator)
        total = h if total is None else trees.add(total, h)
        losses.append(info.outer_loss)
        states_held = max(states_held, info.states_held)
        final_states.append(info.final_state)
    if len(problems) > 1:
        total = trees.scale(1.0 / len(problems), total)
    return total, sum(losses) / len(losses), states_held, final_states


def record_lower_level(record: RunRecord, problems, lam, final_states) -> None:
    """Appends the mean g(w_0, lam) and g(w_T, lam) of ``problems`` to ``record`` and counts the lower
    levels that diverged (nothing where the problems' steps do not expose g)."""
    found = (lower_objectives(problem, lam, final) for problem, final in zip(problems, final_states))
    record_lower_pairs(record, [pair for pair in found if pair is not None])


def record_lower_pairs(record: RunRecord, pairs: list) -> None:
    """Appends the mean of the (g(w_0, lam), g(w_T, lam)) ``pairs`` (one per problem) to ``record`` and
    counts the lower levels that diverged (nothing where there are none)."""
    if pairs:
        record.train["lower_start"].append(sum(start for start, _ in pairs) / len(pairs))
        record.train["lower_end"].append(sum(end for _, end in pairs) / len(pairs))
        record.lower_divergences += sum(diverged(start, end) for start, end in pairs)


def compares_exactly(iteration: int, last: bool, exact_every: int | None) -> bool:
    """Whether hyper-iteration ``iteration`` compares h with the exact d_lam f: every ``exact_every``
    (None: never) and at the last."""
    if not exact_every:
        return False
    return iteration % exact_every == 0 or last


def exact_comparisons(iterations: int, exact_every: int | None) -> int:
    """How many exact comparisons a run of ``iterations`` hyper-iterations (not stopped early) makes."""
    return sum(compares_exactly(i, i == iterations - 1, exact_every) for i in range(iterations))


def exact_comparison(h, exact) -> dict:
    """||d f||, ||h||, cos(h, d f) and ||h - d f|| / ||d f|| (0 and 1 where ||d f|| = 0)."""
    norm = trees.norm(exact)
    return {
        "grad_norm": norm,
        "estimate_norm": trees.norm(h),
        "cosine": float(trees.dot(h, exact)) / max(norm * trees.norm(h), 1e-300),
        "relative_error": trees.norm(trees.sub(h, exact)) / max(norm, 1e-300),
    }


def record_iteration(record: RunRecord, objective: Objective, loop: LoopSettings, iteration: int, lam, loss, norm):
    """Appends hyper-iteration ``iteration``'s outer loss, ||h|| and clip factor to ``record``, and every
    ``loop.log_every`` (and at the last) the objective's tracked values at ``lam``."""
    record.train["iteration"].append(iteration)
    record.train["outer_loss"].append(loss)
    record.train["hypergradient_norm"].append(norm)
    record.train["clip_scale"].append(clip_scale(norm, loop.clip_norm))
    if iteration % loop.log_every == 0 or iteration == loop.iterations - 1:
        record.tracked["iteration"].append(iteration)
        for key, value in objective.tracked(lam).items():
            record.tracked.setdefault(key, []).append(value)


def record_exact(record: RunRecord, iteration: int, h, exact) -> None:
    """Appends the comparison of h with the exact d_lam f at hyper-iteration ``iteration`` to ``record``."""
    record.exact["iteration"].append(iteration)
    for key, value in exact_comparison(h, exact).items():
        record.exact[key].append(value)


def take_step(objective: Objective, optimizer, hparams, h, norm: float, clip_norm, record: RunRecord) -> None:
    """One step of ``optimizer`` on the leaves of ``hparams`` along h (of norm ``norm``), scaled down to
    ``clip_norm`` when longer (counted in ``record.clipped_steps``), then the objective's ``project``."""
    step = clipped(h, clip_norm, norm)
    record.clipped_steps += step is not h
    optimizer.zero_grad()
    for leaf, gradient in zip(tree_leaves(hparams), tree_leaves(step)):
        leaf.grad = gradient
    optimizer.step()
    objective.project(hparams)


def judge_health(record: RunRecord, log, title: str = "") -> None:
    """Sets ``record.health`` (``runtime.health.run_health``) from what it recorded and logs it."""
    record.health = run_health(
        record.exact["grad_norm"],
        record.train["clip_scale"],
        record.clipped_steps,
        record.iterations_run,
        {
            "start": record.train["lower_start"],
            "end": record.train["lower_end"],
            "divergences": record.lower_divergences,
        },
    )
    log(f"{title}{' ' if title else ''}run health: {describe(record.health)}")


def leaf_copies(hparams):
    """The hyperparameters' leaves copied, detached, as leaves that require grad (what the optimiser steps)."""
    return tree_map(lambda leaf: leaf.detach().clone().requires_grad_(True), hparams)


def timed_evaluation(objective: Objective, done: int, hparams, log, timing: Timing) -> None:
    """Calls the objective's evaluate, adding its seconds and tasks to ``timing``."""
    start = time.perf_counter()
    tasks = objective.evaluate(done, hparams, log) or 0
    timing.evaluation_seconds += time.perf_counter() - start
    timing.evaluated_tasks += tasks


def remaining(elapsed: float, done: int, left: int) -> str:
    """ "  ETA 1h02m": the time ``left`` more hyper-iterations take at the pace of the ``done`` ones run in
    ``elapsed`` seconds by this process (evaluations and exact comparisons included); "" when none is left."""
    if not left or not done:
        return ""
    minutes = round(elapsed / done * left / 60)
    return f"  ETA {minutes // 60}h{minutes % 60:02d}m"


def _add_iteration_time(timing: Timing, start: float, excluded_before: float) -> None:
    """Adds to ``timing`` the wall seconds since ``start`` but those its exact comparisons and
    evaluations took (their totals grew from ``excluded_before``)."""
    excluded = timing.exact_seconds + timing.evaluation_seconds - excluded_before
    timing.iteration_seconds += time.perf_counter() - start - excluded


@dataclass
class _Run:
    """What a run carries from one hyper-iteration to the next, and what its checkpoint keeps: the
    hyperparameters (leaves the optimiser steps), the optimiser, the random generator (UFOM draws from
    it), the record, the timing, and ``start``, the hyper-iterations done before this process."""

    hparams: Any
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    record: RunRecord
    timing: Timing
    start: int = 0


def _new_run(hparams, loop: LoopSettings, generator_seed: int) -> _Run:
    """A run at hyper-iteration 0: copies of ``hparams``, a fresh optimiser and a seeded generator."""
    hparams = leaf_copies(hparams)
    optimizer = HYPER_OPTIMIZERS[loop.hyper_optimizer](tree_leaves(hparams), lr=loop.hyper_lr)
    return _Run(hparams, optimizer, torch.Generator().manual_seed(generator_seed), RunRecord(), Timing())


def _run_fingerprint(fingerprint: dict | None, spec, loop: LoopSettings, generator_seed: int) -> dict:
    """What a checkpoint must match to be resumed: the caller's ``fingerprint``, the method, the loop
    settings and the generator's seed."""
    return {
        **(fingerprint or {}),
        "method": dict(spec),
        "loop": dataclasses.asdict(loop),
        "generator_seed": generator_seed,
    }


def _resume(run: _Run, objective: Objective, checkpoint, fingerprint: dict, log) -> None:
    """Loads into ``run`` (and the objective's own state) the checkpoint at ``checkpoint`` (a path, or
    None: none) when one made with ``fingerprint`` is there; else leaves the run as it is."""
    saved = load_checkpoint(checkpoint, fingerprint, log) if checkpoint else None
    if saved is None:
        return
    device = tree_leaves(run.hparams)[0].device
    for leaf, value in zip(tree_leaves(run.hparams), tree_leaves(saved["hparams"])):
        with torch.no_grad():
            leaf.copy_(value.to(device))
    run.optimizer.load_state_dict(saved["optimizer"])
    run.generator.set_state(saved["generator"])
    run.record, run.timing, run.start = RunRecord(**saved["record"]), Timing(**saved["timing"]), saved["done"]
    objective.load_state_dict(saved["objective"])


def _start_up(first_problem, hparams, timing: Timing, log) -> None:
    """The one-off library start-up (torch.func, allocator, compilation): one 1-RMD call on one step
    of ``first_problem``, kept out of the profiled and timed calls; its seconds go to ``timing``."""
    T = first_problem.T
    startup = time.perf_counter()
    mean_hypergradient(
        [dataclasses.replace(first_problem, T=min(T, 1))],
        tree_map(torch.detach, hparams),
        {"name": "krmd", "K": min(T, 1)},
        None,
    )
    timing.startup_seconds = time.perf_counter() - startup
    log(
        f"start-up call {timing.startup_seconds:.1f} s (one-off: torch.func's first call and, on the compiled "
        "fast path, the compilation)"
    )


def _measured_hypergradient(run: _Run, problems, lam, spec):
    """(h, outer loss, each w_T): the mean hypergradient of ``problems`` at ``lam``, profiled for peak
    memory the first time (``record.hypergradient_peak_mib``), timed (wall and CPU) afterwards; the
    states the method held go to the record."""
    arguments = (problems, lam, spec, run.generator)
    record, timing = run.record, run.timing
    if record.hypergradient_peak_mib is None:
        (h, loss, states_held, final_states), record.hypergradient_peak_mib = peak_memory_mib(
            mean_hypergradient, *arguments
        )
    else:
        cpu_start = time.process_time()
        (h, loss, states_held, final_states), seconds = timed(mean_hypergradient, *arguments)
        timing.cpu_seconds += time.process_time() - cpu_start
        timing.seconds += seconds
        timing.timed_iterations += 1
    record.states_held, record.state_mib = states_held, states_mib(states_held, final_states[-1])
    return h, loss, final_states


def _finite_norm(h, name: str, iteration: int, loss) -> float:
    """||h||; a FloatingPointError naming the method and the hyper-iteration when it is not finite."""
    norm = trees.norm(h)
    if not math.isfinite(norm):
        raise FloatingPointError(
            f"{name}: non-finite hypergradient at hyper-iteration {iteration} (outer loss "
            f"{loss}); the lower level diverged - lower its step size or the hyper-learning "
            "rate"
        )
    return norm


def _compare_with_exact(run: _Run, iteration: int, h, problems, lam, exact_method: bool) -> None:
    """Records the comparison of h with the exact d_lam f (full RMD; h itself for an exact method),
    timed apart from the hyper-iteration."""
    exact_start = time.perf_counter()
    exact = h if exact_method else mean_hypergradient(problems, lam, EXACT_SPEC, None)[0]
    record_exact(run.record, iteration, h, exact)
    run.timing.exact_seconds += time.perf_counter() - exact_start
    run.timing.exact_comparisons += 1


def _log_progress(log, loop: LoopSettings, run: _Run, done: int, loss, norm: float, loop_start: float) -> None:
    """The progress line every ``loop.log_every`` hyper-iterations (and at the last): f, ||h||, the
    seconds per timed hypergradient and the time left."""
    if done % loop.log_every == 0 or done == loop.iterations:
        seconds = run.timing.per_iteration()["seconds_per_iteration"]
        log(
            f"  iter {done:6d}/{loop.iterations}  f {loss:.4f}  |h| {norm:.3e}"
            + (f"  {seconds:.3f} s/iter" if seconds else "")
            + remaining(time.perf_counter() - loop_start, done - run.start, loop.iterations - done)
        )


def _save_if_due(checkpoint, fingerprint: dict, loop: LoopSettings, run: _Run, objective: Objective, done: int):
    """Every ``loop.checkpoint_every`` hyper-iterations but the last, an atomic checkpoint at
    ``checkpoint`` (None: never) of what a rerun needs to resume after ``done``."""
    if checkpoint and loop.checkpoint_every and done % loop.checkpoint_every == 0 and done < loop.iterations:
        save_checkpoint(
            checkpoint,
            fingerprint,
            {
                "done": done,
                "hparams": tree_map(torch.detach, run.hparams),
                "optimizer": run.optimizer.state_dict(),
                "generator": run.generator.get_state(),
                "record": dataclasses.asdict(run.record),
                "timing": dataclasses.asdict(run.timing),
                "objective": objective.state_dict(),
            },
        )


def hyper_optimise(
    objective: Objective,
    hparams,
    spec,
    loop: LoopSettings,
    *,
    log,
    generator_seed: int = 0,
    checkpoint=None,
    fingerprint: dict | None = None,
    stop_after: int | None = None,
    title: str = "",
) -> HyperRun:
    """Runs the hyper-optimisation described in the module docstring from ``hparams`` (a tree of
    tensors, which is not modified) with the method ``spec``. With ``checkpoint`` (a path), the run is
    saved every ``loop.checkpoint_every`` hyper-iterations and a checkpoint with the same
    ``fingerprint`` found there is resumed."""
    first_problem = objective.problems(0)[0]
    name, shown, exact_method = label(spec), display_name(spec, first_problem.T), is_exact(spec, first_problem.T)
    run = _new_run(hparams, loop, generator_seed)
    fingerprint = _run_fingerprint(fingerprint, spec, loop, generator_seed)
    _resume(run, objective, checkpoint, fingerprint, log)
    log(
        f"{title}{' ' if title else ''}method {name} ({shown}), {loop.iterations} hyper-iterations"
        + (f", resuming after {run.start}" if run.start else "")
    )
    _start_up(first_problem, run.hparams, run.timing, log)
    if run.start == 0:
        timed_evaluation(objective, 0, run.hparams, log, run.timing)
    loop_start = time.perf_counter()
    for iteration in range(run.start, loop.iterations):
        iteration_start, profiled = time.perf_counter(), run.record.hypergradient_peak_mib is None
        excluded_before = run.timing.exact_seconds + run.timing.evaluation_seconds
        lam = tree_map(lambda leaf: leaf.detach().clone(), run.hparams)
        problems = objective.problems(iteration)
        h, loss, final_states = _measured_hypergradient(run, problems, lam, spec)
        norm = _finite_norm(h, name, iteration, loss)
        record_iteration(run.record, objective, loop, iteration, lam, loss, norm)
        record_lower_level(run.record, problems, lam, final_states)
        stop = objective.should_stop(iteration, loss, lam)
        if compares_exactly(iteration, stop or iteration == loop.iterations - 1, loop.exact_every):
            _compare_with_exact(run, iteration, h, problems, lam, exact_method)
        run.record.iterations_run = iteration + 1
        if stop:
            if not profiled:
                _add_iteration_time(run.timing, iteration_start, excluded_before)
            break
        take_step(objective, run.optimizer, run.hparams, h, norm, loop.clip_norm, run.record)
        done = iteration + 1
        _log_progress(log, loop, run, done, loss, norm, loop_start)
        timed_evaluation(objective, done, run.hparams, log, run.timing)
        _save_if_due(checkpoint, fingerprint, loop, run, objective, done)
        if not profiled:
            _add_iteration_time(run.timing, iteration_start, excluded_before)
        if stop_after is not None and done == stop_after and done < loop.iterations:
            raise RunInterrupted(f"stopped after {done} hyper-iterations (--stop-after)")
    judge_health(run.record, log)
    return HyperRun(
        method=dict(spec),
        label=name,
        display=shown,
        exact_method=exact_method,
        record=run.record,
        timing=run.timing,
        hparams=tree_map(torch.detach, run.hparams),
    )
