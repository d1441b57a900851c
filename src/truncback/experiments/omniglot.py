"""One-shot Omniglot meta-learning (sec. 4.3, Table 4, Fig. 7 plots 1-3): meta-train lam = {lambda_l1,
lambda_l2, c, rho, gamma} with one hypergradient method, sampled tasks at every hyper-iteration, and
record the curves and the meta-test accuracy at Table 4's iteration counts.

``python -m truncback omniglot --background bg.npz --evaluation ev.npz --settings '{...}'
--method krmd1 --K 1 --iterations 15000 --milestones 5000 15000 --output r.json --hparams r.npz``

A checkpoint next to the output (``<output>.ckpt``) is written every ``checkpoint_every``
hyper-iterations; rerunning the same command after an interruption resumes from it and ends with
the same result as an uninterrupted run. ``--stop-after N`` stops after N hyper-iterations without
writing anything more (as a kill would), for testing that.
"""

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.utils._pytree import tree_leaves, tree_map

from truncback.determinism import configure_torch, derive_seed, write_npz
from truncback.experiments.omniglot_checkpoint import load_checkpoint, save_checkpoint
from truncback.experiments.omniglot_evaluation import empty_curves, evaluate_point, evaluation_tasks
from truncback.experiments.omniglot_model import (adapted_names, flat_hyperparameters, initial_hyperparameters,
                                                  one_shot_problem)
from truncback.experiments.omniglot_tasks import SPLITS, TaskSampler, meta_split
from truncback.experiments.runs import ProgressLog, add_compute_arguments, load_arrays, select_device, write_json
from truncback.hypergrad import krmd, trees
from truncback.measure import peak_memory_mib, timed
from truncback.settings import Settings

OMNIGLOT_KEYS = ("images", "labels")
HYPER_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
POSITIVE_INTS = ("ways", "query_per_class", "filters", "T", "meta_batch", "eval_every", "curve_tasks",
                 "validation_tasks", "test_tasks", "cosine_every", "checkpoint_every", "depth_tasks", "log_every")


@dataclass(frozen=True)
class OmniglotSettings(Settings):
    """Everything but the method; the README's Assumptions explain the choices."""

    section: ClassVar[str] = "omniglot"

    ways: int = 5
    query_per_class: int = 15
    rotations: bool = True
    split: str = "pooled"
    meta_train_classes: int = 1200
    split_seed: int = 0
    filters: int = 64
    batch_norm: bool = True
    T: int = 50
    init_rho: float = 1.0
    init_gamma: float = 0.1
    hyper_optimizer: str = "adam"
    hyper_lr: float = 0.001
    clip_norm: float | None = 1.0
    meta_batch: int = 1
    eval_every: int = 250
    curve_tasks: int = 120
    validation_tasks: int = 120
    test_tasks: int = 120
    cosine_every: int = 50
    checkpoint_every: int = 250
    depth_tasks: int = 4
    dtype: str = "float32"
    log_every: int = 50

    def check(self) -> None:
        for name in POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
        if self.hyper_optimizer not in HYPER_OPTIMIZERS:
            raise ValueError(f"hyper_optimizer={self.hyper_optimizer!r}; choose one of {sorted(HYPER_OPTIMIZERS)}")
        if self.split not in SPLITS:
            raise ValueError(f"split={self.split!r}; choose one of {SPLITS}")
        if self.curve_tasks > self.test_tasks:
            raise ValueError(f"curve_tasks={self.curve_tasks} must not exceed test_tasks={self.test_tasks} "
                             "(the curves use the first curve_tasks of the test tasks)")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None (no clipping), got clip_norm={self.clip_norm!r}")
        if not isinstance(getattr(torch, self.dtype, None), torch.dtype):
            raise ValueError(f"dtype={self.dtype!r} is not a torch dtype")


@dataclass(frozen=True)
class Method:
    """K-RMD through the last K of T lower-level steps (K = T: full RMD; T = 1: the short horizon),
    run for ``iterations`` hyper-iterations and scored on all test tasks after each of ``milestones``
    hyper-iterations (Table 4's iteration counts; one run of 15000 gives both its 5K and 15K rows)."""

    name: str
    K: int
    T: int
    iterations: int
    milestones: tuple

    def __post_init__(self):
        if self.T < 1 or not 1 <= self.K <= self.T:
            raise ValueError(f"method {self.name}: K={self.K} and T={self.T} must satisfy 1 <= K <= T")
        if self.iterations < 1:
            raise ValueError(f"method {self.name}: iterations={self.iterations} must be at least 1")
        outside = [m for m in self.milestones if not 1 <= m <= self.iterations]
        if outside or not self.milestones:
            raise ValueError(f"method {self.name}: milestones {list(self.milestones)} must be non-empty "
                             f"and lie in [1, iterations={self.iterations}]")

    def label(self, settings_T: int) -> str:
        if self.T < settings_T:
            return "Short horizon" if self.T == 1 else f"Short horizon (T={self.T})"
        return "Full RMD" if self.K == self.T else f"{self.K}-RMD"


class RunInterrupted(Exception):
    """Raised by ``run_omniglot`` when ``stop_after`` hyper-iterations are done."""


def samplers(background: dict, evaluation: dict, settings: OmniglotSettings, task_seed: int, device="cpu"):
    """(meta-train sampler, meta-test sampler) over the split of the characters, tasks on ``device``."""
    train_pool, test_pool = meta_split(background, evaluation, settings.split, settings.meta_train_classes,
                                       settings.split_seed)
    dtype = getattr(torch, settings.dtype)
    return tuple(TaskSampler(pool, settings.ways, settings.query_per_class, settings.rotations, task_seed, dtype,
                             device)
                 for pool in (train_pool, test_pool))


def hypergradient(tasks, hparams, T: int, K: int, batch_norm: bool):
    """(mean over the tasks of the K-RMD hypergradients h_{T-K} (eq. 8), mean outer loss f, states held)."""
    total, losses, states_held = None, [], 0
    for task in tasks:
        h, info = krmd(one_shot_problem(task, T, batch_norm), hparams, K, return_info=True)
        total = h if total is None else trees.add(total, h)
        losses.append(info.outer_loss)
        states_held = max(states_held, info.states_held)
    return trees.scale(1.0 / len(tasks), total), float(np.mean(losses)), states_held


def cosine(a, b) -> float:
    return float(trees.dot(a, b)) / max(trees.norm(a) * trees.norm(b), 1e-300)


def empty_record() -> dict:
    return {"train": {"iteration": [], "outer_loss": [], "hypergradient_norm": []}, "evaluations": empty_curves(),
            "cosine": {"iteration": [], "value": []}, "milestones": [],
            "measured": {"seconds": 0.0, "cpu_seconds": 0.0, "timed_iterations": 0,
                         "hypergradient_peak_mib": None, "states_held": 0}}


def per_iteration(measured: dict, key: str):
    """Mean of a timing over the timed hyper-iterations (all but the first, which is profiled for
    memory instead); None when there are none."""
    count = measured["timed_iterations"]
    return measured[key] / count if count else None


def clipped(h, clip_norm):
    """h scaled down to norm ``clip_norm`` when it is longer (None: h unchanged)."""
    norm = trees.norm(h)
    return trees.scale(clip_norm / norm, h) if clip_norm is not None and norm > clip_norm else h


def measured_hypergradient(iteration: int, measured: dict, arguments: tuple):
    """``hypergradient(*arguments)``; the first hyper-iteration is profiled for its peak memory (the
    profiler's overhead kept out of the timings), the others add their wall and CPU seconds."""
    if iteration == 0:
        (h, loss, states_held), measured["hypergradient_peak_mib"] = peak_memory_mib(hypergradient, *arguments)
    else:
        cpu_start = time.process_time()
        (h, loss, states_held), seconds = timed(hypergradient, *arguments)
        measured["cpu_seconds"] += time.process_time() - cpu_start
        measured["seconds"] += seconds
        measured["timed_iterations"] += 1
    measured["states_held"] = states_held
    return h, loss


def starting_point(settings: OmniglotSettings, fingerprint: dict, task_seed: int, checkpoint, log, device="cpu"):
    """(hparams on ``device`` with their gradients enabled, hyper-optimiser, hyper-iterations done,
    record): from a matching checkpoint when there is one, otherwise the initial lam drawn from
    ``task_seed``."""
    state = load_checkpoint(checkpoint, fingerprint, log) if checkpoint else None
    if state is None:
        hparams = initial_hyperparameters(settings.filters, settings.ways, settings.batch_norm, settings.init_rho,
                                          settings.init_gamma, task_seed, getattr(torch, settings.dtype))
        done, record = 0, empty_record()
    else:
        hparams, done, record = state["hparams"], state["iteration"], state["record"]
    hparams = tree_map(lambda leaf: leaf.to(device), hparams)
    for leaf in tree_leaves(hparams):
        leaf.requires_grad_(True)
    optimizer = HYPER_OPTIMIZERS[settings.hyper_optimizer](tree_leaves(hparams), lr=settings.hyper_lr)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    return hparams, optimizer, done, record


def result_of(settings, method, seed, record, final, pools) -> dict:
    measured = record["measured"]
    state_bytes = sum(c.numel() * c.element_size() for c in tree_leaves(final["c"]))
    return {
        "experiment": "omniglot", "method": method.name, "label": method.label(settings.T), "K": method.K,
        "T": method.T, "iterations": method.iterations, "seed": seed, "settings": asdict(settings),
        "meta_train_classes": pools[0], "meta_test_classes": pools[1],
        "train": record["train"], "evaluations": record["evaluations"], "cosine": record["cosine"],
        "milestones": record["milestones"],
        "final_hyperparameters": {"gamma": float(torch.exp(final["log_gamma"])),
                                  "rho": dict(zip(adapted_names(final["c"]), torch.exp(final["log_rho"]).tolist()))},
        "measured": {"seconds_per_iteration": per_iteration(measured, "seconds"),
                     "cpu_seconds_per_iteration": per_iteration(measured, "cpu_seconds"),
                     "hypergradient_peak_mib": measured["hypergradient_peak_mib"],
                     "states_held": measured["states_held"],
                     "state_mib": measured["states_held"] * state_bytes / 2 ** 20},
    }


def run_omniglot(background: dict, evaluation: dict, settings: OmniglotSettings, method: Method, seed: int,
                 log, checkpoint=None, stop_after: int | None = None, device="cpu") -> tuple[dict, dict]:
    """Meta-trains lam with ``method`` on ``device``; returns (result, final hyperparameters).

    Hyper-iteration i draws meta-training tasks i * meta_batch, ... and takes one step of the
    hyper-optimiser along the K-RMD hypergradient (eq. 8), its norm clipped to ``clip_norm``. Every
    ``cosine_every`` hyper-iterations the exact hypergradient (full RMD, eq. 6) on the same tasks
    gives the cosine with the K-RMD one; every ``eval_every`` the curves get a point. With
    ``checkpoint`` (a path) the state is saved every ``checkpoint_every`` hyper-iterations and a
    matching checkpoint found there is resumed.
    """
    task_seed = derive_seed("omniglot", 0, seed)  # the same tasks and initial lam for every method
    train_sampler, test_sampler = samplers(background, evaluation, settings, task_seed, device)
    pools = (len(train_sampler.pool.members), len(test_sampler.pool.members))
    tasks = evaluation_tasks(train_sampler, test_sampler, settings.test_tasks, settings.validation_tasks)
    fingerprint = {"settings": asdict(settings), "method": {**asdict(method), "milestones": list(method.milestones)},
                   "seed": seed, "classes": list(pools)}
    hparams, optimizer, start, record = starting_point(settings, fingerprint, task_seed, checkpoint, log, device)
    log(f"omniglot {method.label(settings.T)} (K={method.K}, T={method.T}) seed={seed}: {settings.ways}-way "
        f"one-shot, {pools[0]} meta-train / {pools[1]} meta-test characters, {settings.filters} filters, "
        f"{method.iterations} hyper-iterations" + (f", resuming after {start}" if start else ""))

    def evaluate_now(done: int, milestone: bool) -> None:
        log(evaluate_point(tree_map(torch.detach, hparams), tasks, method.T, settings.batch_norm,
                           settings.curve_tasks, done, record["evaluations"], record["milestones"], milestone))

    if start == 0:
        evaluate_now(0, milestone=False)
    else:  # library start-up out of the first timed hyper-iteration of a resumed run
        warm_up = one_shot_problem(train_sampler.task("train", 0), 1, settings.batch_norm)
        krmd(warm_up, tree_map(torch.detach, hparams), 1)
    for iteration in range(start, method.iterations):
        lam = tree_map(torch.detach, hparams)
        batch = [train_sampler.task("train", iteration * settings.meta_batch + b) for b in range(settings.meta_batch)]
        h, loss = measured_hypergradient(iteration, record["measured"],
                                         (batch, lam, method.T, method.K, settings.batch_norm))
        record["train"]["iteration"].append(iteration)
        record["train"]["outer_loss"].append(loss)
        record["train"]["hypergradient_norm"].append(trees.norm(h))
        if not math.isfinite(record["train"]["hypergradient_norm"][-1]):
            raise FloatingPointError(f"{method.name}: non-finite hypergradient at hyper-iteration {iteration} "
                                     f"(outer loss {loss}); the lower level diverged - lower init_gamma or hyper_lr")
        if iteration % settings.cosine_every == 0 and method.K < method.T:
            exact, _, _ = hypergradient(batch, lam, method.T, method.T, settings.batch_norm)
            record["cosine"]["iteration"].append(iteration)
            record["cosine"]["value"].append(cosine(h, exact))
        optimizer.zero_grad()  # lam shares its storage with hparams: the step comes after every use of lam
        for leaf, grad in zip(tree_leaves(hparams), tree_leaves(clipped(h, settings.clip_norm))):
            leaf.grad = grad
        optimizer.step()
        done = iteration + 1
        if done % settings.log_every == 0 or done == method.iterations:
            seconds = per_iteration(record["measured"], "seconds")
            log(f"  iter {done:6d}  f(Q) {loss:.4f}" + (f"  {seconds:.3f} s/iter" if seconds else ""))
        if done % settings.eval_every == 0 or done == method.iterations or done in method.milestones:
            evaluate_now(done, milestone=done in method.milestones)
        if checkpoint and done % settings.checkpoint_every == 0 and done < method.iterations:
            save_checkpoint(checkpoint, fingerprint, done, tree_map(torch.detach, hparams), optimizer, record)
        if stop_after is not None and done == stop_after and done < method.iterations:
            raise RunInterrupted(f"stopped after {done} hyper-iterations (--stop-after)")
    final = tree_map(torch.detach, hparams)
    return result_of(settings, method, seed, record, final, pools), final


def load_omniglot(background_path, evaluation_path) -> tuple[dict, dict]:
    return load_arrays(background_path, OMNIGLOT_KEYS), load_arrays(evaluation_path, OMNIGLOT_KEYS)


def main(args) -> int:
    settings = OmniglotSettings.from_dict(json.loads(args.settings))
    method = Method(args.method, args.K, args.T or settings.T, args.iterations,
                    tuple(args.milestones) or (args.iterations,))
    configure_torch(args.threads)
    device = select_device(args.device)
    background, evaluation = load_omniglot(args.background, args.evaluation)
    checkpoint = Path(args.output).with_name(Path(args.output).name + ".ckpt")
    with ProgressLog(args.log) as log:
        try:
            result, final = run_omniglot(background, evaluation, settings, method, args.seed, log,
                                         checkpoint=checkpoint, stop_after=args.stop_after, device=device)
        except RunInterrupted as stop:
            log(f"{stop}; rerun the same command to resume from {checkpoint}")
            return 3
    write_npz(args.hparams, **flat_hyperparameters(final))
    write_json(args.output, result)
    checkpoint.unlink(missing_ok=True)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("omniglot", help="one Omniglot meta-training run (Table 4, Fig. 7)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--background", required=True, help="prepared Omniglot .npz (meta-training side)")
    parser.add_argument("--evaluation", required=True, help="prepared Omniglot .npz (meta-test side)")
    parser.add_argument("--settings", default="{}", help="JSON object of OmniglotSettings fields")
    parser.add_argument("--method", required=True, help="name of the run (e.g. krmd1, rmd, short_horizon)")
    parser.add_argument("--K", type=int, required=True, help="truncation depth (K = T: full RMD)")
    parser.add_argument("--T", type=int, default=None,
                        help="lower-level steps (default: the settings' T; 1: short horizon)")
    parser.add_argument("--iterations", type=int, required=True, help="hyper-iterations")
    parser.add_argument("--milestones", type=int, nargs="*", default=[],
                        help="hyper-iteration counts whose test accuracy goes into Table 4 (default: the last)")
    parser.add_argument("--seed", type=int, default=0, help="seed index (tasks and initial lam are derived from it)")
    add_compute_arguments(parser)
    parser.add_argument("--output", required=True, help="result JSON")
    parser.add_argument("--hparams", required=True, help="final hyperparameters (.npz)")
    parser.add_argument("--log", help="also write the progress lines to this file")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop after this many hyper-iterations, writing nothing more (tests resumption)")
    parser.set_defaults(run=main)
